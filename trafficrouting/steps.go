package trafficrouting

import (
	"fmt"
	"regexp"
	"strings"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// Provider is a Kruise Lanes traffic-routing provider: a Lua script the manager installs into
// Kruise, whose limits StepProblems knows. The empty Provider is any other (Kruise's built-in
// scripts and Go providers), which is not judged.
type Provider string

// The providers whose rules are judged before Kruise runs them.
const (
	ProviderMSE       Provider = "mse"
	ProviderHigress   Provider = "higress"
	ProviderHTTPRoute Provider = "httproute"
)

// Providers says which provider Kruise runs for an entry: IngressClasses maps an Ingress class
// type (spec.objectRef[].ingress.classType, "nginx" when empty) to the provider installed under
// it, and HTTPRoute is true where the httproute custom network provider is installed.
type Providers struct {
	IngressClasses map[string]Provider
	HTTPRoute      bool
}

// Of is the provider Kruise runs for one traffic routing reference ("" for one that is not ours).
func (p Providers) Of(ref rolloutsv1beta1.TrafficRoutingRef) Provider {
	if ref.Ingress != nil {
		class := ref.Ingress.ClassType
		if class == "" {
			class = "nginx"
		}
		return p.IngressClasses[class]
	}
	if !p.HTTPRoute {
		return ""
	}
	for _, r := range ref.CustomNetworkRefs {
		if gv, err := schema.ParseGroupVersion(r.APIVersion); err == nil && gv.Group == gatewayv1beta1.GroupName && r.Kind == "HTTPRoute" {
			return ProviderHTTPRoute
		}
	}
	return ""
}

// ingressLimits is what an ingress provider can express; it mirrors the provider blocks
// (--#if mse, --#if higress) of luascripts/trafficrouting_ingress/lib/canary.lua.
type ingressLimits struct {
	// queries: the provider has a key of its own for one query parameter per rule (mse).
	queries bool
	// matchPrefix: the prefix of the provider's extra match keys, which AND further headers and
	// query parameters with the first header (higress); empty when it has none.
	matchPrefix string
}

var ingressProviders = map[Provider]ingressLimits{
	ProviderMSE:     {queries: true},
	ProviderHigress: {matchPrefix: "higress.io/"},
}

// Limits of the httproute provider (the Gateway API's own maxima).
const (
	httpRouteMaxConditions  = 16
	httpRouteMaxHeaderEdits = 16
	httpRouteMaxValue       = 4096
	httpRouteMaxName        = 256
	httpRouteMaxPath        = 1024
)

// tokenRE is an RFC 7230 token, the characters a header name may use.
var tokenRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+\\-.^_`|~]+$")

// annotationNameRE is the name part of an annotation key.
var annotationNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.\-]*[A-Za-z0-9])?$`)

// cookiePseudoHeader is Kruise's pseudo-header whose value names a canary cookie.
const cookiePseudoHeader = "canary-by-cookie"

// StepProblems judges one traffic step (a TrafficRouting's strategy or a Rollout's canary step) as
// provider p would run it, before Kruise does: refusals are what the provider script refuses (it
// would stop the release at that step), warnings what it accepts but does differently than the
// step reads. Only what the step itself decides is judged; what depends on the routed object as
// it is then (the stable Ingress's own annotations, the HTTPRoute's rules) is left to the script.
func StepProblems(p Provider, path *field.Path, s rolloutsv1beta1.TrafficRoutingStrategy) (refusals field.ErrorList, warnings []string) {
	if p == "" {
		return nil, nil
	}
	if s.Traffic == nil && len(s.Matches) == 0 {
		// Kruise runs no script for such a step.
		if s.RequestHeaderModifier != nil {
			return nil, []string{fmt.Sprintf("%s sets requestHeaderModifier but neither matches nor a weight, so Kruise routes nothing and injects no header: add matches or a weight", path)}
		}
		return nil, nil
	}
	if s.Traffic != nil && len(s.Matches) > 0 {
		warnings = append(warnings, fmt.Sprintf("%s has both matches and a weight (%s): the %s provider routes only the matching requests and ignores the weight", path, weightString(s.Traffic), p))
	}
	if p == ProviderHTTPRoute {
		return httpRouteProblems(path, s), warnings
	}
	limits, ok := ingressProviders[p]
	if !ok {
		return nil, warnings
	}
	return ingressProblems(p, limits, path, s), warnings
}

