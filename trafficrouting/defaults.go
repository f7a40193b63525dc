package trafficrouting

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultsConfigMapName is the ConfigMap, in lanes-manager's namespace, where the leader
// publishes the defaults it resolves lanes with, so that kubectl lanes resolves them alike.
const DefaultsConfigMapName = "kruise-lanes-defaults"

// Keys of the defaults ConfigMap.
const (
	DefaultsKeyLaneHeader = "laneHeader"
	DefaultsKeyDialects   = "dialects"
	DefaultsKeyBaseLabels = "baseLabels"
)

// ConfigMapData is the data of the defaults ConfigMap.
func (d Defaults) ConfigMapData() map[string]string {
	names := make([]string, 0, len(d.Dialects))
	for _, dialect := range d.Dialects {
		names = append(names, string(dialect))
	}
	return map[string]string{
		DefaultsKeyLaneHeader: d.LaneHeader,
		DefaultsKeyDialects:   strings.Join(names, ","),
		DefaultsKeyBaseLabels: strconv.FormatBool(d.BaseLabels),
	}
}

// DefaultsFromConfigMapData reads the data of the defaults ConfigMap. Every key is required: a
// ConfigMap that lacks one was not written by lanes-manager, and guessing would miscount lanes.
func DefaultsFromConfigMapData(data map[string]string) (Defaults, error) {
	var errs []error
	get := func(key string) string {
		v, ok := data[key]
		if !ok {
			errs = append(errs, fmt.Errorf("key %s is missing", key))
		}
		return v
	}
	d := Defaults{LaneHeader: get(DefaultsKeyLaneHeader)}
	if _, ok := data[DefaultsKeyLaneHeader]; ok {
		if msgs := validation.IsHTTPHeaderName(d.LaneHeader); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s %q is not a valid HTTP header name", DefaultsKeyLaneHeader, d.LaneHeader))
		}
	}
	if v, ok := data[DefaultsKeyDialects]; ok {
		dialects, err := ParseDialects(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", DefaultsKeyDialects, err))
		case len(dialects) == 0:
			errs = append(errs, fmt.Errorf("%s names no dialect", DefaultsKeyDialects))
		}
		d.Dialects = dialects
	} else {
		get(DefaultsKeyDialects)
	}
	if v := get(DefaultsKeyBaseLabels); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q is not true or false", DefaultsKeyBaseLabels, v))
		}
		d.BaseLabels = b
	}
	if err := errors.Join(errs...); err != nil {
		return Defaults{}, err
	}
	return d, nil
}
