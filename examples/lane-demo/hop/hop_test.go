package hop

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// logBuffer collects a hop's log lines; safe for the servers' goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testHop is a hop served on loopback for one test.
type testHop struct {
	hop     *Hop
	httpURL string // http://127.0.0.1:port
	grpc    string // 127.0.0.1:port, or "" when gRPC is disabled
	metrics string // http://127.0.0.1:port of METRICS_ADDR, or ""
	logs    *logBuffer
}

// startHop serves a hop configured by env (plus loopback listen addresses) until the test ends,
// and checks that it then shuts down cleanly.
func startHop(t *testing.T, env map[string]string) *testHop {
	t.Helper()
	full := map[string]string{"HTTP_ADDR": "127.0.0.1:0", "GRPC_ADDR": "127.0.0.1:0", "PODINFO_LABELS": filepath.Join(t.TempDir(), "absent")}
	maps.Copy(full, env)
	cfg, err := ParseEnv(lookupIn(full))
	if err != nil {
		t.Fatalf("ParseEnv: %v", err)
	}
	logs := &logBuffer{}
	h, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ls, err := Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Serve(ctx, ls) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve of %s: %v", cfg.Name, err)
		}
		if err := h.Close(); err != nil {
			t.Errorf("Close of %s: %v", cfg.Name, err)
		}
		if t.Failed() {
			t.Logf("logs of %s:\n%s", cfg.Name, logs)
		}
	})
	th := &testHop{hop: h, httpURL: "http://" + ls.HTTP.Addr().String(), logs: logs}
	if ls.GRPC != nil {
		th.grpc = ls.GRPC.Addr().String()
	}
	if ls.Metrics != nil {
		th.metrics = "http://" + ls.Metrics.Addr().String()
	}
	return th
}

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(key string) (string, bool) {
		v, ok := env[key]
		return v, ok
	}
}

// writeLabels writes a labels file as kubelet does: sorted key="value" lines, replaced
// atomically.
func writeLabels(t *testing.T, path string, labels map[string]string) {
	t.Helper()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		b.WriteString(k + "=" + strconv.Quote(labels[k]) + "\n")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// labelsFile returns the path of a fresh labels file with labels.
func labelsFile(t *testing.T, labels map[string]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "labels")
	writeLabels(t, path, labels)
	return path
}

// get GETs url with headers and returns the status code and body.
func get(t *testing.T, url string, headers map[string]string) (code int, body string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// call calls lanedemo.v1.Hop/Call on addr with metadata md.
func call(t *testing.T, addr, path string, md map[string]string) (string, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx := metadata.NewOutgoingContext(t.Context(), metadata.New(md))
	out, err := NewHopClient(conn).Call(ctx, wrapperspb.String(path))
	return out.GetValue(), err
}

// scrape returns the metric families served at url/metrics.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, url+"/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	var p expfmt.TextParser
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return families
}

// requestCounts maps "lane code" to lane_demo_requests_total, checking the service and version
// labels, and "lane" to the sample count of the latency histogram.
func requestCounts(t *testing.T, families map[string]*dto.MetricFamily, service, version string) (requests, durations map[string]float64) {
	t.Helper()
	requests, durations = map[string]float64{}, map[string]float64{}
	labels := func(m *dto.Metric) map[string]string {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		if l["service"] != service || l["version"] != version {
			t.Errorf("metric labels %v, want service=%s version=%s", l, service, version)
		}
		return l
	}
	for _, m := range families[RequestsMetric].GetMetric() {
		l := labels(m)
		requests[l["lane"]+" "+l["code"]] = m.GetCounter().GetValue()
	}
	for _, m := range families[DurationMetric].GetMetric() {
		l := labels(m)
		durations[l["lane"]] = float64(m.GetHistogram().GetSampleCount())
	}
	return requests, durations
}

