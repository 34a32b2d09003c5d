package block_test

import (
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/objstore"
)

const testULID = "01HZX0AAAAAAAAAAAAAAAAAAAA"

func testMeta(t *testing.T) *block.Meta {
	t.Helper()
	id := ulid.MustParseStrict(testULID)
	return &block.Meta{
		BlockMeta: tsdb.BlockMeta{
			ULID:    id,
			MinTime: 0,
			MaxTime: 7_200_000,
			Stats:   tsdb.BlockStats{NumSamples: 10, NumSeries: 2, NumChunks: 2},
			Compaction: tsdb.BlockMetaCompaction{
				Level:   1,
				Sources: []ulid.ULID{id},
			},
			Version: block.TSDBVersion1,
		},
		Thanos: block.ThanosMeta{
			Version:    block.ThanosVersion1,
			Labels:     map[string]string{"tenant_id": "team-a", "receive_replica": "r0"},
			Downsample: block.Downsample{Resolution: 0},
			Source:     block.SourceReceive,
			Files: []block.File{
				{RelPath: "chunks/000001", SizeBytes: 100},
				{RelPath: "index", SizeBytes: 50},
			},
			UploadTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		},
	}
}

func TestMetaRoundTripAndJSONNames(t *testing.T) {
	dir := t.TempDir()
	m := testMeta(t)
	require.NoError(t, m.WriteToDir(nil, dir))

	raw, err := os.ReadFile(filepath.Join(dir, block.MetaFilename))
	require.NoError(t, err)
	require.JSONEq(t, `{
		"ulid": "`+testULID+`",
		"minTime": 0,
		"maxTime": 7200000,
		"stats": {"numSamples": 10, "numSeries": 2, "numChunks": 2},
		"compaction": {"level": 1, "sources": ["`+testULID+`"]},
		"version": 1,
		"thanos": {
			"version": 1,
			"labels": {"tenant_id": "team-a", "receive_replica": "r0"},
			"downsample": {"resolution": 0},
			"source": "receive",
			"files": [
				{"rel_path": "chunks/000001", "size_bytes": 100},
				{"rel_path": "index", "size_bytes": 50}
			],
			"upload_time": "2026-01-02T03:04:05Z"
		}
	}`, string(raw))

	got, err := block.ReadMetaFromDir(dir)
	require.NoError(t, err)
	require.Equal(t, m, got)

	// Writing again replaces the file and leaves no temporary file behind.
	m.Thanos.Labels["tenant_id"] = "team-b"
	require.NoError(t, m.WriteToDir(nil, dir))
	got, err = block.ReadMetaFromDir(dir)
	require.NoError(t, err)
	require.Equal(t, "team-b", got.Thanos.Labels["tenant_id"])
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestMetaZeroValuesStayInFormat(t *testing.T) {
	// A meta without files or upload time still has the sections Thanos readers
	// expect, and none of the optional ones.
	m := testMeta(t)
	m.Thanos.Files = nil
	m.Thanos.UploadTime = time.Time{}
	m.Thanos.Labels = nil
	b, err := m.Marshal()
	require.NoError(t, err)

	var doc struct {
		Thanos map[string]json.RawMessage `json:"thanos"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	require.JSONEq(t, `{"resolution":0}`, string(doc.Thanos["downsample"]))
	require.JSONEq(t, `"receive"`, string(doc.Thanos["source"]))
	require.Contains(t, doc.Thanos, "labels")
	require.NotContains(t, doc.Thanos, "files")
	require.NotContains(t, doc.Thanos, "upload_time")
	require.NotContains(t, doc.Thanos, "segment_files")
}

func TestReadMetaOfPrometheusBlock(t *testing.T) {
	// A block freshly cut by Prometheus has no thanos section; it must still read.
	dir := t.TempDir()
	id := blocktest.Create(t, dir, 0, 3_600_000, 2)

	m, err := block.ReadMetaFromDir(filepath.Join(dir, id.String()))
	require.NoError(t, err)
	require.Equal(t, id, m.ULID)
	require.Equal(t, int64(0), m.MinTime)
	require.Equal(t, int64(3_600_000-blocktest.Step+1), m.MaxTime)
	require.Equal(t, uint64(2*3_600_000/blocktest.Step), m.Stats.NumSamples)
	require.Equal(t, 1, m.Compaction.Level)
	require.Equal(t, 0, m.Thanos.Version)
	require.Empty(t, m.Thanos.Labels)
}

func TestReadMetaOfThanosBlock(t *testing.T) {
	// Fields strata does not model (hashes, rewrites, index stats) are ignored.
	raw := `{
		"ulid": "` + testULID + `", "minTime": 10, "maxTime": 20, "version": 1,
		"compaction": {"level": 3},
		"thanos": {
			"version": 1,
			"labels": {"cluster": "eu1"},
			"downsample": {"resolution": 300000},
			"source": "compactor",
			"segment_files": ["000001"],
			"files": [{"rel_path": "chunks/000001", "size_bytes": 7, "hash": {"hashFunc": "SHA256", "value": "ab"}},
			          {"rel_path": "meta.json"}],
			"rewrites": [{"sources": []}],
			"index_stats": {"series_max_size": 1},
			"upload_time": "2026-03-04T05:06:07.123Z"
		}
	}`
	m, err := block.ReadMeta(strings.NewReader(raw))
	require.NoError(t, err)
	require.Equal(t, block.SourceCompactor, m.Thanos.Source)
	require.Equal(t, int64(300_000), m.Thanos.Downsample.Resolution)
	require.Equal(t, []string{"000001"}, m.Thanos.SegmentFiles)
	require.Equal(t, []block.File{{RelPath: "chunks/000001", SizeBytes: 7}, {RelPath: "meta.json"}}, m.Thanos.Files)
	require.Equal(t, map[string]string{"cluster": "eu1"}, m.Thanos.Labels)
	require.Equal(t, time.Date(2026, 3, 4, 5, 6, 7, 123_000_000, time.UTC), m.Thanos.UploadTime)
}

func TestReadMetaValidation(t *testing.T) {
	valid := func(mutate func(m map[string]any)) string {
		m := map[string]any{
			"ulid": testULID, "minTime": 0, "maxTime": 1000, "version": 1,
			"compaction": map[string]any{"level": 1},
			"thanos":     map[string]any{"version": 1, "labels": map[string]string{"a": "b"}, "downsample": map[string]any{"resolution": 0}, "source": "receive"},
		}
		if mutate != nil {
			mutate(m)
		}
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return string(b)
	}
	for _, tc := range []struct {
		name    string
		raw     string
		wantErr string
	}{
		{name: "valid", raw: valid(nil)},
		{name: "no thanos section", raw: valid(func(m map[string]any) { delete(m, "thanos") })},
		{name: "not json", raw: "{not json", wantErr: "decode meta.json"},
		{name: "trailing garbage", raw: valid(nil) + "x", wantErr: "decode meta.json"},
		{name: "empty", raw: "", wantErr: "decode meta.json"},
		{name: "bad ulid", raw: valid(func(m map[string]any) { m["ulid"] = "nope" }), wantErr: "decode meta.json"},
		{name: "missing ulid", raw: valid(func(m map[string]any) { delete(m, "ulid") }), wantErr: "missing ULID"},
		{name: "version 2", raw: valid(func(m map[string]any) { m["version"] = 2 }), wantErr: "unexpected meta.json version 2"},
		{name: "missing version", raw: valid(func(m map[string]any) { delete(m, "version") }), wantErr: "unexpected meta.json version 0"},
		{name: "empty range", raw: valid(func(m map[string]any) { m["maxTime"] = 0 }), wantErr: "is not before maxTime"},
		{name: "inverted range", raw: valid(func(m map[string]any) { m["minTime"] = 5000 }), wantErr: "is not before maxTime"},
		{name: "thanos version 2", raw: valid(func(m map[string]any) { m["thanos"].(map[string]any)["version"] = 2 }), wantErr: "unexpected thanos section version 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := block.ReadMeta(strings.NewReader(tc.raw))
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, ulid.MustParseStrict(testULID), m.ULID)
				return
			}
			require.ErrorIs(t, err, block.ErrInvalidMeta)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestReadMetaFromDirMissing(t *testing.T) {
	_, err := block.ReadMetaFromDir(t.TempDir())
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestReadMetaFromBucket(t *testing.T) {
	ctx := context.Background()
	bkt, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	m := testMeta(t)
	b, err := m.Marshal()
	require.NoError(t, err)
	require.NoError(t, bkt.Upload(ctx, path.Join(testULID, block.MetaFilename), strings.NewReader(string(b))))

	got, err := block.ReadMetaFromBucket(ctx, bkt, m.ULID)
	require.NoError(t, err)
	require.Equal(t, m, got)

	_, err = block.ReadMetaFromBucket(ctx, bkt, ulid.MustParseStrict("01HZX0BBBBBBBBBBBBBBBBBBBB"))
	require.ErrorIs(t, err, objstore.ErrNotFound)

	// A meta.json stored under another block's name is refused.
	other := ulid.MustParseStrict("01HZX0CCCCCCCCCCCCCCCCCCCC")
	require.NoError(t, bkt.Upload(ctx, path.Join(other.String(), block.MetaFilename), strings.NewReader(string(b))))
	_, err = block.ReadMetaFromBucket(ctx, bkt, other)
	require.ErrorIs(t, err, block.ErrInvalidMeta)

	require.NoError(t, bkt.Upload(ctx, path.Join(testULID, block.MetaFilename), strings.NewReader("{")))
	_, err = block.ReadMetaFromBucket(ctx, bkt, m.ULID)
	require.ErrorIs(t, err, block.ErrInvalidMeta)
}
