package trafficrouting

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Annotations on a TrafficRouting that tune its lane. All are optional; defaults come from the
// manager's flags.
const (
	AnnotationPrefix = "kruise-lanes.io/"
	// AnnotationTag names the lane tag where requestHeaderModifier.set gives the lane header no
	// value; where it does, the two must agree.
	AnnotationTag = AnnotationPrefix + "tag"
	// AnnotationLaneHeader names the lane header (default x-mse-tag).
	AnnotationLaneHeader = AnnotationPrefix + "lane-header"
	// AnnotationDialects lists the label dialects, comma separated (mse, opensergo, asm, istio, lanes).
	AnnotationDialects = AnnotationPrefix + "dialects"
	// AnnotationBaseLabels is "true" to label the stable pods of members with the base labels.
	AnnotationBaseLabels = AnnotationPrefix + "base-labels"

	// TrafficRoutingAnnotation joins a Rollout to a lane (Kruise's own annotation).
	TrafficRoutingAnnotation = rolloutsv1alpha1.TrafficRoutingAnnotation

	// BaseTag is the tag of base (stable) pods in dialects that label them.
	BaseTag = "base"
)

// Defaults are the lane options used where a TrafficRouting sets none.
type Defaults struct {
	LaneHeader string
	Dialects   []Dialect
	BaseLabels bool
}

// DefaultDefaults are the manager's built-in defaults: the MSE lane header and the labels the
// seeds use (MSE and OpenSergo).
func DefaultDefaults() Defaults {
	return Defaults{LaneHeader: "x-mse-tag", Dialects: []Dialect{DialectMSE, DialectOpenSergo}}
}

// Lane is a resolved TrafficRouting.
type Lane struct {
	Namespace  string
	Name       string
	Tag        string
	Header     string
	Dialects   []Dialect
	BaseLabels bool
}

// ErrMisconfigured is wrapped by every error that says how a lane is misconfigured.
var ErrMisconfigured = errors.New("misconfigured")

// Resolve turns a TrafficRouting into a Lane. An error wraps ErrMisconfigured and an aggregate of
// field errors whose messages say what to change.
func Resolve(tr *rolloutsv1alpha1.TrafficRouting, d Defaults) (Lane, error) {
	var errs field.ErrorList
	annotations := field.NewPath("metadata", "annotations")
	lane := Lane{Namespace: tr.Namespace, Name: tr.Name, Header: d.LaneHeader, Dialects: d.Dialects, BaseLabels: d.BaseLabels}

	if v, ok := tr.Annotations[AnnotationLaneHeader]; ok {
		lane.Header = v
	}
	if msgs := validation.IsHTTPHeaderName(lane.Header); len(msgs) > 0 {
		errs = append(errs, field.Invalid(annotations.Key(AnnotationLaneHeader), lane.Header, "the lane header is not a valid HTTP header name"))
	}
	if v, ok := tr.Annotations[AnnotationDialects]; ok {
		dialects, err := ParseDialects(v)
		if err != nil {
			errs = append(errs, field.Invalid(annotations.Key(AnnotationDialects), v, err.Error()))
		}
		lane.Dialects = dialects
	}
	if len(lane.Dialects) == 0 && len(errs) == 0 {
		errs = append(errs, field.Required(annotations.Key(AnnotationDialects), "a lane needs at least one label dialect ("+strings.Join(DialectNames(), ", ")+")"))
	}
	if v, ok := tr.Annotations[AnnotationBaseLabels]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, field.Invalid(annotations.Key(AnnotationBaseLabels), v, "must be true or false"))
		}
		lane.BaseLabels = b
	}
	mesh, err := MeshOf(tr)
	if err != nil {
		errs = append(errs, field.Invalid(annotations.Key(AnnotationMesh), tr.Annotations[AnnotationMesh], err.Error()))
	} else {
		lane = withMesh(lane, mesh)
	}

	tagPath := annotations.Key(AnnotationTag)
	setPath := field.NewPath("spec", "strategy", "requestHeaderModifier", "set")
	injected, injects := InjectedValue(tr, lane.Header)
	if v, ok := tr.Annotations[AnnotationTag]; ok {
		lane.Tag = v
		if injects && injected != v {
			errs = append(errs, field.Invalid(tagPath, v, fmt.Sprintf("contradicts %s, which sets the lane header %s to %q: drop the annotation or make both say the same tag", setPath, lane.Header, injected)))
		}
	} else if injects {
		tagPath = setPath
		lane.Tag = injected
	}
	switch lane.Tag {
	case "":
		errs = append(errs, field.Required(tagPath, fmt.Sprintf("the lane tag cannot be determined: set %s, or set header %s in spec.strategy.requestHeaderModifier.set", AnnotationTag, lane.Header)))
	case BaseTag:
		errs = append(errs, field.Invalid(tagPath, lane.Tag, "the tag \"base\" is reserved for stable pods"))
	default:
		for _, msg := range validation.IsValidLabelValue(lane.Tag) {
			errs = append(errs, field.Invalid(tagPath, lane.Tag, "the lane tag must be a valid label value: "+msg))
		}
		for _, d := range lane.Dialects {
			for k := range d.CanaryLabels(lane.Tag) {
				for _, msg := range validation.IsQualifiedName(k) {
					errs = append(errs, field.Invalid(tagPath, lane.Tag, fmt.Sprintf("dialect %s would need label key %q: %s", d, k, msg)))
				}
			}
		}
		if mesh == MeshIstio {
			// The tag names the DestinationRule subset, which Istio accepts only as a DNS-1123
			// label; it would refuse the route on every retry.
			for _, msg := range validation.IsDNS1123Label(lane.Tag) {
				errs = append(errs, field.Invalid(tagPath, lane.Tag, "an istio lane's tag names its DestinationRule subset, which must be a DNS-1123 label (lower case letters, digits and '-'): "+msg))
			}
		}
	}
	if len(errs) > 0 {
		return Lane{}, fmt.Errorf("lane %s/%s is %w: %w", tr.Namespace, tr.Name, ErrMisconfigured, errs.ToAggregate())
	}
	return lane, nil
}