func TestChain(t *testing.T) {
	gray := map[string]string{"app": "x", DefaultLaneLabel: "gray"}
	tests := map[string]struct {
		// down returns the DOWNSTREAM of a hop calling next.
		downB, downA func(next *testHop) string
		viaGRPC      bool
	}{
		"http": {
			downB: func(n *testHop) string { return n.httpURL + "/" },
			downA: func(n *testHop) string { return n.httpURL + "/" },
		},
		"grpc": {
			downB:   func(n *testHop) string { return "grpc://" + n.grpc },
			downA:   func(n *testHop) string { return "grpc://" + n.grpc },
			viaGRPC: true,
		},
		"http to grpc to http": {
			downB: func(n *testHop) string { return n.httpURL + "/c" },
			downA: func(n *testHop) string { return "grpc://" + n.grpc },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := startHop(t, map[string]string{"NAME": "c", "PODINFO_LABELS": labelsFile(t, gray)})
			b := startHop(t, map[string]string{"NAME": "b", "DOWNSTREAM": tc.downB(c)})
			a := startHop(t, map[string]string{"NAME": "a", "PODINFO_LABELS": labelsFile(t, gray), "DOWNSTREAM": tc.downA(b)})

			const want = "a[gray] -> b[base] -> c[gray]"
			if tc.viaGRPC {
				got, err := call(t, a.grpc, "/", map[string]string{"x-mse-tag": "gray"})
				if err != nil {
					t.Fatalf("Call: %v", err)
				}
				if got != want {
					t.Errorf("answer %q, want %q", got, want)
				}
			} else {
				code, got := get(t, a.httpURL+"/", map[string]string{"X-Mse-Tag": "gray"})
				if code != http.StatusOK || got != want+"\n" {
					t.Errorf("answer %d %q, want 200 %q", code, got, want+"\n")
				}
			}
			// c counted the request in lane gray: the lane header crossed both hops.
			requests, _ := requestCounts(t, scrape(t, c.httpURL), "c", "v1")
			if diff := cmp.Diff(map[string]float64{"gray 200": 1}, requests); diff != "" {
				t.Errorf("requests of c (-want +got):\n%s", diff)
			}
		})
	}
}

// recorder is a downstream that records the headers of the calls it gets.
type recorder struct {
	mu    sync.Mutex
	calls []map[string][]string
}

func (r *recorder) record(h map[string][]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, h)
}

func (r *recorder) last(t *testing.T) map[string][]string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		t.Fatal("the downstream was not called")
	}
	return r.calls[len(r.calls)-1]
}

// lowerKeys keeps the headers named in names, keyed in lower case.
func lowerKeys(h map[string][]string, names ...string) map[string][]string {
	out := map[string][]string{}
	for k, v := range h {
		if slices.Contains(names, strings.ToLower(k)) {
			out[strings.ToLower(k)] = v
		}
	}
	return out
}

// httpRecorder is an HTTP downstream answering "sink".
func httpRecorder(t *testing.T) (rec *recorder, url string) {
	rec = &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r.Header.Clone())
		_, _ = io.WriteString(w, "sink\n")
	}))
	t.Cleanup(srv.Close)
	return rec, srv.URL + "/sink"
}

type grpcRecorder struct{ rec *recorder }

func (g grpcRecorder) Call(ctx context.Context, _ *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	g.rec.record(md.Copy())
	return wrapperspb.String("sink"), nil
}

// grpcRecorderAddr is a gRPC downstream answering "sink".
func grpcRecorderAddr(t *testing.T) (rec *recorder, addr string) {
	rec = &recorder{}
	s := grpc.NewServer()
	s.RegisterService(ServiceDesc(), grpcRecorder{rec})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return rec, "grpc://" + ln.Addr().String()
}

