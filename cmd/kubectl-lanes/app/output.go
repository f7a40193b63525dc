package app

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"sigs.k8s.io/yaml"
)

// validateOutput checks an -o value of the lane verbs: json, yaml, or none for the verb's own
// human format.
func validateOutput(format string) error {
	switch format {
	case "", "json", "yaml":
		return nil
	}
	return errUnsupportedOutput(format)
}

func errUnsupportedOutput(format string) error {
	return fmt.Errorf("output format %q is not supported; use -o json or -o yaml, or no -o for a table", format)
}

// printData writes v as JSON or YAML.
func printData(w io.Writer, format string, v any) error {
	var out []byte
	var err error
	switch format {
	case "json":
		out, err = json.MarshalIndent(v, "", "  ")
		out = append(out, '\n')
	case "yaml":
		out, err = yaml.Marshal(v)
	default:
		return errUnsupportedOutput(format)
	}
	if err != nil {
		return fmt.Errorf("print: %w", err)
	}
	_, err = w.Write(out)
	return err
}

// orDash is s, or "-" for an empty cell.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// validateInterval checks a polling --interval: zero or less would read the cluster in a busy loop.
func validateInterval(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("--interval %s: use a positive duration, such as 2s", d)
	}
	return nil
}
