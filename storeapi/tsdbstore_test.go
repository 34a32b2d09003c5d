package storeapi_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// openTSDB returns an empty TSDB in a temporary directory, closed when the test
// ends. mod, if not nil, changes the default options.
func openTSDB(t *testing.T, mod func(*tsdb.Options)) *tsdb.DB {
	t.Helper()
	opts := tsdb.DefaultOptions()
	if mod != nil {
		mod(opts)
	}
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	return db
}

// write appends data to db and commits it.
func write(t *testing.T, db *tsdb.DB, data []storeapitest.Series) {
	t.Helper()
	app := db.AppenderV2(context.Background())
	require.NoError(t, storeapitest.AppendAll(app, data))
	require.NoError(t, app.Commit())
}

// middle returns the middle of the fixture's time range.
func middle(data []storeapitest.Series) int64 {
	lo, hi := data[0].Samples[0].T, data[0].Samples[0].T
	for _, s := range data {
		lo, hi = min(lo, s.Samples[0].T), max(hi, s.Samples[len(s.Samples)-1].T)
	}
	return lo + (hi-lo)/2
}

func TestTSDBStoreAcceptance(t *testing.T) {
	cases := []struct {
		name     string
		newStore func(t *testing.T, data []storeapitest.Series, ext labels.Labels) (storepb.StoreClient, infopb.InfoClient)
	}{
		{"head", func(t *testing.T, data []storeapitest.Series, ext labels.Labels) (storepb.StoreClient, infopb.InfoClient) {
			db := openTSDB(t, nil)
			write(t, db, data)
			s := storeapi.NewTSDBStore(db, ext, "receive", nil)
			return storeapitest.Serve(t, s, s)
		}},
		{"xor2 chunks re-encoded as xor", func(t *testing.T, data []storeapitest.Series, ext labels.Labels) (storepb.StoreClient, infopb.InfoClient) {
			db := openTSDB(t, func(o *tsdb.Options) { o.FloatChunkEncoding = chunkenc.EncXOR2 })
			write(t, db, data)
			s := storeapi.NewTSDBStore(db, ext, "receive", nil)
			return storeapitest.Serve(t, s, s)
		}},
		{"block and head", func(t *testing.T, data []storeapitest.Series, ext labels.Labels) (storepb.StoreClient, infopb.InfoClient) {
			db := openTSDB(t, nil)
			write(t, db, data)
			// The first half becomes a block; the rest stays in the head.
			mid := middle(data)
			require.NoError(t, db.CompactHead(tsdb.NewRangeHead(db.Head(), db.Head().MinTime(), mid-1)))
			require.Len(t, db.Blocks(), 1)
			s := storeapi.NewTSDBStore(db, ext, "receive", nil)
			return storeapitest.Serve(t, s, s)
		}},
		{"multi store over two TSDBs split in time", func(t *testing.T, data []storeapitest.Series, ext labels.Labels) (storepb.StoreClient, infopb.InfoClient) {
			before, after := storeapitest.SplitAt(data, middle(data))
			a, b := openTSDB(t, nil), openTSDB(t, nil)
			write(t, a, before)
			write(t, b, after)
			m := storeapi.NewMultiStore(storeapi.StaticStores(
				storeapi.NewTSDBStore(a, ext, "receive", nil),
				storeapi.NewTSDBStore(b, ext, "receive", nil),
			), "receive", nil)
			return storeapitest.Serve(t, m, m)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storeapitest.AcceptanceTest(t, c.newStore)
		})
	}
}

