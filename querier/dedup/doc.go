// Package dedup merges the replicas of a series into one series at query time.
//
// Strata stores the same data more than once on purpose: HA pairs of
// Prometheus servers scrape the same targets and are told apart by a label
// such as prometheus_replica, and receivers replicate every sample to RF
// owners that are told apart by receive_replica. The querier wraps the merged
// result of its stores in NewSeriesSet, which removes the replica labels and
// returns one series per group of replicas.
//
// # Input contract
//
// Input series carry their replica labels. A group is the set of input series
// whose labels are equal once the replica labels are removed (their key).
// By default the input must be sorted by key, so that the series of one group
// are consecutive; within a group any order is fine. A store produces this
// order when it sorts as if the replica labels were absent but still returns
// them. Sorting by full label sets is not enough in general: with replica
// label a and series {a="1",b="1"}, {a="1",b="2"}, {a="2",b="1"},
// {a="2",b="2"}, the two b="1" series are not adjacent (Thanos issue 6257).
// The set checks the order as it goes and fails with ErrUnsorted instead of
// returning a group twice. With Options.Resort the set instead reads the whole
// input first and sorts it by key: O(n) memory for the n series handles (not
// their samples) and O(n log n) label comparisons, before the first series.
//
// The replica labels are what tells the replicas apart and picks the
// algorithm, so a store must not strip them. Input series with the same full
// label set are taken to be the same series from different sources and are
// merged as identical.
//
// Output series are in key order and carry the key as labels. A group of one
// series without replica labels is returned as it is.
//
// # Choosing the algorithm
//
// Each replica label maps to an Algorithm (Options.Algorithms, by default
// receive_replica to Identical and everything else to Penalty). Within a
// group, series are ordered by their full labels, which gives every replica a
// fixed priority, and partitioned by the values of the Penalty labels. The
// series of one partition differ only in Identical labels and are merged with
// the identical algorithm; the partitions are then merged with the penalty
// algorithm. So an HA Prometheus pair writing to receivers with RF=2 gives two
// partitions of two receive replicas each: each pair is merged as identical,
// the two results with penalty.
//
// # Identical algorithm
//
// The output is the sorted union of the timestamps of all replicas, each
// timestamp once. When several replicas have a sample at the same timestamp,
// the one with the highest priority is used. A sample missing from one
// replica is thus taken from another. Each output sample costs O(k) for k
// replicas.
//
// # Penalty algorithm
//
// The output follows one replica and fills only its gaps from the others,
// without outputting the same scrape twice. Every replica has a forward-only
// cursor; samples a cursor moves past are dropped for good. The state is lastT,
// the timestamp of the previous output sample, the current replica that
// produced it, and the interval estimate I: the distance between the last two
// output samples, unknown after the first one. For each output sample:
//
//  1. The current replica moves to its first sample after lastT.
//  2. Every other replica moves to its first sample after lastT + I, or
//     lastT + InitialPenalty (5s by default) while I is unknown: a sample of
//     another replica closer than one interval to the previous output sample
//     could be the same scrape and is dropped.
//  3. While I is unknown (warm-up) or right after a jump (rule 5), the
//     earliest sample wins; ties go to the current replica, then to priority.
//  4. Otherwise the highest-priority replica with a sample at most
//     lastT + 2*I wins. This keeps the current replica while it has no gap
//     and returns to a higher-priority replica as soon as it has data again.
//  5. If every replica has a gap longer than that, the output jumps to the
//     earliest sample. The jump is a gap, not an interval, so I keeps its
//     previous value; rule 3 picks the sample after the jump.
//
// After every pick except a jump, I becomes the distance the pick covered.
//
// Consequences: a switch of replica happens only more than one interval (or
// InitialPenalty) after the previous output sample, so, apart from the
// warm-up case below, output never interleaves replicas and never has a
// higher rate than one replica. A gap of
// the current replica longer than 2*I is filled from another replica, from
// one interval after its last sample; a shorter gap (one missed scrape) is
// not filled. For example, with replica A at 0s, 15s, ... 60s and again from
// 360s, and replica B at 5s, 20s, ..., the output is A's samples up to 60s,
// B's from 80s to 335s, and A's from 360s: after B's 335s, A's 360s is within
// two intervals and A has priority. Like Thanos' penalty algorithm, a
// replica offset by more than InitialPenalty can contribute one extra sample
// during warm-up.
//
// Seek(t) restarts the rules at t: the first sample is the earliest remaining
// sample at or after t of any replica, and warm-up starts again. A replica's
// samples that the algorithm already dropped stay dropped. Seek(t) thus gives
// what iterating replicas that begin at t gives. Seek(t) with t at or before
// the current sample does nothing, as the chunkenc.Iterator contract requires.
// PromQL's MemoizedSeriesIterator seeks only on jumps longer than the
// lookback delta and steps with Next otherwise, so restarts are rare.
//
// Both algorithms work on float, histogram and float histogram samples alike.
// A histogram sample that does not directly follow the previous output sample
// in its replica has its counter-reset hint set to unknown (gauge histograms
// keep theirs), because the hint described the replica's own previous sample.
// The first sample after the start or a Seek has no output predecessor and keeps
// its replica's hint, as it would from a plain TSDB iterator.
// An error of any replica's iterator ends the merged iterator with that error.
package dedup
