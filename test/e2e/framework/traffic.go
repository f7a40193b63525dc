//go:build e2e

package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/kruise-lanes/kruise-lanes/examples/lane-demo/hop"
)

// Reply is the outcome of one test request.
type Reply struct {
	// At is when the request was sent.
	At time.Time
	// Body is the answer line without its trailing newline.
	Body string
	// Code is the HTTP status (for gRPC: 200 for OK, else the error's HTTP equivalent 500/502/503).
	Code int
	// Err is a transport error (no answer at all).
	Err error
}

// Failed reports a request that got no answer or a 5xx.
func (r Reply) Failed() bool { return r.Err != nil || r.Code >= 500 }

func (r Reply) String() string {
	if r.Err != nil {
		return fmt.Sprintf("%s: error %v", r.At.Format("15:04:05.000"), r.Err)
	}
	return fmt.Sprintf("%s: %d %q", r.At.Format("15:04:05.000"), r.Code, r.Body)
}

// Sender sends one request.
type Sender func(ctx context.Context) Reply

// requestTimeout bounds one test request: above the hops' own downstream bound (5 s).
const requestTimeout = 10 * time.Second

// HTTPSender GETs url with the given Host (empty: the URL's) and headers. It never follows
// redirects and keeps no connection between requests, so each request is routed afresh.
func HTTPSender(url, host string, headers map[string]string) Sender {
	hc := &http.Client{
		Timeout:       requestTimeout,
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return func(ctx context.Context) Reply {
		r := Reply{At: time.Now()}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
		if err != nil {
			r.Err = err
			return r
		}
		if host != "" {
			req.Host = host
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			r.Err = err
			return r
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		r.Code, r.Body, r.Err = resp.StatusCode, strings.TrimRight(string(b), "\n"), err
		return r
	}
}

// MeshSender calls the lane demo's gRPC Call on target (xds:///host:port) as a proxyless gRPC
// client of istiod, with the given metadata (the lane header): the routing of the first hop is
// istiod's, as for any mesh client. The connection lives until the test ends.
func (c *Cluster) MeshSender(t testing.TB, target string, md map[string]string) Sender {
	t.Helper()
	send, closeConn, err := c.NewMeshSender(target, md)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeConn() })
	return send
}

// NewMeshSender is MeshSender without a testing.TB: the caller closes the connection.
func (c *Cluster) NewMeshSender(target string, md map[string]string) (Sender, func() error, error) {
	if err := c.meshClientBootstrap(); err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("dialing %s: %w", target, err)
	}
	client := hop.NewHopClient(conn)
	send := func(ctx context.Context) Reply {
		r := Reply{At: time.Now()}
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		ctx = metadata.NewOutgoingContext(ctx, metadata.New(md))
		// As the lane demo's own hops call: a call no server saw is routed and sent again
		// (hop.CallHop).
		out, err := hop.CallHop(ctx, client, "/")
		if err != nil {
			r.Err = err
			return r
		}
		r.Code, r.Body = http.StatusOK, out.GetValue()
		return r
	}
	return send, conn.Close, nil
}

// meshClientBootstrap writes this process's xDS bootstrap, once: RunInTestNetwork named its file
// in GRPC_XDS_BOOTSTRAP (grpc-go reads that name at start and the file when the first xDS
// client is made). The client is a node of namespace default.
func (c *Cluster) meshClientBootstrap() error {
	c.meshClient.once.Do(func() {
		file := os.Getenv(xdsBootstrapEnv)
		if file == "" {
			c.meshClient.err = errors.New("no " + xdsBootstrapEnv + " in the environment: the program did not start through framework.RunInTestNetwork")
			return
		}
		b, err := c.xdsBootstrap("127.0.0.1", "e2e-client", "default", nil)
		if err != nil {
			c.meshClient.err = err
			return
		}
		if err := os.WriteFile(file, b, 0o644); err != nil {
			c.meshClient.err = fmt.Errorf("writing the mesh client's xDS bootstrap: %w", err)
		}
	})
	return c.meshClient.err
}

// meshClient is the test process's own xDS bootstrap.
type meshClient struct {
	once sync.Once
	err  error
}

