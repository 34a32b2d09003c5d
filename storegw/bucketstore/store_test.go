package bucketstore_test

import (
	"bytes"
	"context"
	"io"
	"path"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/storegw/bucketstore"
	"github.com/stratametrics/strata/storegw/indexheader"
)

func TestStoreAcceptance(t *testing.T) {
	const blockRange = 2 * 60 * 60 * 1000
	middle := func(data []storeapitest.Series) int64 {
		lo, hi := data[0].Samples[0].T, data[0].Samples[0].T
		for _, s := range data {
			lo, hi = min(lo, s.Samples[0].T), max(hi, s.Samples[len(s.Samples)-1].T)
		}
		return lo + (hi-lo)/2
	}
	cases := []struct {
		name  string
		split bool
		enc   chunkenc.Encoding
	}{
		{name: "one block", enc: chunkenc.EncXOR},
		{name: "two blocks split in time", split: true, enc: chunkenc.EncXOR},
		{name: "xor2 chunks re-encoded as xor", enc: chunkenc.EncXOR2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storeapitest.AcceptanceTest(t, func(t *testing.T, data []storeapitest.Series, ext labels.Labels) (storepb.StoreClient, infopb.InfoClient) {
				bkt := newBucket(t)
				// Blocks cover whole block ranges, as a receiver's do: the 2h
				// range holding the fixture, or its two halves.
				start := data[0].Samples[0].T - data[0].Samples[0].T%blockRange
				type part struct {
					data       []storeapitest.Series
					mint, maxt int64
				}
				parts := []part{{data, start, start + blockRange - 1}}
				if c.split {
					mid := middle(data)
					before, after := storeapitest.SplitAt(data, mid)
					parts = []part{{before, start, mid - 1}, {after, mid, start + blockRange - 1}}
				}
				s := bucketstore.NewStore(bkt, t.TempDir(), nil, nil)
				for _, p := range parts {
					m := upload(t, bkt, fixtureBlock(t, p.data, c.enc, p.mint, p.maxt), ext)
					require.NoError(t, s.Add(context.Background(), m))
				}
				require.Len(t, s.Blocks(), len(parts))
				return storeapitest.Serve(t, s, s)
			})
		})
	}
}

// TestStoreMatchesTSDBStore compares the bucket store with storeapi.TSDBStore
// over the same block of a few thousand series.
func TestStoreMatchesTSDBStore(t *testing.T) {
	const numSeries = 3000
	dir := bigBlock(t, numSeries)
	ext := labels.FromStrings("replica", "r0", "tenant_id", "t1")
	bkt := newBucket(t)
	m := upload(t, bkt, dir, ext)

	s := bucketstore.NewStore(bkt, t.TempDir(), nil, nil)
	require.NoError(t, s.Add(context.Background(), m))
	got, _ := storeapitest.Serve(t, s, s)

	pb, err := tsdb.OpenBlock(nil, dir, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pb.Close()) })
	ref := storeapi.NewTSDBStore(blockReader{pb}, ext, "store", nil)
	want, _ := storeapitest.Serve(t, ref, ref)

	eq := func(n, v string) *storepb.LabelMatcher {
		return &storepb.LabelMatcher{Type: storepb.LabelMatcher_EQ, Name: n, Value: v}
	}
	neq := func(n, v string) *storepb.LabelMatcher {
		return &storepb.LabelMatcher{Type: storepb.LabelMatcher_NEQ, Name: n, Value: v}
	}
	re := func(n, v string) *storepb.LabelMatcher {
		return &storepb.LabelMatcher{Type: storepb.LabelMatcher_RE, Name: n, Value: v}
	}
	nre := func(n, v string) *storepb.LabelMatcher {
		return &storepb.LabelMatcher{Type: storepb.LabelMatcher_NRE, Name: n, Value: v}
	}
	hour := int64(60 * 60 * 1000)
	cases := []struct {
		name       string
		mint, maxt int64
		matchers   []*storepb.LabelMatcher
		skipChunks bool
		without    []string
		min        int // fewest series the case must select
	}{
		{name: "one series", matchers: []*storepb.LabelMatcher{eq("series", "1234")}, min: 1},
		{name: "equal and equal", matchers: []*storepb.LabelMatcher{eq("__name__", "metric_3"), eq("zone", "us-2")}, min: 100},
		{name: "regexp", matchers: []*storepb.LabelMatcher{re("instance", "host-00[1-3].*"), eq("job", "job-4")}, min: 5},
		{name: "not equal", matchers: []*storepb.LabelMatcher{eq("__name__", "metric_1"), neq("zone", "eu-1")}, min: 100},
		{name: "not regexp only", matchers: []*storepb.LabelMatcher{nre("job", "job-[0-9]")}, min: 100},
		{name: "all", matchers: []*storepb.LabelMatcher{re("__name__", ".+")}, min: numSeries},
		{name: "external label", matchers: []*storepb.LabelMatcher{eq("tenant_id", "t1"), eq("job", "job-7")}, min: 100},
		{name: "external label mismatch", matchers: []*storepb.LabelMatcher{eq("tenant_id", "t2"), eq("job", "job-7")}},
		{name: "second hour", mint: bigMint + hour, maxt: bigMaxt, matchers: []*storepb.LabelMatcher{eq("job", "job-2")}, min: 100},
		{name: "skip chunks", matchers: []*storepb.LabelMatcher{re("series", "1.*")}, skipChunks: true, min: 100},
		{name: "without replica label", matchers: []*storepb.LabelMatcher{eq("zone", "ap-3")}, without: []string{"replica"}, min: 100},
		{name: "label nobody has", matchers: []*storepb.LabelMatcher{eq("nope", "x")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.mint == 0 && c.maxt == 0 {
				c.mint, c.maxt = bigMint, bigMaxt
			}
			req := &storepb.SeriesRequest{MinTime: c.mint, MaxTime: c.maxt, Matchers: c.matchers, SkipChunks: c.skipChunks, WithoutReplicaLabels: c.without}
			w, err := readAll(t, want, req)
			require.NoError(t, err)
			g, err := readAll(t, got, req)
			require.NoError(t, err)
			require.GreaterOrEqual(t, len(w), c.min)
			require.Equal(t, summary(w), summary(g))
			for i := range w {
				for j, wc := range w[i].GetChunks() {
					require.True(t, bytes.Equal(wc.GetRaw().GetData(), g[i].GetChunks()[j].GetRaw().GetData()), "chunk %d of %s", j, labelsString(w[i]))
				}
			}
		})
	}
}

