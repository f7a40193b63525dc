//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
	"github.com/kruise-lanes/kruise-lanes/plugin"
	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// The release the chart test installs, as the README says: helm install lanes charts/lanes -n
// lanes-system --create-namespace.
const (
	chartRelease   = "lanes"
	chartNamespace = framework.LanesNamespace
	// chartFullname is the chart's lanes.fullname for the release: every object's name.
	chartFullname = chartRelease + "-lanes"
	// chartWebhookConfig is the chart's MutatingWebhookConfiguration, <fullname>-<namespace>.
	chartWebhookConfig = chartFullname + "-" + chartNamespace
	// chartValidatingConfig is the chart's ValidatingWebhookConfiguration (the lane validator).
	chartValidatingConfig = chartWebhookConfig + "-lanes"
	// chartOptInSelector is the helm --set value making kruise-lanes.io/chart-e2e=opt-in the
	// only namespace label the installed webhooks select (the lane validator follows the pod
	// webhook's selector); no namespace carries it. The chart's
	// webhook points at an in-cluster Service nothing serves here (the manager runs out of
	// cluster), and the API server would dial its ClusterIP: keeping every namespace out of it
	// means no test's pod creation ever waits on it.
	chartOptInSelector = `webhook.namespaceSelector.matchLabels.kruise-lanes\.io/chart-e2e=opt-in`
)

// Keys of Kruise's ConfigMap in this test.
const (
	keyMSE     = "lua.traffic.routing.ingress.mse"
	keyHigress = "lua.traffic.routing.ingress.higress"
	// keyUserLua and keyUserNote are the user's own keys; keyHigress is one of ours that the user
	// set first, with their own script.
	keyUserLua  = "lua.traffic.routing.ingress.acme"
	keyUserNote = "platform-team.note"
	// userManager is the field manager of the user's edits.
	userManager = "platform-team"
)

var userKeys = map[string]string{
	keyUserLua:  "-- the platform team's own provider\nreturn obj.annotations\n",
	keyUserNote: "edited by hand, keep",
	keyHigress:  "-- the platform team's higress provider, not ours\nreturn obj.annotations\n",
}

