package hop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	// Registers the xds resolver (and the balancers it needs) for xds:/// downstreams.
	_ "google.golang.org/grpc/xds"
)

// caller sends a request on to the downstream hop and returns its answer line.
type caller interface {
	call(ctx context.Context, path string, headers Headers) (string, error)
	close() error
}

// maxDownstreamBody bounds what is read of a downstream HTTP answer.
const maxDownstreamBody = 64 << 10

// downstreamError is a downstream failure: reason is the short sentence put in the answer.
type downstreamError struct {
	reason string
	err    error
}

func (e *downstreamError) Error() string { return e.reason }
func (e *downstreamError) Unwrap() error { return e.err }

func newCaller(d Downstream) (caller, error) {
	switch d.Kind {
	case "":
		return nil, nil
	case DownstreamHTTP:
		return newHTTPCaller(d.Target), nil
	case DownstreamGRPC, DownstreamXDS:
		conn, err := grpc.NewClient(d.Target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("create the gRPC client of DOWNSTREAM %s: %w", d, err)
		}
		// Resolve and connect now rather than on the first request: through xDS that takes a
		// round of discovery, which a freshly started pod's first requests would otherwise wait
		// for.
		conn.Connect()
		return &grpcCaller{conn: conn, client: NewHopClient(conn)}, nil
	default:
		return nil, fmt.Errorf("downstream kind %q is unknown", d.Kind)
	}
}

// httpCaller GETs one URL, whatever the inbound path.
type httpCaller struct {
	url    string
	client *http.Client
}

func newHTTPCaller(target string) *httpCaller {
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	return &httpCaller{url: target, client: &http.Client{Transport: transport}}
}

func (c *httpCaller) call(ctx context.Context, _ string, headers Headers) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, http.NoBody)
	if err != nil {
		return "", &downstreamError{reason: "cannot build the downstream request", err: err}
	}
	for name, values := range headers {
		req.Header[http.CanonicalHeaderKey(name)] = values
	}
	resp, err := c.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return "", &downstreamError{reason: "downstream unreachable: " + uerr.Err.Error(), err: err}
		}
		return "", &downstreamError{reason: "downstream unreachable: " + err.Error(), err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDownstreamBody))
	if err != nil {
		return "", &downstreamError{reason: "downstream answer cut short: " + err.Error(), err: err}
	}
	line := oneLine(string(body))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", &downstreamError{reason: fmt.Sprintf("downstream answered %d: %s", resp.StatusCode, line)}
	}
	return line, nil
}

func (c *httpCaller) close() error {
	c.client.CloseIdleConnections()
	return nil
}

// grpcCaller calls lanedemo.v1.Hop/Call over one client conn, forwarding the inbound path.
type grpcCaller struct {
	conn   *grpc.ClientConn
	client *HopClient
}

func (c *grpcCaller) call(ctx context.Context, path string, headers Headers) (string, error) {
	md := metadata.MD{}
	for name, values := range headers {
		md[name] = values
	}
	out, err := CallHop(metadata.NewOutgoingContext(ctx, md), c.client, path)
	if err != nil {
		st := status.Convert(err)
		return "", &downstreamError{reason: fmt.Sprintf("downstream answered %s: %s", st.Code(), oneLine(st.Message())), err: err}
	}
	return oneLine(out.GetValue()), nil
}

func (c *grpcCaller) close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("close the downstream gRPC client: %w", err)
	}
	return nil
}

// oneLine returns s without its trailing line break and with any other line break turned into
// a space, so that an answer stays one line.
func oneLine(s string) string {
	s = strings.TrimRight(s, "\r\n")
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
