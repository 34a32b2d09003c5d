package queryshard

import (
	"fmt"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestSelectorHash(t *testing.T) {
	ls := labels.FromStrings("__name__", "x", "a", "1", "b", "2", "c", "3")
	for _, tc := range []struct {
		name string
		a, b Selector
		lsA  labels.Labels
		lsB  labels.Labels
		same bool
	}{
		{"by ignores the other labels", Selector{By: true, Labels: []string{"a"}}, Selector{By: true, Labels: []string{"a"}},
			ls, labels.FromStrings("a", "1", "z", "9"), true},
		{"by hashes the named labels", Selector{By: true, Labels: []string{"a"}}, Selector{By: true, Labels: []string{"a"}},
			ls, labels.FromStrings("a", "2"), false},
		{"order of Labels does not matter", Selector{By: true, Labels: []string{"a", "b"}}, Selector{By: true, Labels: []string{"b", "a"}},
			ls, ls, true},
		{"missing label is an empty one", Selector{By: true, Labels: []string{"a", "q"}}, Selector{By: true, Labels: []string{"a"}},
			ls, ls, true},
		{"without ignores the named labels", Selector{Labels: []string{"__name__", "c"}}, Selector{Labels: []string{"__name__", "c"}},
			ls, labels.FromStrings("__name__", "y", "a", "1", "b", "2"), true},
		{"without hashes the others", Selector{Labels: []string{"c"}}, Selector{Labels: []string{"c"}},
			ls, labels.FromStrings("__name__", "y", "a", "1", "b", "2"), false},
		{"without nothing is all labels", Selector{}, Selector{By: true, Labels: []string{"__name__", "a", "b", "c"}},
			ls, ls, true},
		{"name and value are separated", Selector{}, Selector{},
			labels.FromStrings("ab", "c"), labels.FromStrings("a", "bc"), false},
		{"labels are separated", Selector{}, Selector{},
			labels.FromStrings("a", "b", "c", "d"), labels.FromStrings("a", "bcd"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.same, tc.a.Hash(tc.lsA) == tc.b.Hash(tc.lsB))
		})
	}
}

// TestSelectorHashFixed pins the hash: the frontend and queriers of
// different versions must agree on it.
func TestSelectorHashFixed(t *testing.T) {
	require.Equal(t, uint64(0xef46db3751d8e999), Selector{}.Hash(labels.EmptyLabels()))
	ls := labels.FromStrings("__name__", "x", "a", "b")
	require.Equal(t, xxhash.Sum64String("__name__\xffx\xffa\xffb\xff"), Selector{}.Hash(ls))
	require.Equal(t, xxhash.Sum64String("a\xffb\xff"), Selector{Labels: []string{"__name__"}}.Hash(ls))
	require.Equal(t, uint64(0x608891b6a4fd3588), Selector{By: true, Labels: []string{"a"}}.Hash(ls))
}

// TestSelectorMatchesPartitions checks that the shards of a selector are a
// partition of the series, and a roughly even one.
func TestSelectorMatchesPartitions(t *testing.T) {
	const n = 3000
	for _, total := range []int{2, 3, 5} {
		counts := make([]int, total)
		for i := range n {
			ls := labels.FromStrings("__name__", "x", "i", fmt.Sprint(i))
			in := 0
			for idx := range total {
				if (Selector{Index: idx, Total: total}).Matches(ls) {
					counts[idx]++
					in++
				}
			}
			require.Equal(t, 1, in, "series %s is in %d shards", ls, in)
		}
		for idx, c := range counts {
			require.InDelta(t, n/total, c, float64(n/total/5), "shard %d of %d", idx, total)
		}
	}
	require.True(t, Selector{}.Matches(labels.FromStrings("a", "b")), "an invalid selector matches all")
}

func TestSelectorHashDoesNotAllocate(t *testing.T) {
	s := Selector{By: true, Labels: []string{"a", "c"}}
	ls := labels.FromStrings("__name__", "x", "a", "1", "b", "2", "c", "3")
	require.Zero(t, testing.AllocsPerRun(100, func() { s.Matches(ls) }))
}

func BenchmarkSelectorMatches(b *testing.B) {
	ls := labels.FromStrings("__name__", "prometheus_http_requests_total", "code", "200", "handler", "/api/v1/query",
		"instance", "localhost:9090", "job", "prometheus")
	for _, s := range []Selector{
		{Index: 1, Total: 3},
		{Index: 1, Total: 3, Labels: []string{"__name__", "__type__", "__unit__"}},
		{Index: 1, Total: 3, By: true, Labels: []string{"handler"}},
	} {
		b.Run(fmt.Sprintf("by=%t/labels=%d", s.By, len(s.Labels)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Matches(ls)
			}
		})
	}
}

func TestSelectorValidate(t *testing.T) {
	for _, tc := range []struct {
		s       Selector
		wantErr string
	}{
		{s: Selector{Index: 0, Total: 2}},
		{s: Selector{Index: 65535, Total: 65536, By: true, Labels: []string{"a"}}},
		{s: Selector{Index: 0, Total: 1}, wantErr: "shard count 1 is below 2"},
		{s: Selector{Index: 0, Total: 65537}, wantErr: "shard count 65537 is above 65536"},
		{s: Selector{Index: -1, Total: 2}, wantErr: "shard index -1 is not in [0, 2)"},
		{s: Selector{Index: 2, Total: 2}, wantErr: "shard index 2 is not in [0, 2)"},
		{s: Selector{Index: 0, Total: 2, By: true}, wantErr: "sharding by no labels"},
		{s: Selector{Index: 0, Total: 2, Labels: []string{""}}, wantErr: "empty label name"},
		{s: Selector{Index: 0, Total: 2, Labels: []string{"a,b"}}, wantErr: `label name "a,b" contains a comma`},
	} {
		t.Run(tc.wantErr, func(t *testing.T) {
			err := tc.s.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
