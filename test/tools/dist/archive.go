package main

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The files of an archive, at its root, and the names of the release's other files.
const (
	BinaryName    = "kubectl-lanes"
	LicenseName   = "LICENSE"
	ManifestName  = "lanes.yaml"
	ChecksumsName = "checksums.txt"
)

// Platform is one os/arch a release is built for.
type Platform struct {
	OS, Arch string
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// ArchiveName is the file name of a platform's archive: kubectl-lanes_<version>_<os>_<arch>.tar.gz.
func ArchiveName(version string, p Platform) string {
	return fmt.Sprintf("%s_%s_%s_%s.tar.gz", BinaryName, version, p.OS, p.Arch)
}

func parsePlatforms(s string) ([]Platform, error) {
	var out []Platform
	seen := map[Platform]bool{}
	for _, f := range strings.Fields(s) {
		osName, arch, ok := strings.Cut(f, "/")
		if !ok || osName == "" || arch == "" || strings.Contains(arch, "/") {
			return nil, fmt.Errorf("platform %q is not os/arch", f)
		}
		p := Platform{OS: osName, Arch: arch}
		if seen[p] {
			return nil, fmt.Errorf("platform %s is listed twice", p)
		}
		seen[p] = true
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no platform in %q", s)
	}
	return out, nil
}

// writeArchive packs the binary (mode 0755) and the license (0644) into a gzip'd tar at out. Owner,
// times and gzip header are fixed, so the archive, and its checksum, is a function of the two files.
func writeArchive(out, binary, license string) (err error) {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(out), err)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("create the archive: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write %s: %w", out, cerr)
		}
	}()
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("compress %s: %w", out, err)
	}
	tw := tar.NewWriter(zw)
	for _, e := range []struct {
		name, path string
		mode       int64
	}{{BinaryName, binary, 0o755}, {LicenseName, license, 0o644}} {
		if err := addFile(tw, e.name, e.path, e.mode); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

func addFile(tw *tar.Writer, name, path string, mode int64) error {
	src, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	hdr := &tar.Header{Name: name, Mode: mode, Size: st.Size(), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("add %s: %w", name, err)
	}
	if _, err := io.Copy(tw, src); err != nil {
		return fmt.Errorf("add %s: %w", name, err)
	}
	return nil
}

// readArchive returns the regular files of a gzip'd tar by name.
func readArchive(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s is not gzip: %w", path, err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read %s in %s: %w", hdr.Name, path, err)
		}
		if hdr.Name == BinaryName && hdr.Mode&0o111 == 0 {
			return nil, fmt.Errorf("%s in %s is not executable (mode %o)", hdr.Name, path, hdr.Mode)
		}
		files[hdr.Name] = data
	}
}
