package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// fakeManager builds a tiny static program that answers --version as lanes-manager does.
func fakeManager(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	src := "package main\nimport (\"fmt\"; \"os\")\nfunc main() { if len(os.Args) == 2 && os.Args[1] == \"--version\" { fmt.Println(\"lanes-manager " + version + " (commit c0ffee, test)\") } }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module fake\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "lanes-manager")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the fake manager: %v\n%s", err, out)
	}
	return bin
}

func TestBuildThenVerify(t *testing.T) {
	bin := fakeManager(t, "v1.2.3")
	tarPath := filepath.Join(t.TempDir(), "image.tar")
	var out bytes.Buffer
	if err := run([]string{"build", "-binary", bin, "-ref", "kruise-lanes/lanes-manager:v1.2.3", "-version", "v1.2.3", "-revision", "c0ffee", "-out", tarPath}, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"verify", "-image", tarPath, "-ref", "kruise-lanes/lanes-manager:v1.2.3", "-version", "v1.2.3"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "lanes-manager v1.2.3 (commit c0ffee") {
		t.Errorf("verify printed %q, want the binary's --version line", out.String())
	}

	tag, err := name.NewTag("kruise-lanes/lanes-manager:v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(tarPath, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || cfg.Config.Labels["org.opencontainers.image.revision"] != "c0ffee" || cfg.OS == "" || cfg.Architecture == "" {
		t.Errorf("config %+v", cfg.Config)
	}

	// The same binary built twice gives the same image.
	again := filepath.Join(t.TempDir(), "again.tar")
	if err := run([]string{"build", "-binary", bin, "-ref", "kruise-lanes/lanes-manager:v1.2.3", "-version", "v1.2.3", "-revision", "c0ffee", "-out", again}, &out); err != nil {
		t.Fatal(err)
	}
	img2, err := tarball.ImageFromPath(again, &tag)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := img2.Digest()
	if d1 != d2 {
		t.Errorf("digests %s and %s differ for the same binary", d1, d2)
	}
}

func TestVerifyRefusesAWrongVersion(t *testing.T) {
	bin := fakeManager(t, "v1.2.3")
	tarPath := filepath.Join(t.TempDir(), "image.tar")
	var out bytes.Buffer
	// The label says v9.9.9 and so does the expectation, but the binary inside says v1.2.3.
	if err := run([]string{"build", "-binary", bin, "-ref", "x/y:v9.9.9", "-version", "v9.9.9", "-out", tarPath}, &out); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"verify", "-image", tarPath, "-ref", "x/y:v9.9.9", "-version", "v9.9.9"}, &out)
	if err == nil || !strings.Contains(err.Error(), `want it to start with "lanes-manager v9.9.9 "`) {
		t.Errorf("verify = %v, want the binary's version refused", err)
	}
	if err := run([]string{"verify", "-image", tarPath, "-ref", "x/y:v9.9.9", "-version", "v1.2.3"}, &out); err == nil || !strings.Contains(err.Error(), "label org.opencontainers.image.version") {
		t.Errorf("verify = %v, want the label refused", err)
	}
}
