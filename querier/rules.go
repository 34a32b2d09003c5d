package querier

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/stratametrics/strata/tenancy"
)

// DefaultRulesTimeout is the default of RulesOptions.Timeout.
const DefaultRulesTimeout = 30 * time.Second

const (
	// rulesMaxResponseBytes bounds the body read from one ruler, so that a misbehaving ruler
	// cannot make the querier buffer without limit. Rules of large deployments are a few MiB.
	rulesMaxResponseBytes = 64 << 20
	// rulesMaxErrorBody bounds how much of a non-JSON error body is quoted in a warning.
	rulesMaxErrorBody = 256
)

// RulesOptions configure a RulesProxy.
type RulesOptions struct {
	// Rulers are the base URLs of the rulers' HTTP APIs, http(s)://host:port[/prefix]. Each
	// serves /api/v1/rules and /api/v1/alerts under its prefix.
	Rulers []string
	// ReplicaLabels are removed from the labels of alerts before they are deduplicated; nil
	// means DefaultReplicaLabels().
	ReplicaLabels []string
	// Timeout bounds each request to a ruler, within the incoming request's own deadline.
	// Zero means DefaultRulesTimeout.
	Timeout time.Duration
	// Client sends the requests to the rulers. Nil uses a client of the proxy's own, whose idle
	// connections Close releases.
	Client *http.Client
	// Tenancy, if set, resolves every request to a tenant and shows it only the rules, and the
	// alerts of the rules, whose expression is confined to it; see RulesProxy.
	Tenancy *Tenancy
}

// RulesProxy serves GET /api/v1/rules and GET /api/v1/alerts in Prometheus' JSON shape by
// asking every ruler for the same and merging their answers:
//
//   - Rule groups are identified by file and name. Rulers of an HA pair load the same files and
//     so answer with the same groups; one copy of each is kept, the one evaluated last
//     (latest lastEvaluation, then the earlier ruler of the list). Groups are sorted by file,
//     then name.
//   - Alerts, both those of /api/v1/alerts and those listed under the alerting rules of a kept
//     group, lose the replica labels and are then deduplicated by label set. Of alerts with equal
//     labels the one kept is firing rather than pending, then the one active first; it is kept
//     whole, so its annotations, value and activeAt come from one ruler. Alerts are sorted by
//     label set.
//
// With RulesOptions.Tenancy, a request sees only the rules whose query has the matcher
// <tenant label>="<tenant>" in every vector selector (tenancy.CheckExpr), so that the rule reads
// nothing but the tenant's series; groups left without rules are dropped. Rule files belong to the
// operator, not to tenants, and a rule over several tenants (sum(up), or up == 0 over everyone)
// would show a tenant other tenants' values or alert labels, so such rules are hidden from every
// tenant, as are rules whose query does not parse. /api/v1/alerts is then built from the alerting
// rules of /api/v1/rules?type=alert instead of the rulers' /api/v1/alerts, whose alerts do not
// say which rule they come from: a tenant sees the active alerts of its confined rules, and no
// alert of any other rule, even one labelled with its tenant. Annotation templates of a shown rule
// are evaluated by the ruler and are the operator's responsibility.
//
// Fields the proxy does not interpret are passed through as the rulers sent them. A ruler that
// fails (unreachable, not 2xx, not a Prometheus success envelope) adds a warning naming it; the
// answer fails with 503 only when every ruler fails. It is safe for concurrent use.
type RulesProxy struct {
	tenancy       *Tenancy
	rulers        []rulesTarget
	replicaLabels []string
	timeout       time.Duration
	client        *http.Client
	ownClient     bool
	logger        *slog.Logger
	metrics       *rulesMetrics
}

// rulesTarget is one ruler: its base URL and the name it has in warnings and logs, which hides
// any password the URL holds.
type rulesTarget struct {
	base *url.URL
	name string
}

type rulesMetrics struct {
	requests *prometheus.CounterVec
}

func newRulesMetrics(reg prometheus.Registerer) *rulesMetrics {
	m := &rulesMetrics{
		requests: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_querier_rules_requests_total",
			Help: "Requests from the querier to rulers for their rules or alerts, by result.",
		}, []string{"result"}),
	}
	m.requests.WithLabelValues("success")
	m.requests.WithLabelValues("error")
	return m
}

