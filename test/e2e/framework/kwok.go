//go:build e2e

package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// FakeNodeName is the one Node kwok plays the kubelet for.
	FakeNodeName = "kwok-node-0"
	// kwokNodeAnnotation selects the Nodes kwok manages (it leaves every other Node alone).
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
)

// kwokStageFiles lists the Stage definitions, relative to the kwok module's kustomize/stage folder:
// a Node turns Ready and keeps heart-beating; a scheduled Pod turns Running and Ready at once, a
// deleted one goes away.
func kwokStageFiles() []string {
	return []string{
		"node/fast/node-initialize.yaml",
		"node/heartbeat/node-heartbeat.yaml",
		"pod/fast/pod-ready.yaml",
		"pod/fast/pod-complete.yaml",
		"pod/fast/pod-delete.yaml",
	}
}

// startKwok writes kwok's stage configuration from the pinned kwok module, starts kwok, registers
// the fake Node and waits until it is Ready.
func startKwok(ctx context.Context, sup *Supervisor, c client.Client, toolsBin, repoRoot, dir, kubeconfig string) error {
	moduleDir, err := ModuleDir(ctx, repoRoot, "kwok", "sigs.k8s.io/kwok")
	if err != nil {
		return err
	}
	// kwok reads one multi-document file; a document without its "---" separator is silently lost.
	var stages bytes.Buffer
	for _, f := range kwokStageFiles() {
		data, err := os.ReadFile(filepath.Join(moduleDir, "kustomize", "stage", f))
		if err != nil {
			return fmt.Errorf("reading kwok stage: %w", err)
		}
		stages.WriteString("---\n")
		stages.Write(bytes.TrimSpace(data))
		stages.WriteString("\n")
	}
	stagePath := filepath.Join(dir, "kwok-stages.yaml")
	if err := os.WriteFile(stagePath, stages.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing kwok stages: %w", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	if _, err := sup.Start(ProcessSpec{
		Name: "kwok",
		Path: filepath.Join(toolsBin, "kwok"),
		Args: []string{
			"--kubeconfig=" + kubeconfig,
			"--config=" + stagePath,
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=fake",
			"--server-address=127.0.0.1:" + fmt.Sprint(ports[0]),
			// Pod IPs come from the range the test network makes local (netns.go).
			"--cidr=" + PodCIDR,
		},
	}); err != nil {
		return err
	}

	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        FakeNodeName,
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
			Labels: map[string]string{
				"type":                    "kwok",
				corev1.LabelHostname:      FakeNodeName,
				corev1.LabelOSStable:      "linux",
				corev1.LabelArchStable:    "amd64",
				"kubernetes.io/role":      "agent",
				"node.kubernetes.io/fake": "true",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: PodCIDR, PodCIDRs: []string{PodCIDR}},
		Status: corev1.NodeStatus{
			Allocatable: fakeNodeResources(),
			Capacity:    fakeNodeResources(),
		},
	}
	if err := c.Create(ctx, node); err != nil {
		return fmt.Errorf("registering the fake node: %w", err)
	}
	return WaitFor(ctx, 60*time.Second, "the fake node to be Ready", func(ctx context.Context) (bool, error) {
		n := &corev1.Node{}
		if err := c.Get(ctx, client.ObjectKey{Name: FakeNodeName}, n); err != nil {
			return false, err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, Pending("node %s has conditions %v", FakeNodeName, n.Status.Conditions)
	})
}

func fakeNodeResources() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("500"),
	}
}
