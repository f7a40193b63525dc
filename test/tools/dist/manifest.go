package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/krew/pkg/constants"
	"sigs.k8s.io/krew/pkg/index"
	"sigs.k8s.io/yaml"
)

// PluginName is the name krew installs the plugin under: `kubectl krew install lanes` gives
// `kubectl lanes`.
const PluginName = "lanes"

// manifest is the krew plugin manifest of a release: one platform entry per archive.
func manifest(version, urlBase string, sums map[Platform]string, plats []Platform) index.Plugin {
	p := index.Plugin{
		TypeMeta:   metav1.TypeMeta{APIVersion: constants.CurrentAPIVersion, Kind: constants.PluginKind},
		ObjectMeta: metav1.ObjectMeta{Name: PluginName},
		Spec: index.PluginSpec{
			Version:          version,
			ShortDescription: "Operate Kruise Lanes: end-to-end canary traffic lanes",
			Description: "kubectl lanes lists, watches, approves, rolls back and traces the traffic lanes of\n" +
				"Kruise Lanes (canary releases across several OpenKruise Rollouts), and renders a\n" +
				"lane's canary Ingress offline.\n",
		},
	}
	for _, plat := range plats {
		archive := ArchiveName(version, plat)
		p.Spec.Platforms = append(p.Spec.Platforms, index.Platform{
			URI:      urlBase + "/" + archive,
			Sha256:   sums[plat],
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"os": plat.OS, "arch": plat.Arch}},
			Files:    []index.FileOperation{{From: BinaryName, To: "."}, {From: LicenseName, To: "."}},
			Bin:      BinaryName,
		})
	}
	return p
}

// writeRelease writes the manifest of the archives in dir, then checksums.txt of every other file
// there (the archives, the chart package, the manifest).
func writeRelease(dir, version string, plats []Platform, urlBase string) error {
	sums := map[Platform]string{}
	for _, plat := range plats {
		sum, err := fileSHA256(filepath.Join(dir, ArchiveName(version, plat)))
		if err != nil {
			return fmt.Errorf("archive of %s: %w (build it first: make dist)", plat, err)
		}
		sums[plat] = sum
	}
	data, err := yaml.Marshal(manifest(version, urlBase, sums, plats))
	if err != nil {
		return fmt.Errorf("encode the krew manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), data, 0o644); err != nil {
		return fmt.Errorf("write the krew manifest: %w", err)
	}
	names, err := releaseFiles(dir)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, name := range names {
		sum, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, name)
	}
	if err := os.WriteFile(filepath.Join(dir, ChecksumsName), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", ChecksumsName, err)
	}
	return nil
}

// releaseFiles lists the regular files at the top of dir but checksums.txt, sorted.
func releaseFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list the release folder: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && e.Name() != ChecksumsName {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

func fileSHA256(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}
