package hashring

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// TenantMatcher says how the tenants of a RingConfig are compared with a
// request's tenant.
type TenantMatcher string

// Tenant matchers of the hashring file.
const (
	// TenantMatcherExact matches a tenant equal to one of the ring's tenants.
	// It is the default when tenant_matcher_type is empty.
	TenantMatcherExact TenantMatcher = "exact"
	// TenantMatcherGlob matches a tenant against the ring's tenants as
	// shell patterns, with the semantics of path.Match (*, ? and [...]).
	TenantMatcherGlob TenantMatcher = "glob"
)

// RingConfig is one hashring of a hashring file, in the JSON format of Thanos
// receive (--receive.hashrings-file). The file is an array of these.
type RingConfig struct {
	// Name names the ring in logs, metrics and the status page.
	Name string `json:"hashring,omitempty"`
	// Tenants are the tenants the ring serves; a ring without tenants serves
	// every tenant.
	Tenants []string `json:"tenants,omitempty"`
	// TenantMatcherType is how Tenants match; empty means exact.
	TenantMatcherType TenantMatcher `json:"tenant_matcher_type,omitempty"`
	// Endpoints are the receivers of the ring.
	Endpoints []EndpointConfig `json:"endpoints"`
	// Algorithm is the placement algorithm; empty means the default that the
	// caller of NewMulti or NewFileRinger chooses.
	Algorithm Algorithm `json:"algorithm,omitempty"`
	// ExternalLabels are extra external labels for the TSDBs of the ring's
	// tenants. They are parsed and validated but not yet applied.
	ExternalLabels map[string]string `json:"external_labels,omitempty"`
}

// EndpointConfig is an endpoint of a hashring file. In JSON it is either a
// string, the gRPC address, or an object {"address": "...", "az": "..."}.
type EndpointConfig struct {
	// Address is the gRPC address writes are forwarded to. It also names the
	// endpoint in the ring.
	Address string `json:"address"`
	// AZ is the endpoint's availability zone; empty when zones are not used.
	// Only the ketama algorithm accepts zones.
	AZ string `json:"az,omitempty"`
}

// UnmarshalJSON accepts either form of an endpoint, and rejects unknown fields
// of the object form: a decoder's DisallowUnknownFields does not reach into
// custom unmarshalers, so the object is decoded strictly here.
func (e *EndpointConfig) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*e = EndpointConfig{Address: s}
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("decode endpoint: want a string or an object, got %.40s", b)
	}
	// A distinct type without the method, so that decoding does not recurse.
	type plain EndpointConfig
	var p plain
	if err := strictDecode(b, &p); err != nil {
		return fmt.Errorf("decode endpoint: %w", err)
	}
	*e = EndpointConfig(p)
	return nil
}

// MarshalJSON writes the string form when there is no zone, as most files do.
func (e EndpointConfig) MarshalJSON() ([]byte, error) {
	if e.AZ == "" {
		return json.Marshal(e.Address)
	}
	type plain EndpointConfig
	return json.Marshal(plain(e))
}

// strictDecode decodes exactly one JSON value from b into v, rejecting unknown
// fields and trailing data.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the top-level value")
	}
	return nil
}

// ParseConfig parses and validates a hashring file: a JSON array of at least
// one RingConfig. Unknown fields, an empty array and any ring that fails
// Validate are errors.
func ParseConfig(data []byte) ([]RingConfig, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("parse hashring config: the file is empty")
	}
	var cfgs []RingConfig
	if err := strictDecode(data, &cfgs); err != nil {
		return nil, fmt.Errorf("parse hashring config: %w", err)
	}
	if len(cfgs) == 0 {
		return nil, errors.New("parse hashring config: no hashrings in the file")
	}
	for i, c := range cfgs {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("parse hashring config: %s: %w", c.describe(i), err)
		}
	}
	return cfgs, nil
}

// describe names the i-th ring of a file for error messages.
func (c RingConfig) describe(i int) string {
	if c.Name == "" {
		return fmt.Sprintf("hashring %d", i)
	}
	return fmt.Sprintf("hashring %d (%q)", i, c.Name)
}

// Validate checks a ring on its own: at least one endpoint, no empty or
// repeated address, a known algorithm and tenant matcher, valid glob patterns,
// no zones under hashmod and valid external labels. Whether there are enough
// endpoints for the replication factor is checked when the ring is built.
func (c RingConfig) Validate() error {
	switch c.Algorithm {
	case "", AlgorithmKetama, AlgorithmHashmod:
	default:
		return fmt.Errorf("unknown algorithm %q (want %q or %q)", c.Algorithm, AlgorithmKetama, AlgorithmHashmod)
	}
	switch c.TenantMatcherType {
	case "", TenantMatcherExact:
	case TenantMatcherGlob:
		for _, t := range c.Tenants {
			if _, err := path.Match(t, ""); err != nil {
				return fmt.Errorf("tenant pattern %q: %w", t, err)
			}
		}
	default:
		return fmt.Errorf("unknown tenant_matcher_type %q (want %q or %q)", c.TenantMatcherType, TenantMatcherExact, TenantMatcherGlob)
	}
	for _, t := range c.Tenants {
		if t == "" {
			return errors.New("empty tenant")
		}
	}
	if len(c.Endpoints) == 0 {
		return errors.New("no endpoints")
	}
	seen := make(map[string]struct{}, len(c.Endpoints))
	for i, e := range c.Endpoints {
		if e.Address == "" {
			return fmt.Errorf("endpoint %d: empty address", i)
		}
		if _, ok := seen[e.Address]; ok {
			return fmt.Errorf("duplicate endpoint %q", e.Address)
		}
		seen[e.Address] = struct{}{}
		if e.AZ != "" && c.Algorithm == AlgorithmHashmod {
			return fmt.Errorf("endpoint %q has az %q, but zones need the ketama algorithm", e.Address, e.AZ)
		}
	}
	for n, v := range c.ExternalLabels {
		if !model.UTF8Validation.IsValidLabelName(n) {
			return fmt.Errorf("external label name %q is not valid", n)
		}
		if v == "" {
			return fmt.Errorf("external label %q has an empty value", n)
		}
	}
	return nil
}

// endpoints converts the configured endpoints into ring endpoints, named by
// their address.
func (c RingConfig) endpoints() []Endpoint {
	eps := make([]Endpoint, 0, len(c.Endpoints))
	for _, e := range c.Endpoints {
		eps = append(eps, Endpoint{Name: e.Address, Address: e.Address, Zone: e.AZ, State: StateActive})
	}
	return eps
}

// externalLabels returns ExternalLabels as sorted labels.
func (c RingConfig) externalLabels() labels.Labels {
	if len(c.ExternalLabels) == 0 {
		return labels.EmptyLabels()
	}
	return labels.FromMap(c.ExternalLabels)
}
