package hashring

import (
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

// Ringer resolves the ring that serves a tenant. Safe for concurrent use.
type Ringer interface {
	// Ring returns the ring of tenant, or an error wrapping ErrNoRing when no
	// ring serves it. The ring is immutable; a caller may keep it for the rest
	// of a request while the Ringer moves on to a newer one.
	Ring(tenant string) (Ring, error)
}

var (
	_ Ringer = (*Multi)(nil)
	_ Ringer = (*FileRinger)(nil)
)

// NamedRing is one ring of a hashring file, built, with what the file says
// about it.
type NamedRing struct {
	// Name is the ring's name in the file; it may be empty.
	Name string
	// Tenants are the tenants or patterns the ring serves; none means all.
	Tenants []string
	// TenantMatcherType is how Tenants match; never empty.
	TenantMatcherType TenantMatcher
	// Algorithm is the placement algorithm the ring was built with.
	Algorithm Algorithm
	// ExternalLabels are the ring's external labels, sorted; empty if none.
	ExternalLabels labels.Labels
	// Ring places the series of the ring's tenants.
	Ring Ring
}

// Multi serves several rings, each for a set of tenants, as a hashring file
// describes them. It is immutable and safe for concurrent use.
//
// A tenant is served by the first ring, in file order, that lists it exactly,
// matches it with a glob pattern (for rings with the glob matcher), or has no
// tenants at all. Lookups cost one map access plus a path.Match per glob
// pattern of the rings before the tenant's exact ring, so nothing is cached.
type Multi struct {
	rings []NamedRing
	// exact maps a tenant to the first ring that lists it.
	exact map[string]int
	// open are the rings that can match tenants they do not list, in file
	// order: catch-all rings (no patterns) and glob rings.
	open []openRing
}

type openRing struct {
	idx      int
	patterns []string // nil for a catch-all ring
}

// NewMulti builds the rings of cfgs, with replication factor rf for all of
// them. A ring without an algorithm uses defaultAlg, or ketama if that is empty
// too. It validates cfgs again, so it accepts configurations that did not come
// from ParseConfig.
func NewMulti(cfgs []RingConfig, defaultAlg Algorithm, rf int) (*Multi, error) {
	if len(cfgs) == 0 {
		return nil, errors.New("build hashrings: no hashrings configured")
	}
	if defaultAlg == "" {
		defaultAlg = AlgorithmKetama
	}
	m := &Multi{
		rings: make([]NamedRing, 0, len(cfgs)),
		exact: make(map[string]int),
	}
	for i, c := range cfgs {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("build hashrings: %s: %w", c.describe(i), err)
		}
		alg := c.Algorithm
		if alg == "" {
			alg = defaultAlg
		}
		r, err := New(alg, c.endpoints(), rf)
		if err != nil {
			return nil, fmt.Errorf("build hashrings: %s: %w", c.describe(i), err)
		}
		matcher := c.TenantMatcherType
		if matcher == "" {
			matcher = TenantMatcherExact
		}
		m.rings = append(m.rings, NamedRing{
			Name:              c.Name,
			Tenants:           slices.Clone(c.Tenants),
			TenantMatcherType: matcher,
			Algorithm:         alg,
			ExternalLabels:    c.externalLabels(),
			Ring:              r,
		})
		for _, t := range c.Tenants {
			if _, ok := m.exact[t]; !ok {
				m.exact[t] = i
			}
		}
		switch {
		case len(c.Tenants) == 0:
			m.open = append(m.open, openRing{idx: i})
		case matcher == TenantMatcherGlob:
			m.open = append(m.open, openRing{idx: i, patterns: slices.Clone(c.Tenants)})
		}
	}
	return m, nil
}

// Ring implements Ringer.
func (m *Multi) Ring(tenant string) (Ring, error) {
	i := m.find(tenant)
	if i < 0 {
		return nil, fmt.Errorf("tenant %q: %w", tenant, ErrNoRing)
	}
	return m.rings[i].Ring, nil
}

// Resolve returns the ring that serves tenant, with its name and external
// labels, or an error wrapping ErrNoRing.
func (m *Multi) Resolve(tenant string) (NamedRing, error) {
	i := m.find(tenant)
	if i < 0 {
		return NamedRing{}, fmt.Errorf("tenant %q: %w", tenant, ErrNoRing)
	}
	return m.rings[i], nil
}

// Rings returns the rings in file order. The caller must not modify them.
func (m *Multi) Rings() []NamedRing { return m.rings }

// find returns the index of the ring serving tenant, or -1.
func (m *Multi) find(tenant string) int {
	best := -1
	if i, ok := m.exact[tenant]; ok {
		best = i
	}
	for _, o := range m.open {
		if best >= 0 && o.idx >= best {
			break
		}
		if o.patterns == nil {
			return o.idx
		}
		for _, p := range o.patterns {
			// Patterns were validated when the ring was built.
			if ok, _ := path.Match(p, tenant); ok {
				return o.idx
			}
		}
	}
	return best
}
