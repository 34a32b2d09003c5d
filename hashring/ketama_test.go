package hashring

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// maxOverMean returns the largest count over the mean count.
func maxOverMean(counts []int) float64 {
	total := 0
	for _, c := range counts {
		total += c
	}
	return float64(slices.Max(counts)) * float64(len(counts)) / float64(total)
}

func mustNew(t testing.TB, alg Algorithm, eps []Endpoint, rf int) Ring {
	t.Helper()
	r, err := New(alg, eps, rf)
	require.NoError(t, err)
	return r
}

// TestKetamaBalance places the shared random series (Hash over random tenants
// and label sets, not random integers) and bounds the busiest node's primary
// share at 1.10 times the mean.
func TestKetamaBalance(t *testing.T) {
	t.Parallel()
	hashes := seriesHashes()
	for _, n := range []int{3, 6, 12} {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			r := mustNew(t, AlgorithmKetama, testEndpoints(n), 3)
			primary := make([]int, n)
			all := make([]int, n)
			dst := make([]int, 0, 3)
			for _, h := range hashes {
				dst = r.Owners(h, dst[:0])
				primary[dst[0]]++
				for _, o := range dst {
					all[o]++
				}
			}
			exact := 0.0
			for _, m := range Status(r) {
				exact = max(exact, m.OwnedShare*float64(n))
			}
			p, a := maxOverMean(primary), maxOverMean(all)
			t.Logf("ketama %2d nodes: primary max/mean %.4f (exact from arcs %.4f), all replicas RF=3 max/mean %.4f",
				n, p, exact, a)
			require.LessOrEqual(t, p, 1.10)
			require.LessOrEqual(t, exact, 1.10)
		})
	}
}

// TestKetamaBalanceZones reports balance when zones constrain replicas; only
// primary ownership is bounded, as zones of unequal size cannot balance
// replicas.
func TestKetamaBalanceZones(t *testing.T) {
	t.Parallel()
	hashes := seriesHashes()
	r := mustNew(t, AlgorithmKetama, testEndpoints(6, "a", "b", "c"), 3)
	primary := make([]int, 6)
	all := make([]int, 6)
	dst := make([]int, 0, 3)
	for _, h := range hashes {
		dst = r.Owners(h, dst[:0])
		primary[dst[0]]++
		for _, o := range dst {
			all[o]++
		}
	}
	t.Logf("ketama 6 nodes in 3 zones RF=3: primary max/mean %.4f, all replicas max/mean %.4f",
		maxOverMean(primary), maxOverMean(all))
	require.LessOrEqual(t, maxOverMean(primary), 1.10)
}

// primaryNames returns the name of the primary owner of every hash.
func primaryNames(r Ring, hashes []uint64) []string {
	out := make([]string, len(hashes))
	dst := make([]int, 0, r.ReplicationFactor())
	for i, h := range hashes {
		dst = r.Owners(h, dst[:0])
		out[i] = r.Endpoints()[dst[0]].Name
	}
	return out
}

// movedFraction returns the fraction of hashes whose primary owner in r is
// not the one in before.
func movedFraction(before []string, r Ring, hashes []uint64) float64 {
	moved := 0
	for i, name := range primaryNames(r, hashes) {
		if name != before[i] {
			moved++
		}
	}
	return float64(moved) / float64(len(hashes))
}

// TestMovement adds a node to N and removes one of N. Ketama must move at most
// 1.2/N of the series; hashmod is printed for contrast.
func TestMovement(t *testing.T) {
	t.Parallel()
	hashes := seriesHashes()
	for _, alg := range []Algorithm{AlgorithmKetama, AlgorithmHashmod} {
		for _, n := range []int{3, 6, 12} {
			t.Run(fmt.Sprintf("%s/nodes=%d", alg, n), func(t *testing.T) {
				eps := testEndpoints(n + 1)
				base := primaryNames(mustNew(t, alg, eps[:n], 1), hashes)
				grown := mustNew(t, alg, eps, 1)
				// Remove a node from the middle, not the newest one.
				shrunk := mustNew(t, alg, slices.Delete(slices.Clone(eps[:n]), n/2, n/2+1), 1)

				add, remove := movedFraction(base, grown, hashes), movedFraction(base, shrunk, hashes)
				limit := 1.2 / float64(n)
				t.Logf("%-7s N=%2d: add one moves %.4f (ideal 1/(N+1) = %.4f), remove one moves %.4f (ideal 1/N = %.4f), limit 1.2/N = %.4f",
					alg, n, add, 1/float64(n+1), remove, 1/float64(n), limit)
				if alg == AlgorithmKetama {
					require.LessOrEqual(t, add, limit)
					require.LessOrEqual(t, remove, limit)
				}
			})
		}
	}
}

// TestKetamaMovementOnlyToNewNode checks the consistent-hashing property
// itself: when a node joins, every series that moves, moves to the new node.
func TestKetamaMovementOnlyToNewNode(t *testing.T) {
	eps := testEndpoints(7)
	hashes := seriesHashes()[:100_000]
	before := primaryNames(mustNew(t, AlgorithmKetama, eps[:6], 1), hashes)
	after := primaryNames(mustNew(t, AlgorithmKetama, eps, 1), hashes)
	for i := range hashes {
		if before[i] != after[i] {
			require.Equal(t, eps[6].Name, after[i])
		}
	}
}

