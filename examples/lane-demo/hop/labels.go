package hop

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ParseLabels parses a downward-API labels file as kubelet writes it: one key="value" per line,
// the value a Go-quoted string. Empty lines are ignored.
func ParseLabels(data []byte) (map[string]string, error) {
	labels := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		key, quoted, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("line %d is not key=\"value\"", i+1)
		}
		value, err := strconv.Unquote(quoted)
		if err != nil {
			return nil, fmt.Errorf("line %d: value of %s is not a quoted string: %w", i+1, key, err)
		}
		labels[key] = value
	}
	return labels, nil
}

// labelsFileLane is the lane of a pod read from its labels file. The file is stat'ed on every
// call and read again when it is another file (kubelet swaps a symlink) or its size or
// modification time changed, so a lane label removed after promotion is seen by the next
// request.
type labelsFileLane struct {
	path, label string
	log         *slog.Logger

	mu     sync.Mutex
	loaded bool        // a first stat happened
	info   fs.FileInfo // of the file last read; nil when it did not exist
	lane   string
}

func newLabelsFileLane(path, label string, log *slog.Logger) *labelsFileLane {
	return &labelsFileLane{path: path, label: label, log: log, lane: BaseLane}
}

// Lane returns the pod's lane: the value of the lane label, or BaseLane when the file or the
// label is absent or the file cannot be read.
func (l *labelsFileLane) Lane() string {
	info, statErr := os.Stat(l.path)
	l.mu.Lock()
	defer l.mu.Unlock()
	first := !l.loaded
	if statErr != nil {
		if !l.loaded || l.info != nil {
			if !errors.Is(statErr, fs.ErrNotExist) {
				l.log.Error("cannot read the labels file; answering as base", "file", l.path, "err", statErr)
			}
			l.set(BaseLane, first)
		}
		l.loaded, l.info = true, nil
		return l.lane
	}
	if l.loaded && l.info != nil && sameVersion(l.info, info) {
		return l.lane
	}
	l.loaded, l.info = true, info
	data, err := os.ReadFile(l.path)
	if err != nil {
		l.log.Error("cannot read the labels file; answering as base", "file", l.path, "err", err)
		l.set(BaseLane, first)
		return l.lane
	}
	labels, err := ParseLabels(data)
	if err != nil {
		l.log.Error("labels file is malformed; answering as base", "file", l.path, "err", err)
		l.set(BaseLane, first)
		return l.lane
	}
	lane := labels[l.label]
	if lane == "" {
		lane = BaseLane
	}
	l.set(lane, first)
	return l.lane
}

// set changes the lane, logging a change unless this is the first read.
func (l *labelsFileLane) set(lane string, first bool) {
	if lane != l.lane && !first {
		l.log.Info("pod lane changed", "from", l.lane, "to", lane, "label", l.label)
	}
	l.lane = lane
}

func sameVersion(a, b fs.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
