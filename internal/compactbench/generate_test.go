package compactbench

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
)

// TestDatasetWrite checks the generator writes real, readable blocks: every
// replica's block holds the same samples, one per step, counters only rising.
func TestDatasetWrite(t *testing.T) {
	dir := t.TempDir()
	d := Dataset{Series: 150, Days: 1, Replicas: 2, Step: 60_000, Start: 0}
	n, err := d.Write(context.Background(), dir)
	require.NoError(t, err)
	require.Equal(t, 24, n)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 24)

	byRange := map[int64][]map[string][]blocktest.Sample{}
	var total int64
	for _, e := range entries {
		bdir := filepath.Join(dir, e.Name())
		m, err := block.ReadMetaFromDir(bdir)
		require.NoError(t, err)
		require.Equal(t, e.Name(), m.ULID.String())
		require.Contains(t, []string{"0", "1"}, m.Thanos.Labels["receive_replica"])
		samples := blocktest.Samples(t, bdir)
		require.Len(t, samples, d.Series)
		for key, ss := range samples {
			require.Len(t, ss, 120, key)
			for i := 1; i < len(ss); i++ {
				require.Equal(t, ss[i-1].T+d.Step, ss[i].T)
				require.GreaterOrEqual(t, ss[i].V, ss[i-1].V)
			}
			total += int64(len(ss))
		}
		byRange[m.MinTime] = append(byRange[m.MinTime], samples)
	}
	require.Equal(t, d.Samples()*int64(d.Replicas), total)
	for lo, replicas := range byRange {
		require.Len(t, replicas, 2, "block at %d", lo)
		require.Equal(t, replicas[0], replicas[1], "replicas of the block at %d differ", lo)
	}
}