// zonesOf returns the distinct zones of owners.
func zonesOf(r Ring, owners []int) map[string]int {
	z := map[string]int{}
	for _, o := range owners {
		z[r.Endpoints()[o].Zone]++
	}
	return z
}

func TestKetamaZones(t *testing.T) {
	t.Parallel()
	hashes := seriesHashes()
	for _, tc := range []struct {
		name      string
		eps       []Endpoint
		rf        int
		wantZones int
	}{
		{name: "6 nodes, 3 zones, RF=3", eps: testEndpoints(6, "a", "b", "c"), rf: 3, wantZones: 3},
		{name: "4 nodes, 2 zones, RF=3", eps: testEndpoints(4, "a", "b"), rf: 3, wantZones: 2},
		{name: "3 nodes, 3 zones, RF=2", eps: testEndpoints(3, "a", "b", "c"), rf: 2, wantZones: 2},
		{name: "9 nodes, 3 zones, RF=2", eps: testEndpoints(9, "a", "b", "c"), rf: 2, wantZones: 2},
		{name: "7 nodes, 1 in zone a, RF=3", eps: append(testEndpoints(6, "b"), Endpoint{Name: "z", Zone: "a"}), rf: 3, wantZones: 2},
		{name: "empty zone is a zone", eps: testEndpoints(6, "", "x", "y"), rf: 3, wantZones: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustNew(t, AlgorithmKetama, tc.eps, tc.rf)
			// A bit per zone keeps a million checks cheap.
			zoneBit := map[string]uint{}
			zoneBits := make([]uint, len(r.Endpoints()))
			for i, ep := range r.Endpoints() {
				if _, ok := zoneBit[ep.Zone]; !ok {
					zoneBit[ep.Zone] = 1 << len(zoneBit)
				}
				zoneBits[i] = zoneBit[ep.Zone]
			}
			dst := make([]int, 0, tc.rf)
			check := func(h uint64) {
				dst = r.Owners(h, dst[:0])
				var seen uint
				for _, o := range dst {
					seen |= zoneBits[o]
				}
				if bits.OnesCount(seen) != tc.wantZones {
					require.Len(t, zonesOf(r, dst), tc.wantZones, "hash %d owners %v", h, dst)
				}
			}
			// Every series maps to a token, so checking the owners of every
			// token proves the property for all hashes ...
			k := r.(*ketamaRing)
			for _, tok := range k.tokens {
				check(tok)
			}
			// ... and the series check is what a reader expects to see.
			for _, h := range hashes {
				check(h)
			}
			t.Logf("%s: all %d series and %d tokens have owners in %d zones", tc.name, len(hashes), len(k.tokens), tc.wantZones)
		})
	}
}

// TestKetamaZoneRuleRandom checks the zone rule on random rings: owners are
// distinct, and no zone holds more than one replica more than a zone that
// still has a free endpoint.
func TestKetamaZoneRuleRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 30 {
		n := 1 + rng.IntN(9)
		rf := 1 + rng.IntN(n)
		numZones := 1 + rng.IntN(4)
		eps := make([]Endpoint, n)
		size := map[string]int{}
		for i := range eps {
			z := fmt.Sprintf("z%d", rng.IntN(numZones))
			if rng.IntN(5) == 0 {
				z = ""
			}
			eps[i] = Endpoint{Name: fmt.Sprintf("node-%d-%d", trial, i), Zone: z}
			size[z]++
		}
		r := mustNew(t, AlgorithmKetama, eps, rf)
		k := r.(*ketamaRing)
		for i := 0; i < len(k.tokens); i += 7 {
			owners := k.Owners(k.tokens[i], nil)
			require.Len(t, owners, rf)
			require.Len(t, uniq(owners), rf, "owners %v", owners)
			count := zonesOf(r, owners)
			for z1, c1 := range count {
				for z2, s2 := range size {
					if count[z2] < s2 {
						require.LessOrEqual(t, c1, count[z2]+1, "trial %d: zone %q has %d replicas, zone %q only %d of %d endpoints",
							trial, z1, c1, z2, count[z2], s2)
					}
				}
			}
		}
	}
}

func uniq(xs []int) []int {
	s := slices.Clone(xs)
	slices.Sort(s)
	return slices.Compact(s)
}

// TestKetamaWrapAround checks hashes above the largest token and at the
// extremes of the hash space belong to the first token.
func TestKetamaWrapAround(t *testing.T) {
	r := mustNew(t, AlgorithmKetama, testEndpoints(3), 2).(*ketamaRing)
	first := r.Owners(r.tokens[0], nil)
	require.Equal(t, first, r.Owners(r.tokens[len(r.tokens)-1]+1, nil))
	require.Equal(t, first, r.Owners(^uint64(0), nil))
	require.Equal(t, first, r.Owners(0, nil))
	// A hash equal to a token belongs to that token; one above it to the next.
	require.Equal(t, r.Owners(r.tokens[5], nil), []int{int(r.owners[10]), int(r.owners[11])})
	require.Equal(t, r.Owners(r.tokens[5]+1, nil), []int{int(r.owners[12]), int(r.owners[13])})
}
