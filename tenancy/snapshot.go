package tenancy

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
)

// snapshot is a compiled, immutable tenants file. An Authenticator swaps whole
// snapshots, so one request never sees half of an old and half of a new file.
type snapshot struct {
	tenants []string // by index
	tokens  []tokenEntry
	certs   []certEntry
}

type tokenEntry struct {
	hash   [sha256.Size]byte
	tenant int
}

type certEntry struct {
	rule   CertRule
	tenant int
}

// compile validates cfg and builds its snapshot. Every problem is reported as
// a *FieldError, joined.
func compile(cfg *Config) (*snapshot, error) {
	s := &snapshot{tenants: make([]string, 0, len(cfg.Tenants))}
	var errs []error
	names := make(map[string]int, len(cfg.Tenants))
	type pos struct{ tenant, item int }
	hashes := make(map[[sha256.Size]byte]pos)
	rules := make(map[CertRule]int)
	for i, t := range cfg.Tenants {
		s.tenants = append(s.tenants, t.Name)
		if err := validateTenantName(t.Name); err != nil {
			errs = append(errs, fieldErr(i, "name", -1, "%w", err))
		} else if prev, ok := names[t.Name]; ok {
			errs = append(errs, fieldErr(i, "name", -1, "tenant %q is already defined at tenants[%d]", t.Name, prev))
		} else {
			names[t.Name] = i
		}
		for j, hx := range t.TokensSHA256 {
			h, err := parseTokenHash(hx)
			if err != nil {
				errs = append(errs, fieldErr(i, "tokens_sha256", j, "%w", err))
				continue
			}
			if prev, ok := hashes[h]; ok {
				errs = append(errs, fieldErr(i, "tokens_sha256", j, "the same token hash is already listed at tenants[%d].tokens_sha256[%d] (tenant %q); a token must prove exactly one tenant", prev.tenant, prev.item, cfg.Tenants[prev.tenant].Name))
				continue
			}
			hashes[h] = pos{i, j}
			s.tokens = append(s.tokens, tokenEntry{hash: h, tenant: i})
		}
		if t.ClientCert != nil {
			r := *t.ClientCert
			if r.isZero() {
				errs = append(errs, fieldErr(i, "client_cert", -1, "sets no field; set common_name, dns_san, uri_san or organization"))
			} else if prev, ok := rules[r]; ok {
				errs = append(errs, fieldErr(i, "client_cert", -1, "the same rule %s is already given to tenant %q (tenants[%d])", r, cfg.Tenants[prev].Name, prev))
			} else {
				rules[r] = i
				s.certs = append(s.certs, certEntry{rule: r, tenant: i})
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// tenantForToken returns the tenant whose token hash equals the hash of token.
// It compares against every hash, whatever matched, and the comparisons are
// constant-time, so neither the time taken nor anything else depends on which
// entry matched or how close a wrong token came.
func (s *snapshot) tenantForToken(token string) (string, bool) {
	h := sha256.Sum256([]byte(token))
	found, idx := 0, 0
	for i := range s.tokens {
		eq := subtle.ConstantTimeCompare(h[:], s.tokens[i].hash[:])
		idx = subtle.ConstantTimeSelect(eq, i, idx)
		found |= eq
	}
	if found == 0 {
		return "", false
	}
	return s.tenants[s.tokens[idx].tenant], true
}

// tenantsForCert returns the tenants whose rule matches the certificate.
// Rules are unique, but different rules can match one certificate.
func (s *snapshot) tenantsForCert(c *x509.Certificate) []string {
	var out []string
	for _, e := range s.certs {
		if e.rule.matches(c) {
			out = append(out, s.tenants[e.tenant])
		}
	}
	return out
}

func (r CertRule) matches(c *x509.Certificate) bool {
	if r.isZero() {
		return false
	}
	if r.CommonName != "" && c.Subject.CommonName != r.CommonName {
		return false
	}
	if r.DNSSAN != "" && !slices.Contains(c.DNSNames, r.DNSSAN) {
		return false
	}
	if r.URISAN != "" && !slices.ContainsFunc(c.URIs, func(u *url.URL) bool { return u.String() == r.URISAN }) {
		return false
	}
	if r.Organization != "" && !slices.Contains(c.Subject.Organization, r.Organization) {
		return false
	}
	return true
}

var (
	// ErrUnauthenticated means the request carries no credential, an unknown
	// one, or a malformed one: HTTP 401, gRPC Unauthenticated.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden means the request's credentials are valid but disagree
	// with each other or with the tenant header: HTTP 403, gRPC
	// PermissionDenied.
	ErrForbidden = errors.New("forbidden")
)

// presented is what a request shows, independent of HTTP or gRPC.
type presented struct {
	authorization []string          // Authorization header values
	cert          *x509.Certificate // verified leaf, or nil
	tenantHeader  string            // header name, for messages
	tenantValues  []string          // tenant header values
}

// maxEcho bounds how much of a caller's header value goes into an error.
const maxEcho = 140

// resolve decides the tenant of a request. See Authenticator.Authenticate.
func (s *snapshot) resolve(p presented) (string, error) {
	var tokenTenant string
	hasToken := false
	switch len(p.authorization) {
	case 0:
	case 1:
		token, ok := cutBearer(p.authorization[0])
		if !ok {
			return "", fmt.Errorf("%w: the Authorization header is not of the form \"Bearer <token>\"", ErrUnauthenticated)
		}
		if token == "" {
			return "", fmt.Errorf("%w: empty bearer token", ErrUnauthenticated)
		}
		t, found := s.tenantForToken(token)
		if !found {
			return "", fmt.Errorf("%w: unknown bearer token", ErrUnauthenticated)
		}
		tokenTenant, hasToken = t, true
	default:
		return "", fmt.Errorf("%w: %d Authorization headers; send one", ErrUnauthenticated, len(p.authorization))
	}

	var certTenant string
	hasCert := false
	if p.cert != nil {
		switch ts := s.tenantsForCert(p.cert); len(ts) {
		case 0:
			// A verified certificate that maps to no tenant may be a
			// transport identity only; it neither proves nor contradicts
			// a token.
			if !hasToken {
				return "", fmt.Errorf("%w: the client certificate (subject %q) belongs to no tenant", ErrUnauthenticated, truncate(p.cert.Subject.String()))
			}
		case 1:
			certTenant, hasCert = ts[0], true
		default:
			return "", fmt.Errorf("%w: the client certificate matches the rules of several tenants (%q); fix the tenants file", ErrForbidden, ts)
		}
	}

	var tenant string
	switch {
	case hasToken && hasCert && tokenTenant != certTenant:
		return "", fmt.Errorf("%w: the bearer token belongs to tenant %q but the client certificate to tenant %q", ErrForbidden, tokenTenant, certTenant)
	case hasToken:
		tenant = tokenTenant
	case hasCert:
		tenant = certTenant
	default:
		return "", fmt.Errorf("%w: no credentials: send \"Authorization: Bearer <token>\" or a client certificate", ErrUnauthenticated)
	}

	for _, v := range p.tenantValues {
		if v != "" && v != tenant {
			return "", fmt.Errorf("%w: the %s header names tenant %q but the credentials belong to tenant %q", ErrForbidden, p.tenantHeader, truncate(v), tenant)
		}
	}
	return tenant, nil
}

// cutBearer returns the token of "Bearer <token>". The scheme is
// case-insensitive (RFC 9110 section 11.1); the token is taken as is after the
// separating spaces.
func cutBearer(v string) (token string, ok bool) {
	scheme, token, ok := cutSpace(v)
	if !ok || !equalFoldASCII(scheme, "bearer") {
		return "", false
	}
	for len(token) > 0 && token[0] == ' ' {
		token = token[1:]
	}
	return token, true
}

func cutSpace(v string) (before, after string, ok bool) {
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			return v[:i], v[i+1:], true
		}
	}
	return v, "", false
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > maxEcho {
		return s[:maxEcho] + "..."
	}
	return s
}
