package querier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/stratametrics/strata/tenancy"
)

// DefaultTenantLabelName is the label every stored series carries its tenant in; receivers add
// it as an external label.
const DefaultTenantLabelName = "tenant_id"

// DefaultTenantID is the tenant of a request without a tenant header when tenancy is enforced
// without authentication, the receivers' default tenant.
const DefaultTenantID = "default-tenant"

// RequestAuthenticator resolves an HTTP request to the tenant its credentials prove.
// *tenancy.Authenticator implements it. Implementations must be safe for concurrent use and must
// not read the request body.
type RequestAuthenticator interface {
	// Authenticate returns the request's tenant and 200, or an error and the HTTP status to
	// answer with: 401 for a missing or unknown credential, 403 for credentials that disagree
	// with each other or with the tenant header. The error's message is shown to the caller.
	Authenticate(r *http.Request, tenantHeader string) (tenant string, status int, err error)
}

// TenancyOptions configure how the query API and the rules proxy find the tenant of a request.
type TenancyOptions struct {
	// Authenticator, if set, authenticates every request, and the tenant its credentials prove
	// is the request's tenant; the tenant header is then only checked against it. Nil takes the
	// tenant from the header, or DefaultTenant without one: fit for a trusted network only.
	Authenticator RequestAuthenticator
	// Header is the HTTP header that names the tenant; empty means tenancy.DefaultTenantHeader.
	Header string
	// DefaultTenant is the tenant of a request without the header when there is no
	// Authenticator; empty means DefaultTenantID.
	DefaultTenant string
	// LabelName is the label that holds the tenant of every stored series; empty means
	// DefaultTenantLabelName.
	LabelName string
}

// Tenancy confines every request of the query API and the rules proxy to one tenant, the
// request's. It is safe for concurrent use. See the package documentation for what each API
// answers under it.
type Tenancy struct {
	auth          RequestAuthenticator
	header        string
	defaultTenant string
	label         string
}

// NewTenancy checks opts and returns the Tenancy they describe.
func NewTenancy(opts TenancyOptions) (*Tenancy, error) {
	t := &Tenancy{
		auth:          opts.Authenticator,
		header:        http.CanonicalHeaderKey(opts.Header),
		defaultTenant: opts.DefaultTenant,
		label:         opts.LabelName,
	}
	if t.header == "" {
		t.header = http.CanonicalHeaderKey(tenancy.DefaultTenantHeader)
	}
	if t.defaultTenant == "" {
		t.defaultTenant = DefaultTenantID
	}
	if t.label == "" {
		t.label = DefaultTenantLabelName
	}
	if !tenancy.ValidHeaderName(t.header) {
		return nil, fmt.Errorf("tenant header %q is not a valid HTTP header name", opts.Header)
	}
	// EnforceSelectors checks the label name and tenant that enforcement injects.
	if _, err := tenancy.EnforceSelectors(nil, t.label, t.defaultTenant); err != nil {
		return nil, fmt.Errorf("default tenant %q, tenant label %q: %w", t.defaultTenant, t.label, err)
	}
	return t, nil
}

// LabelName returns the tenant label name.
func (t *Tenancy) LabelName() string { return t.label }

// Header returns the canonical name of the tenant header.
func (t *Tenancy) Header() string { return t.header }

// Tenant resolves r to its tenant. With an Authenticator the credentials decide (401 or 403 on
// failure); without, the tenant header does, or DefaultTenant when it is absent or empty. A
// header that is not a valid tenant name, or that is repeated with different values, is 400.
// status is 200 when err is nil.
func (t *Tenancy) Tenant(r *http.Request) (tenant string, status int, err error) {
	if t.auth != nil {
		tenant, status, err = t.auth.Authenticate(r, t.header)
		if err != nil {
			if status < 400 || status > 599 {
				status = http.StatusInternalServerError
			}
			return "", status, err
		}
		// The authenticator's tenants come from a validated file; checked again because the
		// tenant ends up in every selector.
		if err := tenancy.ValidateTenant(tenant); err != nil {
			return "", http.StatusInternalServerError, fmt.Errorf("authenticated tenant: %w", err)
		}
		return tenant, http.StatusOK, nil
	}
	for _, v := range r.Header.Values(t.header) {
		switch {
		case v == "":
		case tenant == "":
			tenant = v
		case v != tenant:
			return "", http.StatusBadRequest, fmt.Errorf("the %s header is given several times with different tenants", t.header)
		}
	}
	if tenant == "" {
		return t.defaultTenant, http.StatusOK, nil
	}
	if err := tenancy.ValidateTenant(tenant); err != nil {
		return "", http.StatusBadRequest, fmt.Errorf("%s header: %w", t.header, err)
	}
	return tenant, http.StatusOK, nil
}

