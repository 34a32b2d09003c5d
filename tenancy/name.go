package tenancy

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultTenantHeader is the HTTP header that names the tenant, as in Thanos.
const DefaultTenantHeader = "THANOS-TENANT"

// MaxTenantLength is the longest tenant name, in bytes, that ValidateTenant accepts.
const MaxTenantLength = 128

// ErrInvalidTenant is wrapped by every error ValidateTenant returns.
var ErrInvalidTenant = errors.New("invalid tenant")

// ValidateTenant reports whether tenant is an acceptable tenant name.
//
// A tenant name is used as a directory name and as a label value, so the rule is
// strict: it is 1 to MaxTenantLength bytes of ASCII letters, digits and the
// characters '-', '_', '.', ':' and '@'; it is not "." and contains no "..". Slashes,
// backslashes, spaces, control characters and anything outside ASCII are rejected.
// The returned error wraps ErrInvalidTenant and names the problem.
func ValidateTenant(tenant string) error {
	switch {
	case tenant == "":
		return fmt.Errorf("%w: empty tenant name", ErrInvalidTenant)
	case len(tenant) > MaxTenantLength:
		return fmt.Errorf("%w: tenant name is %d bytes long, the limit is %d", ErrInvalidTenant, len(tenant), MaxTenantLength)
	case tenant == ".":
		return fmt.Errorf("%w: %q is not a tenant name", ErrInvalidTenant, tenant)
	case strings.Contains(tenant, ".."):
		return fmt.Errorf("%w: tenant name %q contains \"..\"", ErrInvalidTenant, tenant)
	}
	for i := 0; i < len(tenant); i++ {
		c := tenant[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '@':
		case c == '/' || c == '\\':
			return fmt.Errorf("%w: tenant name %q contains %q", ErrInvalidTenant, tenant, tenant[i:i+1])
		default:
			return fmt.Errorf("%w: tenant name %q contains %q at byte %d; allowed are ASCII letters, digits and -_.:@", ErrInvalidTenant, tenant, tenant[i:i+1], i)
		}
	}
	return nil
}

// ValidHeaderName reports whether s is an RFC 9110 token, the syntax of HTTP
// header names, such as a tenant header.
func ValidHeaderName(s string) bool {
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