func TestHeaderPropagation(t *testing.T) {
	names := []string{"x-mse-tag", "x-asm-prefer-tag", "baggage", "x-other"}
	downstreams := map[string]func(t *testing.T) (*recorder, string){
		"http": httpRecorder,
		"grpc": grpcRecorderAddr,
	}
	for name, down := range downstreams {
		t.Run(name, func(t *testing.T) {
			rec, url := down(t)
			a := startHop(t, map[string]string{"NAME": "a", "LANE": "gray", "DOWNSTREAM": url})

			// Over the wire: names are matched whatever their case, baggage values all
			// travel, a header not in PROPAGATE_HEADERS does not.
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, a.httpURL+"/", http.NoBody)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-MSE-TAG", "gray")
			req.Header.Set("x-asm-prefer-tag", "canary")
			req.Header.Add("Baggage", "lane=gray")
			req.Header.Add("Baggage", "user=42;p=1")
			req.Header.Set("X-Other", "no")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if got, want := string(body), "a[gray] -> sink\n"; resp.StatusCode != http.StatusOK || got != want {
				t.Fatalf("answer %d %q, want 200 %q", resp.StatusCode, got, want)
			}
			want := map[string][]string{
				"x-mse-tag":        {"gray"},
				"x-asm-prefer-tag": {"canary"},
				"baggage":          {"lane=gray", "user=42;p=1"},
			}
			if diff := cmp.Diff(want, lowerKeys(rec.last(t), names...)); diff != "" {
				t.Errorf("downstream headers (-want +got):\n%s", diff)
			}

			// A value with CR, LF or NUL cannot cross the wire, so it is handed to the
			// handler directly; that header is dropped and logged, the others still travel.
			for _, bad := range []string{"gray\r\nx-evil: 1", "gray\nx", "gr\x00ay"} {
				r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
				r.Header["X-Mse-Tag"] = []string{bad}
				r.Header["Baggage"] = []string{"lane=gray"}
				w := httptest.NewRecorder()
				a.hop.Handler().ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					t.Fatalf("answer %d %q", w.Code, w.Body)
				}
				if diff := cmp.Diff(map[string][]string{"baggage": {"lane=gray"}}, lowerKeys(rec.last(t), names...)); diff != "" {
					t.Errorf("downstream headers for x-mse-tag %q (-want +got):\n%s", bad, diff)
				}
			}
			if got := strings.Count(a.logs.String(), "dropped a header"); got != 3 {
				t.Errorf("%d dropped-header log lines, want 3:\n%s", got, a.logs)
			}

			// The same through the gRPC server: metadata in, dropped there too.
			ctx := metadata.NewIncomingContext(t.Context(), metadata.Pairs("x-mse-tag", "a\r\nb", "x-asm-prefer-tag", "gray"))
			if _, err := (grpcHop{a.hop}).Call(ctx, wrapperspb.String("/")); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string][]string{"x-asm-prefer-tag": {"gray"}}, lowerKeys(rec.last(t), names...)); diff != "" {
				t.Errorf("downstream headers from gRPC (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLabelsFileReload(t *testing.T) {
	path := labelsFile(t, map[string]string{"app": "a", DefaultLaneLabel: "gray"})
	a := startHop(t, map[string]string{"NAME": "a", "PODINFO_LABELS": path})
	answer := func() string {
		t.Helper()
		_, body := get(t, a.httpURL+"/", nil)
		return body
	}
	steps := []struct {
		change func()
		want   string
	}{
		{func() {}, "a[gray]\n"},
		// The reconciler removed the lane label after promotion; kubelet rewrote the file.
		{func() { writeLabels(t, path, map[string]string{"app": "a"}) }, "a[base]\n"},
		{func() { writeLabels(t, path, map[string]string{"app": "a", DefaultLaneLabel: "blue"}) }, "a[blue]\n"},
		// Rewritten in place (same file), another size.
		{func() {
			if err := os.WriteFile(path, []byte(DefaultLaneLabel+`="gray-2"`+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "a[gray-2]\n"},
		{func() {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, "a[base]\n"},
		{func() { writeLabels(t, path, map[string]string{DefaultLaneLabel: "gray"}) }, "a[gray]\n"},
		{func() {
			if err := os.WriteFile(path, []byte("not a labels file\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "a[base]\n"},
	}
	for i, s := range steps {
		s.change()
		if got := answer(); got != s.want {
			t.Errorf("step %d: answer %q, want %q", i, got, s.want)
		}
	}
	if !strings.Contains(a.logs.String(), "labels file is malformed") {
		t.Errorf("no log line for the malformed file:\n%s", a.logs)
	}
}

func TestParseLabels(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		"kubelet format": {
			in:   "alicloud.service.tag=\"gray\"\napp=\"spring-cloud-a\"\npod-template-hash=\"7d9f\"",
			want: map[string]string{DefaultLaneLabel: "gray", "app": "spring-cloud-a", "pod-template-hash": "7d9f"},
		},
		"escapes and '=' in values": {
			in:   `a="x=\"y\"\\z"` + "\n\n" + `b=""` + "\n",
			want: map[string]string{"a": `x="y"\z`, "b": ""},
		},
		"empty":          {in: "", want: map[string]string{}},
		"unquoted value": {in: "a=b\n", wantErr: true},
		"no equals":      {in: "a\n", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseLabels([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); !tc.wantErr && diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := map[string]struct {
		env  map[string]string
		want string
	}{
		"lane, fixed by LANE": {
			env:  map[string]string{"NAME": "spring-cloud-a", "LANE": "gray"},
			want: "spring-cloud-a[gray]",
		},
		"lane, other label": {
			env:  map[string]string{"NAME": "a", "LANE_LABEL": "istio.service.tag", "PODINFO_LABELS": labelsFile(t, map[string]string{DefaultLaneLabel: "x", "istio.service.tag": "canary"})},
			want: "a[canary]",
		},
		"version": {
			env:  map[string]string{"NAME": "mocka", "VERSION": "v2", "FORMAT": "version", "LANE": "gray"},
			want: "mocka(version: v2)",
		},
		"version default": {
			env:  map[string]string{"NAME": "mocka", "FORMAT": "version"},
			want: "mocka(version: v1)",
		},
		"lane and version": {
			env:  map[string]string{"NAME": "spring-cloud-a", "VERSION": "v2", "FORMAT": "lane-version", "LANE": "gray"},
			want: "spring-cloud-a[gray](v2)",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := startHop(t, tc.env)
			if code, got := get(t, h.httpURL+"/any/path", nil); code != http.StatusOK || got != tc.want+"\n" {
				t.Errorf("HTTP answer %d %q, want 200 %q", code, got, tc.want+"\n")
			}
			if got, err := call(t, h.grpc, "/any/path", nil); err != nil || got != tc.want {
				t.Errorf("gRPC answer %q, %v, want %q", got, err, tc.want)
			}
		})
	}
}

func TestFault(t *testing.T) {
	var calls atomic.Int64
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		_, _ = io.WriteString(w, "b[base]\n")
	}))
	t.Cleanup(down.Close)

	t.Run("ratio 1 fails every request without calling downstream", func(t *testing.T) {
		calls.Store(0)
		a := startHop(t, map[string]string{"NAME": "a", "DOWNSTREAM": down.URL, "FAULT_ERROR_RATIO": "1"})
		for range 20 {
			if code, body := get(t, a.httpURL+"/", nil); code != http.StatusInternalServerError || body != "a[base] -> error: injected fault\n" {
				t.Fatalf("answer %d %q, want 500 and the injected fault", code, body)
			}
			_, err := call(t, a.grpc, "/", nil)
			if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "a[base] -> error: injected fault" {
				t.Fatalf("gRPC status %v, want Internal and the injected fault", st)
			}
		}
		if n := calls.Load(); n != 0 {
			t.Errorf("downstream called %d times", n)
		}
	})
	t.Run("ratio 0 fails none", func(t *testing.T) {
		calls.Store(0)
		a := startHop(t, map[string]string{"NAME": "a", "DOWNSTREAM": down.URL, "FAULT_ERROR_RATIO": "0"})
		for range 20 {
			if code, body := get(t, a.httpURL+"/", nil); code != http.StatusOK || body != "a[base] -> b[base]\n" {
				t.Fatalf("answer %d %q", code, body)
			}
		}
		if n := calls.Load(); n != 20 {
			t.Errorf("downstream called %d times, want 20", n)
		}
	})
	t.Run("delay", func(t *testing.T) {
		const delay = 100 * time.Millisecond
		a := startHop(t, map[string]string{"NAME": "a", "FAULT_DELAY": delay.String()})
		start := time.Now()
		code, body := get(t, a.httpURL+"/", nil)
		if took := time.Since(start); took < delay {
			t.Errorf("answered in %s, want at least %s", took, delay)
		}
		if code != http.StatusOK || body != "a[base]\n" {
			t.Errorf("answer %d %q", code, body)
		}
		start = time.Now()
		if _, err := call(t, a.grpc, "/", nil); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < delay {
			t.Errorf("gRPC answered in %s, want at least %s", took, delay)
		}
	})
}

func TestDownstreamFailure(t *testing.T) {
	// A port nothing listens on: a listener opened and closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	_ = ln.Close()

	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "b[base] -> error: injected fault", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)

	tests := map[string]struct {
		env        map[string]string
		wantPrefix string
	}{
		"http unreachable": {
			env:        map[string]string{"DOWNSTREAM": "http://" + closed + "/"},
			wantPrefix: "a[base] -> error: downstream unreachable: ",
		},
		"grpc unreachable": {
			env:        map[string]string{"DOWNSTREAM": "grpc://" + closed},
			wantPrefix: "a[base] -> error: downstream answered Unavailable: ",
		},
		"http error answer": {
			env:        map[string]string{"DOWNSTREAM": failing.URL},
			wantPrefix: "a[base] -> error: downstream answered 500: b[base] -> error: injected fault",
		},
		"timeout": {
			env:        map[string]string{"DOWNSTREAM": hang.URL, "DOWNSTREAM_TIMEOUT": "50ms"},
			wantPrefix: "a[base] -> error: downstream did not answer within 50ms",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.env["NAME"] = "a"
			a := startHop(t, tc.env)
			code, body := get(t, a.httpURL+"/", nil)
			if code != http.StatusBadGateway || !strings.HasPrefix(body, tc.wantPrefix) || strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
				t.Errorf("answer %d %q, want 502 and one line starting %q", code, body, tc.wantPrefix)
			}
			_, err := call(t, a.grpc, "/", nil)
			if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.HasPrefix(st.Message(), tc.wantPrefix) {
				t.Errorf("gRPC status %v, want Unavailable starting %q", st, tc.wantPrefix)
			}
			if !strings.Contains(a.logs.String(), "request failed") {
				t.Errorf("no log line for the failure:\n%s", a.logs)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	for name, separate := range map[string]bool{"on the HTTP server": false, "on METRICS_ADDR": true} {
		t.Run(name, func(t *testing.T) {
			b := startHop(t, map[string]string{"NAME": "spring-cloud-b"})
			env := map[string]string{"NAME": "spring-cloud-a", "VERSION": "v2", "LANE": "gray", "DOWNSTREAM": "grpc://" + b.grpc}
			if separate {
				env["METRICS_ADDR"] = "127.0.0.1:0"
			}
			a := startHop(t, env)

			get(t, a.httpURL+"/", map[string]string{"x-mse-tag": "gray"})
			get(t, a.httpURL+"/", map[string]string{"x-mse-tag": "gray", "baggage": "lane=blue"})
			get(t, a.httpURL+"/", map[string]string{"baggage": "lane=blue"})
			get(t, a.httpURL+"/", map[string]string{"x-asm-prefer-tag": "canary", "x-mse-tag": "gray"})
			if _, err := call(t, a.grpc, "/", map[string]string{"x-asm-prefer-tag": "canary"}); err != nil {
				t.Fatal(err)
			}
			if _, err := call(t, a.grpc, "/", nil); err != nil {
				t.Fatal(err)
			}
			// Not hop requests: not counted.
			get(t, a.httpURL+"/healthz", nil)

			url := a.httpURL
			if separate {
				url = a.metrics
				if code, _ := get(t, a.httpURL+"/metrics", nil); code != http.StatusNotFound {
					t.Errorf("GET /metrics of the HTTP server: %d, want 404 with METRICS_ADDR", code)
				}
				if code, _ := get(t, a.metrics+"/healthz", nil); code != http.StatusOK {
					t.Errorf("GET /healthz of METRICS_ADDR: %d", code)
				}
			}
			requests, durations := requestCounts(t, scrape(t, url), "spring-cloud-a", "v2")
			// x-mse-tag comes first in PROPAGATE_HEADERS; baggage never names the lane.
			if diff := cmp.Diff(map[string]float64{"gray 200": 3, "base 200": 2, "canary 200": 1}, requests); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]float64{"gray": 3, "base": 2, "canary": 1}, durations); diff != "" {
				t.Errorf("durations (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("error codes count alike over both protocols", func(t *testing.T) {
		a := startHop(t, map[string]string{"NAME": "a", "DOWNSTREAM": "grpc://127.0.0.1:1"})
		get(t, a.httpURL+"/", map[string]string{"x-mse-tag": "gray"})
		_, _ = call(t, a.grpc, "/", map[string]string{"x-mse-tag": "gray"})
		f := startHop(t, map[string]string{"NAME": "f", "FAULT_ERROR_RATIO": "1"})
		get(t, f.httpURL+"/", nil)
		_, _ = call(t, f.grpc, "/", nil)

		requests, _ := requestCounts(t, scrape(t, a.httpURL), "a", "v1")
		if diff := cmp.Diff(map[string]float64{"gray 502": 2}, requests); diff != "" {
			t.Errorf("requests of a (-want +got):\n%s", diff)
		}
		requests, _ = requestCounts(t, scrape(t, f.httpURL), "f", "v1")
		if diff := cmp.Diff(map[string]float64{"base 500": 2}, requests); diff != "" {
			t.Errorf("requests of f (-want +got):\n%s", diff)
		}
	})
}

func TestHTTPRoutes(t *testing.T) {
	a := startHop(t, map[string]string{"NAME": "a", "GRPC_ADDR": ""})
	if a.grpc != "" {
		t.Errorf("gRPC listener on %s with GRPC_ADDR empty", a.grpc)
	}
	if code, body := get(t, a.httpURL+"/healthz", nil); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	resp, err := http.Post(a.httpURL+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", resp.StatusCode)
	}
}

func TestParseEnv(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		got, err := ParseEnv(lookupIn(map[string]string{"NAME": "spring-cloud-a"}))
		if err != nil {
			t.Fatal(err)
		}
		want := Config{
			Name: "spring-cloud-a", Version: "v1", LabelsFile: "/etc/podinfo/labels", LaneLabel: "alicloud.service.tag",
			Format: FormatLane, HTTPAddr: ":8080", GRPCAddr: ":9090", DownstreamTimeout: 2 * time.Second,
			PropagateHeaders: []string{"x-mse-tag", "x-asm-prefer-tag", "baggage"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("config (-want +got):\n%s", diff)
		}
	})
	t.Run("everything set", func(t *testing.T) {
		got, err := ParseEnv(lookupIn(map[string]string{
			"NAME": "mocka", "VERSION": "v2", "LANE": "gray", "PODINFO_LABELS": "/l", "LANE_LABEL": "istio.service.tag",
			"FORMAT": "version", "HTTP_ADDR": ":8000", "GRPC_ADDR": "", "METRICS_ADDR": ":9100",
			"DOWNSTREAM": "xds:///mockb.default.svc.cluster.local:9090", "GRPC_XDS_BOOTSTRAP": "/etc/istio/proxy/grpc-bootstrap.json",
			"DOWNSTREAM_TIMEOUT": "500ms", "PROPAGATE_HEADERS": " X-ASM-Prefer-Tag, ,x-asm-prefer-tag,Baggage ",
			"FAULT_ERROR_RATIO": "0.25", "FAULT_DELAY": "1s",
		}))
		if err != nil {
			t.Fatal(err)
		}
		want := Config{
			Name: "mocka", Version: "v2", Lane: "gray", LabelsFile: "/l", LaneLabel: "istio.service.tag",
			Format: FormatVersion, HTTPAddr: ":8000", GRPCAddr: "", MetricsAddr: ":9100",
			Downstream:        Downstream{Kind: DownstreamXDS, Target: "xds:///mockb.default.svc.cluster.local:9090"},
			DownstreamTimeout: 500 * time.Millisecond, PropagateHeaders: []string{"x-asm-prefer-tag", "baggage"},
			FaultErrorRatio: 0.25, FaultDelay: time.Second,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("config (-want +got):\n%s", diff)
		}
	})
	t.Run("downstreams", func(t *testing.T) {
		for raw, want := range map[string]Downstream{
			"http://spring-cloud-b:8080/hello?x=1": {Kind: DownstreamHTTP, Target: "http://spring-cloud-b:8080/hello?x=1"},
			"grpc://spring-cloud-b:9090":           {Kind: DownstreamGRPC, Target: "spring-cloud-b:9090"},
			"grpc://[::1]:9090/":                   {Kind: DownstreamGRPC, Target: "[::1]:9090"},
		} {
			got, err := ParseEnv(lookupIn(map[string]string{"NAME": "a", "DOWNSTREAM": raw}))
			if err != nil {
				t.Errorf("DOWNSTREAM %s: %v", raw, err)
				continue
			}
			if diff := cmp.Diff(want, got.Downstream); diff != "" {
				t.Errorf("DOWNSTREAM %s (-want +got):\n%s", raw, diff)
			}
			if got.Downstream.String() != strings.TrimSuffix(raw, "/") {
				t.Errorf("DOWNSTREAM %s prints as %s", raw, got.Downstream)
			}
		}
	})

	errs := map[string]struct {
		env  map[string]string
		want string
	}{
		"missing NAME":          {env: map[string]string{}, want: "NAME is required"},
		"unknown FORMAT":        {env: map[string]string{"FORMAT": "json"}, want: `FORMAT "json" is unknown: set it to lane, version or lane-version`},
		"DOWNSTREAM scheme":     {env: map[string]string{"DOWNSTREAM": "tcp://b:1"}, want: `DOWNSTREAM "tcp://b:1" has an unknown scheme`},
		"DOWNSTREAM no scheme":  {env: map[string]string{"DOWNSTREAM": "b:8080"}, want: `DOWNSTREAM "b:8080" has an unknown scheme`},
		"DOWNSTREAM not a URL":  {env: map[string]string{"DOWNSTREAM": "http://b:8080/%zz"}, want: `DOWNSTREAM "http://b:8080/%zz" is not a URL`},
		"DOWNSTREAM http":       {env: map[string]string{"DOWNSTREAM": "http:///x"}, want: "has no host"},
		"DOWNSTREAM grpc port":  {env: map[string]string{"DOWNSTREAM": "grpc://b"}, want: "is not grpc://host:port"},
		"DOWNSTREAM grpc path":  {env: map[string]string{"DOWNSTREAM": "grpc://b:1/x"}, want: "is not grpc://host:port"},
		"DOWNSTREAM xds host":   {env: map[string]string{"DOWNSTREAM": "xds://b:1", "GRPC_XDS_BOOTSTRAP": "/b"}, want: "is not xds:///name:port"},
		"DOWNSTREAM xds empty":  {env: map[string]string{"DOWNSTREAM": "xds:///", "GRPC_XDS_BOOTSTRAP": "/b"}, want: "is not xds:///name:port"},
		"xds without bootstrap": {env: map[string]string{"DOWNSTREAM": "xds:///b:1"}, want: "needs an xDS bootstrap: set GRPC_XDS_BOOTSTRAP"},
		"ratio above 1":         {env: map[string]string{"FAULT_ERROR_RATIO": "1.5"}, want: `FAULT_ERROR_RATIO "1.5" is not a number between 0 and 1`},
		"ratio negative":        {env: map[string]string{"FAULT_ERROR_RATIO": "-0.1"}, want: "is not a number between 0 and 1"},
		"ratio NaN":             {env: map[string]string{"FAULT_ERROR_RATIO": "NaN"}, want: "is not a number between 0 and 1"},
		"ratio text":            {env: map[string]string{"FAULT_ERROR_RATIO": "half"}, want: "is not a number between 0 and 1"},
		"delay":                 {env: map[string]string{"FAULT_DELAY": "100"}, want: `FAULT_DELAY "100" is not a duration`},
		"negative delay":        {env: map[string]string{"FAULT_DELAY": "-1s"}, want: "must not be negative"},
		"timeout":               {env: map[string]string{"DOWNSTREAM_TIMEOUT": "soon"}, want: `DOWNSTREAM_TIMEOUT "soon" is not a duration`},
		"zero timeout":          {env: map[string]string{"DOWNSTREAM_TIMEOUT": "0s"}, want: "must be positive"},
		"header name":           {env: map[string]string{"PROPAGATE_HEADERS": "x-mse-tag,x tag"}, want: `PROPAGATE_HEADERS entry "x tag" is not a header name`},
		"reserved header":       {env: map[string]string{"PROPAGATE_HEADERS": "grpc-timeout"}, want: "is not a header name"},
		"control in NAME":       {env: map[string]string{"NAME": "a\nb"}, want: "NAME \"a\\nb\" has control characters"},
	}
	for name, tc := range errs {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"NAME": "a"}
			if name == "missing NAME" {
				env = map[string]string{}
			}
			maps.Copy(env, tc.env)
			_, err := ParseEnv(lookupIn(env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("every error is reported", func(t *testing.T) {
		_, err := ParseEnv(lookupIn(map[string]string{"FORMAT": "x", "FAULT_DELAY": "x"}))
		if got := strings.Count(err.Error(), "\n") + 1; got != 3 {
			t.Errorf("%d errors, want 3:\n%v", got, err)
		}
	})
}

func TestServeStopsOnCancel(t *testing.T) {
	cfg, err := ParseEnv(lookupIn(map[string]string{"NAME": "a", "HTTP_ADDR": "127.0.0.1:0", "GRPC_ADDR": "127.0.0.1:0"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	logs := &logBuffer{}
	if err := Run(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, line := range []string{`msg="lane-demo started" hop=a`, `msg="lane-demo stopped" hop=a`} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("logs miss %s:\n%s", line, logs)
		}
	}

	// A listen address taken: Run says which.
	taken := startHop(t, map[string]string{"NAME": "b"})
	cfg.HTTPAddr = strings.TrimPrefix(taken.httpURL, "http://")
	err = Run(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "listen for HTTP (HTTP_ADDR) on "+cfg.HTTPAddr) {
		t.Errorf("Run on a taken address: %v", err)
	}
}

// TestCallHopSendsAgainOnlyWhatNoServerSaw: a call the channel failed before any server saw it
// is sent again, at most five times; a call a server answered with an error is not sent again.
func TestCallHopSendsAgainOnlyWhatNoServerSaw(t *testing.T) {
	failing := startHop(t, map[string]string{"NAME": "b", "FAULT_ERROR_RATIO": "1"})
	ok := startHop(t, map[string]string{"NAME": "c"})
	tests := map[string]struct {
		addr     string
		unsent   int // attempts the client fails before sending them
		want     string
		wantCode codes.Code
		attempts int
	}{
		"first attempt failed unsent":  {addr: ok.grpc, unsent: 1, want: "c[base]", attempts: 2},
		"two attempts failed unsent":   {addr: ok.grpc, unsent: 2, want: "c[base]", attempts: 3},
		"every attempt failed unsent":  {addr: ok.grpc, unsent: 9, wantCode: codes.Unavailable, attempts: 6},
		"the server answered an error": {addr: failing.grpc, wantCode: codes.Internal, attempts: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			attempts := 0
			// Fails the first tc.unsent attempts before they leave the client, as a picker error does.
			unsent := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				attempts++
				if attempts <= tc.unsent {
					return status.Error(codes.Unavailable, "unknown cluster selected for RPC")
				}
				return invoker(ctx, method, req, reply, cc, opts...)
			}
			conn, err := grpc.NewClient(tc.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUnaryInterceptor(unsent))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			out, err := CallHop(t.Context(), NewHopClient(conn), "/")
			if got := status.Code(err); got != tc.wantCode || out.GetValue() != tc.want {
				t.Errorf("CallHop = %q, %v; want %q, code %v", out.GetValue(), err, tc.want, tc.wantCode)
			}
			if attempts != tc.attempts {
				t.Errorf("%d attempts, want %d", attempts, tc.attempts)
			}
		})
	}
}
