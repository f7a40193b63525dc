//go:build e2e

package framework

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ModuleDir returns the module-cache folder of module as pinned by the tool module in
// test/tools/<group>, downloading it through the module proxy if needed. The folder is read-only:
// copy what must be written to.
func ModuleDir(ctx context.Context, repoRoot, group, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	cmd.Dir = filepath.Join(repoRoot, "test", "tools", group)
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s in test/tools/%s: %w: %s", module, group, err, stderr.String())
	}
	var info struct {
		Dir   string
		Error string
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("decoding go mod download output for %s: %w", module, err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s in test/tools/%s: %s", module, group, info.Error)
	}
	return info.Dir, nil
}

// findRepoRoot walks up from the working directory to the folder holding test/tools/build.sh.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("reading the working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "test", "tools", "build.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no test/tools/build.sh above the working directory; set Options.RepoRoot")
		}
		dir = parent
	}
}