// TestSelectiveQueryReadsLittle checks that one series by equality costs a few
// small ranged reads, not the index.
func TestSelectiveQueryReadsLittle(t *testing.T) {
	dir := bigBlock(t, 3000)
	bkt := newBucket(t)
	m := upload(t, bkt, dir, labels.FromStrings("tenant_id", "t1"))
	reg := prometheus.NewRegistry()
	s := bucketstore.NewStore(bkt, t.TempDir(), reg, nil)
	require.NoError(t, s.Add(context.Background(), m))
	client, _ := storeapitest.Serve(t, s, s)

	attrs, err := bkt.Attributes(context.Background(), path.Join(m.ULID.String(), block.IndexFilename))
	require.NoError(t, err)
	indexSize := attrs.Size
	afterOpen := s.ReadStats()

	got, err := readAll(t, client, &storepb.SeriesRequest{
		MinTime: bigMint, MaxTime: bigMaxt,
		Matchers: []*storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "series", Value: "1234"}},
	})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Len(t, got[0].GetChunks(), 2, "two hours of 30s samples")

	after := s.ReadStats()
	bytesRead, requests := after.Bytes-afterOpen.Bytes, after.Requests-afterOpen.Requests
	t.Logf("index %d bytes, header build read %d bytes in %d requests; query read %d bytes (%.2f%% of the index) in %d requests",
		indexSize, afterOpen.Bytes, afterOpen.Requests, bytesRead, 100*float64(bytesRead)/float64(indexSize), requests)
	require.Less(t, bytesRead, indexSize/50, "a selective query must read a small fraction of the index")
	// One postings list, one series entry, one range of chunks.
	require.Equal(t, int64(3), requests)

	require.Equal(t, float64(after.Bytes), gathered(t, reg, "strata_bucketstore_bucket_bytes_read_total"))
	require.Equal(t, float64(after.Requests), gathered(t, reg, "strata_bucketstore_bucket_range_requests_total"))
}

