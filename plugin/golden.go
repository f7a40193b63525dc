package plugin

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// IngressCase is one golden case for an ingress provider script (format: luascripts/README.md).
type IngressCase struct {
	// Description says what the case proves.
	Description string `json:"description"`
	// Rollout or TrafficRouting supplies the steps; exactly one is set.
	Rollout        *rolloutsv1beta1.Rollout         `json:"rollout,omitempty"`
	TrafficRouting *rolloutsv1alpha1.TrafficRouting `json:"trafficRouting,omitempty"`
	// Original is the stable Ingress.
	Original *networkingv1.Ingress `json:"original"`
	// CanaryAnnotations, when set, are the annotations of a canary Ingress that already exists
	// before the first step (for example written by another script).
	CanaryAnnotations map[string]string `json:"canaryAnnotations,omitempty"`
	// Expected are the canary Ingress annotations after each step.
	Expected []ExpectedStep `json:"expected,omitempty"`
	// ExpectedError, when set, is the step at which the script must fail and a part of its message.
	ExpectedError *ExpectedError `json:"expectedError,omitempty"`
	// KruiseDiffers, for cases of the mse provider, says why Kruise's shipped mse.lua gives a
	// different result; empty means both scripts must agree.
	KruiseDiffers string `json:"kruiseDiffers,omitempty"`
}

// ExpectedStep is the canary Ingress's annotations after one step.
type ExpectedStep struct {
	Step int `json:"step"`
	// NoCanaryIngress is true while Kruise has not created the canary Ingress.
	NoCanaryIngress bool              `json:"noCanaryIngress,omitempty" yaml:"noCanaryIngress,omitempty"`
	Annotations     map[string]string `json:"annotations,omitempty" yaml:"annotations,omitempty"`
}

// ExpectedError is a deliberate refusal by the script.
type ExpectedError struct {
	Step     int    `json:"step" yaml:"step"`
	Contains string `json:"contains" yaml:"contains"`
}

// Plan returns the ingress plan of the case's Rollout or TrafficRouting.
func (c *IngressCase) Plan() (IngressPlan, error) {
	switch {
	case c.Rollout != nil && c.TrafficRouting == nil:
		return PlanForRollout(c.Rollout)
	case c.TrafficRouting != nil && c.Rollout == nil:
		return PlanForTrafficRouting(c.TrafficRouting)
	default:
		return IngressPlan{}, errors.New("a case needs exactly one of rollout and trafficRouting")
	}
}

// Run replays the case's steps through script and returns each step's annotations.
func (c *IngressCase) Run(script string) ([]ExpectedStep, error) {
	if c.Original == nil {
		return nil, errors.New("a case needs the stable Ingress as original")
	}
	plan, err := c.Plan()
	if err != nil {
		return nil, err
	}
	var existing *networkingv1.Ingress
	if c.CanaryAnnotations != nil {
		existing = BuildCanaryIngress(c.Original, plan)
		existing.Annotations = c.CanaryAnnotations
	}
	results, err := Replay(script, c.Original, plan, existing)
	steps := make([]ExpectedStep, 0, len(results))
	for _, r := range results {
		s := ExpectedStep{Step: r.Step}
		if r.CanaryIngress != nil {
			s.Annotations = r.CanaryIngress.Annotations
		} else {
			s.NoCanaryIngress = true
		}
		steps = append(steps, s)
	}
	return steps, err
}

// NamedCase is a case with the path it was read from.
type NamedCase struct {
	Path string
	Case IngressCase
}

// LoadIngressCases reads every testdata/<provider>/*.yaml case under dir in fsys, keyed by
// provider (the class type whose script the case exercises), in path order.
func LoadIngressCases(fsys fs.FS, dir string) (map[string][]NamedCase, error) {
	files, err := fs.Glob(fsys, path.Join(dir, "testdata", "*", "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("list golden cases: %w", err)
	}
	sort.Strings(files)
	cases := map[string][]NamedCase{}
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("read golden case: %w", err)
		}
		var c IngressCase
		if err := yaml.UnmarshalStrict(data, &c); err != nil {
			return nil, fmt.Errorf("golden case %s: %w", f, err)
		}
		provider := path.Base(path.Dir(f))
		cases[provider] = append(cases[provider], NamedCase{Path: f, Case: c})
	}
	return cases, nil
}

// ErrorMessage returns the message a user would see for a replay error: the script's own
// sentence when the script refused, the error otherwise.
func ErrorMessage(err error) string {
	var scriptErr *ScriptError
	if errors.As(err, &scriptErr) {
		msg := scriptErr.Message()
		var stepErr *StepError
		if errors.As(err, &stepErr) {
			return fmt.Sprintf("step %d: %s", stepErr.Step, msg)
		}
		return msg
	}
	return strings.TrimSpace(err.Error())
}
