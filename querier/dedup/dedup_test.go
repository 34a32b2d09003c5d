package dedup

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"
)

func TestSeriesSetGrouping(t *testing.T) {
	ls := labels.FromStrings
	one := secs(1, 10, 20)
	// metric builds test_metric with the given extra label pairs.
	metric := func(kv ...string) labels.Labels {
		return ls(append([]string{"__name__", "test_metric"}, kv...)...)
	}
	cases := []struct {
		name          string
		replicaLabels []string
		resort        bool
		in            []labels.Labels
		want          []labels.Labels
		wantErr       error
	}{
		{
			// Thanos #6257: the replica label sorts before the label that
			// tells the series apart. Sorted by key, the groups are adjacent.
			name:          "replica label sorts first, input sorted by key",
			replicaLabels: []string{"a"},
			in: []labels.Labels{
				metric("a", "1", "b", "1"), metric("a", "2", "b", "1"),
				metric("a", "1", "b", "2"), metric("a", "2", "b", "2"),
			},
			want: []labels.Labels{metric("b", "1"), metric("b", "2")},
		},
		{
			name:          "replica label sorts first, input sorted by full labels, streaming",
			replicaLabels: []string{"a"},
			in: []labels.Labels{
				metric("a", "1", "b", "1"), metric("a", "1", "b", "2"),
				metric("a", "2", "b", "1"), metric("a", "2", "b", "2"),
			},
			wantErr: ErrUnsorted,
		},
		{
			name:          "replica label sorts first, input sorted by full labels, resort",
			replicaLabels: []string{"a"},
			resort:        true,
			in: []labels.Labels{
				metric("a", "1", "b", "1"), metric("a", "1", "b", "2"),
				metric("a", "2", "b", "1"), metric("a", "2", "b", "2"),
			},
			want: []labels.Labels{metric("b", "1"), metric("b", "2")},
		},
		{
			name:          "three replicas with a_replica, resort",
			replicaLabels: []string{"a_replica"},
			resort:        true,
			in: []labels.Labels{
				metric("a_replica", "1", "b", "1"), metric("a_replica", "1", "b", "2"),
				metric("a_replica", "2", "b", "1"), metric("a_replica", "2", "b", "2"),
				metric("a_replica", "3", "b", "1"), metric("a_replica", "3", "b", "2"),
			},
			want: []labels.Labels{metric("b", "1"), metric("b", "2")},
		},
		{
			name:          "three replicas with a_replica, sorted by key",
			replicaLabels: []string{"a_replica"},
			in: []labels.Labels{
				metric("a_replica", "3", "b", "1"), metric("a_replica", "1", "b", "1"),
				metric("a_replica", "2", "b", "1"), metric("a_replica", "2", "b", "2"),
				metric("a_replica", "1", "b", "2"), metric("a_replica", "3", "b", "2"),
			},
			want: []labels.Labels{metric("b", "1"), metric("b", "2")},
		},
		{
			name:          "several replica labels",
			replicaLabels: []string{"receive_replica", "prometheus_replica"},
			in: []labels.Labels{
				metric("job", "a", "prometheus_replica", "0", "receive_replica", "0"),
				metric("job", "a", "prometheus_replica", "0", "receive_replica", "1"),
				metric("job", "a", "prometheus_replica", "1", "receive_replica", "0"),
				metric("job", "b", "prometheus_replica", "0"),
				metric("job", "c"),
			},
			want: []labels.Labels{metric("job", "a"), metric("job", "b"), metric("job", "c")},
		},
		{
			name:          "no replica labels in the input",
			replicaLabels: []string{"replica"},
			in:            []labels.Labels{metric("job", "a"), metric("job", "b")},
			want:          []labels.Labels{metric("job", "a"), metric("job", "b")},
		},
		{
			name:          "empty input",
			replicaLabels: []string{"replica"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var in []storage.Series
			for _, l := range tc.in {
				in = append(in, ser(l, one))
			}
			out, err := collect(t, NewSeriesSet(newSet(in...), tc.replicaLabels, Options{Resort: tc.resort}))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			var lsets []labels.Labels
			for _, s := range out {
				lsets = append(lsets, s.lset)
				ts, _ := seconds(s.samples)
				require.Equal(t, []int64{10, 20}, ts, "every group dedups to one copy of the samples")
			}
			require.Equal(t, tc.want, lsets)
		})
	}
}