// TestChartInstall installs charts/lanes into the real API server with helm, runs lanes-manager as
// a local process with the Deployment's own arguments and the chart's ServiceAccount (so the
// chart's RBAC is what the manager gets), and checks the provider installer against a ConfigMap the
// user already owns: our mse key appears under field manager kruise-lanes, the user's keys stay,
// the user's higress key is skipped with a ProvidersSkipped Event, and a TrafficRouting with
// classType mse runs our script. Then it removes the providers as the pre-delete hook would,
// uninstalls the release, and finds only the user's keys left.
//
// It does not call t.Parallel: it shares Kruise's ConfigMap (whose mse key TestMSELaneSeed002 sets)
// and lanes-system (whose lanes-webhook-cert the other lanes-manager tests use), so it runs alone,
// before the parallel scenarios, and puts the ConfigMap back as it found it.
func TestChartInstall(t *testing.T) {
	ctx := t.Context()
	c := cluster.Client
	cmKey := client.ObjectKey{Namespace: framework.KruiseNamespace, Name: plugin.ConfigMapName}
	restoreKruiseConfiguration(t, cmKey)
	// A cluster where Kruise Lanes was never installed: no key of ours and no record of one (the
	// lanes-managers of earlier scenarios installed the providers in this shared ConfigMap).
	if err := (&plugin.Installer{Reader: cluster.Client, Writer: cluster.Client, Namespace: cmKey.Namespace}).Uninstall(ctx); err != nil {
		t.Fatal(err)
	}

	// The user's ConfigMap before the chart: their own keys, and their own higress provider, owned
	// by the user's field manager whatever earlier scenarios left (server-side apply with force
	// takes the keys over, as the user's own apply would).
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, cmKey, cm); err == nil {
		if _, ok := cm.Data[keyMSE]; ok {
			delete(cm.Data, keyMSE) // another scenario's; restored at the end
			if err := c.Update(ctx, cm); err != nil {
				t.Fatal(err)
			}
		}
	} else if !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	userApply := corev1apply.ConfigMap(cmKey.Name, cmKey.Namespace).WithData(userKeys)
	if err := c.Apply(ctx, userApply, client.FieldOwner(userManager), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}

	h := newHelm(t)
	adoptCertSecret(t)
	t.Cleanup(func() {
		_, _ = h.run(context.Background(), "uninstall", chartRelease, "-n", chartNamespace, "--no-hooks", "--ignore-not-found")
	})
	start := time.Now()
	out, err := h.run(ctx, "install", chartRelease, filepath.Join(cluster.RepoRoot, "charts", "lanes"),
		"-n", chartNamespace, "--create-namespace",
		"--set", chartOptInSelector,
		// Mesh routes on, so that their RBAC is proved too: the manager starts informers on
		// Services, Istio's and Gateway API's routes as the chart's ServiceAccount.
		"--set", "meshRoutes.enabled=true")
	if err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	t.Logf("helm install took %s", time.Since(start).Round(time.Millisecond))

	// Every object of the release was accepted by the API server (helm creates them one by one,
	// so server-side validation has passed for each) and is there.
	objs, deploymentArgs := releaseManifest(t, h)
	var kinds []string
	for _, o := range objs {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Errorf("release object %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		kinds = append(kinds, o.GetKind())
	}
	slices.Sort(kinds)
	t.Logf("release objects: %s", strings.Join(kinds, ", "))
	for _, want := range []string{"ClusterRole", "ClusterRoleBinding", "Deployment", "MutatingWebhookConfiguration", "Role", "RoleBinding", "Secret", "Service", "ServiceAccount", "ValidatingWebhookConfiguration"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("release has no %s", want)
		}
	}
	mgr := startChartManager(t, "lanes-manager-chart", deploymentArgs)
	saKubeconfig, bin := mgr.kubeconfig, mgr.bin

	// The installer applied our mse key under field manager kruise-lanes, skipped the user's
	// higress key, and left every other key alone.
	mseScript, err := luascripts.Ingress("mse")
	if err != nil {
		t.Fatal(err)
	}
	err = framework.WaitFor(ctx, 60*time.Second, "our mse script in "+plugin.ConfigMapName, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, cmKey, cm); err != nil {
			return false, err
		}
		if cm.Data[keyMSE] != string(mseScript) {
			return false, framework.Pending("key %s has %d bytes, want our %d-byte script", keyMSE, len(cm.Data[keyMSE]), len(mseScript))
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, mgr.Tail(40))
	}
	for k, v := range userKeys {
		if cm.Data[k] != v {
			t.Errorf("user key %s = %q after install, want it untouched: %q", k, cm.Data[k], v)
		}
	}
	if got, want := dataKeysOf(t, cm, plugin.FieldManager), []string{keyMSE}; !slices.Equal(got, want) {
		t.Errorf("field manager %s owns data keys %v, want %v", plugin.FieldManager, got, want)
	}
	if got := dataKeysOf(t, cm, userManager); !slices.Contains(got, keyHigress) {
		t.Errorf("field manager %s owns %v, want it to still own %s", userManager, got, keyHigress)
	}
	err = framework.WaitFor(ctx, 30*time.Second, "a ProvidersSkipped Event naming "+keyHigress, func(ctx context.Context) (bool, error) {
		events := &corev1.EventList{}
		if err := c.List(ctx, events, client.InNamespace(cmKey.Namespace)); err != nil {
			return false, err
		}
		var seen []string
		for _, e := range events.Items {
			if e.InvolvedObject.Kind != "ConfigMap" || e.InvolvedObject.Name != cmKey.Name {
				continue
			}
			seen = append(seen, e.Reason+": "+e.Message)
			if e.Reason == "ProvidersSkipped" && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, keyHigress) {
				return true, nil
			}
		}
		return false, framework.Pending("events on the ConfigMap: %v", seen)
	})
	if err != nil {
		t.Fatal(err)
	}

	// The leader publishes its lane defaults for kubectl lanes. The chart grants configmaps in its
	// namespace only by that name: a server-side apply that creates the object is authorized as
	// patch and create of that name.
	defaultsKey := client.ObjectKey{Namespace: chartNamespace, Name: trafficrouting.DefaultsConfigMapName}
	err = framework.WaitFor(ctx, 30*time.Second, "the lane defaults published in "+defaultsKey.String(), func(ctx context.Context) (bool, error) {
		got := &corev1.ConfigMap{}
		if err := c.Get(ctx, defaultsKey, got); err != nil {
			return false, framework.Pending("%v", client.IgnoreNotFound(err))
		}
		if len(got.Data) == 0 {
			return false, framework.Pending("no data yet")
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A lane with classType mse: Kruise runs our script from the ConfigMap, so the canary Ingress
	// carries our bookkeeping annotation beside the lane's rules.
	assertCanaryIngressUsesOurScript(t)

	// Uninstall. The chart's pre-delete hook Job cannot run here (there is no image), so do what it
	// does, as the same ServiceAccount: lanes-manager remove-providers. Then helm uninstall
	// --no-hooks removes the release itself.
	if err := mgr.Stop(5 * time.Second); err != nil {
		t.Logf("stopping lanes-manager: %v", err)
	}
	// Least privilege, but enough: nothing the manager did as the chart's ServiceAccount was denied.
	if log, err := os.ReadFile(mgr.LogPath()); err != nil {
		t.Error(err)
	} else if n := bytes.Count(log, []byte(" is forbidden: ")); n > 0 {
		t.Errorf("the chart's RBAC denied lanes-manager %d times; its log:\n%s", n, mgr.Tail(40))
	}
	hookArgs := hookJobArgs(t)
	rm := exec.CommandContext(ctx, bin, hookArgs...)
	rm.Env = append(os.Environ(), "KUBECONFIG="+saKubeconfig)
	if b, err := rm.CombinedOutput(); err != nil {
		t.Fatalf("lanes-manager %s: %v\n%s", strings.Join(hookArgs, " "), err, b)
	} else {
		t.Logf("lanes-manager %s: %s", strings.Join(hookArgs, " "), strings.TrimSpace(string(b)))
	}
	if out, err := h.run(ctx, "uninstall", chartRelease, "-n", chartNamespace, "--no-hooks", "--wait", "--timeout", "60s"); err != nil {
		t.Fatalf("helm uninstall --no-hooks: %v\n%s", err, out)
	}
	for _, o := range objs {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), got); err == nil && got.GetDeletionTimestamp() == nil {
			t.Errorf("%s %s/%s is still there after helm uninstall", o.GetKind(), o.GetNamespace(), o.GetName())
		} else if err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}

	if err := c.Get(ctx, cmKey, cm); err != nil {
		t.Fatal(err)
	}
	if v, ok := cm.Data[keyMSE]; ok {
		t.Errorf("our key %s is still in %s after uninstall (%d bytes)", keyMSE, plugin.ConfigMapName, len(v))
	}
	for k, v := range userKeys {
		if cm.Data[k] != v {
			t.Errorf("user key %s = %q after uninstall, want it untouched: %q", k, cm.Data[k], v)
		}
	}
	if got := dataKeysOf(t, cm, plugin.FieldManager); len(got) != 0 {
		t.Errorf("field manager %s still owns %v after uninstall", plugin.FieldManager, got)
	}
}

