package blocksync_test

import (
	"context"
	"errors"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/internal/miniotest"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storegw/blocksync"
)

const hour = int64(time.Hour / time.Millisecond)

func blocksGauge(t *testing.T, reg *prometheus.Registry, state string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "strata_blocksync_blocks" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" && l.GetValue() == state {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no strata_blocksync_blocks{state=%q}", state)
	return 0
}

func TestFetchPartialAndCorrupted(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	good := uploadBlock(t, bkt, 0, 2*hour, testLabels)

	// A partial upload: chunks but no meta.json.
	partialID := ulid.Make()
	require.NoError(t, bkt.Upload(ctx, path.Join(partialID.String(), block.ChunksDirname, "000001"), strings.NewReader("chunks")))
	// A meta.json that is not JSON.
	corruptID := ulid.Make()
	require.NoError(t, bkt.Upload(ctx, path.Join(corruptID.String(), block.MetaFilename), strings.NewReader("{not json")))
	// A valid meta.json that describes another block.
	strayID := ulid.Make()
	b, err := good.Marshal()
	require.NoError(t, err)
	require.NoError(t, bkt.Upload(ctx, path.Join(strayID.String(), block.MetaFilename), strings.NewReader(string(b))))
	// Names that are not blocks.
	require.NoError(t, bkt.Upload(ctx, "debug/metas/x.json", strings.NewReader("{}")))
	require.NoError(t, bkt.Upload(ctx, "not-a-ulid.json", strings.NewReader("{}")))

	reg := prometheus.NewRegistry()
	f := blocksync.NewFetcher(bkt, blocksync.FetcherConfig{}, reg, nil)
	metas, partial, err := f.Fetch(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []ulid.ULID{good.ULID}, ids(metas))
	require.Equal(t, good.Thanos.Labels, metas[good.ULID].Thanos.Labels)
	require.ElementsMatch(t, []ulid.ULID{partialID, corruptID, strayID}, ids(partial))

	require.ErrorIs(t, partial[partialID], objstore.ErrNotFound)
	for _, id := range []ulid.ULID{corruptID, strayID} {
		require.ErrorIs(t, partial[id], block.ErrInvalidMeta)
		require.ErrorContains(t, partial[id], id.String())
	}

	require.Equal(t, 1.0, blocksGauge(t, reg, blocksync.StateLoaded))
	require.Equal(t, 1.0, blocksGauge(t, reg, blocksync.StatePartial))
	require.Equal(t, 2.0, blocksGauge(t, reg, blocksync.StateCorrupted))
	require.Equal(t, 1.0, counterValue(t, reg, "strata_blocksync_syncs_total"))
	require.Equal(t, 0.0, counterValue(t, reg, "strata_blocksync_sync_failures_total"))

	// Once the upload completes, the partial block loads.
	require.NoError(t, bkt.Delete(ctx, path.Join(partialID.String(), block.ChunksDirname, "000001")))
	completed := uploadMeta(t, bkt, time.Now(), 0, hour)
	metas, _, err = f.Fetch(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []ulid.ULID{good.ULID, completed.ULID}, ids(metas))
}

// counterValue returns the value of the unlabelled counter name in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestFetchCachesMetas(t *testing.T) {
	ctx := context.Background()
	cb := &countingBucket{Bucket: newBucket(t)}
	const n = 20
	for range n {
		uploadMeta(t, cb, time.Now(), 0, hour)
	}
	f := blocksync.NewFetcher(cb, blocksync.FetcherConfig{Concurrency: 3}, nil, nil)

	metas, _, err := f.Fetch(ctx)
	require.NoError(t, err)
	require.Len(t, metas, n)
	gets, maxInflight := cb.stats()
	require.Equal(t, n, gets)
	require.LessOrEqual(t, maxInflight, 3, "more concurrent reads than configured")

	metas, _, err = f.Fetch(ctx)
	require.NoError(t, err)
	require.Len(t, metas, n)
	gets, _ = cb.stats()
	require.Equal(t, n, gets, "a sync of unchanged blocks read meta.json again")

	added := uploadMeta(t, cb, time.Now(), 0, hour)
	metas, _, err = f.Fetch(ctx)
	require.NoError(t, err)
	require.Len(t, metas, n+1)
	require.Contains(t, metas, added.ULID)
	gets, _ = cb.stats()
	require.Equal(t, n+1, gets, "only the new block's meta.json should be read")
}

