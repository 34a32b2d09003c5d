package hashring

import (
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func eps(addrs ...string) []EndpointConfig {
	out := make([]EndpointConfig, len(addrs))
	for i, a := range addrs {
		out[i] = EndpointConfig{Address: a}
	}
	return out
}

func TestMultiResolve(t *testing.T) {
	cfgs := []RingConfig{
		{Name: "exact-a", Tenants: []string{"a", "b"}, Endpoints: eps("r0:1")},
		{Name: "glob-team", Tenants: []string{"team-*", "b"}, TenantMatcherType: TenantMatcherGlob, Endpoints: eps("r1:1")},
		{Name: "exact-team-x", Tenants: []string{"team-x", "c"}, Endpoints: eps("r2:1")},
		{Name: "literal-star", Tenants: []string{"odd*"}, Endpoints: eps("r3:1")},
		{Name: "catch-all", Endpoints: eps("r4:1"), Algorithm: AlgorithmHashmod, ExternalLabels: map[string]string{"ring": "all"}},
		{Name: "unreachable", Tenants: []string{"z"}, Endpoints: eps("r5:1")},
	}
	m, err := NewMulti(cfgs, "", 1)
	require.NoError(t, err)
	for _, tc := range []struct {
		tenant string
		want   string
	}{
		{tenant: "a", want: "exact-a"},
		{tenant: "b", want: "exact-a"},                    // first ring in file order wins
		{tenant: "team-y", want: "glob-team"},             // glob
		{tenant: "team-x", want: "glob-team"},             // an earlier glob beats a later exact match
		{tenant: "c", want: "exact-team-x"},               // exact after glob rings that do not match
		{tenant: "odd*", want: "literal-star"},            // exact rings compare literally
		{tenant: "oddity", want: "catch-all"},             // ... and do not glob
		{tenant: "z", want: "catch-all"},                  // a catch-all shadows later rings
		{tenant: "default-tenant", want: "catch-all"},     //
		{tenant: "", want: "catch-all"},                   //
		{tenant: "team-", want: "glob-team"},              // * matches the empty string
		{tenant: "team-a/b", want: "catch-all"},           // * does not match a slash
		{tenant: "TEAM-x", want: "catch-all"},             // case-sensitive
		{tenant: "a\x00", want: "catch-all"},              //
		{tenant: "team-\u00e9", want: "glob-team"},        // UTF-8
		{tenant: "team-x-long-suffix", want: "glob-team"}, //
	} {
		t.Run(tc.tenant, func(t *testing.T) {
			nr, err := m.Resolve(tc.tenant)
			require.NoError(t, err)
			require.Equal(t, tc.want, nr.Name)
			r, err := m.Ring(tc.tenant)
			require.NoError(t, err)
			require.Same(t, nr.Ring, r)
		})
	}

	rings := m.Rings()
	require.Len(t, rings, len(cfgs))
	require.Equal(t, AlgorithmKetama, rings[0].Algorithm, "empty default algorithm means ketama")
	require.Equal(t, AlgorithmHashmod, rings[4].Algorithm)
	require.Equal(t, TenantMatcherExact, rings[0].TenantMatcherType)
	require.Equal(t, labels.FromStrings("ring", "all"), rings[4].ExternalLabels)
	require.True(t, rings[0].ExternalLabels.IsEmpty())
	require.Equal(t, "r4:1", rings[4].Ring.Endpoints()[0].Address)
	require.Equal(t, StateActive, rings[4].Ring.Endpoints()[0].State)
}

func TestMultiNoRing(t *testing.T) {
	m, err := NewMulti([]RingConfig{
		{Tenants: []string{"a"}, Endpoints: eps("r0:1")},
		{Tenants: []string{"b*"}, TenantMatcherType: TenantMatcherGlob, Endpoints: eps("r1:1")},
	}, AlgorithmKetama, 1)
	require.NoError(t, err)
	_, err = m.Ring("c")
	require.ErrorIs(t, err, ErrNoRing)
	require.ErrorContains(t, err, `tenant "c"`)
	_, err = m.Resolve("c")
	require.ErrorIs(t, err, ErrNoRing)
}

func TestNewMultiErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfgs       []RingConfig
		defaultAlg Algorithm
		rf         int
		wantErr    string
		wantErrIs  error
	}{
		{name: "no rings", wantErr: "no hashrings configured", rf: 1},
		{
			name: "not enough endpoints", rf: 3, wantErrIs: ErrNotEnoughEndpoints,
			cfgs:    []RingConfig{{Endpoints: eps("a:1", "b:1", "c:1")}, {Name: "small", Endpoints: eps("d:1", "e:1")}},
			wantErr: `hashring 1 ("small"): build ketama ring: 2 endpoints for replication factor 3`,
		},
		{
			name: "zones under the default hashmod", rf: 1, defaultAlg: AlgorithmHashmod,
			cfgs:    []RingConfig{{Endpoints: []EndpointConfig{{Address: "a:1", AZ: "z"}}}},
			wantErr: "zones need the ketama algorithm",
		},
		{name: "invalid ring", rf: 1, cfgs: []RingConfig{{Algorithm: "x", Endpoints: eps("a:1")}}, wantErr: `hashring 0: unknown algorithm "x"`},
		{name: "unknown default", rf: 1, defaultAlg: "x", cfgs: []RingConfig{{Endpoints: eps("a:1")}}, wantErr: `unknown algorithm "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewMulti(tc.cfgs, tc.defaultAlg, tc.rf)
			require.ErrorContains(t, err, tc.wantErr)
			if tc.wantErrIs != nil {
				require.ErrorIs(t, err, tc.wantErrIs)
			}
		})
	}
}

// naiveMatch is the resolution rule as written in the docs: a ring serves a
// tenant it lists, one its glob patterns match, or any tenant if it lists none.
func naiveMatch(c RingConfig, tenant string) bool {
	if len(c.Tenants) == 0 || slices.Contains(c.Tenants, tenant) {
		return true
	}
	if c.TenantMatcherType == TenantMatcherGlob {
		for _, p := range c.Tenants {
			if ok, _ := path.Match(p, tenant); ok {
				return true
			}
		}
	}
	return false
}

// TestMultiMatchesNaive compares the indexed lookup with the naive walk over
// random configurations.
func TestMultiMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	words := []string{"a", "b", "ab", "a*", "*b", "?", "[ab]", "team-1", "team-*", "*", "c"}
	for trial := range 200 {
		cfgs := make([]RingConfig, 1+rng.IntN(5))
		for i := range cfgs {
			c := RingConfig{Name: fmt.Sprint(i), Endpoints: eps(fmt.Sprintf("r%d:1", i))}
			for range rng.IntN(4) {
				c.Tenants = append(c.Tenants, words[rng.IntN(len(words))])
			}
			if rng.IntN(2) == 0 {
				c.TenantMatcherType = TenantMatcherGlob
			}
			cfgs[i] = c
		}
		m, err := NewMulti(cfgs, AlgorithmKetama, 1)
		require.NoError(t, err)
		for _, tenant := range append(slices.Clone(words), "team-2", "bb", "", "zz") {
			want := "none"
			for _, c := range cfgs {
				if naiveMatch(c, tenant) {
					want = c.Name
					break
				}
			}
			got := "none"
			if nr, err := m.Resolve(tenant); err == nil {
				got = nr.Name
			}
			require.Equal(t, want, got, "trial %d tenant %q cfgs %+v", trial, tenant, cfgs)
		}
	}
}

func TestMultiRingsAreDistinctPerConfig(t *testing.T) {
	m, err := NewMulti([]RingConfig{
		{Tenants: []string{"a"}, Endpoints: eps("x:1", "y:1", "z:1")},
		{Endpoints: eps("x:1", "y:1", "z:1"), Algorithm: AlgorithmHashmod},
	}, AlgorithmKetama, 2)
	require.NoError(t, err)
	ra, err := m.Ring("a")
	require.NoError(t, err)
	rb, err := m.Ring("b")
	require.NoError(t, err)
	require.Equal(t, 2, ra.ReplicationFactor())
	require.IsType(t, &ketamaRing{}, ra)
	require.IsType(t, &hashmodRing{}, rb)
}