// TestMultiStoreTenants serves two tenants' TSDBs that hold the same series and
// differ only in their external labels, as a receiver does.
func TestMultiStoreTenants(t *testing.T) {
	data := []storeapitest.Series{
		{Labels: labels.FromStrings("__name__", "up", "job", "a"), Samples: []storeapitest.Sample{{T: 1000, F: 1}, {T: 2000, F: 2}}},
		{Labels: labels.FromStrings("__name__", "up", "job", "b"), Samples: []storeapitest.Sample{{T: 1000, F: 1}}},
	}
	tenants := map[string]*storeapi.TSDBStore{}
	for _, tenant := range []string{"beta", "alpha"} {
		db := openTSDB(t, nil)
		write(t, db, data)
		tenants[tenant] = storeapi.NewTSDBStore(db, labels.FromStrings("replica", "0", "tenant_id", tenant), "receive", nil)
	}
	m := storeapi.NewMultiStore(storeapi.StaticStores(tenants["beta"], tenants["alpha"]), "receive", nil)
	store, info := storeapitest.Serve(t, m, m)
	ctx := context.Background()

	series := func(t *testing.T, req *storepb.SeriesRequest) (out []string) {
		t.Helper()
		stream, err := store.Series(ctx, req)
		require.NoError(t, err)
		for {
			resp, err := stream.Recv()
			if err != nil {
				require.ErrorIs(t, err, io.EOF)
				return out
			}
			s := resp.GetSeries()
			require.NotNil(t, s)
			out = append(out, fmt.Sprintf("%s %d", storeapi.LabelsFromProto(s.GetLabels()), len(s.GetChunks())))
		}
	}
	up := &storepb.LabelMatcher{Type: storepb.LabelMatcher_EQ, Name: "__name__", Value: "up"}

	cases := []struct {
		name string
		req  *storepb.SeriesRequest
		want []string
	}{
		{
			name: "both tenants, merged in label order",
			req:  &storepb.SeriesRequest{MinTime: 0, MaxTime: 3000, Matchers: []*storepb.LabelMatcher{up}},
			want: []string{
				`{__name__="up", job="a", replica="0", tenant_id="alpha"} 1`,
				`{__name__="up", job="a", replica="0", tenant_id="beta"} 1`,
				`{__name__="up", job="b", replica="0", tenant_id="alpha"} 1`,
				`{__name__="up", job="b", replica="0", tenant_id="beta"} 1`,
			},
		},
		{
			name: "one tenant by its external label",
			req: &storepb.SeriesRequest{MinTime: 0, MaxTime: 3000, Matchers: []*storepb.LabelMatcher{
				up, {Type: storepb.LabelMatcher_EQ, Name: "tenant_id", Value: "beta"},
			}},
			want: []string{
				`{__name__="up", job="a", replica="0", tenant_id="beta"} 1`,
				`{__name__="up", job="b", replica="0", tenant_id="beta"} 1`,
			},
		},
		{
			name: "series equal without an external label are joined",
			req: &storepb.SeriesRequest{MinTime: 0, MaxTime: 3000, Matchers: []*storepb.LabelMatcher{up},
				WithoutReplicaLabels: []string{"tenant_id"}},
			want: []string{
				`{__name__="up", job="a", replica="0"} 2`,
				`{__name__="up", job="b", replica="0"} 2`,
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, series(t, c.req))
		})
	}

	t.Run("label values of the tenant label", func(t *testing.T) {
		resp, err := store.LabelValues(ctx, &storepb.LabelValuesRequest{Label: "tenant_id", Start: 0, End: 3000})
		require.NoError(t, err)
		require.Equal(t, []string{"alpha", "beta"}, resp.GetValues())
	})
	t.Run("info lists every tenant's label set", func(t *testing.T) {
		resp, err := info.Info(ctx, &infopb.InfoRequest{})
		require.NoError(t, err)
		require.Equal(t, "receive", resp.GetComponentType())
		var sets []string
		for _, ls := range resp.GetLabelSets() {
			sets = append(sets, storeapi.LabelsFromProto(ls.GetLabels()).String())
		}
		require.Equal(t, []string{`{replica="0", tenant_id="alpha"}`, `{replica="0", tenant_id="beta"}`}, sets)
		require.Equal(t, int64(1000), resp.GetStore().GetMinTime())
		require.Equal(t, int64(math.MaxInt64), resp.GetStore().GetMaxTime())
	})
	t.Run("info without stores has an empty time range", func(t *testing.T) {
		empty := storeapi.NewMultiStore(storeapi.StaticStores(), "receive", nil)
		resp, err := empty.Info(ctx, &infopb.InfoRequest{})
		require.NoError(t, err)
		require.Empty(t, resp.GetLabelSets())
		require.Greater(t, resp.GetStore().GetMinTime(), resp.GetStore().GetMaxTime())
	})
}
