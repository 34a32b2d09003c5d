package tenancy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

var (
	// ErrEnforce is wrapped by the errors of the Enforce functions that are
	// about their tenant label or tenant, or about an expression that could
	// not be confined; the caller's query syntax errors are returned as the
	// parser reports them.
	ErrEnforce = errors.New("enforce tenancy")
)

// checkTarget validates the label and tenant that enforcement injects.
//
// The label must be a plain label name that is not reserved: injecting
// __name__="a" would turn a tenant into a metric name. The tenant must be a
// valid tenant name, and in particular not empty: tenant_id="" would match
// every series that has no tenant label at all.
func checkTarget(tenantLabel, tenant string) error {
	if !isPlainLabelName(tenantLabel) || strings.HasPrefix(tenantLabel, "__") {
		return fmt.Errorf("%w: %q is not a usable tenant label name", ErrEnforce, tenantLabel)
	}
	if err := validateTenantName(tenant); err != nil {
		return fmt.Errorf("%w: %w", ErrEnforce, err)
	}
	return nil
}

func isPlainLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

func tenantMatcher(tenantLabel, tenant string) *labels.Matcher {
	return &labels.Matcher{Type: labels.MatchEqual, Name: tenantLabel, Value: tenant}
}

// EnforceExpr adds tenantLabel="tenant" to the matchers of every vector
// selector in expr, in place: bare selectors and those inside range
// selectors, subqueries, function arguments, aggregation parameters and both
// sides of every binary operator. Matchers the selectors already have are
// kept; they can only narrow what the selector matches.
//
// expr must not be evaluated or walked concurrently while this runs. Each
// selector gets its own matcher slice, so slices shared with the caller are
// not written to.
func EnforceExpr(expr parser.Expr, tenantLabel, tenant string) (err error) {
	if err := checkTarget(tenantLabel, tenant); err != nil {
		return err
	}
	if expr == nil {
		return fmt.Errorf("%w: nil expression", ErrEnforce)
	}
	// parser.Walk panics on a node type it does not know; that would be a
	// Prometheus upgrade this code has not seen. Fail closed instead of
	// taking the request path down.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: walk expression: %v", ErrEnforce, r)
		}
	}()
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			ms := make([]*labels.Matcher, 0, len(vs.LabelMatchers)+1)
			ms = append(ms, vs.LabelMatchers...)
			vs.LabelMatchers = append(ms, tenantMatcher(tenantLabel, tenant))
		}
		return nil
	})
	return nil
}

// EnforceQuery parses a PromQL expression with the default parser options,
// confines it to tenant with EnforceExpr and returns it printed.
//
// The printed expression is parsed again and checked, so a query is only
// returned if what the engine will parse from it has the tenant matcher in
// every selector.
func EnforceQuery(expr string, tenantLabel, tenant string) (string, error) {
	return EnforceQueryWith(parser.NewParser(parser.Options{}), expr, tenantLabel, tenant)
}

// EnforceQueryWith is EnforceQuery with the parser the query engine uses, for
// engines that enable experimental PromQL features.
func EnforceQueryWith(p parser.Parser, expr string, tenantLabel, tenant string) (string, error) {
	if err := checkTarget(tenantLabel, tenant); err != nil {
		return "", err
	}
	e, err := p.ParseExpr(expr)
	if err != nil {
		return "", err
	}
	if err := EnforceExpr(e, tenantLabel, tenant); err != nil {
		return "", err
	}
	out := e.String()
	back, err := p.ParseExpr(out)
	if err != nil {
		return "", fmt.Errorf("%w: the confined query does not parse again: %w", ErrEnforce, err)
	}
	if err := CheckExpr(back, tenantLabel, tenant); err != nil {
		return "", err
	}
	return out, nil
}

// CheckExpr returns an error unless every vector selector in expr has the
// matcher tenantLabel="tenant": the invariant EnforceExpr establishes.
func CheckExpr(expr parser.Expr, tenantLabel, tenant string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: walk expression: %v", ErrEnforce, r)
		}
	}()
	var bad *parser.VectorSelector
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok && bad == nil && !hasTenantMatcher(vs.LabelMatchers, tenantLabel, tenant) {
			bad = vs
		}
		return nil
	})
	if bad != nil {
		return fmt.Errorf("%w: selector %s lacks %s=%q", ErrEnforce, bad, tenantLabel, tenant)
	}
	return nil
}

func hasTenantMatcher(ms []*labels.Matcher, tenantLabel, tenant string) bool {
	for _, m := range ms {
		if m.Type == labels.MatchEqual && m.Name == tenantLabel && m.Value == tenant {
			return true
		}
	}
	return false
}

// EnforceMatchers returns ms with tenantLabel="tenant" appended, for the
// series, label names, label values and exemplar APIs. ms is not modified.
//
// If tenantLabel or tenant is not valid (see EnforceExpr's errors) the result
// fails closed: it holds a matcher that no series matches.
func EnforceMatchers(ms []*labels.Matcher, tenantLabel, tenant string) []*labels.Matcher {
	out := make([]*labels.Matcher, 0, len(ms)+1)
	out = append(out, ms...)
	if checkTarget(tenantLabel, tenant) != nil {
		// Every value, the empty one included, matches ".*", so nothing
		// matches its negation.
		return append(out, labels.MustNewMatcher(labels.MatchNotRegexp, model.MetricNameLabel, ".*"))
	}
	return append(out, tenantMatcher(tenantLabel, tenant))
}

// EnforceSelectors parses the match[] parameters of the series, labels,
// label values and exemplars APIs and confines each selector to tenant. An
// empty list, which those APIs read as "everything", becomes the single
// selector {tenantLabel="tenant"}: everything of that tenant.
func EnforceSelectors(match []string, tenantLabel, tenant string) ([][]*labels.Matcher, error) {
	if err := checkTarget(tenantLabel, tenant); err != nil {
		return nil, err
	}
	if len(match) == 0 {
		return [][]*labels.Matcher{{tenantMatcher(tenantLabel, tenant)}}, nil
	}
	p := parser.NewParser(parser.Options{})
	out := make([][]*labels.Matcher, 0, len(match))
	for _, s := range match {
		ms, err := p.ParseMetricSelector(s)
		if err != nil {
			return nil, err
		}
		out = append(out, EnforceMatchers(ms, tenantLabel, tenant))
	}
	return out, nil
}

// EnforceMatchSelectors is EnforceSelectors for code that passes match[] on
// as strings, for example by rewriting the request's form: it returns the
// confined selectors printed, each checked to parse back with the tenant
// matcher.
func EnforceMatchSelectors(match []string, tenantLabel, tenant string) ([]string, error) {
	sets, err := EnforceSelectors(match, tenantLabel, tenant)
	if err != nil {
		return nil, err
	}
	p := parser.NewParser(parser.Options{})
	out := make([]string, 0, len(sets))
	for _, ms := range sets {
		parts := make([]string, len(ms))
		for i, m := range ms {
			parts[i] = m.String()
		}
		s := "{" + strings.Join(parts, ",") + "}"
		back, err := p.ParseMetricSelector(s)
		if err != nil {
			return nil, fmt.Errorf("%w: the confined selector does not parse again: %w", ErrEnforce, err)
		}
		if !hasTenantMatcher(back, tenantLabel, tenant) {
			return nil, fmt.Errorf("%w: selector %s lacks %s=%q", ErrEnforce, s, tenantLabel, tenant)
		}
		out = append(out, s)
	}
	return out, nil
}
