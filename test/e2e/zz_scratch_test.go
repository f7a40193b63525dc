//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

func TestScratchPodRunner(t *testing.T) {
	ns := cluster.Namespace(t)
	cluster.RunPods(t, ns)
	d := demoDeployment(ns, "solo", "v1", "", "alicloud.service.tag", 2)
	delete(d.Spec.Template.Annotations, "inject.istio.io/templates")
	if err := cluster.Client.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitForDeploymentAvailable(t.Context(), cluster.Client, client.ObjectKey{Namespace: ns, Name: "solo"}, stepTimeout); err != nil {
		t.Fatal(err)
	}
	pods := podsByImage(t.Context(), t, ns, "solo")[demoImage("v1")]
	for _, p := range pods {
		send := framework.HTTPSender(fmt.Sprintf("http://%s:%d/", p.Status.PodIP, demoHTTPPort), "", nil)
		took, err := framework.WaitForAnswers(t.Context(), 10*time.Second, "pod answers", send, 3, func(s string) bool { return s == "solo[base](v1)" })
		t.Logf("pod %s %s: %v %v", p.Name, p.Status.PodIP, took, err)
		p2 := p.DeepCopy()
		p2.Labels["alicloud.service.tag"] = "gray"
		if err := cluster.Client.Update(t.Context(), p2); err != nil {
			t.Fatal(err)
		}
		took, err = framework.WaitForAnswers(t.Context(), 10*time.Second, "pod answers gray", send, 3, func(s string) bool { return s == "solo[gray](v1)" })
		t.Logf("relabelled pod %s: %v %v", p.Name, took, err)
		if err != nil {
			t.Error(err)
		}
	}
}
