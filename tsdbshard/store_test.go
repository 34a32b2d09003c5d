package tsdbshard

import (
	"context"
	"io"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// appendFixture writes data to tenant through the Manager's appender.
func appendFixture(t *testing.T, m *Manager, tenant string, data []storeapitest.Series) {
	t.Helper()
	app, err := m.TenantAppender(context.Background(), tenant)
	require.NoError(t, err)
	require.NoError(t, storeapitest.AppendAll(app, data))
	require.NoError(t, app.Commit())
}

func TestStoreServerAcceptance(t *testing.T) {
	storeapitest.AcceptanceTest(t, func(t *testing.T, data []storeapitest.Series, ext labels.Labels) (storepb.StoreClient, infopb.InfoClient) {
		tenant := ext.Get(DefaultTenantLabelName)
		require.NotEmpty(t, tenant)
		m := newTestManager(t, t.TempDir(), nil, func(o *Options) {
			o.ExternalLabels = labels.NewBuilder(ext).Del(DefaultTenantLabelName).Labels()
		})
		t.Cleanup(func() { require.NoError(t, m.Close(context.Background())) })

		// The first half of the data goes to a local block, the rest stays in the head.
		lo, hi := data[0].Samples[0].T, data[0].Samples[0].T
		for _, s := range data {
			lo, hi = min(lo, s.Samples[0].T), max(hi, s.Samples[len(s.Samples)-1].T)
		}
		before, after := storeapitest.SplitAt(data, lo+(hi-lo)/2)
		appendFixture(t, m, tenant, before)
		tn := m.tenantFor(tenant)
		require.NoError(t, flushHead(context.Background(), tn.db, m.opts.BlockDuration.Milliseconds()))
		require.NotEmpty(t, tn.db.Blocks())
		appendFixture(t, m, tenant, after)

		srv := m.StoreServer()
		return storeapitest.Serve(t, srv, srv)
	})
}

func TestStoreServerTenants(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, t.TempDir(), nil, nil)
	t.Cleanup(func() { require.NoError(t, m.Close(ctx)) })
	srv := m.StoreServer()
	store, info := storeapitest.Serve(t, srv, srv)

	resp, err := info.Info(ctx, &infopb.InfoRequest{})
	require.NoError(t, err)
	require.Equal(t, StoreComponent, resp.GetComponentType())
	require.Empty(t, resp.GetLabelSets(), "no tenants yet")

	data := func(job string) []storeapitest.Series {
		return []storeapitest.Series{{
			Labels:  labels.FromStrings("__name__", "up", "job", job),
			Samples: []storeapitest.Sample{{T: 1000, F: 1}, {T: 2000, F: 2}},
		}}
	}
	appendFixture(t, m, "b", data("from-b"))
	appendFixture(t, m, "a", data("from-a"))

	resp, err = info.Info(ctx, &infopb.InfoRequest{})
	require.NoError(t, err)
	var sets []string
	for _, ls := range resp.GetLabelSets() {
		sets = append(sets, storeapi.LabelsFromProto(ls.GetLabels()).String())
	}
	require.Equal(t, []string{`{receive_replica="r0", tenant_id="a"}`, `{receive_replica="r0", tenant_id="b"}`}, sets)
	require.Equal(t, int64(1000), resp.GetStore().GetMinTime())

	cases := []struct {
		name     string
		matchers []*storepb.LabelMatcher
		want     []string
	}{
		{"every tenant", nil, []string{
			`{__name__="up", job="from-a", receive_replica="r0", tenant_id="a"}`,
			`{__name__="up", job="from-b", receive_replica="r0", tenant_id="b"}`,
		}},
		{"one tenant", []*storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "tenant_id", Value: "b"}}, []string{
			`{__name__="up", job="from-b", receive_replica="r0", tenant_id="b"}`,
		}},
		{"no tenant", []*storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "tenant_id", Value: "c"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stream, err := store.Series(ctx, &storepb.SeriesRequest{MinTime: 0, MaxTime: 3000, Matchers: c.matchers, SkipChunks: true})
			require.NoError(t, err)
			var got []string
			for {
				r, err := stream.Recv()
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				got = append(got, storeapi.LabelsFromProto(r.GetSeries().GetLabels()).String())
			}
			require.Equal(t, c.want, got)
		})
	}
}
