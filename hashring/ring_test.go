package hashring

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name      string
		alg       Algorithm
		eps       []Endpoint
		rf        int
		wantErr   string
		wantErrIs error
	}{
		{name: "ketama", alg: AlgorithmKetama, eps: testEndpoints(3), rf: 3},
		{name: "hashmod", alg: AlgorithmHashmod, eps: testEndpoints(3), rf: 2},
		{name: "ketama with zones", alg: AlgorithmKetama, eps: testEndpoints(3, "a", "b"), rf: 3},
		{name: "one endpoint", alg: AlgorithmKetama, eps: testEndpoints(1), rf: 1},
		{name: "rf zero", alg: AlgorithmKetama, eps: testEndpoints(3), rf: 0, wantErr: "replication factor 0 is less than 1"},
		{name: "rf negative", alg: AlgorithmHashmod, eps: testEndpoints(3), rf: -1, wantErr: "replication factor -1 is less than 1"},
		{
			name: "duplicate name", alg: AlgorithmKetama, rf: 1,
			eps:     []Endpoint{{Name: "a"}, {Name: "b"}, {Name: "a"}},
			wantErr: `duplicate endpoint name "a"`,
		},
		{name: "empty name", alg: AlgorithmKetama, rf: 1, eps: []Endpoint{{Address: "x:1"}}, wantErr: `endpoint with address "x:1" has an empty name`},
		{
			name: "fewer endpoints than rf", alg: AlgorithmKetama, eps: testEndpoints(2), rf: 3,
			wantErr: "build ketama ring: 2 endpoints for replication factor 3", wantErrIs: ErrNotEnoughEndpoints,
		},
		{name: "no endpoints", alg: AlgorithmHashmod, rf: 1, wantErr: "0 endpoints for replication factor 1", wantErrIs: ErrNotEnoughEndpoints},
		{name: "unknown algorithm", alg: "rendezvous", eps: testEndpoints(1), rf: 3, wantErr: `unknown algorithm "rendezvous"`},
		{name: "empty algorithm", alg: "", eps: testEndpoints(3), rf: 1, wantErr: `unknown algorithm ""`},
		{name: "hashmod with zones", alg: AlgorithmHashmod, eps: testEndpoints(3, "a"), rf: 1, wantErr: "zones need the ketama algorithm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.alg, tc.eps, tc.rf)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				if tc.wantErrIs != nil {
					require.ErrorIs(t, err, tc.wantErrIs)
				}
				require.Nil(t, r)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.rf, r.ReplicationFactor())
			require.Len(t, r.Endpoints(), len(tc.eps))
			require.True(t, slices.IsSortedFunc(r.Endpoints(), func(a, b Endpoint) int {
				return compareStrings(a.Name, b.Name)
			}))
		})
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestNewDoesNotKeepCallersSlice(t *testing.T) {
	eps := testEndpoints(3)
	eps[0], eps[2] = eps[2], eps[0]
	before := slices.Clone(eps)
	r := mustNew(t, AlgorithmKetama, eps, 2)
	require.Equal(t, before, eps, "New must not sort the caller's slice")
	eps[0].Name = "changed"
	for _, ep := range r.Endpoints() {
		require.NotEqual(t, "changed", ep.Name)
	}
}

// TestDeterminism builds each ring from shuffled copies of the same endpoints
// and requires identical endpoints and owners, and RF distinct owners.
func TestDeterminism(t *testing.T) {
	hashes := seriesHashes()[:50_000]
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		name string
		alg  Algorithm
		eps  []Endpoint
		rf   int
	}{
		{name: "ketama", alg: AlgorithmKetama, eps: testEndpoints(7), rf: 3},
		{name: "ketama zones", alg: AlgorithmKetama, eps: testEndpoints(7, "a", "b", "c"), rf: 3},
		{name: "ketama rf=n", alg: AlgorithmKetama, eps: testEndpoints(4), rf: 4},
		{name: "hashmod", alg: AlgorithmHashmod, eps: testEndpoints(7), rf: 3},
		{name: "hashmod rf=n", alg: AlgorithmHashmod, eps: testEndpoints(4), rf: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := mustNew(t, tc.alg, tc.eps, tc.rf)
			shuffled := slices.Clone(tc.eps)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			got := mustNew(t, tc.alg, shuffled, tc.rf)
			require.Equal(t, want.Endpoints(), got.Endpoints())

			var a, b []int
			for _, h := range hashes {
				a, b = want.Owners(h, a[:0]), got.Owners(h, b[:0])
				if !slices.Equal(a, b) {
					require.Equal(t, a, b, "hash %d", h)
				}
				if len(uniq(a)) != tc.rf {
					require.Len(t, uniq(a), tc.rf, "hash %d owners %v", h, a)
				}
			}
		})
	}
}

func TestOwnersAppends(t *testing.T) {
	for _, alg := range []Algorithm{AlgorithmKetama, AlgorithmHashmod} {
		t.Run(string(alg), func(t *testing.T) {
			r := mustNew(t, alg, testEndpoints(5), 3)
			dst := []int{-1, -2}
			got := r.Owners(12345, dst)
			require.Len(t, got, 5)
			require.Equal(t, []int{-1, -2}, got[:2])
			require.Equal(t, r.Owners(12345, nil), got[2:])
		})
	}
}

func TestHashmodOwners(t *testing.T) {
	eps := []Endpoint{{Name: "c"}, {Name: "a"}, {Name: "b"}}
	r := mustNew(t, AlgorithmHashmod, eps, 2)
	names := func(h uint64) []string {
		var out []string
		for _, o := range r.Owners(h, nil) {
			out = append(out, r.Endpoints()[o].Name)
		}
		return out
	}
	require.Equal(t, []string{"a", "b"}, names(0))
	require.Equal(t, []string{"b", "c"}, names(4))
	require.Equal(t, []string{"c", "a"}, names(5))
	// (2^64-1) mod 3 = 0. Computing (h+1) mod 3 in uint64 would wrap to 0
	// and name "a" twice.
	require.Equal(t, []string{"a", "b"}, names(^uint64(0)))
}

func TestParseAlgorithm(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Algorithm
		wantErr bool
	}{
		{in: "ketama", want: AlgorithmKetama},
		{in: "hashmod", want: AlgorithmHashmod},
		{in: "", wantErr: true},
		{in: "Ketama", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseAlgorithm(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
