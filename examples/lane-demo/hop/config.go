package hop

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Format says how a hop names itself in an answer.
type Format string

const (
	// FormatLane prints NAME[LANE], for example spring-cloud-a[gray].
	FormatLane Format = "lane"
	// FormatVersion prints NAME(version: VERSION), for example mocka(version: v2).
	FormatVersion Format = "version"
	// FormatLaneVersion prints NAME[LANE](VERSION), for example spring-cloud-a[gray](v2): the
	// lane and which release answered.
	FormatLaneVersion Format = "lane-version"
)

// DownstreamKind is the protocol a hop calls its downstream with.
type DownstreamKind string

const (
	// DownstreamHTTP is an HTTP GET of a URL.
	DownstreamHTTP DownstreamKind = "http"
	// DownstreamGRPC is lanedemo.v1.Hop/Call on a host:port, plaintext.
	DownstreamGRPC DownstreamKind = "grpc"
	// DownstreamXDS is lanedemo.v1.Hop/Call on a name resolved by grpc-go's xds resolver,
	// plaintext.
	DownstreamXDS DownstreamKind = "xds"
)

// Downstream is where a hop sends the request on. The zero value means no downstream: the hop
// is the end of the chain.
type Downstream struct {
	Kind DownstreamKind
	// Target is the URL for DownstreamHTTP, host:port for DownstreamGRPC and the whole
	// xds:///name:port URI for DownstreamXDS.
	Target string
}

// String returns the DOWNSTREAM value this Downstream was parsed from ("" for none).
func (d Downstream) String() string {
	if d.Kind == DownstreamGRPC {
		return "grpc://" + d.Target
	}
	return d.Target
}

// Config is everything a hop needs; ParseEnv builds it from the environment.
type Config struct {
	// Name is the hop's name (NAME), for example spring-cloud-a.
	Name string
	// Version is the hop's version (VERSION), printed by FormatVersion and a metric label.
	Version string
	// Lane, when not empty, is the pod's lane and LabelsFile is not read (LANE).
	Lane string
	// LabelsFile is the downward-API labels file (PODINFO_LABELS).
	LabelsFile string
	// LaneLabel is the pod label whose value is the pod's lane (LANE_LABEL).
	LaneLabel string
	// Format is how the hop names itself (FORMAT).
	Format Format
	// HTTPAddr is the HTTP listen address (HTTP_ADDR).
	HTTPAddr string
	// GRPCAddr is the gRPC listen address; empty disables gRPC (GRPC_ADDR).
	GRPCAddr string
	// MetricsAddr, when not empty, serves /metrics and /healthz on a listener of their own
	// instead of the HTTP server (METRICS_ADDR).
	MetricsAddr string
	// Downstream is the next hop (DOWNSTREAM).
	Downstream Downstream
	// DownstreamTimeout bounds one downstream call (DOWNSTREAM_TIMEOUT).
	DownstreamTimeout time.Duration
	// PropagateHeaders are the lower-case names of the headers copied onto the downstream
	// call (PROPAGATE_HEADERS).
	PropagateHeaders []string
	// FaultErrorRatio is the fraction of requests answered with an injected error
	// (FAULT_ERROR_RATIO).
	FaultErrorRatio float64
	// FaultDelay is added before every answer (FAULT_DELAY).
	FaultDelay time.Duration
}

// Defaults of the optional settings.
const (
	DefaultVersion           = "v1"
	DefaultLabelsFile        = "/etc/podinfo/labels"
	DefaultLaneLabel         = "alicloud.service.tag"
	DefaultHTTPAddr          = ":8080"
	DefaultGRPCAddr          = ":9090"
	DefaultDownstreamTimeout = 2 * time.Second
	DefaultPropagateHeaders  = "x-mse-tag,x-asm-prefer-tag,baggage"
	// BaseLane is the lane of a pod without a lane label and of a request without a lane
	// header.
	BaseLane = "base"
)

