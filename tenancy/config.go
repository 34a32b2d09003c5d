package tenancy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is the tenants file: every tenant and the credentials that prove it.
//
//	tenants:
//	  - name: team-a
//	    tokens_sha256: ["<hex SHA-256 of a bearer token>"]
//	    client_cert: {common_name: "edge-a"}
type Config struct {
	// Tenants lists the tenants. Names, token hashes and client certificate
	// rules are unique across the list.
	Tenants []Tenant `yaml:"tenants"`
}

// Tenant is one tenant and its credentials. A tenant without credentials is
// allowed (it is how all of a tenant's tokens are revoked) but cannot
// authenticate.
type Tenant struct {
	// Name is the tenant name; see ValidateTenant for the rule.
	Name string `yaml:"name"`
	// TokensSHA256 holds the lowercase or uppercase hex SHA-256 digests of
	// the tenant's bearer tokens (see HashToken). Never the tokens themselves.
	TokensSHA256 []string `yaml:"tokens_sha256,omitempty"`
	// ClientCert matches the verified TLS client certificates of the tenant.
	ClientCert *CertRule `yaml:"client_cert,omitempty"`
}

// CertRule matches a verified client certificate. Every field that is set must
// match; at least one must be set. Values are compared exactly.
type CertRule struct {
	// CommonName is compared with the subject common name.
	CommonName string `yaml:"common_name,omitempty"`
	// DNSSAN must be one of the certificate's DNS subject alternative names.
	DNSSAN string `yaml:"dns_san,omitempty"`
	// URISAN must be one of the certificate's URI subject alternative names.
	URISAN string `yaml:"uri_san,omitempty"`
	// Organization must be one of the subject organizations.
	Organization string `yaml:"organization,omitempty"`
}

func (r CertRule) isZero() bool { return r == CertRule{} }

// String describes the rule for error messages.
func (r CertRule) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, fmt.Sprintf("%s=%q", k, v))
		}
	}
	add("common_name", r.CommonName)
	add("dns_san", r.DNSSAN)
	add("uri_san", r.URISAN)
	add("organization", r.Organization)
	return "{" + strings.Join(parts, ", ") + "}"
}

var (
	// ErrInvalidConfig is wrapped by every error of Parse, Load and
	// Config.Validate that is about the file's content.
	ErrInvalidConfig = errors.New("invalid tenants file")
)

// FieldError is a validation error about one field of the tenants file.
type FieldError struct {
	// Path names the field, e.g. "tenants[2].tokens_sha256[0]".
	Path string
	// Line is the 1-based line of the field in the file, or 0 when unknown
	// (a Config built in code).
	Line int
	// Err says what is wrong.
	Err error

	// The path as indexes, to find the line in the YAML tree.
	tenant int    // index into Tenants
	field  string // yaml key inside the tenant, or ""
	item   int    // index inside a list field, or -1
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %v", e.Line, e.Path, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

// Unwrap returns ErrInvalidConfig and the cause.
func (e *FieldError) Unwrap() []error { return []error{ErrInvalidConfig, e.Err} }

func fieldErr(tenant int, field string, item int, format string, args ...any) *FieldError {
	path := fmt.Sprintf("tenants[%d]", tenant)
	if field != "" {
		path += "." + field
	}
	if item >= 0 {
		path += fmt.Sprintf("[%d]", item)
	}
	return &FieldError{Path: path, Err: fmt.Errorf(format, args...), tenant: tenant, field: field, item: item}
}

// HashToken returns the hex SHA-256 digest of a bearer token: the form
// tokens_sha256 holds.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// validateTenantName applies the receivers' tenant name rule. It is the one
// place this package depends on receive; see the package documentation.
func validateTenantName(name string) error { return ValidateTenant(name) }

// parseTokenHash decodes one tokens_sha256 entry. The error never repeats the
// value: an operator who pasted a token instead of its hash must not find the
// token in the logs.
func parseTokenHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	if len(s) != hex.EncodedLen(sha256.Size) {
		return h, fmt.Errorf("a SHA-256 digest is %d hex characters, this value has %d (printf %%s TOKEN | sha256sum)", hex.EncodedLen(sha256.Size), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, errors.New("not a hex SHA-256 digest: it contains a non-hex character")
	}
	return h, nil
}

// Validate checks the names, token hashes and certificate rules. All problems
// are reported, each as a *FieldError, joined with errors.Join.
func (c *Config) Validate() error {
	_, err := compile(c)
	return err
}

// Parse decodes and validates a tenants file. Unknown fields, duplicate keys,
// a second YAML document and an empty file are errors; errors name the line
// where the YAML parser or the field position tells it.
func Parse(b []byte) (*Config, error) {
	cfg, _, err := parse(b)
	return cfg, err
}

// Load reads and parses the tenants file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tenants file: %w", err)
	}
	cfg, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("tenants file %s: %w", path, err)
	}
	return cfg, nil
}

func parse(b []byte) (*Config, *snapshot, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil, fmt.Errorf("%w: the file is empty (write `tenants: []` for no tenants)", ErrInvalidConfig)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%w: the file holds no YAML document", ErrInvalidConfig)
		}
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		return nil, nil, fmt.Errorf("%w: line %d: a second YAML document; the file must hold one", ErrInvalidConfig, extra.Line)
	}
	snap, err := compile(&cfg)
	if err != nil {
		var root yaml.Node
		if yaml.Unmarshal(b, &root) == nil {
			addLines(err, &root)
		}
		return nil, nil, err
	}
	return &cfg, snap, nil
}

// addLines fills in the Line of every *FieldError in err from the YAML tree.
func addLines(err error, root *yaml.Node) {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var fe *FieldError
		if errors.As(e, &fe) {
			fe.Line = lineOf(root, fe)
		}
	}
}

func lineOf(root *yaml.Node, fe *FieldError) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	tenants := mappingValue(n, "tenants")
	if tenants == nil || tenants.Kind != yaml.SequenceNode || fe.tenant >= len(tenants.Content) {
		return 0
	}
	n = tenants.Content[fe.tenant]
	if fe.field == "" {
		return n.Line
	}
	v := mappingValue(n, fe.field)
	if v == nil {
		return n.Line
	}
	if fe.item >= 0 && v.Kind == yaml.SequenceNode && fe.item < len(v.Content) {
		return v.Content[fe.item].Line
	}
	return v.Line
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
