package hop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

// Answer is what a hop answers one request, whatever the protocol.
type Answer struct {
	// Code is the HTTP status code: 200, 500 (injected fault) or 502 (downstream failure).
	Code int
	// Line is the answer without its trailing newline, for example
	// "spring-cloud-a[gray] -> spring-cloud-b[base]".
	Line string
}

// laneSource tells the lane of this hop's pod.
type laneSource interface {
	Lane() string
}

type fixedLane string

func (l fixedLane) Lane() string { return string(l) }

// Hop answers requests as one hop of the chain; it is safe for concurrent use. Serve it with
// Serve, or use Handler and RegisterGRPC on servers of your own.
type Hop struct {
	cfg     Config
	log     *slog.Logger
	lane    laneSource
	down    caller // nil at the end of the chain
	metrics *metrics
	// fault draws a number in [0, 1) per request; the request fails when it is below
	// cfg.FaultErrorRatio.
	fault func() float64
}

// New returns the Hop of cfg, logging to log with key hop set to its name. Its downstream
// client is created once here; Close releases it.
func New(cfg Config, log *slog.Logger) (*Hop, error) {
	log = log.With("hop", cfg.Name)
	m, err := newMetrics(cfg.Name, cfg.Version)
	if err != nil {
		return nil, err
	}
	down, err := newCaller(cfg.Downstream)
	if err != nil {
		return nil, err
	}
	h := &Hop{cfg: cfg, log: log, down: down, metrics: m, fault: rand.Float64}
	if cfg.Lane != "" {
		h.lane = fixedLane(cfg.Lane)
	} else {
		h.lane = newLabelsFileLane(cfg.LabelsFile, cfg.LaneLabel, log)
	}
	return h, nil
}

// Close releases the downstream client.
func (h *Hop) Close() error {
	if h.down == nil {
		return nil
	}
	return h.down.close()
}

// Self is how the hop names itself now: NAME[LANE], NAME(version: VERSION) or
// NAME[LANE](VERSION).
func (h *Hop) Self() string {
	switch h.cfg.Format {
	case FormatVersion:
		return fmt.Sprintf("%s(version: %s)", h.cfg.Name, h.cfg.Version)
	case FormatLaneVersion:
		return fmt.Sprintf("%s[%s](%s)", h.cfg.Name, h.lane.Lane(), h.cfg.Version)
	}
	return fmt.Sprintf("%s[%s]", h.cfg.Name, h.lane.Lane())
}

// Answer answers one request for path whose headers get reports (by lower-case name), and
// counts it in the metrics. get is asked only for the names in PROPAGATE_HEADERS.
func (h *Hop) Answer(ctx context.Context, path string, get func(name string) []string) Answer {
	start := time.Now()
	in, dropped := collectHeaders(h.cfg.PropagateHeaders, get)
	for _, name := range dropped {
		h.log.Warn("dropped a header whose value is not printable ASCII (CR, LF, NUL or other control byte)", "header", name)
	}
	lane := requestLane(h.cfg.PropagateHeaders, in)
	a := h.answer(ctx, path, in)
	h.metrics.observe(lane, a.Code, time.Since(start))
	if a.Code != http.StatusOK {
		h.log.Warn("request failed", "code", a.Code, "answer", a.Line, "lane", lane)
	}
	return a
}

func (h *Hop) answer(ctx context.Context, path string, in Headers) Answer {
	if d := h.cfg.FaultDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	self := h.Self()
	if h.cfg.FaultErrorRatio > 0 && h.fault() < h.cfg.FaultErrorRatio {
		return Answer{Code: http.StatusInternalServerError, Line: self + " -> error: injected fault"}
	}
	if h.down == nil {
		return Answer{Code: http.StatusOK, Line: self}
	}
	callCtx, cancel := context.WithTimeout(ctx, h.cfg.DownstreamTimeout)
	defer cancel()
	line, err := h.down.call(callCtx, path, in)
	if err != nil {
		reason := err.Error()
		if ctx.Err() == nil && errors.Is(callCtx.Err(), context.DeadlineExceeded) {
			reason = fmt.Sprintf("downstream did not answer within %s", h.cfg.DownstreamTimeout)
		}
		return Answer{Code: http.StatusBadGateway, Line: self + " -> error: " + oneLine(reason)}
	}
	return Answer{Code: http.StatusOK, Line: self + " -> " + line}
}