func TestFetchReadErrorFailsSync(t *testing.T) {
	ctx := context.Background()
	cb := &countingBucket{Bucket: newBucket(t)}
	first := uploadMeta(t, cb, time.Now(), 0, hour)
	reg := prometheus.NewRegistry()
	f := blocksync.NewFetcher(cb, blocksync.FetcherConfig{}, reg, nil)
	var removed []ulid.ULID
	s := blocksync.NewSyncer(f, blocksync.SyncerConfig{OnRemove: func(id ulid.ULID) { removed = append(removed, id) }}, nil)
	require.NoError(t, s.Sync(ctx))

	// A block whose meta.json cannot be read for a reason other than absence or
	// corruption fails the sync, and the served set stays as it was.
	uploadMeta(t, cb, time.Now(), 0, hour)
	injected := errors.New("connection reset")
	cb.setFailGet(injected)
	err := s.Sync(ctx)
	require.ErrorIs(t, err, injected)
	require.Equal(t, []ulid.ULID{first.ULID}, ids(s.Metas()))
	require.Empty(t, removed)
	require.Equal(t, 1.0, counterValue(t, reg, "strata_blocksync_sync_failures_total"))

	cb.setFailGet(nil)
	require.NoError(t, s.Sync(ctx))
	require.Len(t, s.Metas(), 2)
}

func TestDeletionMarkFilter(t *testing.T) {
	ctx := context.Background()
	const delay = time.Hour
	for _, tc := range []struct {
		name     string
		mark     func(t *testing.T, bkt objstore.Bucket, id ulid.ULID)
		wantKept bool
	}{
		{name: "no mark", mark: func(*testing.T, objstore.Bucket, ulid.ULID) {}, wantKept: true},
		{name: "mark younger than delay", wantKept: true, mark: func(t *testing.T, bkt objstore.Bucket, id ulid.ULID) {
			require.NoError(t, block.WriteDeletionMark(ctx, bkt, id, time.Now().Add(-delay/2), "compacted"))
		}},
		{name: "mark older than delay", wantKept: false, mark: func(t *testing.T, bkt objstore.Bucket, id ulid.ULID) {
			require.NoError(t, block.WriteDeletionMark(ctx, bkt, id, time.Now().Add(-2*delay), "compacted"))
		}},
		{name: "invalid mark is ignored", wantKept: true, mark: func(t *testing.T, bkt objstore.Bucket, id ulid.ULID) {
			require.NoError(t, bkt.Upload(ctx, path.Join(id.String(), block.DeletionMarkFilename), strings.NewReader("garbage")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bkt := newBucket(t)
			other := uploadBlock(t, bkt, 0, 2*hour, testLabels)
			m := uploadBlock(t, bkt, 2*hour, 4*hour, testLabels)
			tc.mark(t, bkt, m.ULID)

			reg := prometheus.NewRegistry()
			f := blocksync.NewFetcher(bkt, blocksync.FetcherConfig{
				Filters: []blocksync.Filter{blocksync.NewDeletionMarkFilter(bkt, delay, 2, nil)},
			}, reg, nil)
			metas, partial, err := f.Fetch(ctx)
			require.NoError(t, err)
			require.Empty(t, partial)
			require.Contains(t, metas, other.ULID)
			_, kept := metas[m.ULID]
			require.Equal(t, tc.wantKept, kept)
			wantMarked := 1.0
			if tc.wantKept {
				wantMarked = 0
			}
			require.Equal(t, wantMarked, blocksGauge(t, reg, blocksync.StateMarkedForDeletion))
			require.Equal(t, float64(len(metas)), blocksGauge(t, reg, blocksync.StateLoaded))
		})
	}
}

func TestConsistencyDelayFilter(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	fresh := uploadBlock(t, bkt, 0, 2*hour, testLabels) // ULID time is now
	old := uploadMeta(t, bkt, time.Now().Add(-2*time.Hour), 0, hour)

	reg := prometheus.NewRegistry()
	f := blocksync.NewFetcher(bkt, blocksync.FetcherConfig{
		Filters: []blocksync.Filter{blocksync.ConsistencyDelayFilter{Delay: 30 * time.Minute}},
	}, reg, nil)
	metas, _, err := f.Fetch(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []ulid.ULID{old.ULID}, ids(metas))
	require.Equal(t, 1.0, blocksGauge(t, reg, blocksync.StateTooNew))

	f = blocksync.NewFetcher(bkt, blocksync.FetcherConfig{
		Filters: []blocksync.Filter{blocksync.ConsistencyDelayFilter{}},
	}, nil, nil)
	metas, _, err = f.Fetch(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []ulid.ULID{old.ULID, fresh.ULID}, ids(metas))
}

func TestTimeFilter(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	now := time.Now().UnixMilli()
	day := 24 * hour
	threeWeeksAgo := uploadBlock(t, bkt, now-21*day, now-21*day+2*hour, testLabels)
	yesterday := uploadBlock(t, bkt, now-day, now-day+2*hour, testLabels)
	// Straddles the -2w bound: overlaps, so it is kept.
	straddling := uploadMeta(t, bkt, time.Now(), now-15*day, now-13*day)
	// Ends exactly at an absolute bound: a block's MaxTime is exclusive.
	endsAtBound := uploadMeta(t, bkt, time.Now(), 1_000, 2_000)

	parse := func(s string) blocksync.TimeOrDuration {
		var v blocksync.TimeOrDuration
		require.NoError(t, v.Set(s))
		return v
	}
	for _, tc := range []struct {
		name     string
		min, max blocksync.TimeOrDuration
		want     []ulid.ULID
	}{
		{name: "unbounded", want: []ulid.ULID{threeWeeksAgo.ULID, yesterday.ULID, straddling.ULID, endsAtBound.ULID}},
		{name: "last two weeks", min: parse("-2w"), want: []ulid.ULID{yesterday.ULID, straddling.ULID}},
		{name: "older than 36h", max: parse("-36h"), want: []ulid.ULID{threeWeeksAgo.ULID, straddling.ULID, endsAtBound.ULID}},
		{name: "until now", min: parse("-2w"), max: parse("0d"), want: []ulid.ULID{yesterday.ULID, straddling.ULID}},
		{
			name: "absolute",
			min:  parse(time.UnixMilli(2_000).UTC().Format(time.RFC3339Nano)),
			max:  blocksync.AbsoluteTime(time.UnixMilli(now - 20*day)),
			want: []ulid.ULID{threeWeeksAgo.ULID},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			f := blocksync.NewFetcher(bkt, blocksync.FetcherConfig{
				Filters: []blocksync.Filter{blocksync.TimeFilter{MinTime: tc.min, MaxTime: tc.max}},
			}, reg, nil)
			metas, _, err := f.Fetch(ctx)
			require.NoError(t, err)
			require.ElementsMatch(t, tc.want, ids(metas))
			require.Equal(t, float64(4-len(tc.want)), blocksGauge(t, reg, blocksync.StateOutOfTimeRange))
		})
	}
}

func TestTimeOrDuration(t *testing.T) {
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "-2w", want: now.Add(-14 * 24 * time.Hour)},
		{in: "-36h", want: now.Add(-36 * time.Hour)},
		{in: "0d", want: now},
		{in: "1h30m", want: now.Add(90 * time.Minute)},
		{in: "2024-05-01T00:00:00Z", want: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2024-05-01T02:00:00+02:00", want: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		{in: "", wantErr: true},
		{in: "-", wantErr: true},
		{in: "yesterday", wantErr: true},
		{in: "--2w", wantErr: true},
		{in: "2024-05-01", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var v blocksync.TimeOrDuration
			err := v.Set(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				require.False(t, v.IsSet())
				return
			}
			require.NoError(t, err)
			require.True(t, v.IsSet())
			require.Equal(t, tc.in, v.String())
			require.True(t, tc.want.Equal(v.Time(now)), "got %s", v.Time(now))
			require.Equal(t, tc.want.UnixMilli(), v.UnixMilli(now))
		})
	}

	rel := blocksync.RelativeTime(-36 * time.Hour)
	require.Equal(t, "-1d12h", rel.String())
	var back blocksync.TimeOrDuration
	require.NoError(t, back.Set(rel.String()))
	require.Equal(t, rel.UnixMilli(now), back.UnixMilli(now))
}