func TestSeriesSetPassThrough(t *testing.T) {
	plain := ser(labels.FromStrings("__name__", "up", "job", "a"), secs(1, 1, 2))
	lone := ser(labels.FromStrings("__name__", "up", "job", "b", "replica", "x"), secs(2, 3))
	set := NewSeriesSet(newSet(plain, lone), []string{"replica"}, Options{})

	require.True(t, set.Next())
	require.Same(t, plain, set.At(), "a series without replica labels is returned unchanged")
	require.True(t, set.Next())
	require.Equal(t, labels.FromStrings("__name__", "up", "job", "b"), set.At().Labels())
	samples, err := drain(t, set.At().Iterator(nil))
	require.NoError(t, err)
	ts, vs := seconds(samples)
	require.Equal(t, []int64{3}, ts)
	require.Equal(t, []float64{2}, vs)
	require.False(t, set.Next())
	require.NoError(t, set.Err())

	in := newSet(plain)
	require.Same(t, in, NewSeriesSet(in, nil, Options{}), "no replica labels means no dedup")
}

func TestSeriesSetErrorsAndWarnings(t *testing.T) {
	errSelect := errors.New("select")
	in := newSet(ser(labels.FromStrings("replica", "a"), secs(1, 1)))
	in.err = errSelect
	var warn annotations.Annotations
	warn.Add(errors.New("store down"))
	in.warn = warn

	for _, resort := range []bool{false, true} {
		in.i = -1
		set := NewSeriesSet(in, []string{"replica"}, Options{Resort: resort})
		for set.Next() {
		}
		require.ErrorIs(t, set.Err(), errSelect)
		require.Equal(t, warn, set.Warnings())
	}

	// An iterator error in any replica ends the merged iterator with it.
	errChunk := errors.New("corrupt chunk")
	for _, label := range []string{"receive_replica", "prometheus_replica"} {
		t.Run(label, func(t *testing.T) {
			set := NewSeriesSet(newSet(
				ser(labels.FromStrings(label, "a"), secs(1, 1, 2, 3)),
				&failingSeries{lset: labels.FromStrings(label, "b"), samples: secs(2, 1), err: errChunk},
			), []string{label}, Options{})
			require.True(t, set.Next())
			_, err := drain(t, set.At().Iterator(nil))
			require.ErrorIs(t, err, errChunk)
		})
	}
}

func TestSeriesSetAlgorithmChoice(t *testing.T) {
	// Replica A has a sample every 15s, B every 15s at a 5s offset.
	a := secs(1, every(0, 60, 15)...)
	b := secs(2, every(5, 65, 15)...)
	union := []int64{0, 5, 15, 20, 30, 35, 45, 50, 60, 65}
	cases := []struct {
		name   string
		label  string
		algos  map[string]Algorithm
		wantTS []int64
	}{
		{name: "receive_replica defaults to identical", label: "receive_replica", wantTS: union},
		{name: "prometheus_replica defaults to penalty", label: "prometheus_replica", wantTS: every(0, 60, 15)},
		{name: "replica defaults to penalty", label: "replica", wantTS: every(0, 60, 15)},
		{name: "unknown label defaults to penalty", label: "cluster_replica", wantTS: every(0, 60, 15)},
		{name: "configured identical", label: "replica", algos: map[string]Algorithm{"replica": Identical}, wantTS: union},
		{name: "configured map replaces defaults", label: "receive_replica", algos: map[string]Algorithm{}, wantTS: every(0, 60, 15)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := NewSeriesSet(newSet(
				ser(labels.FromStrings(tc.label, "a"), a),
				ser(labels.FromStrings(tc.label, "b"), b),
			), []string{tc.label}, Options{Algorithms: tc.algos})
			out, err := collect(t, set)
			require.NoError(t, err)
			require.Len(t, out, 1)
			require.Equal(t, labels.EmptyLabels(), out[0].lset)
			ts, _ := seconds(out[0].samples)
			require.Equal(t, tc.wantTS, ts)
		})
	}
}

