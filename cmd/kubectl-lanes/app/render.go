package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
	"github.com/kruise-lanes/kruise-lanes/plugin"
)

const renderExample = `  # The canary Ingress Kruise would write for the seed 002 lane, with our mse provider
  kubectl lanes render -f examples/mse/lane.yaml -f examples/mse/ingress.yaml

  # The same with the scripts a cluster actually has
  kubectl get cm -n kruise-rollout kruise-rollout-configuration -o yaml > scripts.yaml
  kubectl lanes render -f lane.yaml --scripts scripts.yaml -o json`

// RenderOptions are the inputs of `kubectl lanes render`.
type RenderOptions struct {
	Files       []string
	Output      string
	Class       string
	ScriptsFile string
	Name        string

	streams genericiooptions.IOStreams
	objects []*unstructured.Unstructured
	scripts map[string]string
}

func newRenderCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &RenderOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "render -f FILE",
		Short: "Print the canary Ingress Kruise would write at each step, without a cluster",
		Long: "render replays a TrafficRouting's or Rollout's steps through an ingress provider script on Kruise's own\n" +
			"Lua runtime and prints, for each step, the <ingress>-canary Ingress as Kruise would create and update it.\n" +
			"The files hold one TrafficRouting (or one Rollout with ingress traffic routing) and the stable Ingress it names;\n" +
			"other objects are ignored.",
		Example: renderExample,
		Args:    cobra.NoArgs,
		RunE:    runE(o),
	}
	cmd.Flags().StringArrayVarP(&o.Files, "filename", "f", nil, "file with the TrafficRouting or Rollout and the stable Ingress (- for standard input); repeatable")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "yaml", "output format: yaml or json")
	cmd.Flags().StringVar(&o.Class, "class", "", "ingress class type to render with, instead of the one the object names")
	cmd.Flags().StringVar(&o.ScriptsFile, "scripts", "", "a kruise-rollout-configuration ConfigMap whose lua.traffic.routing.ingress.<class> keys replace the built-in scripts")
	cmd.Flags().StringVar(&o.Name, "name", "", "which TrafficRouting or Rollout to render when the files hold several")
	return cmd
}

// Complete reads the input files and the scripts (render takes no arguments).
func (o *RenderOptions) Complete([]string) error {
	if len(o.Files) == 0 {
		return errors.New("render needs -f FILE with the TrafficRouting or Rollout and its stable Ingress")
	}
	for _, f := range o.Files {
		objs, err := o.readObjects(f)
		if err != nil {
			return err
		}
		o.objects = append(o.objects, objs...)
	}
	scripts, err := luascripts.Scripts()
	if err != nil {
		return err
	}
	o.scripts = scripts
	if o.ScriptsFile != "" {
		data, err := os.ReadFile(o.ScriptsFile)
		if err != nil {
			return fmt.Errorf("read --scripts file: %w", err)
		}
		var cm corev1.ConfigMap
		if err := yaml.UnmarshalStrict(data, &cm); err != nil || cm.Kind != "ConfigMap" {
			return fmt.Errorf("--scripts %s is not a ConfigMap manifest (kubectl get cm -n kruise-rollout kruise-rollout-configuration -o yaml gives one)", o.ScriptsFile)
		}
		for k, v := range cm.Data {
			if _, ingress := luascripts.IngressClassOfKey(k); ingress {
				o.scripts[k] = v
			}
		}
	}
	return nil
}

// Validate checks the flags.
func (o *RenderOptions) Validate() error {
	if o.Output != "yaml" && o.Output != "json" {
		return fmt.Errorf("output format %q is not supported; use -o yaml or -o json", o.Output)
	}
	return nil
}

// Run renders every step and prints the list; it needs no cluster, so ctx is unused.
func (o *RenderOptions) Run(context.Context) error {
	subject, plan, err := o.plan()
	if err != nil {
		return err
	}
	if o.Class != "" {
		plan.ClassType = o.Class
	}
	class := plan.ClassType
	if class == "" {
		class = "nginx" // Kruise's default class type
	}
	script, ok := o.scripts[luascripts.IngressKey(class)]
	if !ok {
		return fmt.Errorf("no provider script for ingress class type %q: Kruise Lanes ships %s; pass --scripts with a ConfigMap that holds lua.traffic.routing.ingress.%s",
			class, strings.Join(luascripts.IngressProviders(), " and "), class)
	}
	stable, err := o.ingress(plan.IngressName)
	if err != nil {
		return fmt.Errorf("%s names Ingress %q: %w", subject, plan.IngressName, err)
	}
	results, err := plugin.Replay(script, stable, plan, nil)
	if err != nil {
		return fmt.Errorf("%s cannot be rendered with the %s provider: %s", subject, class, plugin.ErrorMessage(err))
	}
	printable := make([]map[string]any, 0, len(results))
	for _, r := range results {
		item := map[string]any{"step": r.Step, "canaryIngress": nil}
		if r.CanaryIngress != nil {
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(r.CanaryIngress)
			if err != nil {
				return fmt.Errorf("convert the canary Ingress: %w", err)
			}
			unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
			unstructured.RemoveNestedField(u, "status")
			item["canaryIngress"] = u
		}
		printable = append(printable, item)
	}
	var out []byte
	if o.Output == "json" {
		out, err = json.MarshalIndent(printable, "", "  ")
		out = append(out, '\n')
	} else {
		out, err = yaml.Marshal(printable)
	}
	if err != nil {
		return fmt.Errorf("print the result: %w", err)
	}
	_, err = o.streams.Out.Write(out)
	return err
}

