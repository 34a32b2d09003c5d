package dedup

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"
)

// Algorithm selects how the replicas of one series are merged into one.
type Algorithm int

const (
	// Penalty merges replicas that sampled the same target independently, such
	// as an HA pair of Prometheus servers scraping at different offsets. The
	// output follows one replica and fills only that replica's gaps from the
	// others; see the package documentation for the exact rules.
	Penalty Algorithm = iota
	// Identical merges replicas that hold the same samples, such as the RF
	// copies that receivers replicate to each other. The output is the union of
	// all replicas' timestamps, each timestamp once.
	Identical
)

// String returns the name of the algorithm.
func (a Algorithm) String() string {
	switch a {
	case Penalty:
		return "penalty"
	case Identical:
		return "identical"
	default:
		return fmt.Sprintf("Algorithm(%d)", int(a))
	}
}

// DefaultInitialPenalty is how far, in the absence of an observed scrape
// interval, a sample of another replica must lie after the last output sample
// before the penalty algorithm considers it.
const DefaultInitialPenalty = 5 * time.Second

// ErrUnsorted is reported by the series set's Err when the input is not sorted
// by labels with the replica labels removed and Options.Resort is false.
var ErrUnsorted = errors.New("input series not sorted by labels without replica labels")

// DefaultAlgorithms returns the algorithm per replica label that strata uses
// unless configured otherwise: "receive_replica" is Identical, because
// receivers replicate the same samples, and "prometheus_replica" and "replica"
// are Penalty, because HA Prometheus servers scrape independently. The caller
// owns the returned map.
func DefaultAlgorithms() map[string]Algorithm {
	return map[string]Algorithm{
		"receive_replica":    Identical,
		"prometheus_replica": Penalty,
		"replica":            Penalty,
	}
}

// Options tunes NewSeriesSet. The zero value is ready to use.
type Options struct {
	// Algorithms maps a replica label name to the algorithm that merges series
	// which differ in that label. A replica label that is not in the map, or
	// maps to a value other than Identical, uses Penalty. A nil map means
	// DefaultAlgorithms().
	Algorithms map[string]Algorithm
	// InitialPenalty is used by the penalty algorithm until it has observed
	// an interval between two output samples; zero or negative means
	// DefaultInitialPenalty. It is rounded down to milliseconds.
	InitialPenalty time.Duration
	// Resort makes the set read its whole input, keeping every series (not
	// its samples), and sort it by labels without replica labels before the
	// first series is returned. It costs O(n) memory and O(n log n) label
	// comparisons for n input series, and is needed when the input is not in
	// that order, for example when it is sorted by full label sets and a
	// replica label sorts before a label that differs between series.
	Resort bool
}

// NewSeriesSet returns a set with one series per group of input series that
// are equal once the replicaLabels are removed. Each output series carries the
// labels without the replica labels and iterates over the merged samples of
// its group; see the package documentation for the input contract and the
// merge algorithms. Input series that carry none of the replica labels and
// have no replicas are returned unchanged. With no replica labels the input
// set itself is returned.
func NewSeriesSet(set storage.SeriesSet, replicaLabels []string, opts Options) storage.SeriesSet {
	if len(replicaLabels) == 0 {
		return set
	}
	algos := opts.Algorithms
	if algos == nil {
		algos = DefaultAlgorithms()
	}
	penalty := opts.InitialPenalty.Milliseconds()
	if penalty <= 0 {
		penalty = DefaultInitialPenalty.Milliseconds()
	}
	names := slices.Clone(replicaLabels)
	slices.Sort(names)
	names = slices.Compact(names)
	var penaltyLabels []string
	for _, n := range names {
		if algos[n] != Identical {
			penaltyLabels = append(penaltyLabels, n)
		}
	}
	return &seriesSet{
		in:             set,
		replicaLabels:  names,
		penaltyLabels:  penaltyLabels,
		initialPenalty: penalty,
		resort:         opts.Resort,
	}
}

// member is one input series with its labels minus the replica labels.
type member struct {
	s        storage.Series
	key      labels.Labels
	stripped bool // key differs from s.Labels()
}

// seriesSet groups consecutive input series with equal keys. It pulls from
// in directly, or, with resort, from buf after sorting the whole input.
type seriesSet struct {
	in             storage.SeriesSet
	replicaLabels  []string // sorted, unique
	penaltyLabels  []string // replica labels merged with Penalty, sorted
	initialPenalty int64    // ms
	resort         bool

	b         labels.Builder
	peek      member
	hasPeek   bool
	group     []member // scratch for the current group
	part      []int    // scratch: partition of each group member
	buf       []member
	loaded    bool
	exhausted bool // in.Next returned false
	cur       storage.Series
	err       error
}

func (s *seriesSet) pull() (member, bool) {
	if s.resort {
		if !s.loaded {
			s.loaded = true
			for s.in.Next() {
				s.buf = append(s.buf, s.member(s.in.At()))
			}
			if err := s.in.Err(); err != nil {
				s.err = err
				return member{}, false
			}
			slices.SortStableFunc(s.buf, func(a, b member) int { return labels.Compare(a.key, b.key) })
		}
		if len(s.buf) == 0 {
			s.buf = nil
			return member{}, false
		}
		m := s.buf[0]
		s.buf[0] = member{} // Release the series for GC.
		s.buf = s.buf[1:]
		return m, true
	}
	if s.exhausted || !s.in.Next() {
		s.exhausted = true
		s.err = s.in.Err()
		return member{}, false
	}
	return s.member(s.in.At()), true
}

