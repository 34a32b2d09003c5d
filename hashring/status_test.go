package hashring

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// foreignRing hides the implementation of a ring, as a Ring from another
// package would, so that Status has to estimate.
type foreignRing struct{ Ring }

func TestStatus(t *testing.T) {
	t.Parallel()
	hashes := seriesHashes()
	for _, tc := range []struct {
		name string
		ring Ring
	}{
		{name: "ketama", ring: mustNew(t, AlgorithmKetama, testEndpoints(5, "a", "b"), 2)},
		{name: "hashmod", ring: mustNew(t, AlgorithmHashmod, testEndpoints(5), 2)},
		{name: "foreign ketama", ring: foreignRing{mustNew(t, AlgorithmKetama, testEndpoints(5), 2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := Status(tc.ring)
			require.Len(t, st, 5)

			// Shares add up to 1 and agree with where the series land.
			counts := make([]int, 5)
			dst := make([]int, 0, 2)
			for _, h := range hashes {
				dst = tc.ring.Owners(h, dst[:0])
				counts[dst[0]]++
			}
			total := 0.0
			for i, m := range st {
				ep := tc.ring.Endpoints()[i]
				require.Equal(t, ep.Name, m.Name)
				require.Equal(t, ep.Address, m.Address)
				require.Equal(t, ep.Zone, m.Zone)
				require.Equal(t, ep.State, m.State)
				total += m.OwnedShare
				// 1M samples: the standard error of a share is about 0.0004.
				require.InDelta(t, float64(counts[i])/float64(len(hashes)), m.OwnedShare, 0.003, "endpoint %s", m.Name)
			}
			require.InDelta(t, 1.0, total, 1e-9)
		})
	}
	t.Run("hashmod is exactly even", func(t *testing.T) {
		for _, m := range Status(mustNew(t, AlgorithmHashmod, testEndpoints(4), 1)) {
			require.Equal(t, 0.25, m.OwnedShare)
		}
	})
	t.Run("ketama estimate agrees with arcs", func(t *testing.T) {
		r := mustNew(t, AlgorithmKetama, testEndpoints(4), 1)
		exact, est := Status(r), Status(foreignRing{r})
		for i := range exact {
			require.InDelta(t, exact[i].OwnedShare, est[i].OwnedShare, 0.005)
		}
	})
}

func TestMemberStatusJSON(t *testing.T) {
	b, err := json.Marshal(MemberStatus{Name: "n", Address: "a:1", Zone: "z", State: StateActive, OwnedShare: 0.5})
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"n","address":"a:1","zone":"z","state":"ACTIVE","owned_share":0.5}`, string(b))
}