// serve resolves the tenant of r and returns r with the tenant in its context (see
// tenancy.TenantFromContext). On failure it answers the request with Prometheus' error envelope,
// "WWW-Authenticate: Bearer" on 401, and returns the status sent and false.
func (t *Tenancy) serve(w http.ResponseWriter, r *http.Request, logger *slog.Logger) (*http.Request, int, bool) {
	tenant, status, err := t.Tenant(r)
	if err != nil {
		typ := apiErrorInternal
		switch status {
		case http.StatusUnauthorized:
			typ = apiErrorUnauthorized
			w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
		case http.StatusForbidden:
			typ = apiErrorForbidden
		case http.StatusBadRequest:
			typ = apiErrorBadData
		}
		return nil, writeAPIError(w, &apiError{typ, err}, status, logger), false
	}
	return r.WithContext(tenancy.WithTenant(r.Context(), tenant)), http.StatusOK, true
}

// errNoTenant fails a request that reached an enforcing handler without a resolved tenant: a
// wiring mistake, answered with nothing rather than everything.
var errNoTenant = errors.New("tenancy is enforced but the request has no tenant")

// requestTenant returns the tenant serve put into ctx.
func requestTenant(ctx context.Context) (string, error) {
	tenant, ok := tenancy.TenantFromContext(ctx)
	if !ok || tenant == "" {
		return "", errNoTenant
	}
	return tenant, nil
}

// tenantQueryable adds the tenant matcher to every Select, LabelNames and LabelValues of the
// wrapped Queryable. The API also confines the query expression and match[] itself; this is the
// guarantee underneath, that no read the PromQL engine or an endpoint makes reaches past the
// tenant, whatever selectors it was built from.
type tenantQueryable struct {
	q storage.Queryable
	m *labels.Matcher
}

func newTenantQueryable(q storage.Queryable, label, tenant string) *tenantQueryable {
	return &tenantQueryable{q: q, m: confineMatchers(nil, label, tenant)[0]}
}

func (tq *tenantQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := tq.q.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &tenantQuerier{Querier: q, m: tq.m}, nil
}

type tenantQuerier struct {
	storage.Querier
	m *labels.Matcher
}

// with returns ms with the tenant matcher, unless it already has it.
func (tq *tenantQuerier) with(ms []*labels.Matcher) []*labels.Matcher {
	if slices.ContainsFunc(ms, func(m *labels.Matcher) bool {
		return m != nil && m.Type == tq.m.Type && m.Name == tq.m.Name && m.Value == tq.m.Value
	}) {
		return ms
	}
	return append(slices.Clip(ms), tq.m)
}

func (tq *tenantQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return tq.Querier.Select(ctx, sortSeries, hints, tq.with(ms)...)
}

func (tq *tenantQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return tq.Querier.LabelNames(ctx, hints, tq.with(ms)...)
}

func (tq *tenantQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return tq.Querier.LabelValues(ctx, name, hints, tq.with(ms)...)
}

// tenantExemplarQueryable is tenantQueryable for exemplars.
type tenantExemplarQueryable struct {
	q      storage.ExemplarQueryable
	label  string
	tenant string
}

func (te tenantExemplarQueryable) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	q, err := te.q.ExemplarQuerier(ctx)
	if err != nil {
		return nil, err
	}
	return tenantExemplarQuerier{q: q, label: te.label, tenant: te.tenant}, nil
}

type tenantExemplarQuerier struct {
	q      storage.ExemplarQuerier
	label  string
	tenant string
}

func (te tenantExemplarQuerier) Select(start, end int64, sets ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	if len(sets) == 0 {
		// No selector would select every exemplar; the tenant's are the most it may get.
		sets = [][]*labels.Matcher{nil}
	}
	return te.q.Select(start, end, confineMatcherSets(sets, te.label, te.tenant)...)
}

// confineMatchers returns ms with label="tenant" added; see tenancy.EnforceMatchers.
func confineMatchers(ms []*labels.Matcher, label, tenant string) []*labels.Matcher {
	return tenancy.EnforceMatchers(ms, label, tenant)
}

// confineMatcherSets confines every set; an empty list stays empty.
func confineMatcherSets(sets [][]*labels.Matcher, label, tenant string) [][]*labels.Matcher {
	out := make([][]*labels.Matcher, len(sets))
	for i, ms := range sets {
		out[i] = confineMatchers(ms, label, tenant)
	}
	return out
}
