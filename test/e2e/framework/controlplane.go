//go:build e2e

package framework

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// controlPlane is etcd, kube-apiserver, kube-controller-manager and kube-scheduler on loopback.
type controlPlane struct {
	config     *rest.Config
	kubeconfig string
	apiServer  apiServer
}

// apiServer is the running kube-apiserver and the wait for it to be ready.
type apiServer struct {
	proc  *Process
	ready func(context.Context) error
}

// startControlPlane starts the four components and waits until each reports healthy.
func startControlPlane(ctx context.Context, sup *Supervisor, toolsBin, dir string) (*controlPlane, error) {
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiPort, kcmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	if _, err := sup.Start(ProcessSpec{
		Name: "etcd",
		Path: filepath.Join(toolsBin, "etcd"),
		Args: []string{
			"--name=e2e",
			"--data-dir=" + filepath.Join(dir, "etcd"),
			"--listen-client-urls=" + etcdURL,
			"--advertise-client-urls=" + etcdURL,
			"--listen-peer-urls=" + peerURL,
			"--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=e2e=" + peerURL,
			"--unsafe-no-fsync=true",
			"--log-level=warn",
		},
	}); err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, http.DefaultClient, "etcd", etcdURL+"/health", 30*time.Second); err != nil {
		return nil, err
	}

	secrets, err := writeAPIServerSecrets(dir)
	if err != nil {
		return nil, err
	}
	apiURL := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	apiProc, err := sup.Start(ProcessSpec{
		Name: "kube-apiserver",
		Path: filepath.Join(toolsBin, "kube-apiserver"),
		Args: []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(apiPort),
			"--cert-dir=" + filepath.Join(dir, "apiserver-certs"),
			"--token-auth-file=" + secrets.tokenFile,
			"--authorization-mode=RBAC",
			"--service-account-key-file=" + secrets.saKey,
			"--service-account-signing-key-file=" + secrets.saKey,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-cluster-ip-range=10.96.0.0/16",
			// Pods need no token volume: there is no kubelet, and a fresh namespace's default
			// ServiceAccount may not exist yet when a scenario creates its first pod.
			"--disable-admission-plugins=ServiceAccount",
			"--allow-privileged=true",
			"--enable-priority-and-fairness=false",
			"--profiling=false",
		},
	})
	if err != nil {
		return nil, err
	}

	cfg := &rest.Config{
		Host:            apiURL,
		BearerToken:     secrets.token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             200,
		Burst:           400,
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("building an HTTP client for the API server: %w", err)
	}
	api := apiServer{proc: apiProc, ready: func(ctx context.Context) error {
		return waitHealthy(ctx, httpClient, "kube-apiserver", apiURL+"/readyz", 60*time.Second)
	}}
	if err := api.ready(ctx); err != nil {
		return nil, err
	}

	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, apiURL, secrets.token); err != nil {
		return nil, err
	}
	common := []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
		"--profiling=false",
	}
	if _, err := sup.Start(ProcessSpec{
		Name: "kube-controller-manager",
		Path: filepath.Join(toolsBin, "kube-controller-manager"),
		Args: append([]string{
			"--secure-port=" + strconv.Itoa(kcmPort),
			"--cert-dir=" + filepath.Join(dir, "kcm-certs"),
			// The token controller would need a signing key; pods here mount no tokens.
			"--controllers=*,-serviceaccount-token",
			"--use-service-account-credentials=false",
			"--concurrent-deployment-syncs=10",
			"--concurrent-replicaset-syncs=10",
		}, common...),
	}); err != nil {
		return nil, err
	}
	if _, err := sup.Start(ProcessSpec{
		Name: "kube-scheduler",
		Path: filepath.Join(toolsBin, "kube-scheduler"),
		Args: append([]string{
			"--secure-port=" + strconv.Itoa(schedPort),
			"--cert-dir=" + filepath.Join(dir, "scheduler-certs"),
		}, common...),
	}); err != nil {
		return nil, err
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback components with self-signed certificates
	if err := waitHealthy(ctx, insecure, "kube-controller-manager", "https://127.0.0.1:"+strconv.Itoa(kcmPort)+"/healthz", 60*time.Second); err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, insecure, "kube-scheduler", "https://127.0.0.1:"+strconv.Itoa(schedPort)+"/healthz", 60*time.Second); err != nil {
		return nil, err
	}
	return &controlPlane{config: cfg, kubeconfig: kubeconfig, apiServer: api}, nil
}

// waitHealthy polls url until it answers 200.
func waitHealthy(ctx context.Context, hc *http.Client, name, url string, timeout time.Duration) error {
	return WaitFor(ctx, timeout, name+" to be healthy", func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, Permanent(fmt.Errorf("building health request: %w", err))
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, fmt.Errorf("GET %s: %w", url, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, Pending("GET %s: %s", url, resp.Status)
		}
		return true, nil
	})
}

type apiServerSecrets struct {
	token     string
	tokenFile string
	saKey     string
}

// writeAPIServerSecrets writes a static admin token (group system:masters) and a service-account
// signing key. The API server generates its own self-signed serving certificate in --cert-dir.
func writeAPIServerSecrets(dir string) (apiServerSecrets, error) {
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return apiServerSecrets{}, fmt.Errorf("generating the admin token: %w", err)
	}
	s := apiServerSecrets{
		token:     hex.EncodeToString(raw),
		tokenFile: filepath.Join(dir, "tokens.csv"),
		saKey:     filepath.Join(dir, "sa.key"),
	}
	if err := os.WriteFile(s.tokenFile, []byte(s.token+`,e2e-admin,e2e-admin,"system:masters"`+"\n"), 0o600); err != nil {
		return apiServerSecrets{}, fmt.Errorf("writing the token file: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return apiServerSecrets{}, fmt.Errorf("generating the service-account key: %w", err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(s.saKey, pemKey, 0o600); err != nil {
		return apiServerSecrets{}, fmt.Errorf("writing the service-account key: %w", err)
	}
	return s, nil
}

// writeKubeconfig writes a kubeconfig for the admin token; the serving certificate is self-signed.
func writeKubeconfig(path, server, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: server, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["e2e-admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "e2e-admin"}
	cfg.CurrentContext = "e2e"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}