func weightString(traffic *string) string {
	if traffic == nil {
		return "none"
	}
	return *traffic
}

// strategyOf is the one step of a TrafficRouting as Kruise hands it to a provider.
func strategyOf(tr *rolloutsv1alpha1.TrafficRouting) rolloutsv1beta1.TrafficRoutingStrategy {
	return rolloutsv1alpha1.ConversionToV1beta1TrafficRoutingStrategy(tr.Spec.Strategy)
}

// condition is one condition of a match, as an ingress provider sees it.
type condition struct {
	kind  string // header, query or cookie
	name  string
	regex bool
	path  *field.Path
}

func isRegex(t *string) bool { return t != nil && *t == "RegularExpression" }

func badType(t *string) bool { return t != nil && *t != "Exact" && *t != "RegularExpression" }

func smuggles(value string) bool { return strings.ContainsAny(value, "\r\n\x00") }

const smuggleMsg = "has a value with CR, LF or NUL, which could smuggle a second header line: remove the control characters"

func tokenMsg(name string) string {
	return fmt.Sprintf("%q is not a valid HTTP header name (RFC 7230 token): use letters, digits and !#$%%&'*+-.^_`|~ only", name)
}

// ingressProblems mirrors the refusals of luascripts/trafficrouting_ingress/lib/canary.lua.
func ingressProblems(p Provider, limits ingressLimits, path *field.Path, s rolloutsv1beta1.TrafficRoutingStrategy) field.ErrorList {
	var errs field.ErrorList
	matchesPath := path.Child("matches")
	all := make([][]condition, 0, len(s.Matches))
	for i, m := range s.Matches {
		mp := matchesPath.Index(i)
		var conds []condition
		if m.Path != nil {
			errs = append(errs, field.Forbidden(mp.Child("path"), fmt.Sprintf("match %d has a path condition; an ingress canary keeps the stable Ingress's paths and cannot narrow them: route the path with the stable Ingress's rules instead", i+1)))
		}
		for j, h := range m.Headers {
			hp := mp.Child("headers").Index(j)
			name := string(h.Name)
			switch {
			case badType((*string)(h.Type)):
				errs = append(errs, field.Invalid(hp.Child("type"), string(*h.Type), fmt.Sprintf("match %d header %q has type %q; only Exact and RegularExpression are supported", i+1, name, *h.Type)))
				continue
			case smuggles(h.Value):
				errs = append(errs, field.Invalid(hp.Child("value"), h.Value, "match header "+strconvQuote(name)+" "+smuggleMsg))
				continue
			case name == cookiePseudoHeader:
				if isRegex((*string)(h.Type)) {
					errs = append(errs, field.Invalid(hp.Child("type"), string(*h.Type), fmt.Sprintf("match %d: the canary-by-cookie pseudo-header names a cookie and takes no regular expression: use type Exact", i+1)))
					continue
				}
				conds = append(conds, condition{kind: "cookie", name: h.Value, path: hp})
			case !tokenRE.MatchString(name):
				errs = append(errs, field.Invalid(hp.Child("name"), name, "match header "+tokenMsg(name)))
				continue
			default:
				conds = append(conds, condition{kind: "header", name: name, regex: isRegex((*string)(h.Type)), path: hp})
			}
		}
		for j, q := range m.QueryParams {
			qp := mp.Child("queryParams").Index(j)
			name := string(q.Name)
			switch {
			case badType((*string)(q.Type)):
				errs = append(errs, field.Invalid(qp.Child("type"), string(*q.Type), fmt.Sprintf("match %d query parameter %q has type %q; only Exact and RegularExpression are supported", i+1, name, *q.Type)))
			case name == "":
				errs = append(errs, field.Required(qp.Child("name"), fmt.Sprintf("match %d has a query parameter without a name", i+1)))
			case smuggles(q.Value):
				errs = append(errs, field.Invalid(qp.Child("value"), q.Value, "match query parameter "+strconvQuote(name)+" "+smuggleMsg))
			default:
				conds = append(conds, condition{kind: "query", name: name, regex: isRegex((*string)(q.Type)), path: qp})
			}
		}
		if len(conds) == 0 && len(errs) == 0 {
			errs = append(errs, field.Required(mp, fmt.Sprintf("match %d has no condition: give it a header or query parameter condition", i+1)))
		}
		all = append(all, conds)
	}
	if len(errs) == 0 {
		switch {
		case len(all) == 1:
			errs = append(errs, ingressAnd(p, limits, matchesPath.Index(0), all[0])...)
		case len(all) > 1:
			errs = append(errs, ingressOr(p, limits, matchesPath, all)...)
		}
	}
	errs = append(errs, modifierProblems(path.Child("requestHeaderModifier"), s.RequestHeaderModifier, false)...)
	return errs
}