// ParseEnv reads a Config from environment variables through lookup (os.LookupEnv in main).
// An empty variable means its default, except GRPC_ADDR (empty disables gRPC) and
// PROPAGATE_HEADERS (empty propagates nothing). The error lists every invalid variable, each
// as a sentence that says what to change.
func ParseEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(key, def string) string {
		if v, ok := lookup(key); ok && v != "" {
			return v
		}
		return def
	}
	var errs []error
	cfg := Config{
		Name:        get("NAME", ""),
		Version:     get("VERSION", DefaultVersion),
		Lane:        get("LANE", ""),
		LabelsFile:  get("PODINFO_LABELS", DefaultLabelsFile),
		LaneLabel:   get("LANE_LABEL", DefaultLaneLabel),
		HTTPAddr:    get("HTTP_ADDR", DefaultHTTPAddr),
		MetricsAddr: get("METRICS_ADDR", ""),
	}
	if cfg.Name == "" {
		errs = append(errs, errors.New("NAME is required: set it to this hop's name, for example NAME=spring-cloud-a"))
	}
	for _, kv := range [][2]string{{"NAME", cfg.Name}, {"VERSION", cfg.Version}, {"LANE", cfg.Lane}} {
		if !utf8.ValidString(kv[1]) || strings.ContainsFunc(kv[1], unicode.IsControl) {
			errs = append(errs, fmt.Errorf("%s %q has control characters or is not UTF-8: use a plain name such as gray", kv[0], kv[1]))
		}
	}
	cfg.GRPCAddr = DefaultGRPCAddr
	if v, ok := lookup("GRPC_ADDR"); ok {
		cfg.GRPCAddr = v
	}

	switch f := Format(get("FORMAT", string(FormatLane))); f {
	case FormatLane, FormatVersion, FormatLaneVersion:
		cfg.Format = f
	default:
		errs = append(errs, fmt.Errorf("FORMAT %q is unknown: set it to %s, %s or %s", f, FormatLane, FormatVersion, FormatLaneVersion))
	}

	down, err := parseDownstream(get("DOWNSTREAM", ""), lookup)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Downstream = down

	cfg.DownstreamTimeout = DefaultDownstreamTimeout
	if v := get("DOWNSTREAM_TIMEOUT", ""); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("DOWNSTREAM_TIMEOUT %q is not a duration: use Go syntax such as 2s or 500ms", v))
		case d <= 0:
			errs = append(errs, fmt.Errorf("DOWNSTREAM_TIMEOUT %q must be positive", v))
		default:
			cfg.DownstreamTimeout = d
		}
	}

	headers := DefaultPropagateHeaders
	if v, ok := lookup("PROPAGATE_HEADERS"); ok {
		headers = v
	}
	cfg.PropagateHeaders, err = parseHeaderNames(headers)
	if err != nil {
		errs = append(errs, err)
	}

	if v := get("FAULT_ERROR_RATIO", ""); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(r) || r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("FAULT_ERROR_RATIO %q is not a number between 0 and 1, for example 0.2", v))
		} else {
			cfg.FaultErrorRatio = r
		}
	}
	if v := get("FAULT_DELAY", ""); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("FAULT_DELAY %q is not a duration: use Go syntax such as 200ms", v))
		case d < 0:
			errs = append(errs, fmt.Errorf("FAULT_DELAY %q must not be negative", v))
		default:
			cfg.FaultDelay = d
		}
	}
	return cfg, errors.Join(errs...)
}

// parseDownstream parses DOWNSTREAM; "" is no downstream.
func parseDownstream(raw string, lookup func(string) (string, bool)) (Downstream, error) {
	if raw == "" {
		return Downstream{}, nil
	}
	const forms = "use http://host:port/path, grpc://host:port or xds:///name:port"
	u, err := url.Parse(raw)
	if err != nil {
		return Downstream{}, fmt.Errorf("DOWNSTREAM %q is not a URL (%s): %w", raw, forms, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return Downstream{}, fmt.Errorf("DOWNSTREAM %q has no host: %s", raw, forms)
		}
		return Downstream{Kind: DownstreamHTTP, Target: raw}, nil
	case "grpc":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return Downstream{}, fmt.Errorf("DOWNSTREAM %q is not grpc://host:port, for example grpc://spring-cloud-b:9090", raw)
		}
		return Downstream{Kind: DownstreamGRPC, Target: u.Host}, nil
	case "xds":
		name := strings.TrimPrefix(u.Path, "/")
		if u.Host != "" || name == "" || strings.Contains(name, "/") || u.RawQuery != "" {
			return Downstream{}, fmt.Errorf("DOWNSTREAM %q is not xds:///name:port, for example xds:///spring-cloud-b.default.svc.cluster.local:9090", raw)
		}
		if !isSet(lookup, "GRPC_XDS_BOOTSTRAP") && !isSet(lookup, "GRPC_XDS_BOOTSTRAP_CONFIG") {
			return Downstream{}, fmt.Errorf("DOWNSTREAM %q needs an xDS bootstrap: set GRPC_XDS_BOOTSTRAP to its file or GRPC_XDS_BOOTSTRAP_CONFIG to its content (the istio-agent of a proxyless pod writes one)", raw)
		}
		return Downstream{Kind: DownstreamXDS, Target: raw}, nil
	default:
		return Downstream{}, fmt.Errorf("DOWNSTREAM %q has an unknown scheme: %s", raw, forms)
	}
}

func isSet(lookup func(string) (string, bool), key string) bool {
	v, ok := lookup(key)
	return ok && v != ""
}

// parseHeaderNames parses PROPAGATE_HEADERS: a comma list of header names, lower-cased,
// duplicates and empty entries dropped.
func parseHeaderNames(raw string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for _, n := range strings.Split(raw, ",") {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" || seen[n] {
			continue
		}
		if !validHeaderName(n) {
			return nil, fmt.Errorf("PROPAGATE_HEADERS entry %q is not a header name usable in HTTP and gRPC: use letters, digits, '-', '_' and '.'", n)
		}
		seen[n] = true
		names = append(names, n)
	}
	return names, nil
}

// validHeaderName reports whether n (lower case) is a name valid both as an HTTP header and as
// gRPC metadata, and not one gRPC reserves.
func validHeaderName(n string) bool {
	if strings.HasPrefix(n, "grpc-") || strings.HasSuffix(n, "-bin") {
		return false
	}
	for _, c := range []byte(n) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return n != ""
}
