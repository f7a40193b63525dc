package hop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ShutdownTimeout bounds a graceful shutdown: HTTP requests and gRPC calls in flight get this
// long to finish, then the servers stop.
const ShutdownTimeout = 5 * time.Second

// Handler is the hop's HTTP API: GET on any path answers the hop's line; /healthz answers 200;
// /metrics serves the metrics unless METRICS_ADDR moves them to MetricsHandler.
func (h *Hop) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	if h.cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", h.metricsHandler())
	} else {
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "metrics are served on METRICS_ADDR "+h.cfg.MetricsAddr, http.StatusNotFound)
		})
	}
	mux.HandleFunc("GET /", h.serveHTTP)
	return mux
}

// MetricsHandler serves /metrics and /healthz, for METRICS_ADDR.
func (h *Hop) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.Handle("GET /metrics", h.metricsHandler())
	return mux
}

func (h *Hop) metricsHandler() http.Handler {
	return promhttp.HandlerFor(h.metrics.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(h.log.Handler(), slog.LevelError),
	})
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (h *Hop) serveHTTP(w http.ResponseWriter, r *http.Request) {
	a := h.Answer(r.Context(), r.URL.Path, r.Header.Values)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(a.Code)
	_, _ = w.Write([]byte(a.Line + "\n"))
}

// RegisterGRPC registers the hop as lanedemo.v1.Hop on s.
func (h *Hop) RegisterGRPC(s grpc.ServiceRegistrar) {
	s.RegisterService(ServiceDesc(), grpcHop{h})
}

// grpcHop is the HopServer of a Hop: lane headers come from the incoming metadata, and an
// answer other than 200 is a status whose message is the answer line.
type grpcHop struct{ h *Hop }

var _ HopServer = grpcHop{}

func (g grpcHop) Call(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	a := g.h.Answer(ctx, in.GetValue(), md.Get)
	switch a.Code {
	case http.StatusOK:
		return wrapperspb.String(a.Line), nil
	case http.StatusInternalServerError:
		return nil, status.Error(codes.Internal, a.Line)
	default:
		return nil, status.Error(codes.Unavailable, a.Line)
	}
}

// Listeners are what Serve serves on. GRPC is nil when gRPC is disabled; Metrics is nil unless
// METRICS_ADDR is set.
type Listeners struct {
	HTTP, GRPC, Metrics net.Listener
}

// Listen opens the listeners of cfg.
func Listen(cfg Config) (Listeners, error) {
	var ls Listeners
	open := func(addr, what string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			ls.close()
			return nil, fmt.Errorf("listen for %s on %s: %w", what, addr, err)
		}
		return ln, nil
	}
	var err error
	if ls.HTTP, err = open(cfg.HTTPAddr, "HTTP (HTTP_ADDR)"); err != nil {
		return Listeners{}, err
	}
	if cfg.GRPCAddr != "" {
		if ls.GRPC, err = open(cfg.GRPCAddr, "gRPC (GRPC_ADDR)"); err != nil {
			return Listeners{}, err
		}
	}
	if cfg.MetricsAddr != "" {
		if ls.Metrics, err = open(cfg.MetricsAddr, "metrics (METRICS_ADDR)"); err != nil {
			return Listeners{}, err
		}
	}
	return ls, nil
}

func (ls Listeners) close() {
	for _, ln := range []net.Listener{ls.HTTP, ls.GRPC, ls.Metrics} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// Serve serves the hop on ls until ctx ends, then shuts the servers down gracefully within
// ShutdownTimeout. It returns early, after the same shutdown, if a server fails.
func (h *Hop) Serve(ctx context.Context, ls Listeners) error {
	if ls.HTTP == nil {
		return errors.New("serve the hop: no HTTP listener")
	}
	if (ls.Metrics == nil) != (h.cfg.MetricsAddr == "") {
		ls.close()
		return errors.New("serve the hop: a metrics listener is needed exactly when METRICS_ADDR is set")
	}
	errLog := slog.NewLogLogger(h.log.Handler(), slog.LevelWarn)
	var servers []*http.Server
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	serveHTTP := func(handler http.Handler, ln net.Listener) {
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
		servers = append(servers, srv)
		wg.Go(func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve HTTP on %s: %w", ln.Addr(), err)
			}
		})
	}
	serveHTTP(h.Handler(), ls.HTTP)
	if ls.Metrics != nil {
		serveHTTP(h.MetricsHandler(), ls.Metrics)
	}
	var gs *grpc.Server
	if ls.GRPC != nil {
		gs = grpc.NewServer()
		h.RegisterGRPC(gs)
		wg.Go(func() {
			if err := gs.Serve(ls.GRPC); err != nil {
				errc <- fmt.Errorf("serve gRPC on %s: %w", ls.GRPC.Addr(), err)
			}
		})
	}
	h.log.Info("lane-demo started", "version", h.cfg.Version, "lane", h.lane.Lane(),
		"http", addrOf(ls.HTTP), "grpc", addrOf(ls.GRPC), "metrics", addrOf(ls.Metrics),
		"downstream", h.cfg.Downstream.String())

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	var stop sync.WaitGroup
	for _, srv := range servers {
		stop.Go(func() {
			if serr := srv.Shutdown(sctx); serr != nil {
				_ = srv.Close()
			}
		})
	}
	if gs != nil {
		stop.Go(func() {
			done := make(chan struct{})
			go func() {
				gs.GracefulStop()
				close(done)
			}()
			select {
			case <-done:
			case <-sctx.Done():
				gs.Stop()
				<-done
			}
		})
	}
	stop.Wait()
	wg.Wait()
	if err != nil {
		return err
	}
	h.log.Info("lane-demo stopped")
	return nil
}

// Run serves cfg until ctx ends: the hop, its listeners, then a graceful shutdown.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	h, err := New(cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = h.Close() }()
	ls, err := Listen(cfg)
	if err != nil {
		return err
	}
	return h.Serve(ctx, ls)
}
