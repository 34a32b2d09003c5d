package tenancy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// DefaultReloadInterval is how often Watch checks the tenants file when
// given no interval.
const DefaultReloadInterval = 10 * time.Second

// Authenticator resolves requests to tenants using a tenants file. It is safe
// for concurrent use; Reload and Watch replace the file's snapshot atomically
// while requests are served.
type Authenticator struct {
	path    string
	logger  *slog.Logger
	metrics *authMetrics

	cur atomic.Pointer[snapshot]

	mu       sync.Mutex        // serialises reloads
	lastSeen [sha256.Size]byte // digest of the file content last tried
}

type authMetrics struct {
	results       *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	reloadSuccess prometheus.Gauge
	reloadTime    prometheus.Gauge
	tenants       prometheus.Gauge
}

func newAuthMetrics(reg prometheus.Registerer) *authMetrics {
	f := promauto.With(reg)
	m := &authMetrics{
		results: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_tenancy_authentications_total",
			Help: "Requests authenticated, by result: success, unauthenticated (401) or forbidden (403).",
		}, []string{"result"}),
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_tenancy_config_reloads_total",
			Help: "Loads of the tenants file, by result: success or failure.",
		}, []string{"result"}),
		reloadSuccess: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_tenancy_config_last_reload_successful",
			Help: "Whether the last load of the tenants file succeeded (1) or kept the previous one (0).",
		}),
		reloadTime: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_tenancy_config_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful load of the tenants file.",
		}),
		tenants: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_tenancy_tenants",
			Help: "Tenants in the loaded tenants file.",
		}),
	}
	for _, r := range []string{"success", "unauthenticated", "forbidden"} {
		m.results.WithLabelValues(r)
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m
}

// NewAuthenticator loads the tenants file at path and returns an
// authenticator for it. A file that does not load is an error here; later
// reloads keep the previous file instead. reg and logger may be nil.
func NewAuthenticator(path string, reg prometheus.Registerer, logger *slog.Logger) (*Authenticator, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{path: path, logger: logger, metrics: newAuthMetrics(reg)}
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload reads the tenants file again and, if it parses and validates,
// switches to it. Otherwise the previous file stays in effect and the error
// is returned and logged. Requests in flight finish with the snapshot they
// started with.
func (a *Authenticator) Reload() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, err := os.ReadFile(a.path)
	if err != nil {
		return a.reloadFailed(fmt.Errorf("read tenants file: %w", err))
	}
	a.lastSeen = sha256.Sum256(b)
	return a.load(b)
}

// load parses b and swaps it in. a.mu is held.
func (a *Authenticator) load(b []byte) error {
	_, snap, err := parse(b)
	if err != nil {
		return a.reloadFailed(fmt.Errorf("tenants file %s: %w", a.path, err))
	}
	a.cur.Store(snap)
	a.metrics.reloads.WithLabelValues("success").Inc()
	a.metrics.reloadSuccess.Set(1)
	a.metrics.reloadTime.SetToCurrentTime()
	a.metrics.tenants.Set(float64(len(snap.tenants)))
	a.logger.Info("loaded tenants file", "path", a.path, "tenants", len(snap.tenants))
	return nil
}

func (a *Authenticator) reloadFailed(err error) error {
	a.metrics.reloads.WithLabelValues("failure").Inc()
	a.metrics.reloadSuccess.Set(0)
	if a.cur.Load() != nil {
		a.logger.Error("reload tenants file, keeping the previous one", "path", a.path, "err", err)
	}
	return err
}

// Watch checks the tenants file every interval (DefaultReloadInterval if
// interval <= 0) and reloads it when its content changed. Comparing content
// rather than the modification time also catches edits within the file
// system's time granularity and Kubernetes' symlink swaps. A file that fails
// to load is logged once per distinct content and the previous one kept.
// Watch returns nil when ctx is done; run it in its own goroutine.
func (a *Authenticator) Watch(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_ = a.reloadIfChanged() // logged by reloadFailed
		}
	}
}

func (a *Authenticator) reloadIfChanged() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, err := os.ReadFile(a.path)
	if err != nil {
		// A file being replaced can be missing for a moment; keep trying,
		// but do not count a failure for every tick.
		if !errors.Is(err, os.ErrNotExist) {
			return a.reloadFailed(fmt.Errorf("read tenants file: %w", err))
		}
		return nil
	}
	sum := sha256.Sum256(b)
	if bytes.Equal(sum[:], a.lastSeen[:]) {
		return nil
	}
	a.lastSeen = sum
	return a.load(b)
}

// Tenants returns the names of the tenants in the current tenants file.
func (a *Authenticator) Tenants() []string {
	return append([]string(nil), a.cur.Load().tenants...)
}

