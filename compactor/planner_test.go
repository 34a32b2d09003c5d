package compactor

import (
	"fmt"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
)

const h = int64(3600 * 1000)

// pm makes a planner test meta named n (its ULID's entropy) covering
// [mint, maxt) hours at resolution res.
func pm(n byte, mintH, maxtH int64, res int64) *block.Meta {
	m := &block.Meta{}
	m.ULID = ulid.ULID{15: n, 0: 1}
	m.MinTime, m.MaxTime = mintH*h, maxtH*h
	m.Compaction.Sources = []ulid.ULID{m.ULID}
	m.Thanos.Downsample.Resolution = res
	return m
}

func names(metas []*block.Meta) []byte {
	out := []byte{}
	for _, m := range metas {
		out = append(out, m.ULID[15])
	}
	return out
}

func TestPlanGroup(t *testing.T) {
	raw := block.ResolutionRaw
	twoHourly := func(first byte, fromH, n int64) []*block.Meta {
		var out []*block.Meta
		for i := range n {
			out = append(out, pm(first+byte(i), fromH+2*i, fromH+2*i+2, raw))
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		metas     []*block.Meta
		excluded  []byte
		compact   []byte
		vertical  bool
		noCompact []byte
	}{
		{name: "empty"},
		{name: "one block", metas: twoHourly(1, 0, 1)},
		{name: "two blocks: the newest is left out", metas: twoHourly(1, 0, 2)},
		{name: "three 2h blocks in an 8h window: not complete, and the last ends after the newest remaining starts", metas: twoHourly(1, 0, 3)},
		{name: "four 2h blocks plus a newer one: one 8h block", metas: twoHourly(1, 0, 5), compact: []byte{1, 2, 3, 4}},
		{
			name:  "four 2h blocks, the newest in the window: the window is neither complete nor before the newest remaining block",
			metas: twoHourly(1, 0, 4),
		},
		{
			name:    "gap in a complete window still spans the range",
			metas:   []*block.Meta{pm(1, 0, 2, raw), pm(2, 6, 8, raw), pm(3, 8, 10, raw)},
			compact: []byte{1, 2},
		},
		{
			name: "six 8h blocks plus newer: one 2d block",
			metas: []*block.Meta{
				pm(1, 0, 8, raw), pm(2, 8, 16, raw), pm(3, 16, 24, raw), pm(4, 24, 32, raw),
				pm(5, 32, 40, raw), pm(6, 40, 48, raw), pm(7, 48, 50, raw),
			},
			compact: []byte{1, 2, 3, 4, 5, 6},
		},
		{
			name: "smaller ranges first",
			metas: append([]*block.Meta{
				pm(1, 0, 8, raw), pm(2, 8, 16, raw), pm(3, 16, 24, raw), pm(4, 24, 32, raw),
				pm(5, 32, 40, raw), pm(6, 40, 48, raw),
			}, twoHourly(7, 48, 5)...),
			compact: []byte{7, 8, 9, 10},
		},
		{
			name:    "block that crosses a window boundary is skipped",
			metas:   []*block.Meta{pm(1, 6, 10, raw), pm(2, 10, 12, raw), pm(3, 12, 14, raw), pm(4, 14, 16, raw), pm(5, 16, 18, raw), pm(6, 18, 20, raw)},
			compact: []byte{2, 3, 4},
		},
		{
			name:    "overlap first, raw: vertical compaction",
			metas:   []*block.Meta{pm(1, 0, 2, raw), pm(2, 2, 4, raw), pm(3, 2, 4, raw), pm(4, 3, 6, raw), pm(5, 8, 10, raw)},
			compact: []byte{2, 3, 4}, vertical: true,
		},
		{
			name:    "overlap of the newest block is compacted too",
			metas:   []*block.Meta{pm(1, 0, 2, raw), pm(2, 0, 2, raw)},
			compact: []byte{1, 2}, vertical: true,
		},
		{
			name:    "adjacent blocks do not overlap",
			metas:   []*block.Meta{pm(1, 0, 2, raw), pm(2, 2, 4, raw)},
			compact: nil,
		},
		{
			name:      "overlapping downsampled blocks: the newer are marked no-compact",
			metas:     []*block.Meta{pm(3, 0, 48, block.Resolution5m), pm(1, 0, 48, block.Resolution5m), pm(2, 24, 72, block.Resolution5m)},
			noCompact: []byte{2, 3},
		},
		{
			name:     "no-compact block cuts the run; the rest of the window is compacted",
			metas:    twoHourly(1, 0, 5),
			excluded: []byte{2},
			compact:  []byte{3, 4},
		},
		{
			name:     "no-compact block leaves single blocks alone",
			metas:    twoHourly(1, 0, 5),
			excluded: []byte{2, 4},
		},
		{
			name:     "excluded overlapping block is not compacted",
			metas:    []*block.Meta{pm(1, 0, 2, raw), pm(2, 0, 2, raw), pm(3, 2, 4, raw)},
			excluded: []byte{2},
		},
		{
			name:     "excluded newest block: the remaining newest is still left out of the level plan",
			metas:    twoHourly(1, 0, 5),
			excluded: []byte{5},
			compact:  []byte{1, 2, 3, 4},
		},
		{
			name:    "negative times align down",
			metas:   []*block.Meta{pm(1, -8, -6, raw), pm(2, -6, -4, raw), pm(3, -4, -2, raw), pm(4, -2, 0, raw), pm(5, 0, 2, raw)},
			compact: []byte{1, 2, 3, 4},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := map[ulid.ULID]bool{}
			for _, n := range tc.excluded {
				ex[ulid.ULID{15: n, 0: 1}] = true
			}
			p := PlanGroup(tc.metas, ex, DefaultRanges)
			if tc.compact == nil {
				require.Empty(t, p.Compact)
			} else {
				require.Equal(t, tc.compact, names(p.Compact))
			}
			require.Equal(t, tc.vertical, p.Vertical)
			if tc.noCompact == nil {
				require.Empty(t, p.NoCompact)
			} else {
				require.ElementsMatch(t, tc.noCompact, names(p.NoCompact))
			}
		})
	}
}