func (s *seriesSet) member(series storage.Series) member {
	lset := series.Labels()
	for _, n := range s.replicaLabels {
		if lset.Has(n) {
			s.b.Reset(lset)
			s.b.Del(s.replicaLabels...)
			return member{s: series, key: s.b.Labels(), stripped: true}
		}
	}
	return member{s: series, key: lset}
}

// Next advances to the next group of replicas.
func (s *seriesSet) Next() bool {
	s.cur = nil
	if s.err != nil {
		return false
	}
	first := s.peek
	if s.hasPeek {
		s.hasPeek = false
		s.peek = member{}
	} else {
		var ok bool
		if first, ok = s.pull(); !ok {
			return false
		}
	}
	group := append(s.group[:0], first)
	defer func() { clear(group); s.group = group[:0] }() // Keep the scratch, drop the series.
	for {
		m, ok := s.pull()
		if !ok {
			if s.err != nil {
				return false
			}
			break
		}
		c := labels.Compare(m.key, first.key)
		if c == 0 {
			group = append(group, m)
			continue
		}
		if c < 0 {
			s.err = fmt.Errorf("%w: %s after %s", ErrUnsorted, m.key, first.key)
			return false
		}
		s.peek, s.hasPeek = m, true
		break
	}
	s.cur = s.build(group)
	return true
}

// At returns the current deduplicated series. It stays iterable after Next.
func (s *seriesSet) At() storage.Series { return s.cur }

// Err returns the error of the input set, or ErrUnsorted.
func (s *seriesSet) Err() error { return s.err }

// Warnings returns the warnings of the input set.
func (s *seriesSet) Warnings() annotations.Annotations { return s.in.Warnings() }

// build turns one group into an output series. Members are ordered by their
// full labels, which fixes replica priority independently of input order, and
// partitioned by the values of the penalty labels: members of one partition
// are merged as identical, partitions are merged with the penalty algorithm.
// group is scratch and must not be retained.
func (s *seriesSet) build(group []member) storage.Series {
	if len(group) == 1 {
		if !group[0].stripped {
			return group[0].s
		}
		return &strippedSeries{lset: group[0].key, s: group[0].s}
	}
	slices.SortStableFunc(group, func(a, b member) int { return labels.Compare(a.s.Labels(), b.s.Labels()) })
	// Number the partitions in order of their first member; groups are
	// small, so comparing with every earlier member is cheap.
	part := s.part[:0]
	nparts := 0
	for i, m := range group {
		p := nparts
		for j := range i {
			if s.samePartition(m.s.Labels(), group[j].s.Labels()) {
				p = part[j]
				break
			}
		}
		if p == nparts {
			nparts++
		}
		part = append(part, p)
	}
	s.part = part
	ds := &dedupSeries{
		lset:           group[0].key,
		series:         make([]storage.Series, 0, len(group)),
		ends:           make([]int, 0, nparts),
		initialPenalty: s.initialPenalty,
	}
	for p := range nparts {
		for i, m := range group {
			if part[i] == p {
				ds.series = append(ds.series, m.s)
			}
		}
		ds.ends = append(ds.ends, len(ds.series))
	}
	return ds
}

func (s *seriesSet) samePartition(a, b labels.Labels) bool {
	for _, n := range s.penaltyLabels {
		if a.Get(n) != b.Get(n) {
			return false
		}
	}
	return true
}

// strippedSeries is a lone series that lost its replica labels.
type strippedSeries struct {
	lset labels.Labels
	s    storage.Series
}

func (s *strippedSeries) Labels() labels.Labels { return s.lset }

func (s *strippedSeries) Iterator(it chunkenc.Iterator) chunkenc.Iterator { return s.s.Iterator(it) }

// dedupSeries is one group of replicas in priority order, cut into
// partitions of series that agree on all penalty labels: partition i is
// series[ends[i-1]:ends[i]].
type dedupSeries struct {
	lset           labels.Labels
	series         []storage.Series
	ends           []int
	initialPenalty int64
}

func (s *dedupSeries) Labels() labels.Labels { return s.lset }

func (s *dedupSeries) Iterator(reuse chunkenc.Iterator) chunkenc.Iterator {
	if len(s.ends) == 1 {
		ci, _ := reuse.(*chainIterator)
		return newChainIterator(ci, s.series)
	}
	pi, _ := reuse.(*penaltyIterator)
	if pi == nil {
		pi = &penaltyIterator{}
	}
	// pi.curs and olds share their array; index i is read before it is written.
	olds := pi.curs
	pi.curs = pi.curs[:0]
	start := 0
	for i, end := range s.ends {
		var old, it chunkenc.Iterator
		if i < len(olds) {
			old = olds[i].it
		}
		if part := s.series[start:end]; len(part) == 1 {
			it = part[0].Iterator(old)
		} else {
			ci, _ := old.(*chainIterator)
			it = newChainIterator(ci, part)
		}
		pi.curs = append(pi.curs, cursor{it: it})
		start = end
	}
	pi.reset(s.initialPenalty)
	return pi
}
