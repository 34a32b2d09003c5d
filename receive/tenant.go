package receive

import "github.com/stratametrics/strata/tenancy"

// MaxTenantLength is the longest tenant name, in bytes, that ValidateTenant accepts.
const MaxTenantLength = tenancy.MaxTenantLength

// ErrInvalidTenant is wrapped by every error ValidateTenant returns.
var ErrInvalidTenant = tenancy.ErrInvalidTenant

// ValidateTenant reports whether tenant is an acceptable tenant name; see
// tenancy.ValidateTenant, which holds the rule for every component.
func ValidateTenant(tenant string) error { return tenancy.ValidateTenant(tenant) }
