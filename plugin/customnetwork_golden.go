package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// CustomNetworkCase is one golden case for a custom network provider script (format:
// luascripts/README.md).
type CustomNetworkCase struct {
	// Description says what the case proves.
	Description string `json:"description"`
	// Rollout or TrafficRouting supplies the steps; exactly one is set.
	Rollout        *rolloutsv1beta1.Rollout         `json:"rollout,omitempty"`
	TrafficRouting *rolloutsv1alpha1.TrafficRouting `json:"trafficRouting,omitempty"`
	// Original is the object before the release (e.g. the stable HTTPRoute).
	Original map[string]any `json:"original"`
	// Expected is the object's spec after each step.
	Expected []ExpectedSpec `json:"expected,omitempty"`
	// ExpectedError, when set, is the step at which the script must fail and a part of its message.
	ExpectedError *ExpectedError `json:"expectedError,omitempty"`
}

// ExpectedSpec is a custom network object's spec after one step, or the mark that Kruise restored
// the original at that step.
type ExpectedSpec struct {
	Step     int            `json:"step" yaml:"step"`
	Restored bool           `json:"restored,omitempty" yaml:"restored,omitempty"`
	Spec     map[string]any `json:"spec,omitempty" yaml:"spec,omitempty"`
}

// Plan returns the custom network plan of the case's Rollout or TrafficRouting.
func (c *CustomNetworkCase) Plan() (CustomNetworkPlan, error) {
	switch {
	case c.Rollout != nil && c.TrafficRouting == nil:
		return CustomNetworkPlanForRollout(c.Rollout)
	case c.TrafficRouting != nil && c.Rollout == nil:
		return CustomNetworkPlanForTrafficRouting(c.TrafficRouting)
	default:
		return CustomNetworkPlan{}, errors.New("a case needs exactly one of rollout and trafficRouting")
	}
}

// OriginalObject returns the case's original object.
func (c *CustomNetworkCase) OriginalObject() (*unstructured.Unstructured, error) {
	if c.Original == nil {
		return nil, errors.New("a case needs the original object")
	}
	return (&unstructured.Unstructured{Object: c.Original}).DeepCopy(), nil
}

// Run replays the case's steps through script and returns each step's spec and the object after
// the release ended (restored by Kruise).
func (c *CustomNetworkCase) Run(script string) ([]ExpectedSpec, []CustomNetworkStep, *unstructured.Unstructured, error) {
	original, err := c.OriginalObject()
	if err != nil {
		return nil, nil, nil, err
	}
	plan, err := c.Plan()
	if err != nil {
		return nil, nil, nil, err
	}
	steps, final, err := ReplayCustomNetwork(script, original, plan)
	specs := make([]ExpectedSpec, 0, len(steps))
	for _, s := range steps {
		e := ExpectedSpec{Step: s.Step, Restored: s.Restored}
		if !s.Restored {
			spec, sErr := jsonMap(s.Object.Object["spec"])
			if sErr != nil {
				return nil, nil, nil, sErr
			}
			e.Spec = spec
		}
		specs = append(specs, e)
	}
	return specs, steps, final, err
}

// jsonMap normalises a value to what JSON decoding gives (float64 numbers, no typed maps).
func jsonMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("spec is not an object: %w", err)
	}
	return out, nil
}

// NamedCustomNetworkCase is a case with the path it was read from.
type NamedCustomNetworkCase struct {
	Path string
	Case CustomNetworkCase
}

// LoadCustomNetworkCases reads every testdata/<provider>/*.yaml case under dir in fsys, keyed by
// provider (the name of the custom network provider whose script the case exercises).
func LoadCustomNetworkCases(fsys fs.FS, dir string) (map[string][]NamedCustomNetworkCase, error) {
	files, err := fs.Glob(fsys, path.Join(dir, "testdata", "*", "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("list golden cases: %w", err)
	}
	sort.Strings(files)
	cases := map[string][]NamedCustomNetworkCase{}
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("read golden case: %w", err)
		}
		var c CustomNetworkCase
		if err := yaml.UnmarshalStrict(data, &c); err != nil {
			return nil, fmt.Errorf("golden case %s: %w", f, err)
		}
		provider := path.Base(path.Dir(f))
		cases[provider] = append(cases[provider], NamedCustomNetworkCase{Path: f, Case: c})
	}
	return cases, nil
}