func TestSeriesSetHierarchical(t *testing.T) {
	// An HA pair (prometheus_replica p0, p1) remote-writes into receivers
	// with RF=2 (receive_replica r0, r1). Each pair of receive replicas is
	// merged as identical, which restores p0's sample at 30s; the two
	// Prometheus replicas are merged with penalty, which fills p0's gap from
	// p1 without interleaving.
	ls := func(p, r string) labels.Labels {
		return labels.FromStrings("__name__", "up", "prometheus_replica", p, "receive_replica", r)
	}
	p0 := cat(every(0, 60, 15), every(360, 420, 15))
	set := NewSeriesSet(newSet(
		ser(ls("p0", "r0"), secs(0, cat([]int64{0, 15, 45, 60}, every(360, 420, 15))...)),
		ser(ls("p0", "r1"), secs(0, p0...)),
		ser(ls("p1", "r0"), secs(1, every(5, 425, 15)...)),
		ser(ls("p1", "r1"), secs(1, every(5, 425, 15)...)),
	), []string{"prometheus_replica", "receive_replica"}, Options{})
	out, err := collect(t, set)
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Equal(t, labels.FromStrings("__name__", "up"), out[0].lset)
	ts, vs := seconds(out[0].samples)
	require.Equal(t, cat(every(0, 60, 15), every(80, 335, 15), every(360, 420, 15)), ts)
	for i, v := range vs {
		require.Equal(t, ts[i] >= 80 && ts[i] <= 335, v == 1, "sample at %ds comes from the wrong replica", ts[i])
	}
}

func TestSeriesSetInitialPenalty(t *testing.T) {
	// With a 1s initial penalty, B's 5s sample counts as a new scrape
	// during warm-up and is taken because it is earlier than A's 15s; A
	// then takes over again by priority.
	set := NewSeriesSet(newSet(
		ser(labels.FromStrings("replica", "a"), secs(1, 0, 15, 30)),
		ser(labels.FromStrings("replica", "b"), secs(2, 5, 20, 35)),
	), []string{"replica"}, Options{InitialPenalty: time.Second})
	out, err := collect(t, set)
	require.NoError(t, err)
	ts, _ := seconds(out[0].samples)
	require.Equal(t, []int64{0, 5, 15, 30}, ts)
}

func TestSeriesStaysIterableAfterNext(t *testing.T) {
	set := NewSeriesSet(newSet(
		ser(labels.FromStrings("job", "a", "replica", "1"), secs(1, 1, 2)),
		ser(labels.FromStrings("job", "a", "replica", "2"), secs(1, 1, 2)),
		ser(labels.FromStrings("job", "b", "replica", "1"), secs(1, 3)),
	), []string{"replica"}, Options{})
	var series []storage.Series
	for set.Next() {
		series = append(series, set.At())
	}
	require.NoError(t, set.Err())
	require.Len(t, series, 2)
	samples, err := drain(t, series[0].Iterator(nil))
	require.NoError(t, err)
	ts, _ := seconds(samples)
	require.Equal(t, []int64{1, 2}, ts)

	// Iterator reuse gives the same result.
	it := series[0].Iterator(nil)
	_, err = drain(t, it)
	require.NoError(t, err)
	samples, err = drain(t, series[0].Iterator(it))
	require.NoError(t, err)
	ts, _ = seconds(samples)
	require.Equal(t, []int64{1, 2}, ts)
}
