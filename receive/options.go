package receive

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Path is where the caller conventionally mounts the Handler.
const Path = "/api/v1/receive"

// Defaults of Options; a zero field in Options means its default.
const (
	// DefaultTenantHeader is the HTTP header that names the tenant, as in Thanos.
	DefaultTenantHeader = "THANOS-TENANT"
	// DefaultTenant is the tenant of requests without a tenant header.
	DefaultTenant = "default-tenant"
	// DefaultMaxCompressedBytes is the largest accepted request body (32 MiB).
	DefaultMaxCompressedBytes = 32 << 20
	// DefaultMaxDecompressedBytes is the largest accepted decompressed request (128 MiB).
	DefaultMaxDecompressedBytes = 128 << 20
	// DefaultMaxFutureSkew is how far ahead of the receiver's clock a sample may be,
	// the same bound Prometheus' own receiver applies.
	DefaultMaxFutureSkew = 10 * time.Minute
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
	// Zero means DefaultMaxFutureSkew; a negative value disables the check.
	MaxFutureSkew time.Duration
	// DisableExemplars drops exemplars instead of passing them to storage. Set it
	// when the storage keeps no exemplars (for example --tsdb.max-exemplars=0):
	// storage then discards them silently, and only this option lets the
	// Remote-Write 2.0 written-exemplars header stay true.
	DisableExemplars bool
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
	if o.MaxFutureSkew == 0 {
		o.MaxFutureSkew = DefaultMaxFutureSkew
	}
	return o
}

// Validate reports whether o, with defaults applied to its zero fields, is usable.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if !isHeaderToken(o.TenantHeader) {
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
	return errors.Join(errs...)
}

// isHeaderToken reports whether s is an RFC 9110 token, the syntax of header names.
func isHeaderToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
