package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"debug/macho"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/krew/pkg/constants"
	"sigs.k8s.io/krew/pkg/index"
	"sigs.k8s.io/yaml"
)

// versionTimeout bounds one run of the packed binary's version verb.
const versionTimeout = 30 * time.Second

// verifyRelease checks the release folder dir (see the package doc) and returns one line per
// platform saying what was checked; the error lists every problem found.
func verifyRelease(dir, version string, plats []Platform) (string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return "", fmt.Errorf("read the krew manifest: %w", err)
	}
	var plugin index.Plugin
	if err := yaml.UnmarshalStrict(raw, &plugin); err != nil {
		return "", fmt.Errorf("%s is not a krew plugin manifest: %w", ManifestName, err)
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if plugin.APIVersion != constants.CurrentAPIVersion || plugin.Kind != constants.PluginKind {
		bad("%s is %s %s, want %s %s", ManifestName, plugin.APIVersion, plugin.Kind, constants.CurrentAPIVersion, constants.PluginKind)
	}
	if plugin.Name != PluginName {
		bad("plugin name %q, want %q", plugin.Name, PluginName)
	}
	if plugin.Spec.Version != version {
		bad("spec.version %q, want %q", plugin.Spec.Version, version)
	}
	if plugin.Spec.ShortDescription == "" {
		bad("spec.shortDescription is empty")
	}
	sums, err := readChecksums(dir)
	if err != nil {
		return "", err
	}
	names, err := releaseFiles(dir)
	if err != nil {
		return "", err
	}
	for _, name := range names {
		want, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return "", err
		}
		switch got, ok := sums[name]; {
		case !ok:
			bad("%s does not list %s", ChecksumsName, name)
		case got != want:
			bad("%s says %s of %s, the file's is %s", ChecksumsName, got, name, want)
		}
	}
	for name := range sums {
		if !slices.Contains(names, name) {
			bad("%s lists %s, which is not in %s", ChecksumsName, name, dir)
		}
	}

	entries := map[Platform]index.Platform{}
	for i, e := range plugin.Spec.Platforms {
		plat, err := selected(e)
		if err != nil {
			bad("platform entry %d: %v", i, err)
			continue
		}
		if _, dup := entries[plat]; dup {
			bad("two platform entries select %s", plat)
		}
		entries[plat] = e
	}
	var report strings.Builder
	for _, plat := range plats {
		e, ok := entries[plat]
		if !ok {
			bad("no platform entry selects %s", plat)
			continue
		}
		delete(entries, plat)
		line, errs := verifyPlatform(dir, version, plat, e)
		problems = append(problems, errs...)
		if len(errs) == 0 {
			fmt.Fprintf(&report, "%s: %s\n", plat, line)
		}
	}
	for plat := range entries {
		bad("platform entry for %s, which is not released", plat)
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return "", errors.New(strings.Join(problems, "\n"))
	}
	return report.String(), nil
}

// selected returns the platform a manifest entry's selector picks: exactly the labels os and arch.
func selected(e index.Platform) (Platform, error) {
	if e.Selector == nil || len(e.Selector.MatchExpressions) > 0 || len(e.Selector.MatchLabels) != 2 {
		return Platform{}, fmt.Errorf("selector %v, want matchLabels with os and arch only", e.Selector)
	}
	p := Platform{OS: e.Selector.MatchLabels["os"], Arch: e.Selector.MatchLabels["arch"]}
	if p.OS == "" || p.Arch == "" {
		return Platform{}, fmt.Errorf("selector %v, want matchLabels with os and arch", e.Selector.MatchLabels)
	}
	return p, nil
}