// Load is a steady, bounded request loop: one request every interval, until Stop, MaxRequests or
// MaxDuration, whichever comes first.
type Load struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	replies []Reply
}

// StartLoad starts a Load named name (for messages) sending with send. It is stopped at the end
// of the test at the latest.
func StartLoad(t testing.TB, name string, send Sender, interval time.Duration, maxRequests int, maxDuration time.Duration) *Load {
	ctx, cancel := context.WithTimeout(context.Background(), maxDuration)
	l := &Load{name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for n := 0; n < maxRequests; n++ {
			r := send(ctx)
			if ctx.Err() != nil {
				return // the loop was stopped mid-request: not an answer of the system
			}
			l.mu.Lock()
			l.replies = append(l.replies, r)
			l.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { l.Stop() })
	return l
}

// Stop ends the loop and returns every reply.
func (l *Load) Stop() []Reply {
	l.cancel()
	<-l.done
	return l.Replies()
}

// Replies returns the replies so far.
func (l *Load) Replies() []Reply {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Reply(nil), l.replies...)
}

// CheckNoFailures stops the loop and fails the test for every failed reply (at most 10 listed);
// it also fails when the loop sent fewer than minRequests, so a loop that never ran cannot pass.
func (l *Load) CheckNoFailures(t testing.TB, minRequests int) []Reply {
	t.Helper()
	replies := l.Stop()
	var failed []Reply
	for _, r := range replies {
		if r.Failed() {
			failed = append(failed, r)
		}
	}
	if len(replies) < minRequests {
		t.Errorf("%s: only %d requests were sent, want at least %d", l.name, len(replies), minRequests)
	}
	if len(failed) > 0 {
		if len(failed) > 10 {
			failed = failed[:10]
		}
		var b strings.Builder
		for _, r := range failed {
			b.WriteString("\n  " + r.String())
		}
		t.Errorf("%s: %d of %d requests failed:%s", l.name, countFailed(replies), len(replies), b.String())
	}
	t.Logf("%s: %d requests, %d failed; answers %s", l.name, len(replies), countFailed(replies), Tally(replies))
	return replies
}

func countFailed(rs []Reply) int {
	n := 0
	for _, r := range rs {
		if r.Failed() {
			n++
		}
	}
	return n
}

// Tally counts the answers by body ("error: ..." for transport errors), most frequent first.
func Tally(rs []Reply) string {
	counts := map[string]int{}
	for _, r := range rs {
		key := r.Body
		if r.Err != nil {
			key = "error: " + r.Err.Error()
		} else if r.Code != http.StatusOK {
			key = fmt.Sprintf("%d %s", r.Code, r.Body)
		}
		counts[key]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%dx %q", counts[k], k))
	}
	return strings.Join(parts, ", ")
}

// Sample sends n requests one after another and returns the replies.
func Sample(ctx context.Context, send Sender, n int) []Reply {
	out := make([]Reply, 0, n)
	for range n {
		out = append(out, send(ctx))
	}
	return out
}

// WaitForAnswers waits until n requests in a row are all answered 200 with a body that ok
// accepts, sending one request every answerPoll, and returns how long after the call the first
// of those n requests was sent: the time the system took to answer that way, to answerPoll.
func WaitForAnswers(ctx context.Context, timeout time.Duration, what string, send Sender, n int, ok func(body string) bool) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var first time.Time
	streak := 0
	var last Reply
	for {
		last = send(ctx)
		if ctx.Err() != nil {
			return 0, fmt.Errorf("timed out after %s waiting for %s: last answer %s", timeout, what, last)
		}
		if last.Failed() || last.Code != http.StatusOK || !ok(last.Body) {
			streak = 0
		} else {
			if streak == 0 {
				first = last.At
			}
			streak++
			if streak >= n {
				return first.Sub(start), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("timed out after %s waiting for %s: last answer %s", timeout, what, last)
		case <-time.After(answerPoll):
		}
	}
}

// answerPoll is the interval of WaitForAnswers' requests.
const answerPoll = 10 * time.Millisecond