// gathered returns the value of the counter called name in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// TestCorruptBlock corrupts one block's chunks and truncates another's index in
// the bucket: queries that touch them fail naming the block, and other blocks
// keep working.
func TestCorruptBlock(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	s := bucketstore.NewStore(bkt, t.TempDir(), nil, nil)
	metas := map[string]*block.Meta{}
	for _, tenant := range []string{"corrupt-chunks", "truncated-index", "healthy"} {
		m := upload(t, bkt, bigBlock(t, 200), labels.FromStrings("tenant_id", tenant))
		require.NoError(t, s.Add(ctx, m))
		metas[tenant] = m
	}
	client, _ := storeapitest.Serve(t, s, s)
	query := func(tenant string, skipChunks bool) ([]*storepb.Series, error) {
		return readAll(t, client, &storepb.SeriesRequest{
			MinTime: bigMint, MaxTime: bigMaxt, SkipChunks: skipChunks,
			Matchers: []*storepb.LabelMatcher{
				{Type: storepb.LabelMatcher_EQ, Name: "tenant_id", Value: tenant},
				{Type: storepb.LabelMatcher_RE, Name: "__name__", Value: ".+"},
			},
		})
	}
	for tenant := range metas {
		got, err := query(tenant, false)
		require.NoError(t, err)
		require.Len(t, got, 200)
	}

	// Flip a byte in the middle of the first chunk segment.
	seg := path.Join(metas["corrupt-chunks"].ULID.String(), "chunks", "000001")
	b := readObject(t, bkt, seg)
	b[len(b)/2] ^= 0xff
	require.NoError(t, bkt.Upload(ctx, seg, bytes.NewReader(b)))

	// Cut the index just after the start of the series section; the index header
	// was built already, so the block is still served.
	idx := path.Join(metas["truncated-index"].ULID.String(), block.IndexFilename)
	hdr, err := indexheader.Open(ctx, bkt, metas["truncated-index"].ULID, t.TempDir())
	require.NoError(t, err)
	b = readObject(t, bkt, idx)
	require.NoError(t, bkt.Upload(ctx, idx, bytes.NewReader(b[:hdr.TOC().Series+64])))

	cases := []struct {
		tenant     string
		skipChunks bool
		wantErr    string // besides the block's ULID
	}{
		{tenant: "corrupt-chunks", wantErr: "checksum"},
		{tenant: "corrupt-chunks", skipChunks: true}, // chunks are not read
		{tenant: "truncated-index", wantErr: "truncated"},
		{tenant: "truncated-index", skipChunks: true, wantErr: "truncated"},
		{tenant: "healthy"},
		{tenant: "healthy", skipChunks: true},
	}
	for _, c := range cases {
		got, err := query(c.tenant, c.skipChunks)
		if c.wantErr == "" {
			require.NoError(t, err, c.tenant)
			require.Len(t, got, 200)
			continue
		}
		require.Error(t, err, c.tenant)
		require.Equal(t, codes.Internal, status.Code(err))
		require.Contains(t, err.Error(), metas[c.tenant].ULID.String())
		require.Contains(t, err.Error(), c.wantErr)
	}
}

func readObject(t *testing.T, bkt objstore.Bucket, name string) []byte {
	t.Helper()
	rc, err := bkt.Get(context.Background(), name)
	require.NoError(t, err)
	defer func() { require.NoError(t, rc.Close()) }()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// TestAddRemoveDuringQueries adds and removes blocks while queries run.
func TestAddRemoveDuringQueries(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	s := bucketstore.NewStore(bkt, t.TempDir(), nil, nil)
	client, info := storeapitest.Serve(t, s, s)

	resp, err := info.Info(ctx, &infopb.InfoRequest{})
	require.NoError(t, err)
	require.Greater(t, resp.GetStore().GetMinTime(), resp.GetStore().GetMaxTime(), "no blocks: empty range")

	stable := upload(t, bkt, bigBlock(t, 50), labels.FromStrings("tenant_id", "stable"))
	churn := upload(t, bkt, bigBlock(t, 50), labels.FromStrings("tenant_id", "churn"))
	require.NoError(t, s.Add(ctx, stable))

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := s.Add(ctx, churn); err != nil {
				t.Errorf("add block: %v", err)
				return
			}
			s.Remove(churn.ULID)
		}
	})
	for range 50 {
		got, err := readAll(t, client, &storepb.SeriesRequest{
			MinTime: bigMint, MaxTime: bigMaxt,
			Matchers: []*storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "job", Value: "job-3"}},
		})
		require.NoError(t, err)
		require.Contains(t, []int{4, 8}, len(got), "the stable block's series, plus the churning block's if it was served")
	}
	close(done)
	wg.Wait()
	s.Remove(churn.ULID)

	resp, err = info.Info(ctx, &infopb.InfoRequest{})
	require.NoError(t, err)
	require.Len(t, resp.GetLabelSets(), 1)
	require.Equal(t, bigMint, resp.GetStore().GetMinTime())
	require.Equal(t, bigMaxt-bigStep, resp.GetStore().GetMaxTime(), "the last sample")
}