// ingressAnd judges one match, an AND of its conditions.
func ingressAnd(p Provider, limits ingressLimits, mp *field.Path, conds []condition) field.ErrorList {
	var headers, queries, cookies []condition
	for _, c := range conds {
		switch c.kind {
		case "header":
			headers = append(headers, c)
		case "query":
			queries = append(queries, c)
		default:
			cookies = append(cookies, c)
		}
	}
	if len(cookies) > 0 {
		if len(conds) > 1 {
			return field.ErrorList{field.Invalid(mp, len(conds), "a canary-by-cookie condition cannot be combined with other conditions in one match: the ingress ranks cookie below header and query, it does not AND them; use the cookie alone")}
		}
		return nil
	}
	var extra []condition
	if len(headers) > 1 {
		extra = append(extra, headers[1:]...)
	}
	if limits.queries {
		if len(queries) > 1 {
			return field.ErrorList{field.Invalid(queries[1].path, queries[1].name, fmt.Sprintf("the %s ingress matches at most one query parameter per rule; got %d (%s, %s, ...): keep one per match", p, len(queries), queries[0].name, queries[1].name))}
		}
	} else {
		extra = append(extra, queries...)
	}
	if len(extra) == 0 {
		return nil
	}
	if limits.matchPrefix == "" {
		return field.ErrorList{field.Invalid(extra[0].path, extra[0].name, fmt.Sprintf("the %s ingress matches one header per rule; the condition on %s %q cannot be ANDed with header %q: keep one header per match (Higress can AND them)", p, extra[0].kind, extra[0].name, headers[0].name))}
	}
	if len(headers) == 0 {
		return field.ErrorList{field.Invalid(extra[0].path, extra[0].name, fmt.Sprintf("the %s ingress routes a canary by header, cookie or weight; a query parameter condition (%q) needs a header condition in the same match: add one", p, extra[0].name))}
	}
	var errs field.ErrorList
	for _, c := range extra {
		typ := "exact"
		if c.regex {
			typ = "regex"
		}
		name := typ + "-match-" + c.kind + "-" + c.name
		if len(name) > 63 || !annotationNameRE.MatchString(name) {
			errs = append(errs, field.Invalid(c.path.Child("name"), c.name, fmt.Sprintf("the condition on %s %q needs annotation %q, which is not a valid annotation key: use a name of letters, digits, '-', '_' and '.'", c.kind, c.name, limits.matchPrefix+name)))
		}
	}
	return errs
}

// ingressOr judges several matches, expressible only as one condition each on the same header or
// query parameter.
func ingressOr(p Provider, limits ingressLimits, matchesPath *field.Path, all [][]condition) field.ErrorList {
	first := all[0][0]
	for i, conds := range all {
		if len(conds) != 1 || conds[0].kind != first.kind || conds[0].name != first.name {
			return field.ErrorList{field.Invalid(matchesPath.Index(i), len(all), fmt.Sprintf("matches 1 and %d cannot be ORed by the %s ingress: several matches are expressible only when each is one condition on the same header or query parameter; split the lane or use one header", i+1, p))}
		}
	}
	return ingressAnd(p, limits, matchesPath.Index(0), []condition{first})
}

