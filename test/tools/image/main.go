// Command image builds the lanes-manager container image as a tarball, with no container engine
// and no registry, and verifies one.
//
//	image build  -binary PATH -ref NAME:TAG -version V -revision C -out FILE
//	image verify -image FILE -ref NAME:TAG -version V
//
// build writes a single-layer image (the static binary at /lanes-manager, owned by root, mode
// 0555) on an empty base, run as 65532:65532 with a read-only root filesystem in mind (the binary
// writes nothing but to mounted volumes), as a `docker load` / `ctr images import` tarball. verify
// reads such a tarball back, checks its config, extracts the binary and runs it with --version.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Where the binary lives in the image and who runs it.
const (
	binaryPath = "/lanes-manager"
	user       = "65532:65532"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: image build|verify [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	binary := fs.String("binary", "", "the static lanes-manager binary (build)")
	ref := fs.String("ref", "", "the image reference, NAME:TAG")
	version := fs.String("version", "", "the version the binary reports")
	revision := fs.String("revision", "unknown", "the commit it was built from (build)")
	outFile := fs.String("out", "", "the tarball to write (build)")
	image := fs.String("image", "", "the tarball to verify (verify)")
	platform := fs.String("platform", runtime.GOOS+"/"+runtime.GOARCH, "the image's os/arch (build)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	tag, err := name.NewTag(*ref)
	if err != nil {
		return fmt.Errorf("-ref %q: %w", *ref, err)
	}
	switch args[0] {
	case "build":
		if *binary == "" || *outFile == "" || *version == "" {
			return errors.New("build needs -binary, -out and -version")
		}
		if err := build(*binary, tag, *version, *revision, *platform, *outFile); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (%s)\n", *outFile, tag)
		return nil
	case "verify":
		if *image == "" || *version == "" {
			return errors.New("verify needs -image and -version")
		}
		printed, err := verify(*image, tag, *version)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %s", *image, printed)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q: build or verify", args[0])
}

// labels are the OCI annotations the image's config carries.
func labels(version, revision string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "lanes-manager",
		"org.opencontainers.image.description": "Kruise Lanes: lane-label webhook, provider installer and mesh route controllers",
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.revision":    revision,
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
}

func build(binary string, tag name.Tag, version, revision, platform, out string) error {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("read the binary: %w", err)
	}
	osName, arch, ok := strings.Cut(platform, "/")
	if !ok {
		return fmt.Errorf("-platform %q is not os/arch", platform)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	// A fixed time keeps the image's digest a function of the binary alone.
	epoch := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(binaryPath, "/"), Mode: 0o555, Size: int64(len(bin)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("write the layer: %w", err)
	}
	if _, err := tw.Write(bin); err != nil {
		return fmt.Errorf("write the layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write the layer: %w", err)
	}
	data := layer.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return fmt.Errorf("make the layer: %w", err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "kruise-lanes make image", Created: v1.Time{Time: epoch}}})
	if err != nil {
		return fmt.Errorf("add the layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("read the config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = osName, arch
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Entrypoint = []string{binaryPath}
	cfg.Config.User = user
	cfg.Config.WorkingDir = "/"
	cfg.Config.Labels = labels(version, revision)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return fmt.Errorf("set the config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(out), err)
	}
	if err := tarball.WriteToFile(out, tag, img); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

func verify(path string, tag name.Tag, version string) (string, error) {
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		return "", fmt.Errorf("read %s as %s: %w", path, tag, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("read the config: %w", err)
	}
	var problems []string
	if !slices.Equal(cfg.Config.Entrypoint, []string{binaryPath}) {
		problems = append(problems, fmt.Sprintf("entrypoint %q, want [%s]", cfg.Config.Entrypoint, binaryPath))
	}
	if cfg.Config.User != user {
		problems = append(problems, fmt.Sprintf("user %q, want %s", cfg.Config.User, user))
	}
	if got := cfg.Config.Labels["org.opencontainers.image.version"]; got != version {
		problems = append(problems, fmt.Sprintf("label org.opencontainers.image.version %q, want %s", got, version))
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("image %s: %s", tag, strings.Join(problems, "; "))
	}
	dir, err := os.MkdirTemp("", "lanes-image-")
	if err != nil {
		return "", fmt.Errorf("make a directory to extract into: %w", err)
	}
	defer os.RemoveAll(dir)
	extracted := filepath.Join(dir, "lanes-manager")
	if err := extract(img, strings.TrimPrefix(binaryPath, "/"), extracted); err != nil {
		return "", err
	}
	printed, err := exec.Command(extracted, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("run %s --version from the image: %w: %s", binaryPath, err, printed)
	}
	if want := "lanes-manager " + version + " "; !strings.HasPrefix(string(printed), want) {
		return "", fmt.Errorf("%s --version printed %q, want it to start with %q", binaryPath, printed, want)
	}
	return string(printed), nil
}

// extract copies file (a path inside the image, without the leading /) out of the image's
// flattened filesystem.
func extract(img v1.Image, file, dst string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("the image has no %s", "/"+file)
		}
		if err != nil {
			return fmt.Errorf("read the image's filesystem: %w", err)
		}
		if h.Name != file {
			continue
		}
		if h.Mode&0o111 == 0 {
			return fmt.Errorf("%s in the image is not executable (mode %o)", "/"+file, h.Mode)
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return fmt.Errorf("extract %s: %w", file, err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return fmt.Errorf("extract %s: %w", file, err)
		}
		return f.Close()
	}
}