func TestFetchS3(t *testing.T) {
	ctx := context.Background()
	srv := miniotest.Start(t)
	bkt, err := objstore.NewBucket(ctx, srv.NewBucketYAML(t, "blocks"), nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, bkt.Close()) })

	a := uploadBlock(t, bkt, 0, 2*hour, testLabels)
	b := uploadBlock(t, bkt, 2*hour, 4*hour, map[string]string{"tenant_id": "team-b"})
	partialID := ulid.Make()
	require.NoError(t, bkt.Upload(ctx, path.Join(partialID.String(), "index"), strings.NewReader("index")))
	require.NoError(t, block.WriteDeletionMark(ctx, bkt, b.ULID, time.Now().Add(-time.Hour), ""))

	f := blocksync.NewFetcher(bkt, blocksync.FetcherConfig{
		Filters: []blocksync.Filter{blocksync.NewDeletionMarkFilter(bkt, 10*time.Minute, 0, nil)},
	}, nil, nil)
	metas, partial, err := f.Fetch(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []ulid.ULID{a.ULID}, ids(metas))
	require.Equal(t, a.MinTime, metas[a.ULID].MinTime)
	require.ElementsMatch(t, []ulid.ULID{partialID}, ids(partial))
	require.ErrorIs(t, partial[partialID], objstore.ErrNotFound)
}
