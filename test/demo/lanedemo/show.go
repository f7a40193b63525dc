//go:build e2e

package lanedemo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/cmd/kubectl-lanes/app"
)

// Phase prints a phase header a newcomer can follow.
func Phase(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "\n==> %s\n", fmt.Sprintf(format, args...))
}

// cliError is a kubectl-lanes run that exited non-zero.
type cliError struct {
	args   []string
	code   int
	stderr string
}

func (e *cliError) Error() string {
	return fmt.Sprintf("kubectl lanes %s exited %d: %s", strings.Join(e.args, " "), e.code, strings.TrimSpace(e.stderr))
}

// lanes runs kubectl-lanes in process against the demo's cluster and namespace, without printing;
// it returns when the command does or, as the command gets ctx, soon after ctx ends (Ctrl-C).
func (d *demo) lanes(ctx context.Context, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	full := append([]string{args[0], "--kubeconfig", d.cfg.Kubeconfig, "-n", d.cfg.Namespace}, args[1:]...)
	code := app.Run(ctx, full, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("kubectl lanes %s: %w", args[0], err)
	}
	if code != 0 {
		return out.String(), &cliError{args: args, code: code, stderr: errOut.String()}
	}
	return out.String(), nil
}

// show runs kubectl-lanes and prints the command line and its output, as a terminal would.
func (d *demo) show(ctx context.Context, args ...string) (string, error) {
	d.command("kubectl lanes " + strings.Join(args, " "))
	out, err := d.lanes(ctx, args...)
	fmt.Fprint(d.cfg.Out, indent(out))
	return out, err
}

// command prints a command line the demo runs (or does the equivalent of).
func (d *demo) command(line string) {
	fmt.Fprintf(d.cfg.Out, "  $ %s\n", line)
}

// say prints a line of explanation.
func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.cfg.Out, "  %s\n", fmt.Sprintf(format, args...))
}

// showAnnotations prints the annotations of the canary Ingress, sorted.
func (d *demo) showAnnotations(name string, annotations map[string]string) {
	d.say("Ingress %s, annotations Kruise wrote with our mse provider:", name)
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(d.cfg.Out, "      %s: %q\n", k, annotations[k])
	}
}

// showPods prints the pods of the chain with their image, readiness and lane label.
func (d *demo) showPods(ctx context.Context) error {
	pods := &corev1.PodList{}
	if err := d.cfg.Client.List(ctx, pods, client.InNamespace(d.cfg.Namespace)); err != nil {
		return fmt.Errorf("listing the demo's pods: %w", err)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	d.say("Pods (lane label %s, stamped by lanes-manager's webhook on canary pods):", laneLabel)
	tw := tabwriter.NewWriter(d.cfg.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "      POD\tIMAGE\tREADY\tLANE LABEL")
	for _, p := range pods.Items {
		if !p.DeletionTimestamp.IsZero() || len(p.Spec.Containers) == 0 {
			continue
		}
		label := p.Labels[laneLabel]
		if label == "" {
			label = "-"
		}
		fmt.Fprintf(tw, "      %s\t%s\t%t\t%s\n", p.Name, p.Spec.Containers[0].Image, podReady(&p), label)
	}
	return tw.Flush()
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// indent indents every line of s for the transcript.
func indent(s string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "    " + strings.Join(lines, "\n    ") + "\n"
}