// InjectedValue is the value the TrafficRouting's requestHeaderModifier.set gives header (names
// compared case-insensitively, the last entry wins, as in the ingress providers); false when it
// sets no such header.
func InjectedValue(tr *rolloutsv1alpha1.TrafficRouting, header string) (string, bool) {
	if tr.Spec.Strategy.RequestHeaderModifier == nil {
		return "", false
	}
	value, ok := "", false
	for _, h := range tr.Spec.Strategy.RequestHeaderModifier.Set {
		if strings.EqualFold(string(h.Name), header) {
			value, ok = h.Value, true
		}
	}
	return value, ok
}

// CanaryLabels are the labels a canary pod of a member carries.
func (l Lane) CanaryLabels() map[string]string {
	out := make(map[string]string, len(l.Dialects))
	for _, d := range l.Dialects {
		if k, ok := d.canaryKey(l.Tag); ok {
			out[k] = l.Tag
		}
	}
	return out
}

// StableLabels are the labels a stable pod of a member carries (none unless BaseLabels).
func (l Lane) StableLabels() map[string]string {
	if !l.BaseLabels {
		return map[string]string{}
	}
	out := make(map[string]string, len(l.Dialects))
	for _, d := range l.Dialects {
		if k, ok := d.baseKey(); ok {
			out[k] = BaseTag
		}
	}
	return out
}

// Dialect is one way of marking a lane pod with labels.
type Dialect string

// The label dialects.
const (
	DialectMSE       Dialect = "mse"
	DialectOpenSergo Dialect = "opensergo"
	DialectASM       Dialect = "asm"
	DialectIstio     Dialect = "istio"
	DialectLanes     Dialect = "lanes"
)

// Label keys of the dialects.
const (
	LabelMSE             = "alicloud.service.tag"
	LabelOpenSergoPrefix = "opensergo.io/canary-"
	LabelASM             = "ASM_TRAFFIC_TAG"
	LabelIstio           = "istio.service.tag"
	LabelLanes           = AnnotationPrefix + "lane"
)

var allDialects = []Dialect{DialectMSE, DialectOpenSergo, DialectASM, DialectIstio, DialectLanes}

// DialectNames lists the known dialects.
func DialectNames() []string {
	out := make([]string, 0, len(allDialects))
	for _, d := range allDialects {
		out = append(out, string(d))
	}
	return out
}

// ParseDialects parses a comma-separated dialect list.
func ParseDialects(s string) ([]Dialect, error) {
	var out []Dialect
	for _, part := range strings.Split(s, ",") {
		name := Dialect(strings.TrimSpace(part))
		if name == "" {
			continue
		}
		if !slices.Contains(allDialects, name) {
			return nil, fmt.Errorf("unknown label dialect %q; known: %s", name, strings.Join(DialectNames(), ", "))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// CanaryLabels are the dialect's labels for a lane pod with the given tag.
func (d Dialect) CanaryLabels(tag string) map[string]string {
	if k, ok := d.canaryKey(tag); ok {
		return map[string]string{k: tag}
	}
	return nil
}

// canaryKey is the key of the dialect's one label for a lane pod with the given tag (whose
// value is the tag); false for an unknown dialect.
func (d Dialect) canaryKey(tag string) (string, bool) {
	switch d {
	case DialectMSE:
		return LabelMSE, true
	case DialectOpenSergo:
		return LabelOpenSergoPrefix + tag, true
	case DialectASM:
		return LabelASM, true
	case DialectIstio:
		return LabelIstio, true
	case DialectLanes:
		return LabelLanes, true
	}
	return "", false
}

// BaseLabels are the dialect's labels for a stable pod; MSE and OpenSergo mark base by absence.
func (d Dialect) BaseLabels() map[string]string {
	if k, ok := d.baseKey(); ok {
		return map[string]string{k: BaseTag}
	}
	return nil
}

// baseKey is the key of the dialect's one label for a stable pod (whose value is BaseTag); false
// where the dialect marks base by absence.
func (d Dialect) baseKey() (string, bool) {
	switch d {
	case DialectASM:
		return LabelASM, true
	case DialectIstio:
		return LabelIstio, true
	case DialectLanes:
		return LabelLanes, true
	}
	return "", false
}

// IsLaneLabel reports whether a pod label key belongs to any dialect; the reconciler removes
// such labels from pods that are no longer in a lane.
func IsLaneLabel(key string) bool {
	switch key {
	case LabelMSE, LabelASM, LabelIstio, LabelLanes:
		return true
	}
	return strings.HasPrefix(key, LabelOpenSergoPrefix)
}
