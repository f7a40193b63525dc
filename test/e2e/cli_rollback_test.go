//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// TestCLIRollbackStatefulSetAndCloneSet: `kubectl lanes rollback` puts a StatefulSet's and a
// CloneSet's stable revision (from their ControllerRevisions) back while Kruise holds the release
// at its first batch; Kruise cancels the release and every pod returns to the old image.
func TestCLIRollbackStatefulSetAndCloneSet(t *testing.T) {
	for name, build := range map[string]func(ns string) client.Object{
		"StatefulSet": func(ns string) client.Object { return statefulSet(ns, "rs", "example.com/rs:v1", 3) },
		"CloneSet":    func(ns string) client.Object { return cloneSet(ns, "rc", "example.com/rc:v1", 3) },
	} {
		t.Run(name, func(t *testing.T) {
			if name == "CloneSet" {
				if err := cluster.KruiseAppsRunning(); err != nil {
					t.Skipf("CloneSets need the OpenKruise manager: %v", err)
				}
			}
			ns := cluster.Namespace(t)
			m := newLaneMember(build(ns), 3, 1, 2)
			m.create(t)
			m.release(t)
			out, _, code := lanes(t, ns, "rollback", "lane")
			wantExit(t, code, 0, "rollback")
			if !strings.Contains(out, "rolled back to revision") {
				t.Errorf("rollback output:\n%s", out)
			}
			_, _, code = lanes(t, ns, "wait", "lane", "--for=healthy", "--timeout=120s", "--interval=500ms")
			wantExit(t, code, 0, "wait --for=healthy after the rollback")
			labels := map[string]string{"app": m.workload.GetName()}
			if err := framework.WaitForReadyPods(t.Context(), cluster.Client, ns, labels, stepTimeout, map[string]int{m.oldImage: m.replicas}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
