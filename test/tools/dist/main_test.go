package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/krew/pkg/index"
	"sigs.k8s.io/yaml"
)

var allPlatforms = []Platform{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}}

// fakes holds the fake plugins built so far, by version and platform, and krew: each is built
// once per run.
var fakes = struct {
	sync.Mutex
	dir  string
	bins map[string]string
}{bins: map[string]string{}}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lanes-dist-fakes-")
	if err != nil {
		panic(err)
	}
	fakes.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fakePlugin builds, for plat, a tiny static program that answers `version -o json` as
// kubectl-lanes does, reporting version.
func fakePlugin(t *testing.T, version string, plat Platform) string {
	t.Helper()
	fakes.Lock()
	defer fakes.Unlock()
	key := version + "_" + plat.OS + "_" + plat.Arch
	if bin, ok := fakes.bins[key]; ok {
		return bin
	}
	dir := filepath.Join(fakes.dir, key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := `package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == "version" && os.Args[3] == "json" {
		fmt.Printf("{\"version\": %q, \"commit\": \"c0ffee\", \"platform\": %q}\n", "` + version + `", runtime.GOOS+"/"+runtime.GOARCH)
	}
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module fake\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, BinaryName)
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=", "GOOS="+plat.OS, "GOARCH="+plat.Arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the fake plugin for %s: %v\n%s", plat, err, out)
	}
	fakes.bins[key] = bin
	return bin
}

// release makes a release folder as `make dist` does, from fake plugins reporting built.
func release(t *testing.T, built, version string) string {
	t.Helper()
	dir := t.TempDir()
	license := filepath.Join(t.TempDir(), "LICENSE")
	if err := os.WriteFile(license, []byte("license text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, plat := range allPlatforms {
		bin := fakePlugin(t, built, plat)
		if err := run([]string{"archive", "-binary", bin, "-license", license, "-out", filepath.Join(dir, ArchiveName(version, plat))}, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "lanes-0.1.0.tgz"), []byte("a chart package"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"manifest", "-dir", dir, "-version", version, "-platforms", platformList(), "-url-base", "file:///releases/" + version + "/"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func platformList() string {
	var s []string
	for _, p := range allPlatforms {
		s = append(s, p.String())
	}
	return strings.Join(s, " ")
}

func verifyArgs(dir, version string) []string {
	return []string{"verify", "-dir", dir, "-version", version, "-platforms", platformList()}
}

func readManifest(t *testing.T, dir string) index.Plugin {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var p index.Plugin
	if err := yaml.UnmarshalStrict(raw, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeManifest(t *testing.T, dir string, p index.Plugin) {
	t.Helper()
	data, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// krewVersion is the krew whose `install --manifest --archive` the tests run (`go install` at this
// version, so krew's own go.mod decides its dependencies): the same as go.mod's sigs.k8s.io/krew.
const krewVersion = "v0.4.3"

// krewInstall installs the host's archive of the release in dir with the real krew, into a
// temporary KREW_ROOT, and returns what the installed plugin's `version -o json` prints.
func krewInstall(t *testing.T, dir, version string) string {
	t.Helper()
	host := Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}
	fakes.Lock()
	krew := filepath.Join(fakes.dir, "krew")
	if _, err := os.Stat(krew); err != nil {
		install := exec.CommandContext(t.Context(), "go", "install", "sigs.k8s.io/krew/cmd/krew@"+krewVersion)
		install.Env = append(os.Environ(), "GOBIN="+fakes.dir, "GOWORK=off", "GOFLAGS=")
		if out, err := install.CombinedOutput(); err != nil {
			fakes.Unlock()
			t.Fatalf("go install krew %s: %v\n%s", krewVersion, err, out)
		}
	}
	fakes.Unlock()
	root, home := t.TempDir(), t.TempDir()
	cmd := exec.CommandContext(t.Context(), krew, "install",
		"--manifest="+filepath.Join(dir, ManifestName), "--archive="+filepath.Join(dir, ArchiveName(version, host)))
	cmd.Env = append(os.Environ(), "KREW_ROOT="+root, "HOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("krew install --manifest --archive: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(t.Context(), filepath.Join(root, "bin", BinaryName), "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("run the plugin krew installed: %v", err)
	}
	return string(out)
}

func TestReleaseVerifies(t *testing.T) {
	dir := release(t, "v1.2.3", "v1.2.3")
	var out bytes.Buffer
	if err := run(verifyArgs(dir, "v1.2.3"), &out); err != nil {
		t.Fatal(err)
	}
	host := runtime.GOOS + "/" + runtime.GOARCH
	for _, plat := range allPlatforms {
		want := plat.String() + ": " + ArchiveName("v1.2.3", plat)
		if plat.String() == host {
			want += ", sha256 "
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("verify's report lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(out.String(), "runs: version v1.2.3, commit c0ffee, "+host) {
		t.Errorf("verify did not run the %s binary:\n%s", host, out.String())
	}

	p := readManifest(t, dir)
	if p.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || p.Kind != "Plugin" || p.Name != "lanes" {
		t.Errorf("manifest is %s %s %s, want krew's v1alpha2 Plugin lanes", p.APIVersion, p.Kind, p.Name)
	}
	if len(p.Spec.Platforms) != len(allPlatforms) {
		t.Fatalf("manifest has %d platforms, want %d", len(p.Spec.Platforms), len(allPlatforms))
	}
	first := p.Spec.Platforms[0]
	if first.URI != "file:///releases/v1.2.3/kubectl-lanes_v1.2.3_linux_amd64.tar.gz" {
		t.Errorf("uri %q: want the url base, one slash, then the archive name", first.URI)
	}
	if got := krewInstall(t, dir, "v1.2.3"); !strings.Contains(got, `"version": "v1.2.3"`) {
		t.Errorf("the plugin krew installed says %s, want version v1.2.3", got)
	}
	sums, err := os.ReadFile(filepath.Join(dir, ChecksumsName))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ArchiveName("v1.2.3", allPlatforms[3]), "lanes-0.1.0.tgz", ManifestName} {
		if !strings.Contains(string(sums), "  "+name+"\n") {
			t.Errorf("%s does not list %s:\n%s", ChecksumsName, name, sums)
		}
	}
}

func TestArchivesAreReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	lic := filepath.Join(dir, "LICENSE")
	for path, data := range map[string]string{bin: "a binary", lic: "a license"} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, b := filepath.Join(dir, "a.tar.gz"), filepath.Join(dir, "b.tar.gz")
	for _, out := range []string{a, b} {
		if err := writeArchive(out, bin, lic); err != nil {
			t.Fatal(err)
		}
	}
	sa, _ := fileSHA256(a)
	sb, err := fileSHA256(b)
	if err != nil {
		t.Fatal(err)
	}
	if sa != sb {
		t.Errorf("two archives of the same files differ: %s, %s", sa, sb)
	}
	files, err := readArchive(a)
	if err != nil {
		t.Fatal(err)
	}
	if string(files[BinaryName]) != "a binary" || string(files[LicenseName]) != "a license" || len(files) != 2 {
		t.Errorf("archive holds %v, want exactly %s and %s", files, BinaryName, LicenseName)
	}
}

// TestVerifyRefuses checks that verify catches each way a release can be wrong.
func TestVerifyRefuses(t *testing.T) {
	cases := map[string]struct {
		built string // the version the binaries report
		spoil func(t *testing.T, dir string)
		want  string
	}{
		"archive changed after the manifest": {
			spoil: func(t *testing.T, dir string) {
				path := filepath.Join(dir, ArchiveName("v1.2.3", Platform{"darwin", "arm64"}))
				f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteString("x"); err != nil {
					t.Fatal(err)
				}
			},
			want: "darwin/arm64: sha256",
		},
		"a platform missing from the manifest": {
			spoil: func(t *testing.T, dir string) {
				p := readManifest(t, dir)
				p.Spec.Platforms = p.Spec.Platforms[:3]
				writeManifest(t, dir, p)
			},
			want: "no platform entry selects darwin/arm64",
		},
		"selector naming another platform": {
			spoil: func(t *testing.T, dir string) {
				p := readManifest(t, dir)
				p.Spec.Platforms[1].Selector.MatchLabels["arch"] = "amd64"
				writeManifest(t, dir, p)
			},
			want: "two platform entries select linux/amd64",
		},
		"binary for the wrong arch": {
			spoil: func(t *testing.T, dir string) {
				// The linux/arm64 archive, rebuilt around the linux/amd64 binary.
				files, err := readArchive(filepath.Join(dir, ArchiveName("v1.2.3", Platform{"linux", "amd64"})))
				if err != nil {
					t.Fatal(err)
				}
				bin := filepath.Join(t.TempDir(), "bin")
				lic := filepath.Join(t.TempDir(), "LICENSE")
				if err := os.WriteFile(bin, files[BinaryName], 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(lic, files[LicenseName], 0o644); err != nil {
					t.Fatal(err)
				}
				if err := writeArchive(filepath.Join(dir, ArchiveName("v1.2.3", Platform{"linux", "arm64"})), bin, lic); err != nil {
					t.Fatal(err)
				}
				if err := run([]string{"manifest", "-dir", dir, "-version", "v1.2.3", "-platforms", platformList(), "-url-base", "file:///r"}, &bytes.Buffer{}); err != nil {
					t.Fatal(err)
				}
			},
			want: "linux/arm64: kubectl-lanes in kubectl-lanes_v1.2.3_linux_arm64.tar.gz: built for EM_X86_64, want EM_AARCH64",
		},
		"checksums.txt stale": {
			spoil: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "lanes-0.1.0.tgz"), []byte("another chart package"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: "checksums.txt says",
		},
		"binary not stamped with the release version": {
			built: "devel",
			want:  "kubectl-lanes version says \"devel\", want \"v1.2.3\"",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			built := tc.built
			if built == "" {
				built = "v1.2.3"
			}
			dir := release(t, built, "v1.2.3")
			if tc.spoil != nil {
				tc.spoil(t, dir)
			}
			err := run(verifyArgs(dir, "v1.2.3"), &bytes.Buffer{})
			if err == nil {
				t.Fatalf("verify accepted the release; want an error mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("verify's error does not mention %q:\n%v", tc.want, err)
			}
		})
	}
}

// TestDistFolder checks the release `make dist` just built (it sets LANES_DIST_DIR,
// LANES_DIST_VERSION and LANES_DIST_PLATFORMS); without them there is nothing to check.
func TestDistFolder(t *testing.T) {
	dir, version, plats := os.Getenv("LANES_DIST_DIR"), os.Getenv("LANES_DIST_VERSION"), os.Getenv("LANES_DIST_PLATFORMS")
	if dir == "" {
		t.Skip("LANES_DIST_DIR is not set: `make dist` runs this test on the folder it builds")
	}
	var out bytes.Buffer
	if err := run([]string{"verify", "-dir", dir, "-version", version, "-platforms", plats}, &out); err != nil {
		t.Fatalf("the release in %s: %v", dir, err)
	}
	if n := strings.Count(out.String(), "\n"); n != len(strings.Fields(plats)) {
		t.Errorf("verify reported %d platforms, want %d:\n%s", n, len(strings.Fields(plats)), out.String())
	}
	t.Logf("%s", out.String())
	if got := krewInstall(t, dir, version); !strings.Contains(got, `"version": "`+version+`"`) {
		t.Errorf("the plugin krew installed from %s says %s, want version %s", dir, got, version)
	}
}