// NewRulesProxy checks the rulers' URLs and builds the proxy. Its metrics
// (strata_querier_rules_*) are registered with reg.
func NewRulesProxy(opts RulesOptions, reg prometheus.Registerer, logger *slog.Logger) (*RulesProxy, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &RulesProxy{
		replicaLabels: opts.ReplicaLabels,
		timeout:       opts.Timeout,
		client:        opts.Client,
		tenancy:       opts.Tenancy,
		logger:        logger,
	}
	if p.replicaLabels == nil {
		p.replicaLabels = DefaultReplicaLabels()
	}
	if p.timeout <= 0 {
		p.timeout = DefaultRulesTimeout
	}
	seen := make(map[string]bool, len(opts.Rulers))
	for _, s := range opts.Rulers {
		u, err := parseRulerURL(s)
		if err != nil {
			return nil, err
		}
		if seen[u.String()] {
			return nil, fmt.Errorf("ruler URL %q given twice", s)
		}
		seen[u.String()] = true
		p.rulers = append(p.rulers, rulesTarget{base: u, name: u.Redacted()})
	}
	if p.client == nil {
		p.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		p.ownClient = true
	}
	p.metrics = newRulesMetrics(reg)
	return p, nil
}

// parseRulerURL accepts http(s)://host[:port][/prefix] and returns it without a trailing slash.
func parseRulerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse ruler URL %q: %w", s, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("ruler URL %q: scheme must be http or https, such as http://ruler:10903", s)
	case u.Opaque != "" || u.Host == "":
		return nil, fmt.Errorf("ruler URL %q: no host, want http(s)://host:port[/prefix]", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("ruler URL %q: must not have a query or fragment", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Register adds GET /api/v1/rules and GET /api/v1/alerts to mux.
func (p *RulesProxy) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/rules", p.withTenant(p.serveRules))
	mux.HandleFunc("GET /api/v1/alerts", p.withTenant(p.serveAlerts))
}

// withTenant resolves the request's tenant before f runs, when tenancy is on.
func (p *RulesProxy) withTenant(f http.HandlerFunc) http.HandlerFunc {
	if p.tenancy == nil {
		return f
	}
	return func(w http.ResponseWriter, r *http.Request) {
		r, _, ok := p.tenancy.serve(w, r, p.logger)
		if ok {
			f(w, r)
		}
	}
}

// Close releases the idle connections of the proxy's own HTTP client. Requests after Close
// still work, on new connections.
func (p *RulesProxy) Close() {
	if p.ownClient {
		p.client.CloseIdleConnections()
	}
}

// rulesGroupsData is the data of a rules response.
type rulesGroupsData struct {
	Groups []*rulesGroup `json:"groups"`
}

// rulesAlertsData is the data of an alerts response.
type rulesAlertsData struct {
	Alerts []*rulesAlert `json:"alerts"`
}

func (p *RulesProxy) serveRules(w http.ResponseWriter, r *http.Request) {
	answers, warnings, apiErr := rulesFanOut(p, r, "rules", r.URL.RawQuery, decodeRulesGroups)
	if apiErr != nil {
		p.writeError(w, apiErr)
		return
	}
	groups := p.mergeGroups(answers)
	if p.tenancy != nil {
		tenant, err := requestTenant(r.Context())
		if err != nil {
			p.writeError(w, &apiError{apiErrorInternal, err})
			return
		}
		groups = p.tenantGroups(groups, tenant)
	}
	p.writeSuccess(w, r, rulesGroupsData{Groups: groups}, warnings)
}

// tenantGroups keeps the rules whose query is confined to tenant, and the groups that still have
// rules. See RulesProxy.
func (p *RulesProxy) tenantGroups(groups []*rulesGroup, tenant string) []*rulesGroup {
	parse := parser.NewParser(parser.Options{})
	out := groups[:0]
	for _, g := range groups {
		rules := g.rules[:0]
		for _, rule := range g.rules {
			if rule.query == "" {
				continue
			}
			expr, err := parse.ParseExpr(rule.query)
			if err != nil || tenancy.CheckExpr(expr, p.tenancy.label, tenant) != nil {
				continue
			}
			rules = append(rules, rule)
		}
		clear(g.rules[len(rules):])
		g.rules = rules
		if len(rules) > 0 {
			out = append(out, g)
		}
	}
	clear(groups[len(out):])
	return out
}

func (p *RulesProxy) serveAlerts(w http.ResponseWriter, r *http.Request) {
	if p.tenancy != nil {
		p.serveTenantAlerts(w, r)
		return
	}
	answers, warnings, apiErr := rulesFanOut(p, r, "alerts", r.URL.RawQuery, decodeRulesAlerts)
	if apiErr != nil {
		p.writeError(w, apiErr)
		return
	}
	all := []*rulesAlert{}
	for _, a := range answers {
		all = append(all, a...)
	}
	p.writeSuccess(w, r, rulesAlertsData{Alerts: p.dedupAlerts(all)}, warnings)
}

// serveTenantAlerts answers /api/v1/alerts under tenancy with the active alerts of the alerting
// rules the tenant may see, read from the rulers' rules.
func (p *RulesProxy) serveTenantAlerts(w http.ResponseWriter, r *http.Request) {
	tenant, err := requestTenant(r.Context())
	if err != nil {
		p.writeError(w, &apiError{apiErrorInternal, err})
		return
	}
	answers, warnings, apiErr := rulesFanOut(p, r, "rules", "type=alert", decodeRulesGroups)
	if apiErr != nil {
		p.writeError(w, apiErr)
		return
	}
	all := []*rulesAlert{}
	for _, g := range p.tenantGroups(p.mergeGroups(answers), tenant) {
		for _, rule := range g.rules {
			all = append(all, rule.alerts...)
		}
	}
	// The groups' alerts are deduplicated per rule; rules of several groups may share alerts.
	p.writeSuccess(w, r, rulesAlertsData{Alerts: p.dedupAlerts(all)}, warnings)
}

// rulesFanOut asks every ruler for /api/v1/<endpoint> with the query string rawQuery, at once,
// and decodes each answer's data with decode. The answers are in the order of the rulers, failed
// ones left out; each failure is a warning. It fails when every ruler does.
func rulesFanOut[T any](p *RulesProxy, r *http.Request, endpoint, rawQuery string, decode func(json.RawMessage) (T, error)) ([]T, annotations.Annotations, *apiError) {
	type answer struct {
		data     T
		warnings []string
		err      error
	}
	answers := make([]answer, len(p.rulers))
	var wg sync.WaitGroup
	for i, t := range p.rulers {
		wg.Go(func() {
			a := &answers[i]
			var raw json.RawMessage
			raw, a.warnings, a.err = p.get(r.Context(), t, endpoint, rawQuery)
			if a.err == nil {
				if a.data, a.err = decode(raw); a.err != nil {
					a.err = fmt.Errorf("decode %s: %w", endpoint, a.err)
				}
			}
			result := "success"
			if a.err != nil {
				result = "error"
				a.err = fmt.Errorf("ruler %s: %w", t.name, a.err)
				p.logger.Debug("ask ruler", "endpoint", t.name, "path", endpoint, "err", a.err)
			}
			p.metrics.requests.WithLabelValues(result).Inc()
		})
	}
	wg.Wait()

	var (
		out      = make([]T, 0, len(answers))
		warnings annotations.Annotations
		errs     []error
		badData  = true
	)
	for i, a := range answers {
		if a.err != nil {
			errs = append(errs, a.err)
			warnings.Add(a.err)
			badData = badData && errors.Is(a.err, errRulerBadData)
			continue
		}
		out = append(out, a.data)
		for _, w := range a.warnings {
			warnings.Add(fmt.Errorf("ruler %s: %s", p.rulers[i].name, w))
		}
	}
	if len(p.rulers) > 0 && len(out) == 0 {
		// Rulers that all reject the request as bad data agree that the request is wrong, such
		// as an invalid match[]; anything else leaves the querier without rules to serve.
		if badData {
			return nil, nil, &apiError{apiErrorBadData, errs[0]}
		}
		msgs := make([]string, len(errs))
		for i, err := range errs {
			msgs[i] = err.Error()
		}
		return nil, nil, &apiError{apiErrorUnavailable, fmt.Errorf("no ruler answered: %s", strings.Join(msgs, "; "))}
	}
	return out, warnings, nil
}

// errRulerBadData marks a ruler's answer of 400 Bad Request with a bad_data error.
var errRulerBadData = errors.New("bad_data")

// rulesEnvelope is Prometheus' response envelope.
type rulesEnvelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

// get asks one ruler and returns the data and warnings of its success envelope.
func (p *RulesProxy) get(ctx context.Context, t rulesTarget, endpoint, rawQuery string) (json.RawMessage, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	u := t.base.JoinPath("api", "v1", endpoint)
	u.RawQuery = rawQuery
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", apiContentTypeJSON)
	resp, err := p.client.Do(req)
	if err != nil {
		// The error names the URL, including a password it holds; t.name is already in the
		// warning, so only the cause is kept.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, nil, fmt.Errorf("get /api/v1/%s: %w", endpoint, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, rulesMaxResponseBytes))
		_ = resp.Body.Close()
	}()
	body, err := io.ReadAll(io.LimitReader(resp.Body, rulesMaxResponseBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read /api/v1/%s: %w", endpoint, err)
	}
	if len(body) > rulesMaxResponseBytes {
		return nil, nil, fmt.Errorf("read /api/v1/%s: answer larger than %d bytes", endpoint, rulesMaxResponseBytes)
	}
	var env rulesEnvelope
	jsonErr := json.Unmarshal(body, &env)
	if resp.StatusCode/100 != 2 {
		if jsonErr == nil && env.Status == "error" {
			err = fmt.Errorf("%s: %s", env.ErrorType, env.Error)
			if resp.StatusCode == http.StatusBadRequest && env.ErrorType == string(apiErrorBadData) {
				err = fmt.Errorf("%w: %s", errRulerBadData, env.Error)
			}
		} else {
			err = errors.New(rulesErrorBody(body))
		}
		return nil, nil, fmt.Errorf("get /api/v1/%s: %s: %w", endpoint, resp.Status, err)
	}
	switch {
	case jsonErr != nil:
		return nil, nil, fmt.Errorf("decode /api/v1/%s: %w", endpoint, jsonErr)
	case env.Status != "success":
		return nil, nil, fmt.Errorf("get /api/v1/%s: status %q, want success: %s", endpoint, env.Status, env.Error)
	}
	return env.Data, env.Warnings, nil
}

// rulesErrorBody shortens a non-JSON error body for a warning.
func rulesErrorBody(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > rulesMaxErrorBody {
		return strings.ToValidUTF8(string(b[:rulesMaxErrorBody]), "") + "..."
	}
	if len(b) == 0 {
		return "empty body"
	}
	return strings.ToValidUTF8(string(b), "")
}

// writeSuccess answers with Prometheus' success envelope.
func (p *RulesProxy) writeSuccess(w http.ResponseWriter, r *http.Request, data any, warnings annotations.Annotations) {
	b, err := apiEncodeSuccess(data, warnings, "")
	if err != nil {
		p.logger.Error("encode api response", "url", r.URL.String(), "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", apiContentTypeJSON)
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(b); err != nil {
		p.logger.Debug("write api response", "url", r.URL.String(), "err", err)
	}
}

// writeError answers with Prometheus' error envelope. Unlike the query API, which follows
// Prometheus in answering unavailable with 500, the proxy answers it with 503: the querier
// itself is fine and a retry may find a ruler.
func (p *RulesProxy) writeError(w http.ResponseWriter, e *apiError) {
	code := e.statusCode()
	if e.typ == apiErrorUnavailable {
		code = http.StatusServiceUnavailable
	}
	writeAPIError(w, e, code, p.logger)
}

// rulesGroup is a rule group as a ruler sent it. fields holds every field; name, file,
// lastEvaluation and rules are also decoded, and rules replaces fields["rules"] on encoding.
type rulesGroup struct {
	fields   map[string]json.RawMessage
	name     string
	file     string
	lastEval time.Time
	rules    []*rulesRule // nil when the group has no rules field
}

// rulesRule is a rule as a ruler sent it. alerts replaces fields["alerts"] on encoding.
type rulesRule struct {
	fields    map[string]json.RawMessage
	query     string // the rule's PromQL expression, "" when absent
	alerts    []*rulesAlert
	hasAlerts bool
}

// rulesAlert is an active alert as a ruler sent it. labels, without the replica labels once the
// proxy removed them, replaces fields["labels"] on encoding.
type rulesAlert struct {
	fields   map[string]json.RawMessage
	labels   labels.Labels
	state    string
	activeAt time.Time // zero when absent
}

func decodeRulesGroups(raw json.RawMessage) ([]*rulesGroup, error) {
	var d struct {
		Groups []json.RawMessage `json:"groups"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	out := make([]*rulesGroup, 0, len(d.Groups))
	for i, rg := range d.Groups {
		g, err := decodeRulesGroup(rg)
		if err != nil {
			return nil, fmt.Errorf("group %d: %w", i, err)
		}
		out = append(out, g)
	}
	return out, nil
}

func decodeRulesGroup(raw json.RawMessage) (*rulesGroup, error) {
	g := &rulesGroup{}
	if err := json.Unmarshal(raw, &g.fields); err != nil {
		return nil, err
	}
	if g.fields == nil {
		return nil, errors.New("null group")
	}
	if err := rulesField(g.fields, "name", &g.name); err != nil {
		return nil, err
	}
	if err := rulesField(g.fields, "file", &g.file); err != nil {
		return nil, err
	}
	if err := rulesField(g.fields, "lastEvaluation", &g.lastEval); err != nil {
		return nil, err
	}
	rawRules, ok := g.fields["rules"]
	if !ok {
		return g, nil
	}
	var rs []json.RawMessage
	if err := json.Unmarshal(rawRules, &rs); err != nil {
		return nil, fmt.Errorf("field rules: %w", err)
	}
	g.rules = make([]*rulesRule, 0, len(rs))
	for i, rr := range rs {
		rule := &rulesRule{}
		if err := json.Unmarshal(rr, &rule.fields); err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
		if rule.fields == nil {
			return nil, fmt.Errorf("rule %d: null rule", i)
		}
		// A query that is not a string is passed through; under tenancy its rule is hidden.
		_ = rulesField(rule.fields, "query", &rule.query)
		rawAlerts, ok := rule.fields["alerts"]
		if !ok {
			g.rules = append(g.rules, rule)
			continue
		}
		alerts, err := decodeRulesAlertList(rawAlerts)
		if err != nil {
			return nil, fmt.Errorf("rule %d: field alerts: %w", i, err)
		}
		rule.alerts, rule.hasAlerts = alerts, true
		g.rules = append(g.rules, rule)
	}
	return g, nil
}

func decodeRulesAlerts(raw json.RawMessage) ([]*rulesAlert, error) {
	var d struct {
		Alerts json.RawMessage `json:"alerts"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	return decodeRulesAlertList(d.Alerts)
}

// decodeRulesAlertList decodes a JSON list of alerts; null is an empty list.
func decodeRulesAlertList(raw json.RawMessage) ([]*rulesAlert, error) {
	var as []json.RawMessage
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &as); err != nil {
			return nil, err
		}
	}
	out := make([]*rulesAlert, 0, len(as))
	for i, ra := range as {
		a := &rulesAlert{}
		if err := json.Unmarshal(ra, &a.fields); err != nil {
			return nil, fmt.Errorf("alert %d: %w", i, err)
		}
		if a.fields == nil {
			return nil, fmt.Errorf("alert %d: null alert", i)
		}
		var ls map[string]string
		if err := rulesField(a.fields, "labels", &ls); err != nil {
			return nil, fmt.Errorf("alert %d: %w", i, err)
		}
		a.labels = labels.FromMap(ls)
		if err := rulesField(a.fields, "state", &a.state); err != nil {
			return nil, fmt.Errorf("alert %d: %w", i, err)
		}
		if err := rulesField(a.fields, "activeAt", &a.activeAt); err != nil {
			return nil, fmt.Errorf("alert %d: %w", i, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// rulesField decodes fields[name] into v when present and not null.
func rulesField(fields map[string]json.RawMessage, name string, v any) error {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("field %s: %w", name, err)
	}
	return nil
}

// mergeGroups keeps one group per file and name, the one evaluated last, and deduplicates the
// alerts of its rules. answers are in the order of the rulers.
func (p *RulesProxy) mergeGroups(answers [][]*rulesGroup) []*rulesGroup {
	type key struct{ file, name string }
	kept := map[key]*rulesGroup{}
	for _, gs := range answers {
		for _, g := range gs {
			k := key{g.file, g.name}
			if old, ok := kept[k]; !ok || g.lastEval.After(old.lastEval) {
				kept[k] = g
			}
		}
	}
	out := make([]*rulesGroup, 0, len(kept))
	for _, g := range kept {
		for _, r := range g.rules {
			if r.hasAlerts {
				r.alerts = p.dedupAlerts(r.alerts)
			}
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *rulesGroup) int {
		return cmp.Or(strings.Compare(a.file, b.file), strings.Compare(a.name, b.name))
	})
	return out
}

// dedupAlerts removes the replica labels from the alerts, keeps one alert per label set and
// sorts them by label set. Of alerts with equal labels it keeps the firing one, then the one
// active first, then the first.
func (p *RulesProxy) dedupAlerts(alerts []*rulesAlert) []*rulesAlert {
	for _, a := range alerts {
		b := labels.NewBuilder(a.labels)
		b.Del(p.replicaLabels...)
		a.labels = b.Labels()
	}
	// A stable sort keeps equal alerts in the order of the rulers, so ties go to the first.
	slices.SortStableFunc(alerts, func(a, b *rulesAlert) int {
		return labels.Compare(a.labels, b.labels)
	})
	out := alerts[:0]
	for _, a := range alerts {
		if n := len(out); n > 0 && labels.Equal(out[n-1].labels, a.labels) {
			if rulesAlertBetter(a, out[n-1]) {
				out[n-1] = a
			}
			continue
		}
		out = append(out, a)
	}
	clear(alerts[len(out):])
	return out
}

// rulesAlertBetter reports whether a should be kept rather than b, an alert with the same labels
// from another replica: firing beats pending, then the alert active first wins.
func rulesAlertBetter(a, b *rulesAlert) bool {
	if ra, rb := rulesStateRank(a.state), rulesStateRank(b.state); ra != rb {
		return ra > rb
	}
	switch {
	case a.activeAt.IsZero():
		return false
	case b.activeAt.IsZero():
		return true
	}
	return a.activeAt.Before(b.activeAt)
}

func rulesStateRank(state string) int {
	switch state {
	case "firing":
		return 2
	case "pending":
		return 1
	}
	return 0
}

// MarshalJSON encodes the group as the ruler sent it, with the merged rules.
func (g *rulesGroup) MarshalJSON() ([]byte, error) {
	if g.rules == nil {
		return json.Marshal(g.fields)
	}
	b, err := json.Marshal(g.rules)
	if err != nil {
		return nil, err
	}
	return json.Marshal(rulesWith(g.fields, "rules", b))
}

// MarshalJSON encodes the rule as the ruler sent it, with the deduplicated alerts.
func (r *rulesRule) MarshalJSON() ([]byte, error) {
	if !r.hasAlerts {
		return json.Marshal(r.fields)
	}
	b, err := json.Marshal(r.alerts)
	if err != nil {
		return nil, err
	}
	return json.Marshal(rulesWith(r.fields, "alerts", b))
}

// MarshalJSON encodes the alert as the ruler sent it, with its labels as they are now.
func (a *rulesAlert) MarshalJSON() ([]byte, error) {
	if _, ok := a.fields["labels"]; !ok && a.labels.IsEmpty() {
		return json.Marshal(a.fields)
	}
	b, err := json.Marshal(a.labels)
	if err != nil {
		return nil, err
	}
	return json.Marshal(rulesWith(a.fields, "labels", b))
}

// rulesWith returns a copy of fields with name set to v. Encoding leaves the decoded fields
// as the ruler sent them, so encoding twice gives the same bytes.
func rulesWith(fields map[string]json.RawMessage, name string, v json.RawMessage) map[string]json.RawMessage {
	out := maps.Clone(fields)
	if out == nil {
		out = make(map[string]json.RawMessage, 1)
	}
	out[name] = v
	return out
}
