package hop

// Headers are the lane headers of a request, keyed by lower-case name, as copied onto the
// downstream call.
type Headers map[string][]string

// baggageHeader is W3C baggage: propagated, but not a lane header for the request's lane.
const baggageHeader = "baggage"

// maxLaneLabel bounds the lane label of the metrics; a longer header value is cut.
const maxLaneLabel = 64

// collectHeaders returns the headers among names that get reports, leaving out the absent ones
// and those with a value that is not printable ASCII (which covers CR, LF and NUL): such a
// header is never forwarded, and its name is returned in dropped.
func collectHeaders(names []string, get func(name string) []string) (in Headers, dropped []string) {
	in = Headers{}
	for _, name := range names {
		values := get(name)
		if len(values) == 0 {
			continue
		}
		ok := true
		for _, v := range values {
			if !printableASCII(v) {
				ok = false
				break
			}
		}
		if !ok {
			dropped = append(dropped, name)
			continue
		}
		in[name] = append([]string(nil), values...)
	}
	return in, dropped
}

// printableASCII reports whether v has only bytes from space to '~': what gRPC metadata
// accepts, and a subset of what HTTP accepts.
func printableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < ' ' || v[i] > '~' {
			return false
		}
	}
	return true
}

// requestLane is the lane of a request: the first non-empty value of the first lane header
// among names (baggage excepted) that in has, else BaseLane.
func requestLane(names []string, in Headers) string {
	for _, name := range names {
		if name == baggageHeader {
			continue
		}
		for _, v := range in[name] {
			if v != "" {
				if len(v) > maxLaneLabel {
					v = v[:maxLaneLabel]
				}
				return v
			}
		}
	}
	return BaseLane
}
