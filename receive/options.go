package receive

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc"

	"github.com/stratametrics/strata/hashring"
	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/tenancy"
)

// Authenticator resolves a request to its tenant from a credential, answering
// the status a failure gets (401 or 403). *tenancy.Authenticator is one.
type Authenticator interface {
	Authenticate(r *http.Request, tenantHeader string) (tenant string, status int, err error)
}

// LimitsSource gives the limits in force for a tenant. *limits.Overrides is one.
type LimitsSource interface {
	For(tenant string) limits.Limits
}

// Path is where the caller conventionally mounts the Handler.
const Path = "/api/v1/receive"

// Defaults of Options; a zero field in Options means its default.
const (
	// DefaultTenantHeader is the HTTP header that names the tenant, as in Thanos.
	DefaultTenantHeader = tenancy.DefaultTenantHeader
	// DefaultTenant is the tenant of requests without a tenant header.
	DefaultTenant = "default-tenant"
	// DefaultMaxCompressedBytes is the largest accepted request body (32 MiB).
	DefaultMaxCompressedBytes = 32 << 20
	// DefaultMaxDecompressedBytes is the largest accepted decompressed request (128 MiB).
	DefaultMaxDecompressedBytes = 128 << 20
)

// Options configure a Handler. The zero value is valid and means all defaults.
type Options struct {
	// TenantHeader is the HTTP header that names the tenant of a request.
	// Default: DefaultTenantHeader.
	TenantHeader string
	// DefaultTenant is the tenant of requests without the tenant header.
	// Default: DefaultTenant.
	DefaultTenant string
	// MaxCompressedBytes is the largest accepted request body as sent; larger
	// requests get 413. Default: DefaultMaxCompressedBytes.
	MaxCompressedBytes int64
	// MaxDecompressedBytes is the largest accepted request after snappy
	// decompression; larger requests get 413. Default: DefaultMaxDecompressedBytes.
	MaxDecompressedBytes int64
	// MaxFutureSkew rejects samples whose timestamp is more than this far ahead of
	// the receiver's clock, as out of bounds: one such sample would move the head's
	// time range and turn every later in-time sample into an out-of-bounds one.
	// Zero or negative disables the check, as in Prometheus: backfills and
	// load generators run ahead of the clock.
	MaxFutureSkew time.Duration
	// DisableExemplars drops exemplars instead of passing them to storage. Set it
	// when the storage keeps no exemplars (for example --tsdb.max-exemplars=0):
	// storage then discards them silently, and only this option lets the
	// Remote-Write 2.0 written-exemplars header stay true.
	DisableExemplars bool
	// Authenticator, when set, derives the tenant of every request from its
	// credential; the tenant header is then only checked against it. Without
	// it the header names the tenant.
	Authenticator Authenticator
	// Limits, when set, gives each tenant's limits: request size, ingestion
	// rate, labels per series and their lengths, active series and exemplars
	// (a tenant whose max_exemplars is 0 gets its exemplars dropped, as with
	// DisableExemplars). Without it only the options above limit writes.
	Limits LimitsSource
	// Route, when set, makes the handler a router: it places every series on the
	// hashring and writes it to its owners, locally or by forwarding. Without it
	// every series is written to local storage.
	Route *RouteOptions
}

// Defaults of RouteOptions.
const (
	DefaultForwardTimeout     = 5 * time.Second
	DefaultForwardConcurrency = 32
	DefaultForwardMaxBackoff  = 5 * time.Second
)

// RouteOptions configure routing and replication across the receive ring.
type RouteOptions struct {
	// Ringer gives the ring of a tenant. Required.
	Ringer hashring.Ringer
	// LocalEndpoint is this node's endpoint name in the ring: series it owns are
	// appended to local storage instead of forwarded. Empty on router-only nodes.
	LocalEndpoint string
	// ForwardTimeout bounds each forward to a peer. Default DefaultForwardTimeout.
	ForwardTimeout time.Duration
	// ForwardConcurrency bounds the forwards in flight to one peer; more wait.
	// Default DefaultForwardConcurrency.
	ForwardConcurrency int
	// ForwardMaxBackoff caps how long a failing peer is skipped before it is tried
	// again. Default DefaultForwardMaxBackoff.
	ForwardMaxBackoff time.Duration
	// DialOptions are added to every peer connection (TLS, for example). Without
	// transport credentials, connections are plaintext.
	DialOptions []grpc.DialOption
}

func (o RouteOptions) withDefaults() RouteOptions {
	if o.ForwardTimeout <= 0 {
		o.ForwardTimeout = DefaultForwardTimeout
	}
	if o.ForwardConcurrency <= 0 {
		o.ForwardConcurrency = DefaultForwardConcurrency
	}
	if o.ForwardMaxBackoff <= 0 {
		o.ForwardMaxBackoff = DefaultForwardMaxBackoff
	}
	return o
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.TenantHeader == "" {
		o.TenantHeader = DefaultTenantHeader
	}
	if o.DefaultTenant == "" {
		o.DefaultTenant = DefaultTenant
	}
	if o.MaxCompressedBytes == 0 {
		o.MaxCompressedBytes = DefaultMaxCompressedBytes
	}
	if o.MaxDecompressedBytes == 0 {
		o.MaxDecompressedBytes = DefaultMaxDecompressedBytes
	}
	return o
}

// Validate reports whether o, with defaults applied to its zero fields, is usable.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if !tenancy.ValidHeaderName(o.TenantHeader) {
		errs = append(errs, fmt.Errorf("tenant header %q is not a valid HTTP header name", o.TenantHeader))
	}
	if err := ValidateTenant(o.DefaultTenant); err != nil {
		errs = append(errs, fmt.Errorf("default tenant: %w", err))
	}
	if o.MaxCompressedBytes < 0 {
		errs = append(errs, fmt.Errorf("max compressed bytes is negative: %d", o.MaxCompressedBytes))
	}
	if o.MaxDecompressedBytes < 0 {
		errs = append(errs, fmt.Errorf("max decompressed bytes is negative: %d", o.MaxDecompressedBytes))
	}
	if o.MaxDecompressedBytes > 0 && o.MaxCompressedBytes > o.MaxDecompressedBytes {
		errs = append(errs, fmt.Errorf("max compressed bytes (%d) exceed max decompressed bytes (%d)", o.MaxCompressedBytes, o.MaxDecompressedBytes))
	}
	if o.Route != nil && o.Route.Ringer == nil {
		errs = append(errs, errors.New("routing needs a hashring"))
	}
	return errors.Join(errs...)
}