// TestPlanGroupLevels plans 5 days of 2h blocks to the end, simulating each
// compaction, and checks the levels that result.
func TestPlanGroupLevels(t *testing.T) {
	var metas []*block.Meta
	for i := range int64(60) {
		metas = append(metas, pm(byte(i+1), 2*i, 2*i+2, block.ResolutionRaw))
	}
	for range 1000 {
		p := PlanGroup(metas, nil, DefaultRanges)
		if p.Empty() {
			break
		}
		metas = replace(metas, p.Compact, simulatedMerge(p.Compact))
	}
	var got []string
	for _, m := range sortedByMinTime(metas) {
		got = append(got, fmt.Sprintf("%d-%d", m.MinTime/h, m.MaxTime/h))
	}
	require.Equal(t, []string{"0-48", "48-96", "96-104", "104-112", "112-114", "114-116", "116-118", "118-120"}, got)

	gs := []*group{{key: "g", metas: func() []*block.Meta {
		var ms []*block.Meta
		for i := range int64(60) {
			ms = append(ms, pm(byte(i+1), 2*i, 2*i+2, block.ResolutionRaw))
		}
		return ms
	}()}}
	groups, blocks := todo(gs, nil, DefaultRanges)
	require.Equal(t, 1, groups)
	// 14 compactions of four 2h blocks, then 2 of six 8h blocks.
	require.Equal(t, 14*4+2*6, blocks)
}

func TestFindDuplicates(t *testing.T) {
	a, b, c, d := pm(1, 0, 2, 0), pm(2, 2, 4, 0), pm(3, 0, 4, 0), pm(4, 0, 4, 0)
	c.Compaction.Sources = []ulid.ULID{a.ULID, b.ULID}
	d.Compaction.Sources = []ulid.ULID{a.ULID, b.ULID} // same sources as c: the smaller ULID (c) is kept
	other := pm(5, 0, 2, 0)
	other.Thanos.Labels = map[string]string{"tenant_id": "x"}
	other.Compaction.Sources = []ulid.ULID{a.ULID} // another group: not a duplicate
	ds := pm(6, 0, 4, block.Resolution5m)
	ds.Compaction.Sources = []ulid.ULID{a.ULID, b.ULID} // another resolution: not a duplicate

	dups := findDuplicates([]*block.Meta{a, b, c, d, other, ds})
	require.Equal(t, map[ulid.ULID]ulid.ULID{a.ULID: c.ULID, b.ULID: c.ULID, d.ULID: c.ULID}, dups)
}
