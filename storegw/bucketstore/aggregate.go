package bucketstore

import (
	"cmp"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// numAggrs is the number of AggrChunk fields: raw and the five aggregates,
// indexed by their storepb.Aggr value.
const numAggrs = int(storepb.Aggr_COUNTER) + 1

// aggrName returns the block.AggregateLabel value of aggregate a, or "" for
// RAW and unknown values.
func aggrName(a storepb.Aggr) string {
	switch a {
	case storepb.Aggr_COUNT:
		return block.AggregateCount
	case storepb.Aggr_SUM:
		return block.AggregateSum
	case storepb.Aggr_MIN:
		return block.AggregateMin
	case storepb.Aggr_MAX:
		return block.AggregateMax
	case storepb.Aggr_COUNTER:
		return block.AggregateCounter
	}
	return ""
}

// aggrByName is the inverse of aggrName; ok is false for a value that names no
// aggregate.
func aggrByName(v string) (storepb.Aggr, bool) {
	for a := storepb.Aggr_COUNT; a <= storepb.Aggr_COUNTER; a++ {
		if aggrName(a) == v {
			return a, true
		}
	}
	return storepb.Aggr_RAW, false
}

// downsampled reports whether the block holds aggregates rather than raw
// samples.
func (b *Block) downsampled() bool {
	return b.meta.Thanos.Downsample.Resolution != block.ResolutionRaw
}

// aggregates returns the sorted aggregates q reads from the block, or nil if the
// block is raw. A query without chunks reads every aggregate: which of them a
// series has is unknown until its entries are read.
func (b *Block) aggregates(q Query) []storepb.Aggr {
	if !b.downsampled() {
		return nil
	}
	if q.SkipChunks {
		return []storepb.Aggr{storepb.Aggr_COUNT, storepb.Aggr_SUM, storepb.Aggr_MIN, storepb.Aggr_MAX, storepb.Aggr_COUNTER}
	}
	var out []storepb.Aggr
	for _, a := range q.Aggregates {
		if aggrName(a) != "" {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		// RAW, or nothing, from a downsampled block: the client can still
		// compute the average, as Thanos' store gateway serves it.
		return []storepb.Aggr{storepb.Aggr_COUNT, storepb.Aggr_SUM}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// aggregateMatcher selects the aggregate series of aggrs.
func aggregateMatcher(aggrs []storepb.Aggr) *labels.Matcher {
	if len(aggrs) == 1 {
		return labels.MustNewMatcher(labels.MatchEqual, block.AggregateLabel, aggrName(aggrs[0]))
	}
	names := make([]string, len(aggrs))
	for i, a := range aggrs {
		names[i] = regexp.QuoteMeta(aggrName(a))
	}
	return labels.MustNewMatcher(labels.MatchRegexp, block.AggregateLabel, strings.Join(names, "|"))
}

// seriesGroup is one series as clients see it, before the external labels are
// attached, with the chunks to send.
type seriesGroup struct {
	lset labels.Labels
	// metas are the series' chunks, those of one slot next to each other.
	metas []chunks.Meta
	// aggrs are the aggregates of metas, index by index; nil means all RAW.
	aggrs []storepb.Aggr
	slots []slot
}

// slot is one AggrChunk to send: its fields are the chunks metas[lo:hi] of its
// group, and it spans their time range.
type slot struct {
	lo, hi     int32
	mint, maxt int64
}

func (g *seriesGroup) aggr(i int32) storepb.Aggr {
	if g.aggrs == nil {
		return storepb.Aggr_RAW
	}
	return g.aggrs[i]
}

// addSlot adds a slot of the chunks cs of aggregates as.
func (g *seriesGroup) addSlot(cs []chunks.Meta, as []storepb.Aggr) {
	s := slot{lo: int32(len(g.metas)), hi: int32(len(g.metas) + len(cs)), mint: cs[0].MinTime, maxt: cs[0].MaxTime}
	for _, c := range cs {
		s.mint, s.maxt = min(s.mint, c.MinTime), max(s.maxt, c.MaxTime)
	}
	g.metas = append(g.metas, cs...)
	g.aggrs = append(g.aggrs, as...)
	g.slots = append(g.slots, s)
}

// build returns the AggrChunk of slot s from the chunks read, data. With
// ranges (see Query.ranges), a chunk that reaches outside them is cut to them;
// nil means nothing of the slot is left.
func (g *seriesGroup) build(s slot, data map[chunks.ChunkRef]*storepb.Chunk, ranges []interval) (*storepb.AggrChunk, error) {
	ac := &storepb.AggrChunk{MinTime: s.mint, MaxTime: s.maxt}
	if len(ranges) == 0 || within(ranges, s.mint, s.maxt) {
		for i := s.lo; i < s.hi; i++ {
			setField(ac, g.aggr(i), data[g.metas[i].Ref])
		}
		return ac, nil
	}
	first := true
	for i := s.lo; i < s.hi; i++ {
		m := g.metas[i]
		c := data[m.Ref]
		if !within(ranges, m.MinTime, m.MaxTime) {
			tc, mint, maxt, err := trimChunk(c, m.MinTime, m.MaxTime, ranges)
			if err != nil {
				return nil, errorf(ErrCorrupt, "chunk %d: %v", m.Ref, err)
			}
			if tc == nil {
				continue
			}
			c, m.MinTime, m.MaxTime = tc, mint, maxt
		}
		if first {
			ac.MinTime, ac.MaxTime, first = m.MinTime, m.MaxTime, false
		}
		ac.MinTime, ac.MaxTime = min(ac.MinTime, m.MinTime), max(ac.MaxTime, m.MaxTime)
		setField(ac, g.aggr(i), c)
	}
	if first {
		return nil, nil
	}
	return ac, nil
}

func setField(ac *storepb.AggrChunk, a storepb.Aggr, c *storepb.Chunk) {
	switch a {
	case storepb.Aggr_RAW:
		ac.Raw = c
	case storepb.Aggr_COUNT:
		ac.Count = c
	case storepb.Aggr_SUM:
		ac.Sum = c
	case storepb.Aggr_MIN:
		ac.Min = c
	case storepb.Aggr_MAX:
		ac.Max = c
	case storepb.Aggr_COUNTER:
		ac.Counter = c
	}
}

// groupRaw returns the series of a raw block: one slot per chunk.
func groupRaw(entries []seriesEntry) []seriesGroup {
	out := make([]seriesGroup, len(entries))
	n := 0
	for _, e := range entries {
		n += len(e.chunks)
	}
	// One allocation for the slots of all series.
	all := make([]slot, n)
	for i, e := range entries {
		g := seriesGroup{lset: e.lset, metas: e.chunks, slots: all[:len(e.chunks):len(e.chunks)]}
		all = all[len(e.chunks):]
		for j, c := range e.chunks {
			g.slots[j] = slot{lo: int32(j), hi: int32(j + 1), mint: c.MinTime, maxt: c.MaxTime}
		}
		out[i] = g
	}
	return out
}

// groupAggregates joins the aggregate series S{__aggregate__=x} of a
// downsampled block into series S, sorted by labels. The writer cuts the
// aggregates of one series at the same windows, so when all of S's aggregates
// have the same number of chunks, chunk i of each goes into one slot;
// otherwise every chunk gets a slot of its own. Series without a known
// aggregate label value are not served.
func groupAggregates(entries []seriesEntry) []seriesGroup {
	type member struct {
		lset labels.Labels // without the aggregate label
		aggr storepb.Aggr
		e    seriesEntry
	}
	members := make([]member, 0, len(entries))
	bld := labels.NewBuilder(labels.EmptyLabels())
	for _, e := range entries {
		a, ok := aggrByName(e.lset.Get(block.AggregateLabel))
		if !ok {
			continue
		}
		bld.Reset(e.lset)
		bld.Del(block.AggregateLabel)
		members = append(members, member{lset: bld.Labels(), aggr: a, e: e})
	}
	slices.SortFunc(members, func(a, b member) int {
		if c := labels.Compare(a.lset, b.lset); c != 0 {
			return c
		}
		return int(a.aggr) - int(b.aggr)
	})
	var out []seriesGroup
	for len(members) > 0 {
		n := 1
		for n < len(members) && labels.Equal(members[n].lset, members[0].lset) {
			n++
		}
		var byAggr [numAggrs][]chunks.Meta
		for _, m := range members[:n] {
			byAggr[m.aggr] = append(byAggr[m.aggr], m.e.chunks...)
		}
		g := seriesGroup{lset: members[0].lset}
		g.pair(byAggr)
		out = append(out, g)
		members = members[n:]
	}
	return out
}

// pair adds the slots of the series' chunks per aggregate, byAggr, sorted by
// time.
func (g *seriesGroup) pair(byAggr [numAggrs][]chunks.Meta) {
	n, same := -1, true
	for _, cs := range byAggr {
		if len(cs) == 0 {
			continue
		}
		if n >= 0 && len(cs) != n {
			same = false
		}
		n = len(cs)
	}
	if same {
		var (
			cs []chunks.Meta
			as []storepb.Aggr
		)
		for i := range max(n, 0) {
			cs, as = cs[:0], as[:0]
			for a, acs := range byAggr {
				if len(acs) > 0 {
					cs, as = append(cs, acs[i]), append(as, storepb.Aggr(a))
				}
			}
			g.addSlot(cs, as)
		}
		return
	}
	var all []chunks.Meta
	var as []storepb.Aggr
	for a, cs := range byAggr {
		for _, c := range cs {
			all, as = append(all, c), append(as, storepb.Aggr(a))
		}
	}
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int { return cmp.Compare(all[i].MinTime, all[j].MinTime) })
	for _, i := range idx {
		g.addSlot(all[i:i+1], as[i:i+1])
	}
}
