package analysis

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

// Vars are the values of a query template's variables at one hop. Lane-wide queries leave the
// hop's fields (Service, Workload, Rollout) empty.
type Vars struct {
	// Namespace is the lane's namespace.
	Namespace string
	// Lane is the lane's TrafficRouting name.
	Lane string
	// Tag is the lane's tag (the lane header's value).
	Tag string
	// Header is the lane header's name.
	Header string
	// Interval is the analysis interval as a PromQL duration ("1m", "90s").
	Interval string
	// Subset is the traffic the query measures: the tag for lane traffic, the comparison's base
	// subset for base traffic.
	Subset string
	// Service, Workload and Rollout are the hop's Service, workload and member Rollout.
	Service, Workload, Rollout string
}

// hopVariables are the variables a lane-wide template may not use.
var hopVariables = []string{"service", "workload", "rollout"}

// lookup returns the value of the variable called name, and whether such a variable exists.
func (v Vars) lookup(name string) (string, bool) {
	switch name {
	case "namespace":
		return v.Namespace, true
	case "lane":
		return v.Lane, true
	case "tag":
		return v.Tag, true
	case "header":
		return v.Header, true
	case "interval":
		return v.Interval, true
	case "subset":
		return v.Subset, true
	case "service":
		return v.Service, true
	case "workload":
		return v.Workload, true
	case "rollout":
		return v.Rollout, true
	}
	return "", false
}

// Variables lists the names a template may use, in the order the documentation gives them.
func Variables() []string {
	return []string{"namespace", "lane", "tag", "header", "interval", "subset", "service", "workload", "rollout"}
}

var (
	// placeholder matches one {{ name }}; anything else between braces is refused by parse.
	placeholder = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)
	// safeValue is what a variable's value may be: nothing that could end a PromQL string
	// literal, open a second selector or span lines.
	safeValue = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.:/]*$`)
)

// segment is a piece of a parsed template: literal text, or a variable when name is set.
type segment struct {
	text, name string
}

// parse splits a template into literal text and variables, refusing unknown variables and
// unbalanced braces.
func parse(tmpl string) ([]segment, error) {
	var segs []segment
	last := 0
	for _, m := range placeholder.FindAllStringSubmatchIndex(tmpl, -1) {
		lit := tmpl[last:m[0]]
		if err := checkLiteral(lit); err != nil {
			return nil, err
		}
		segs = append(segs, segment{text: lit})
		name := tmpl[m[2]:m[3]]
		if _, ok := (Vars{}).lookup(name); !ok {
			return nil, fmt.Errorf("the query uses {{ %s }}, which is not a variable (known: %s)", name, strings.Join(Variables(), ", "))
		}
		segs = append(segs, segment{name: name})
		last = m[1]
	}
	if err := checkLiteral(tmpl[last:]); err != nil {
		return nil, err
	}
	return append(segs, segment{text: tmpl[last:]}), nil
}

// checkLiteral refuses template text outside {{ }} that still holds {{ or }}: a placeholder
// typed wrong, which would otherwise reach Prometheus as text.
func checkLiteral(lit string) error {
	for _, delim := range []string{"{{", "}}"} {
		if i := strings.Index(lit, delim); i >= 0 {
			return fmt.Errorf("the query has an unmatched %q near %q: write variables as {{ name }}", delim, excerpt(lit, i))
		}
	}
	return nil
}

func excerpt(s string, i int) string {
	end := min(len(s), i+20)
	return s[max(0, i-10):end]
}

// CheckTemplate reports whether tmpl can be rendered at the given scope: every variable known,
// braces balanced, and no hop variable in a lane-wide query.
func CheckTemplate(tmpl string, scope lanesv1alpha1.Scope) error {
	segs, err := parse(tmpl)
	if err != nil {
		return err
	}
	if scope != lanesv1alpha1.ScopeLane {
		return nil
	}
	for _, s := range segs {
		if slices.Contains(hopVariables, s.name) {
			return fmt.Errorf("the query uses {{ %s }}, but a lane-wide query has no hop: use scope Member or Hop, or drop the variable", s.name)
		}
	}
	return nil
}

// Render fills the template's variables with vars. It refuses an unknown variable, a variable
// without a value, and a value that could change the query's meaning (quotes, backslashes,
// braces, spaces or line breaks), each with a sentence.
func Render(tmpl string, vars Vars) (string, error) {
	segs, err := parse(tmpl)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, s := range segs {
		if s.name == "" {
			b.WriteString(s.text)
			continue
		}
		v, _ := vars.lookup(s.name)
		if v == "" {
			return "", fmt.Errorf("the query uses {{ %s }}, which has no value here", s.name)
		}
		if len(v) > 253 || !safeValue.MatchString(v) {
			return "", fmt.Errorf("the value %q of {{ %s }} could break the query: only letters, digits and -_.:/ are allowed", v, s.name)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
