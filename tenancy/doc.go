// Package tenancy authenticates tenants and confines queries to one tenant.
//
// # Model
//
// Without this package a tenant is whatever the caller writes into the tenant
// header (THANOS-TENANT by default): fine inside a trusted network, useless
// against a caller who wants another tenant's data. With it, the tenant is
// derived from a credential and the header is at most a consistency check:
//
//   - A tenants file (YAML, see Config) lists every tenant with the credentials
//     that prove it: SHA-256 hashes of bearer tokens, and a rule that matches
//     the verified TLS client certificate. Plain tokens are never stored, so a
//     leaked file does not leak tokens. HashToken computes the hash an operator
//     puts into the file.
//   - An Authenticator holds the parsed file as an immutable snapshot behind an
//     atomic pointer. Reload and Watch replace the snapshot as a whole; a
//     request sees one snapshot from start to end, and a file that does not
//     parse or validate leaves the previous snapshot in place.
//   - Authenticate (HTTP) and AuthenticateGRPC resolve a request to a tenant.
//     A bearer token or a verified client certificate names the tenant; a tenant
//     header that names another tenant is refused with 403, a missing or
//     unknown credential with 401. The header alone is never trusted.
//     Middleware wraps an http.Handler and rewrites the tenant header to the
//     authenticated tenant, so code behind it that reads the header sees the
//     authenticated tenant.
//   - Every series in storage carries the tenant label (tenant_id by
//     default). EnforceQuery and EnforceExpr add <label>="<tenant>" to every
//     vector selector of a PromQL expression, and EnforceMatchers and
//     EnforceMatchSelectors do the same for the matchers of the series, labels,
//     label values and exemplars APIs. Matchers a query already has on the
//     tenant label are kept: matchers are a conjunction, so they can only
//     narrow the result, never widen it past the injected equality.
//
// Enforcement at the selector level is sufficient for PromQL because every
// sample an expression evaluates comes out of a vector selector; functions and
// operators only transform those samples. label_replace can rewrite the tenant
// label of a result, but only of series the enforced selectors already
// returned.
//
// # Tenant names
//
// ValidateTenant holds the rule for tenant names for every component; the
// receivers apply it to the tenant header, so a name accepted here is a name
// the receivers store data under.
package tenancy
