// Command dist makes the kubectl-lanes release files that `make dist` publishes, and checks them.
//
//	dist archive  -binary PATH -license PATH -out FILE
//	dist manifest -dir DIR -version V -platforms "os/arch ..." -url-base URL
//	dist verify   -dir DIR -version V -platforms "os/arch ..."
//
// archive packs one platform's binary and the LICENSE into a tar.gz whose bytes depend on those
// two files alone. manifest reads the archives of DIR (named as ArchiveName says), writes the krew
// plugin manifest lanes.yaml (one platform entry per archive, each archive's sha256, its uri under
// -url-base) and then checksums.txt (sha256sum format) of every other file in DIR. verify reads
// them back: the manifest names every platform, each sha256 matches its archive and checksums.txt
// agrees, each archive holds the binary and the LICENSE, the binary is built for the platform its
// entry selects (and is static on linux), and the binary this host can run answers `version -o
// json` with the release version.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dist:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: dist archive|manifest|verify [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	binary := fs.String("binary", "", "the kubectl-lanes binary to pack (archive)")
	license := fs.String("license", "", "the LICENSE file to pack beside it (archive)")
	outFile := fs.String("out", "", "the archive to write (archive)")
	dir := fs.String("dir", "", "the release folder (manifest, verify)")
	version := fs.String("version", "", "the release version, e.g. v0.1.0 (manifest, verify)")
	platforms := fs.String("platforms", "", "the platforms released, space-separated os/arch (manifest, verify)")
	urlBase := fs.String("url-base", "", "where the archives will be downloaded from; each uri is <url-base>/<archive> (manifest)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "archive":
		if *binary == "" || *license == "" || *outFile == "" {
			return errors.New("archive needs -binary, -license and -out")
		}
		if err := writeArchive(*outFile, *binary, *license); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s\n", *outFile)
		return nil
	case "manifest", "verify":
		if *dir == "" || *version == "" || *platforms == "" {
			return fmt.Errorf("%s needs -dir, -version and -platforms", args[0])
		}
		plats, err := parsePlatforms(*platforms)
		if err != nil {
			return err
		}
		if args[0] == "manifest" {
			if *urlBase == "" {
				return errors.New("manifest needs -url-base")
			}
			if err := writeRelease(*dir, *version, plats, strings.TrimSuffix(*urlBase, "/")); err != nil {
				return err
			}
			fmt.Fprintf(out, "wrote %s/%s and %s/%s\n", *dir, ManifestName, *dir, ChecksumsName)
			return nil
		}
		report, err := verifyRelease(*dir, *version, plats)
		if err != nil {
			return err
		}
		fmt.Fprint(out, report)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q: archive, manifest or verify", args[0])
}