func (o *RenderOptions) readObjects(file string) ([]*unstructured.Unstructured, error) {
	var r io.Reader
	if file == "-" {
		r = o.streams.In
	} else {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		r = bytes.NewReader(data)
	}
	decoder := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objs []*unstructured.Unstructured
	for i := 1; ; i++ {
		var m map[string]any
		if err := decoder.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("%s, document %d, is not valid YAML: %w", file, i, err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// plan finds the object to render: the TrafficRouting, else the only Rollout with ingress routing.
func (o *RenderOptions) plan() (string, plugin.IngressPlan, error) {
	var candidates []string
	for _, u := range o.objects {
		if o.Name != "" && u.GetName() != o.Name {
			continue
		}
		switch {
		case u.GetKind() == "TrafficRouting" && strings.HasPrefix(u.GetAPIVersion(), "rollouts.kruise.io/"):
			candidates = append(candidates, "trafficrouting "+u.GetName())
		case u.GetKind() == "Rollout" && strings.HasPrefix(u.GetAPIVersion(), "rollouts.kruise.io/"):
			if r, err := toV1beta1Rollout(u); err == nil {
				if _, err := plugin.PlanForRollout(r); err == nil {
					candidates = append(candidates, "rollout "+u.GetName())
				}
			}
		}
	}
	// A lane's TrafficRouting is the subject even when its member Rollouts are in the same file.
	var lanes []string
	for _, c := range candidates {
		if strings.HasPrefix(c, "trafficrouting ") {
			lanes = append(lanes, c)
		}
	}
	if len(lanes) > 0 {
		candidates = lanes
	}
	sort.Strings(candidates)
	candidates = slices.Compact(candidates)
	switch len(candidates) {
	case 0:
		if o.Name != "" {
			return "", plugin.IngressPlan{}, fmt.Errorf("no TrafficRouting or Rollout named %q with ingress traffic routing in the input", o.Name)
		}
		return "", plugin.IngressPlan{}, errors.New("the input holds no TrafficRouting and no Rollout with ingress traffic routing (spec.strategy.canary.trafficRoutings[0].ingress)")
	case 1:
	default:
		return "", plugin.IngressPlan{}, fmt.Errorf("the input holds several objects to render (%s); choose one with --name", strings.Join(candidates, ", "))
	}
	kind, name, _ := strings.Cut(candidates[0], " ")
	for _, u := range o.objects {
		if u.GetName() != name || !strings.EqualFold(u.GetKind(), kind) {
			continue
		}
		if kind == "trafficrouting" {
			var tr rolloutsv1alpha1.TrafficRouting
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &tr, true); err != nil {
				return "", plugin.IngressPlan{}, fmt.Errorf("trafficrouting %s is malformed: %w", name, err)
			}
			plan, err := plugin.PlanForTrafficRouting(&tr)
			return candidates[0], plan, err
		}
		r, err := toV1beta1Rollout(u)
		if err != nil {
			return "", plugin.IngressPlan{}, err
		}
		plan, err := plugin.PlanForRollout(r)
		return candidates[0], plan, err
	}
	return "", plugin.IngressPlan{}, fmt.Errorf("%s vanished from the input", candidates[0])
}

func toV1beta1Rollout(u *unstructured.Unstructured) (*rolloutsv1beta1.Rollout, error) {
	switch u.GetAPIVersion() {
	case rolloutsv1beta1.GroupVersion.String():
		var r rolloutsv1beta1.Rollout
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &r, true); err != nil {
			return nil, fmt.Errorf("rollout %s is malformed: %w", u.GetName(), err)
		}
		return &r, nil
	case rolloutsv1alpha1.GroupVersion.String():
		var old rolloutsv1alpha1.Rollout
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &old, true); err != nil {
			return nil, fmt.Errorf("rollout %s is malformed: %w", u.GetName(), err)
		}
		var r rolloutsv1beta1.Rollout
		if err := old.ConvertTo(&r); err != nil {
			return nil, fmt.Errorf("convert rollout %s to v1beta1: %w", u.GetName(), err)
		}
		return &r, nil
	default:
		return nil, fmt.Errorf("rollout %s has unsupported apiVersion %s", u.GetName(), u.GetAPIVersion())
	}
}

func (o *RenderOptions) ingress(name string) (*networkingv1.Ingress, error) {
	for _, u := range o.objects {
		if u.GetKind() != "Ingress" || u.GetName() != name {
			continue
		}
		var ing networkingv1.Ingress
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &ing, true); err != nil {
			return nil, fmt.Errorf("the Ingress is malformed: %w", err)
		}
		return &ing, nil
	}
	return nil, errors.New("the stable Ingress is not in the input; add its manifest with another -f")
}