// verifyPlatform checks one entry against its archive; it returns what it checked, or problems.
func verifyPlatform(dir, version string, plat Platform, e index.Platform) (string, []string) {
	var problems []string
	bad := func(format string, a ...any) {
		problems = append(problems, plat.String()+": "+fmt.Sprintf(format, a...))
	}
	name := ArchiveName(version, plat)
	path := filepath.Join(dir, name)
	if !strings.HasSuffix(e.URI, "/"+name) {
		bad("uri %q does not end in /%s", e.URI, name)
	}
	sum, err := fileSHA256(path)
	if err != nil {
		bad("read its archive: %v", err)
		return "", problems
	}
	if e.Sha256 != sum {
		bad("sha256 %q in %s, the archive's is %s", e.Sha256, ManifestName, sum)
	}
	if e.Bin != BinaryName {
		bad("bin %q, want %s", e.Bin, BinaryName)
	}
	files, err := readArchive(path)
	if err != nil {
		bad("%v", err)
		return "", problems
	}
	for _, want := range []string{BinaryName, LicenseName} {
		if !slices.Contains(e.Files, index.FileOperation{From: want, To: "."}) {
			bad("files %v do not copy %s to .", e.Files, want)
		}
		if _, ok := files[want]; !ok {
			bad("%s holds no %s", name, want)
		}
	}
	bin := files[BinaryName]
	if bin == nil {
		return "", problems
	}
	if err := checkFormat(bin, plat); err != nil {
		bad("%s in %s: %v", BinaryName, name, err)
		return "", problems
	}
	if plat.OS != runtime.GOOS || plat.Arch != runtime.GOARCH {
		return fmt.Sprintf("%s, sha256 %s, a %s binary (this host cannot run it)", name, sum[:12], plat), problems
	}
	printed, err := runVersion(bin, version, plat)
	if err != nil {
		bad("%v", err)
		return "", problems
	}
	return fmt.Sprintf("%s, sha256 %s, runs: %s", name, sum[:12], printed), problems
}

// checkFormat says whether bin is an executable for plat, and on linux a static one (no program
// interpreter), as CGO_ENABLED=0 builds it.
func checkFormat(bin []byte, plat Platform) error {
	switch plat.OS {
	case "linux":
		f, err := elf.NewFile(bytes.NewReader(bin))
		if err != nil {
			return fmt.Errorf("not an ELF executable: %w", err)
		}
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[plat.Arch]
		if f.Machine != want {
			return fmt.Errorf("built for %v, want %v", f.Machine, want)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				return errors.New("dynamically linked (it has a program interpreter); build it with CGO_ENABLED=0")
			}
		}
		return nil
	case "darwin":
		f, err := macho.NewFile(bytes.NewReader(bin))
		if err != nil {
			return fmt.Errorf("not a Mach-O executable: %w", err)
		}
		want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[plat.Arch]
		if f.Cpu != want {
			return fmt.Errorf("built for %v, want %v", f.Cpu, want)
		}
		return nil
	}
	return fmt.Errorf("no format check for %s", plat.OS)
}

// runVersion runs the packed binary's `version -o json` and checks the version and platform it
// reports; it returns the one-line form.
func runVersion(bin []byte, version string, plat Platform) (string, error) {
	tmp, err := os.MkdirTemp("", "lanes-dist-")
	if err != nil {
		return "", fmt.Errorf("make a folder to run the binary in: %w", err)
	}
	defer os.RemoveAll(tmp)
	exe := filepath.Join(tmp, BinaryName)
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		return "", fmt.Errorf("extract %s: %w", BinaryName, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), versionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "version", "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s version -o json from the archive: %w: %s", BinaryName, err, stderr.String())
	}
	var info struct {
		Version  string `json:"version"`
		Commit   string `json:"commit"`
		Platform string `json:"platform"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
		return "", fmt.Errorf("%s version -o json printed %q, not JSON: %w", BinaryName, stdout.String(), err)
	}
	if info.Version != version {
		return "", fmt.Errorf("%s version says %q, want %q (stamp it with make's LDFLAGS)", BinaryName, info.Version, version)
	}
	if info.Platform != plat.String() {
		return "", fmt.Errorf("%s version says platform %q, want %s", BinaryName, info.Platform, plat)
	}
	return fmt.Sprintf("version %s, commit %s, %s", info.Version, info.Commit, info.Platform), nil
}

// readChecksums reads checksums.txt ("<sha256>  <name>" lines) by name.
func readChecksums(dir string) (map[string]string, error) {
	f, err := os.Open(filepath.Join(dir, ChecksumsName))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ChecksumsName, err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 || name == "" {
			return nil, fmt.Errorf("%s line %d, %q, is not \"<sha256>  <file>\"", ChecksumsName, n, sc.Text())
		}
		if _, dup := sums[name]; dup {
			return nil, fmt.Errorf("%s lists %s twice", ChecksumsName, name)
		}
		sums[name] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", ChecksumsName, err)
	}
	return sums, nil
}
