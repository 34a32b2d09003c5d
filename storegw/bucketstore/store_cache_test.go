package bucketstore_test

import (
	"bytes"
	"context"
	"path"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/storegw/bucketstore"
	"github.com/stratametrics/strata/storegw/cache"
)

// newCaches returns caches big enough for any test block, with metrics in reg.
func newCaches(reg prometheus.Registerer) cache.Gateway {
	return *cache.NewGateway(64<<20, 64<<20, 64<<20, reg)
}

// TestCachedQueryReadsNothing runs each query twice against a store with
// caches: the second run reads nothing from the bucket, hits every cache it
// needs, and returns what a store without caches returns.
func TestCachedQueryReadsNothing(t *testing.T) {
	dir := bigBlock(t, 1000)
	bkt := newBucket(t)
	m := upload(t, bkt, dir, labels.FromStrings("tenant_id", "t1"))
	reg := prometheus.NewRegistry()
	s := bucketstore.NewStore(bkt, t.TempDir(), reg, nil, bucketstore.WithCaches(newCaches(reg)))
	require.NoError(t, s.Add(context.Background(), m))
	client, _ := storeapitest.Serve(t, s, s)

	plain := bucketstore.NewStore(bkt, t.TempDir(), nil, nil)
	require.NoError(t, plain.Add(context.Background(), m))
	want, _ := storeapitest.Serve(t, plain, plain)

	eq := func(n, v string) *storepb.LabelMatcher {
		return &storepb.LabelMatcher{Type: storepb.LabelMatcher_EQ, Name: n, Value: v}
	}
	cases := []struct {
		name       string
		matchers   []*storepb.LabelMatcher
		skipChunks bool
	}{
		{name: "one series", matchers: []*storepb.LabelMatcher{eq("series", "123")}},
		{name: "two equalities", matchers: []*storepb.LabelMatcher{eq("__name__", "metric_3"), eq("zone", "us-2")}},
		{name: "regexp", matchers: []*storepb.LabelMatcher{{Type: storepb.LabelMatcher_RE, Name: "instance", Value: "host-00[1-3].*"}, eq("job", "job-4")}},
		{name: "not equal", matchers: []*storepb.LabelMatcher{eq("__name__", "metric_1"), {Type: storepb.LabelMatcher_NEQ, Name: "zone", Value: "eu-1"}}},
		{name: "skip chunks", matchers: []*storepb.LabelMatcher{eq("job", "job-5")}, skipChunks: true},
	}
	hits := func() map[string]float64 {
		out := map[string]float64{}
		for _, c := range []string{"postings", "series", "chunks"} {
			out[c] = counterWith(t, reg, "strata_storegw_cache_hits_total", "cache", c)
		}
		return out
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := &storepb.SeriesRequest{MinTime: bigMint, MaxTime: bigMaxt, Matchers: c.matchers, SkipChunks: c.skipChunks}
			w, err := readAll(t, want, req)
			require.NoError(t, err)
			require.NotEmpty(t, w)

			cold := s.ReadStats()
			first, err := readAll(t, client, req)
			require.NoError(t, err)
			before, hitsBefore := s.ReadStats(), hits()
			require.Positive(t, before.Requests-cold.Requests, "every case needs a postings list no earlier case read")
			second, err := readAll(t, client, req)
			require.NoError(t, err)
			after, hitsAfter := s.ReadStats(), hits()

			require.Zero(t, after.Requests-before.Requests, "range requests of the cached run")
			require.Zero(t, after.Bytes-before.Bytes, "bytes read by the cached run")
			for _, got := range [][]*storepb.Series{first, second} {
				require.Equal(t, summary(w), summary(got))
				for i := range w {
					for j, wc := range w[i].GetChunks() {
						require.True(t, bytes.Equal(wc.GetRaw().GetData(), got[i].GetChunks()[j].GetRaw().GetData()), "chunk %d of %s", j, labelsString(w[i]))
					}
				}
			}
			require.Greater(t, hitsAfter["postings"], hitsBefore["postings"])
			require.Greater(t, hitsAfter["series"], hitsBefore["series"])
			if c.skipChunks {
				require.Equal(t, hitsBefore["chunks"], hitsAfter["chunks"])
			} else {
				require.Greater(t, hitsAfter["chunks"], hitsBefore["chunks"])
			}
		})
	}
}

// TestCacheDoesNotHideCorruption corrupts a chunk in the bucket before it was
// ever read: the caches must not turn it into valid data, so every query that
// needs it fails, while what was verified (postings, series) is cached.
func TestCacheDoesNotHideCorruption(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	m := upload(t, bkt, bigBlock(t, 200), labels.FromStrings("tenant_id", "t1"))
	reg := prometheus.NewRegistry()
	s := bucketstore.NewStore(bkt, t.TempDir(), reg, nil, bucketstore.WithCaches(newCaches(reg)))
	require.NoError(t, s.Add(ctx, m))
	client, _ := storeapitest.Serve(t, s, s)

	seg := path.Join(m.ULID.String(), "chunks", "000001")
	b := readObject(t, bkt, seg)
	b[len(b)/2] ^= 0xff
	require.NoError(t, bkt.Upload(ctx, seg, bytes.NewReader(b)))

	req := &storepb.SeriesRequest{
		MinTime: bigMint, MaxTime: bigMaxt,
		Matchers: []*storepb.LabelMatcher{{Type: storepb.LabelMatcher_RE, Name: "__name__", Value: ".+"}},
	}
	for range 3 {
		_, err := readAll(t, client, req)
		require.Error(t, err)
		require.Equal(t, codes.Internal, status.Code(err))
		require.Contains(t, err.Error(), m.ULID.String())
		require.Contains(t, err.Error(), "checksum")
	}
	require.Positive(t, counterWith(t, reg, "strata_storegw_cache_hits_total", "cache", "series"), "verified series entries are cached")

	req.SkipChunks = true
	got, err := readAll(t, client, req)
	require.NoError(t, err)
	require.Len(t, got, 200)
}

// counterWith returns the value of the counter called name in reg whose label
// label has value value.
func counterWith(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{%s=%q} not registered", name, label, value)
	return 0
}