// modifierProblems judges requestHeaderModifier; httpRoute adds that provider's limits.
func modifierProblems(path *field.Path, m *gatewayv1beta1.HTTPHeaderFilter, httpRoute bool) field.ErrorList {
	if m == nil {
		return nil
	}
	var errs field.ErrorList
	headers := func(kind string, list []gatewayv1beta1.HTTPHeader) {
		for i, h := range list {
			hp := path.Child(kind).Index(i)
			what := "requestHeaderModifier." + kind + " header"
			name := string(h.Name)
			switch {
			case !validHeaderName(name, httpRoute):
				errs = append(errs, field.Invalid(hp.Child("name"), name, what+" "+tokenMsg(name)+nameLimit(httpRoute)))
			case h.Value == "" && httpRoute:
				errs = append(errs, field.Required(hp.Child("value"), fmt.Sprintf("%s %q has no value; an HTTPRoute needs one: give it a value, or use remove", what, name)))
			case h.Value == "":
				errs = append(errs, field.Required(hp.Child("value"), fmt.Sprintf("%s %q has an empty value: give it a value, or use remove", what, name)))
			case httpRoute && len(h.Value) > httpRouteMaxValue:
				errs = append(errs, field.Invalid(hp.Child("value"), "", fmt.Sprintf("%s %q has a value longer than %d characters", what, name, httpRouteMaxValue)))
			case smuggles(h.Value):
				errs = append(errs, field.Invalid(hp.Child("value"), h.Value, what+" "+strconvQuote(name)+" "+smuggleMsg))
			}
		}
		if httpRoute && len(list) > httpRouteMaxHeaderEdits {
			errs = append(errs, field.Invalid(path.Child(kind), len(list), fmt.Sprintf("would %s %d headers; an HTTPRoute filter takes at most %d", kind, len(list), httpRouteMaxHeaderEdits)))
		}
	}
	headers("set", m.Set)
	headers("add", m.Add)
	for i, n := range m.Remove {
		if !validHeaderName(n, httpRoute) {
			errs = append(errs, field.Invalid(path.Child("remove").Index(i), n, "requestHeaderModifier.remove header "+tokenMsg(n)+nameLimit(httpRoute)))
		}
	}
	if httpRoute && len(m.Remove) > httpRouteMaxHeaderEdits {
		errs = append(errs, field.Invalid(path.Child("remove"), len(m.Remove), fmt.Sprintf("would remove %d headers; an HTTPRoute filter takes at most %d", len(m.Remove), httpRouteMaxHeaderEdits)))
	}
	return errs
}

func validHeaderName(name string, httpRoute bool) bool {
	return tokenRE.MatchString(name) && (!httpRoute || len(name) <= httpRouteMaxName)
}