// assertCanaryIngressUsesOurScript opens a one-service lane whose TrafficRouting says classType
// mse and waits for the canary Ingress that our script writes.
func assertCanaryIngressUsesOurScript(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	c := cluster.Client
	ns := cluster.Namespace(t)
	const svc, canaryIngress = "spring-cloud-a", "spring-cloud-a-canary"
	deploy := fmt.Sprintf(seed002Deployment, svc, seedImage(svc, "v1"))
	if err := framework.ApplyYAML(ctx, c, ns, []byte(fmt.Sprintf(seed002, deploy))); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitForDeploymentAvailable(ctx, c, client.ObjectKey{Namespace: ns, Name: svc}, stepTimeout); err != nil {
		t.Fatal(err)
	}
	if err := framework.ApplyYAML(ctx, c, ns, []byte(fmt.Sprintf(seed002Lane, fmt.Sprintf(seed002Rollout, "rollout-a", svc)))); err != nil {
		t.Fatal(err)
	}
	trKey := client.ObjectKey{Namespace: ns, Name: "mse-traffic"}
	if _, err := framework.WaitForTrafficRoutingPhase(ctx, c, trKey, stepTimeout, rolloutsv1alpha1.TrafficRoutingPhaseHealthy); err != nil {
		t.Fatal(err)
	}
	if _, err := framework.WaitForRollout(ctx, c, client.ObjectKey{Namespace: ns, Name: "rollout-a"}, stepTimeout, "to be Healthy", framework.RolloutHealthy()); err != nil {
		t.Fatal(err)
	}
	setImage(t, client.ObjectKey{Namespace: ns, Name: svc}, seedImage(svc, "v2"))
	want := map[string]string{
		"nginx.ingress.kubernetes.io/canary":                      "true",
		"nginx.ingress.kubernetes.io/canary-by-header":            "User-Agent",
		"nginx.ingress.kubernetes.io/canary-by-header-value":      "xiaoming",
		"mse.ingress.kubernetes.io/request-header-control-update": "x-mse-tag gray",
	}
	ing := &networkingv1.Ingress{}
	err := framework.WaitFor(ctx, stepTimeout, "canary ingress "+canaryIngress+" written by our mse script", func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: canaryIngress}, ing); err != nil {
			return false, err
		}
		if _, ok := ing.Annotations["kruise-lanes.io/owned"]; !ok {
			return false, framework.Pending("no kruise-lanes.io/owned annotation; annotations %v", ing.Annotations)
		}
		for k, v := range want {
			if got := ing.Annotations[k]; got != v {
				return false, framework.Pending("annotation %s = %q, want %q", k, got, v)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: kruise-lanes.io/owned = %s", canaryIngress, ing.Annotations["kruise-lanes.io/owned"])
}

// releaseManifest returns the objects of the installed release (helm get manifest) and the
// arguments of its Deployment's manager container.
func releaseManifest(t *testing.T, h *helmRunner) (objs []*unstructured.Unstructured, args []string) {
	t.Helper()
	manifest, err := h.run(t.Context(), "get", "manifest", chartRelease, "-n", chartNamespace)
	if err != nil {
		t.Fatalf("helm get manifest: %v\n%s", err, manifest)
	}
	objs, err = framework.DecodeYAML([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		if len(containers) == 1 {
			args, _, _ = unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
		}
	}
	if len(args) == 0 {
		t.Fatalf("no manager args in the release's Deployment")
	}
	return objs, args
}

// chartManager is lanes-manager run as a local process the way the release's Deployment runs it.
type chartManager struct {
	*framework.Process
	// kubeconfig authenticates as the chart's ServiceAccount; bin is the lanes-manager binary.
	kubeconfig, bin string
}

// startChartManager runs lanes-manager out of cluster with the chart's Deployment args (the
// pod-only ones, ports on all interfaces and /certs, pointed at loopback and a folder kept in step
// with the chart's Secret) as the chart's ServiceAccount, so the chart's RBAC is what it gets. It
// returns once the manager is ready and its rotator, with that RBAC, has filled the Secret and the
// caBundle of the chart's own webhook configuration; the process is stopped at the test's end.
func startChartManager(t *testing.T, name string, deploymentArgs []string) *chartManager {
	t.Helper()
	ctx := t.Context()
	saKubeconfig := serviceAccountKubeconfig(t, chartNamespace, chartFullname)
	ports, err := framework.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	certDir := t.TempDir()
	cluster.MountSecret(t, chartNamespace, "lanes-webhook-cert", certDir)
	args := managerArgsOutOfCluster(deploymentArgs, ports, certDir)
	t.Logf("lanes-manager %s", strings.Join(args, " "))
	bin, err := cluster.LanesManagerBinary()
	if err != nil {
		t.Fatal(err)
	}
	mgr := cluster.StartProcess(t, framework.ProcessSpec{
		Name: name, Path: bin, Args: args, Env: []string{"KUBECONFIG=" + saKubeconfig},
	})
	err = framework.WaitFor(ctx, 60*time.Second, "lanes-manager ready with the chart's caBundle injected", func(ctx context.Context) (bool, error) {
		select {
		case <-mgr.Exited():
			return false, framework.Permanent(fmt.Errorf("lanes-manager exited: %w\n%s", mgr.ExitErr(), mgr.Tail(30)))
		default:
		}
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := cluster.Client.Get(ctx, client.ObjectKey{Name: chartWebhookConfig}, cfg); err != nil {
			return false, err
		}
		if len(cfg.Webhooks) != 1 || len(cfg.Webhooks[0].ClientConfig.CABundle) == 0 {
			return false, framework.Pending("no caBundle in %s yet", chartWebhookConfig)
		}
		// The lane validator's configuration gets the same CA, under the chart's RBAC.
		vcfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := cluster.Client.Get(ctx, client.ObjectKey{Name: chartValidatingConfig}, vcfg); err != nil {
			return false, err
		}
		if len(vcfg.Webhooks) != 1 || !bytes.Equal(vcfg.Webhooks[0].ClientConfig.CABundle, cfg.Webhooks[0].ClientConfig.CABundle) {
			return false, framework.Pending("%s does not have the caBundle of %s yet", chartValidatingConfig, chartWebhookConfig)
		}
		return probeOK(ctx, ports[2])
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, mgr.Tail(40))
	}
	return &chartManager{Process: mgr, kubeconfig: saKubeconfig, bin: bin}
}

// helmRunner runs .cache/bin/helm against the harness's API server with its own helm folders.
type helmRunner struct {
	bin string
	env []string
}

func newHelm(t *testing.T) *helmRunner {
	t.Helper()
	bin := filepath.Join(cluster.ToolsBin, "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("helm: %v (run `make tools`)", err)
	}
	home := t.TempDir()
	return &helmRunner{bin: bin, env: append(os.Environ(),
		"KUBECONFIG="+cluster.Kubeconfig,
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)}
}

func (h *helmRunner) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = h.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// adoptCertSecret hands a certificate Secret that an earlier lanes-manager test created in
// lanes-system to the release (helm refuses to install over an object it does not manage).
func adoptCertSecret(t *testing.T) {
	t.Helper()
	s := &corev1.Secret{}
	err := cluster.Client.Get(t.Context(), client.ObjectKey{Namespace: chartNamespace, Name: "lanes-webhook-cert"}, s)
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Labels["app.kubernetes.io/managed-by"] = "Helm"
	s.Annotations["meta.helm.sh/release-name"] = chartRelease
	s.Annotations["meta.helm.sh/release-namespace"] = chartNamespace
	if err := cluster.Client.Update(t.Context(), s); err != nil {
		t.Fatal(err)
	}
}

// restoreKruiseConfiguration puts Kruise's ConfigMap data back as it is now when the test ends.
func restoreKruiseConfiguration(t *testing.T, key client.ObjectKey) {
	t.Helper()
	before := &corev1.ConfigMap{}
	err := cluster.Client.Get(t.Context(), key, before)
	existed := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cm := &corev1.ConfigMap{}
		if err := cluster.Client.Get(ctx, key, cm); err != nil {
			t.Logf("restoring %s: %v", key, err)
			return
		}
		if !existed {
			if err := cluster.Client.Delete(ctx, cm); err != nil {
				t.Logf("restoring %s: %v", key, err)
			}
			return
		}
		cm.Data, cm.Annotations = before.Data, before.Annotations
		if err := cluster.Client.Update(ctx, cm); err != nil {
			t.Logf("restoring %s: %v", key, err)
		}
	})
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as ServiceAccount
// namespace/name with a TokenRequest token, for processes that must run with the chart's RBAC.
func serviceAccountKubeconfig(t *testing.T, namespace, name string) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(t.Context(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount %s/%s: %v", namespace, name, err)
	}
	cfg := cluster.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["e2e"] = &clientcmdapi.Cluster{
		Server: cfg.Host, CertificateAuthority: cfg.CAFile, CertificateAuthorityData: cfg.CAData, InsecureSkipTLSVerify: cfg.Insecure,
	}
	kc.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["sa"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "sa"}
	kc.CurrentContext = "sa"
	path := filepath.Join(t.TempDir(), "kubeconfig-"+name)
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// managerArgsOutOfCluster keeps the chart's manager arguments and points the pod-only ones at
// loopback ports (webhook, metrics, probes) and certDir.
func managerArgsOutOfCluster(chartArgs []string, ports []int, certDir string) []string {
	override := map[string]string{
		"--webhook-port":              strconv.Itoa(ports[0]),
		"--metrics-bind-address":      "127.0.0.1:" + strconv.Itoa(ports[1]),
		"--health-probe-bind-address": "127.0.0.1:" + strconv.Itoa(ports[2]),
		"--cert-dir":                  certDir,
	}
	out := []string{"--webhook-host=127.0.0.1"}
	for _, a := range chartArgs {
		name, _, _ := strings.Cut(a, "=")
		if v, ok := override[name]; ok {
			a = name + "=" + v
		}
		out = append(out, a)
	}
	return out
}

// hookJobArgs returns the arguments of the chart's pre-delete hook Job, which `helm get manifest`
// leaves out and `helm get hooks` lists.
func hookJobArgs(t *testing.T) []string {
	t.Helper()
	h := newHelm(t)
	hooks, err := h.run(t.Context(), "get", "hooks", chartRelease, "-n", chartNamespace)
	if err != nil {
		t.Fatalf("helm get hooks: %v\n%s", err, hooks)
	}
	objs, err := framework.DecodeYAML([]byte(hooks))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "Job" || o.GetAnnotations()["helm.sh/hook"] != "pre-delete" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		if len(containers) != 1 {
			break
		}
		args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
		return args
	}
	t.Fatalf("the release has no pre-delete hook Job; hooks:\n%s", hooks)
	return nil
}

// probeOK says whether lanes-manager's /readyz on port answers 200.
func probeOK(ctx context.Context, port int) (bool, error) {
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return false, err
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return false, framework.Pending("%s: %v", url, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, framework.Pending("%s: status %d", url, resp.StatusCode)
	}
	return true, nil
}

// dataKeysOf lists the ConfigMap data keys that field manager owns according to managedFields.
func dataKeysOf(t *testing.T, cm *corev1.ConfigMap, manager string) []string {
	t.Helper()
	var keys []string
	for _, e := range cm.ManagedFields {
		if e.Manager != manager || e.FieldsV1 == nil {
			continue
		}
		fields := map[string]any{}
		if err := yaml.Unmarshal(e.FieldsV1.Raw, &fields); err != nil {
			t.Fatalf("managedFields of %s: %v", manager, err)
		}
		data, _ := fields["f:data"].(map[string]any)
		for k := range data {
			if name, ok := strings.CutPrefix(k, "f:"); ok {
				keys = append(keys, name)
			}
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}