// Authenticate resolves an HTTP request to its tenant.
//
// The credential is the bearer token of the Authorization header or the
// verified TLS client certificate (the leaf of r.TLS.VerifiedChains; a
// certificate in PeerCertificates that the server did not verify counts for
// nothing). Then:
//   - no credential, or an unknown or malformed one: 401 (the caller should
//     answer with a "WWW-Authenticate: Bearer" header, as Middleware does);
//   - a token and a certificate of different tenants: 403;
//   - a tenant header (tenantHeader, DefaultTenantHeader if empty)
//     naming another tenant than the credentials: 403;
//   - otherwise the credentials' tenant and 200, whether the header was
//     absent, empty or equal to it.
//
// err wraps ErrUnauthenticated or ErrForbidden and its message is meant for
// the caller: it never contains a token or says which tenant an unknown token
// resembles.
func (a *Authenticator) Authenticate(r *http.Request, tenantHeader string) (tenant string, status int, err error) {
	if tenantHeader == "" {
		tenantHeader = DefaultTenantHeader
	}
	p := presented{
		authorization: r.Header.Values("Authorization"),
		tenantHeader:  tenantHeader,
		tenantValues:  r.Header.Values(tenantHeader),
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		p.cert = r.TLS.VerifiedChains[0][0]
	}
	tenant, err = a.resolve(p)
	return tenant, HTTPStatus(err), err
}

// AuthenticateGRPC is Authenticate for gRPC: the credentials come from the
// "authorization" metadata and the verified client certificate of the peer's
// credentials.TLSInfo, the tenant from the tenantHeader metadata (gRPC
// metadata keys are lowercase; the name is lowercased here). code is
// codes.OK, codes.Unauthenticated or codes.PermissionDenied.
func (a *Authenticator) AuthenticateGRPC(md metadata.MD, p *peer.Peer, tenantHeader string) (tenant string, code codes.Code, err error) {
	if tenantHeader == "" {
		tenantHeader = DefaultTenantHeader
	}
	pr := presented{
		authorization: md.Get("authorization"),
		tenantHeader:  tenantHeader,
		tenantValues:  md.Get(strings.ToLower(tenantHeader)),
	}
	if p != nil {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.VerifiedChains) > 0 && len(info.State.VerifiedChains[0]) > 0 {
			pr.cert = info.State.VerifiedChains[0][0]
		}
	}
	tenant, err = a.resolve(pr)
	return tenant, GRPCCode(err), err
}

func (a *Authenticator) resolve(p presented) (string, error) {
	tenant, err := a.cur.Load().resolve(p)
	switch {
	case err == nil:
		a.metrics.results.WithLabelValues("success").Inc()
	case errors.Is(err, ErrForbidden):
		a.metrics.results.WithLabelValues("forbidden").Inc()
	default:
		a.metrics.results.WithLabelValues("unauthenticated").Inc()
	}
	return tenant, err
}

// HTTPStatus maps an error of this package to an HTTP status: 200 for nil,
// 401 for ErrUnauthenticated, 403 for ErrForbidden and 500 otherwise.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized
	default:
		return http.StatusInternalServerError
	}
}

// GRPCCode maps an error of Authenticate or AuthenticateGRPC to a gRPC code:
// OK for nil, Unauthenticated for ErrUnauthenticated, PermissionDenied for
// ErrForbidden and Internal otherwise.
func GRPCCode(err error) codes.Code {
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, ErrForbidden):
		return codes.PermissionDenied
	case errors.Is(err, ErrUnauthenticated):
		return codes.Unauthenticated
	default:
		return codes.Internal
	}
}

// Middleware authenticates every request before next sees it. A failure is
// answered with 401 (and "WWW-Authenticate: Bearer") or 403 and a text body
// that says why. On success next gets a copy of the request whose tenant
// header holds exactly the authenticated tenant, and whose context carries it
// (see TenantFromContext).
func (a *Authenticator) Middleware(next http.Handler, tenantHeader string) http.Handler {
	if tenantHeader == "" {
		tenantHeader = DefaultTenantHeader
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant, status, err := a.Authenticate(r, tenantHeader)
		if err != nil {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
			}
			http.Error(w, err.Error(), status)
			return
		}
		r2 := r.WithContext(WithTenant(r.Context(), tenant))
		r2.Header = r.Header.Clone()
		r2.Header.Set(tenantHeader, tenant)
		next.ServeHTTP(w, r2)
	})
}

type tenantKey struct{}

// WithTenant returns a context that carries an authenticated tenant.
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantFromContext returns the tenant WithTenant stored, and whether there
// was one.
func TenantFromContext(ctx context.Context) (string, bool) {
	t, ok := ctx.Value(tenantKey{}).(string)
	return t, ok
}