func nameLimit(httpRoute bool) string {
	if httpRoute {
		return fmt.Sprintf(", of at most %d characters", httpRouteMaxName)
	}
	return ""
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

// httpRouteProblems mirrors what luascripts/trafficrouting_customnetwork/httproute.lua refuses
// of the step itself.
func httpRouteProblems(path *field.Path, s rolloutsv1beta1.TrafficRoutingStrategy) field.ErrorList {
	errs := modifierProblems(path.Child("requestHeaderModifier"), s.RequestHeaderModifier, true)
	for i, m := range s.Matches {
		mp := path.Child("matches").Index(i)
		errs = append(errs, httpRouteConditions(i, mp.Child("headers"), "header", headerConds(m.Headers))...)
		errs = append(errs, httpRouteConditions(i, mp.Child("queryParams"), "query parameter", queryConds(m.QueryParams))...)
		if m.Path != nil {
			errs = append(errs, httpRoutePath(i, mp.Child("path"), m.Path)...)
		}
		if len(m.Headers) == 0 && len(m.QueryParams) == 0 && m.Path == nil {
			errs = append(errs, field.Required(mp, fmt.Sprintf("match %d has no condition; it would send every request to the canary: give it a header, query parameter or path condition", i+1)))
		}
	}
	return errs
}

type namedCond struct {
	typ         *string
	name, value string
}

func headerConds(hs []gatewayv1beta1.HTTPHeaderMatch) []namedCond {
	out := make([]namedCond, 0, len(hs))
	for _, h := range hs {
		out = append(out, namedCond{typ: (*string)(h.Type), name: string(h.Name), value: h.Value})
	}
	return out
}

func queryConds(qs []gatewayv1beta1.HTTPQueryParamMatch) []namedCond {
	out := make([]namedCond, 0, len(qs))
	for _, q := range qs {
		out = append(out, namedCond{typ: (*string)(q.Type), name: string(q.Name), value: q.Value})
	}
	return out
}

func httpRouteConditions(i int, path *field.Path, what string, conds []namedCond) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for j, c := range conds {
		cp := path.Index(j)
		switch {
		case badType(c.typ):
			errs = append(errs, field.Invalid(cp.Child("type"), *c.typ, fmt.Sprintf("match %d %s %q has type %q; use Exact or RegularExpression", i+1, what, c.name, *c.typ)))
		case !validHeaderName(c.name, true):
			errs = append(errs, field.Invalid(cp.Child("name"), c.name, "match "+what+" "+tokenMsg(c.name)+nameLimit(true)))
		case c.value == "":
			errs = append(errs, field.Required(cp.Child("value"), fmt.Sprintf("match %s %q has no value; an HTTPRoute needs one", what, c.name)))
		case len(c.value) > httpRouteMaxValue:
			errs = append(errs, field.Invalid(cp.Child("value"), "", fmt.Sprintf("match %s %q has a value longer than %d characters", what, c.name, httpRouteMaxValue)))
		case smuggles(c.value):
			errs = append(errs, field.Invalid(cp.Child("value"), c.value, "match "+what+" "+strconvQuote(c.name)+" "+smuggleMsg))
		}
		key := c.name
		if what == "header" {
			key = strings.ToLower(key)
		}
		if seen[key] {
			errs = append(errs, field.Invalid(cp.Child("name"), c.name, fmt.Sprintf("match %d names %s %q twice; an HTTPRoute match takes each name once (it cannot AND two conditions on one name): keep one", i+1, what, c.name)))
		}
		seen[key] = true
	}
	if len(conds) > httpRouteMaxConditions {
		errs = append(errs, field.Invalid(path, len(conds), fmt.Sprintf("match %d has %d %s conditions; an HTTPRoute match takes at most %d", i+1, len(conds), what, httpRouteMaxConditions)))
	}
	return errs
}

// pathCharsRE is the characters an HTTPRoute path (not a regular expression) may use.
var pathCharsRE = regexp.MustCompile(`^[-A-Za-z0-9/._~!$&'()*+,;=:@%]+$`)

func httpRoutePath(i int, path *field.Path, p *gatewayv1beta1.HTTPPathMatch) field.ErrorList {
	typ, value := "PathPrefix", "/"
	if p.Type != nil {
		typ = string(*p.Type)
	}
	if p.Value != nil {
		value = *p.Value
	}
	if typ != "Exact" && typ != "PathPrefix" && typ != "RegularExpression" {
		return field.ErrorList{field.Invalid(path.Child("type"), typ, fmt.Sprintf("match %d path has type %q; use Exact, PathPrefix or RegularExpression", i+1, typ))}
	}
	if len(value) > httpRouteMaxPath || strings.IndexFunc(value, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return field.ErrorList{field.Invalid(path.Child("value"), value, fmt.Sprintf("match %d path is not a valid path: use at most %d characters and no control characters", i+1, httpRouteMaxPath))}
	}
	if typ == "RegularExpression" {
		return nil
	}
	if !strings.HasPrefix(value, "/") || strings.Contains(value, "//") || strings.Contains(value, "/./") || strings.Contains(value, "/../") ||
		strings.Contains(strings.ToLower(value), "%2f") || strings.Contains(value, "#") ||
		strings.HasSuffix(value, "/..") || strings.HasSuffix(value, "/.") || !pathCharsRE.MatchString(value) {
		return field.ErrorList{field.Invalid(path.Child("value"), value, fmt.Sprintf("match %d path %q is not an absolute, normalised path as an HTTPRoute requires", i+1, value))}
	}
	return nil
}
