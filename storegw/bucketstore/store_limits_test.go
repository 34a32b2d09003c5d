package bucketstore_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/storegw/bucketstore"
)

// TestRequestLimits queries job="job-3" of a block of 260 series: 20 series of
// 240 samples each, 4800 samples in all, against stores with various limits.
func TestRequestLimits(t *testing.T) {
	const (
		wantSeries  = 20
		wantSamples = wantSeries * 240
	)
	ctx := context.Background()
	bkt := newBucket(t)
	m := upload(t, bkt, bigBlock(t, 260), labels.FromStrings("tenant_id", "t1"))
	req := func(skipChunks bool) *storepb.SeriesRequest {
		return &storepb.SeriesRequest{
			MinTime: bigMint, MaxTime: bigMaxt, SkipChunks: skipChunks,
			Matchers: []*storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "job", Value: "job-3"}},
		}
	}
	cases := []struct {
		name                  string
		maxSeries, maxSamples int64
		skipChunks            bool
		wantErr               string // a ResourceExhausted message
		wantLimit             string // the limit label of the hit counter
		wantRequests          int64  // ranged reads of a failed request, if not zero
	}{
		{name: "no limits"},
		{name: "series at the limit", maxSeries: wantSeries},
		{
			name: "series over the limit", maxSeries: wantSeries - 1,
			wantErr:   "the query hit the series limit of 19 (--store.limits.request-series)",
			wantLimit: "series",
			// Only the postings list: no series entry is read.
			wantRequests: 1,
		},
		{name: "samples at the limit", maxSamples: wantSamples},
		{
			name: "samples over the limit", maxSamples: wantSamples - 1,
			wantErr:   "the query hit the samples limit of 4799 (--store.limits.request-samples)",
			wantLimit: "samples",
		},
		{name: "samples limit without chunks", maxSamples: 1, skipChunks: true},
		{name: "both at the limit", maxSeries: wantSeries, maxSamples: wantSamples},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			s := bucketstore.NewStore(bkt, t.TempDir(), reg, nil, bucketstore.WithLimits(c.maxSeries, c.maxSamples))
			require.NoError(t, s.Add(ctx, m))
			client, _ := storeapitest.Serve(t, s, s)
			before := s.ReadStats()

			got, err := readAll(t, client, req(c.skipChunks))
			if c.wantErr != "" {
				require.Error(t, err)
				require.Equal(t, codes.ResourceExhausted, status.Code(err), err)
				require.Equal(t, c.wantErr, status.Convert(err).Message())
				require.Equal(t, 1.0, counterWith(t, reg, "strata_bucketstore_request_limit_hits_total", "limit", c.wantLimit))
				if c.wantRequests > 0 {
					require.Equal(t, c.wantRequests, s.ReadStats().Requests-before.Requests)
				}
				return
			}
			require.NoError(t, err)
			require.Len(t, got, wantSeries)
			if !c.skipChunks {
				require.Equal(t, wantSamples, samples(t, got))
			}
		})
	}
}

// TestRequestLimitsCountCachedChunks checks that chunks served from the cache
// count against the samples limit: a request answered from the caches alone
// still fails.
func TestRequestLimitsCountCachedChunks(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	m := upload(t, bkt, bigBlock(t, 260), labels.FromStrings("tenant_id", "t1"))
	reg := prometheus.NewRegistry()
	s := bucketstore.NewStore(bkt, t.TempDir(), reg, nil,
		bucketstore.WithCaches(newCaches(reg)), bucketstore.WithLimits(0, 300))
	require.NoError(t, s.Add(ctx, m))
	client, _ := storeapitest.Serve(t, s, s)
	query := func(typ storepb.LabelMatcher_Type, value string) ([]*storepb.Series, error) {
		return readAll(t, client, &storepb.SeriesRequest{
			MinTime: bigMint, MaxTime: bigMaxt,
			Matchers: []*storepb.LabelMatcher{{Type: typ, Name: "series", Value: value}},
		})
	}

	// Series 3 and 16 have 240 samples each: under the limit on their own.
	for _, v := range []string{"3", "16"} {
		got, err := query(storepb.LabelMatcher_EQ, v)
		require.NoError(t, err)
		require.Equal(t, 240, samples(t, got))
	}
	before := s.ReadStats()
	_, err := query(storepb.LabelMatcher_RE, "3|16")
	require.Equal(t, codes.ResourceExhausted, status.Code(err), err)
	require.Contains(t, err.Error(), "samples limit of 300")
	require.Equal(t, before, s.ReadStats(), "everything was cached")
}

// samples returns the number of samples in the chunks of ss.
func samples(t *testing.T, ss []*storepb.Series) int {
	t.Helper()
	n := 0
	for _, s := range ss {
		for _, c := range s.GetChunks() {
			require.Equal(t, storepb.Chunk_XOR, c.GetRaw().GetType())
			chk, err := chunkenc.FromData(chunkenc.EncXOR, c.GetRaw().GetData())
			require.NoError(t, err)
			n += chk.NumSamples()
		}
	}
	return n
}
