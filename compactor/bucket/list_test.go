package bucket

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
)

func TestListAndInspect(t *testing.T) {
	ctx := context.Background()
	bkt, _ := newBucket(t)
	b2 := uploadBlock(t, bkt, 2*hour, 4*hour, map[string]string{"tenant_id": "b", "receive_replica": "0"}, 0)
	b1 := uploadBlock(t, bkt, 0, 2*hour, map[string]string{"tenant_id": "b", "receive_replica": "0"}, 0)
	b5m := uploadBlock(t, bkt, 0, 4*hour, map[string]string{"tenant_id": "b", "receive_replica": "0"}, block.Resolution5m)
	bReplica := uploadBlock(t, bkt, 0, 2*hour, map[string]string{"tenant_id": "b", "receive_replica": "1"}, 0)
	a := uploadBlock(t, bkt, 4*hour, 6*hour, map[string]string{"tenant_id": "a"}, 0)
	require.NoError(t, block.WriteDeletionMark(ctx, bkt, a.ULID, time.Now(), ""))
	require.NoError(t, block.WriteNoCompactMark(ctx, bkt, a.ULID, time.Now(), block.ReasonManual, ""))
	partial := uploadBlock(t, bkt, 6*hour, 8*hour, map[string]string{"tenant_id": "a"}, 0)
	require.NoError(t, bkt.Delete(ctx, partial.ULID.String()+"/"+block.MetaFilename))

	blocks, err := List(ctx, bkt, ListOptions{Concurrency: 2})
	require.NoError(t, err)
	ids := func(bs []BlockInfo) []ulid.ULID {
		var out []ulid.ULID
		for _, b := range bs {
			out = append(out, b.ID)
		}
		return out
	}
	// Tenant, then labels, then resolution, then minTime.
	require.Equal(t, []ulid.ULID{a.ULID, b1.ULID, b2.ULID, b5m.ULID, bReplica.ULID}, ids(blocks))
	got := blocks[0]
	require.Equal(t, "a", got.Tenant)
	require.Equal(t, []string{block.DeletionMarkFilename, block.NoCompactMarkFilename}, got.Marks)
	require.True(t, got.HasMark(block.NoCompactMarkFilename))
	require.Equal(t, time.UnixMilli(4*hour).UTC(), got.MinTime)
	require.Equal(t, 2*time.Hour, got.Duration())
	require.Equal(t, uint64(3), got.Series)
	require.Equal(t, a.Stats.NumSamples, got.Samples)
	require.Equal(t, 1, got.Level)
	require.Equal(t, block.SourceTest, got.Source)
	require.False(t, got.UploadTime.IsZero())
	require.Equal(t, block.Resolution5m, blocks[3].Resolution)

	sel, err := List(ctx, bkt, ListOptions{Selector: map[string]string{"tenant_id": "b", "receive_replica": "1"}})
	require.NoError(t, err)
	require.Equal(t, []ulid.ULID{bReplica.ULID}, ids(sel))

	var table bytes.Buffer
	require.NoError(t, WriteBlocksTable(&table, blocks))
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	require.Len(t, lines, 6)
	require.Contains(t, lines[1], a.ULID.String())
	require.Contains(t, lines[1], "1970-01-01T04:00:00Z")
	require.Contains(t, lines[1], "deletion,no-compact")
	require.Contains(t, lines[4], "5m")
	require.Contains(t, lines[5], `{receive_replica="1"}`)

	var inspect bytes.Buffer
	require.NoError(t, WriteInspectTable(&inspect, blocks))
	out := inspect.String()
	require.Contains(t, out, "TENANT a: 1 blocks")
	require.Contains(t, out, "TENANT b: 4 blocks")
	require.Less(t, strings.Index(out, "TENANT a"), strings.Index(out, "TENANT b"))
	for _, id := range ids(blocks) {
		require.Contains(t, out, id.String())
	}
	require.NotContains(t, out, partial.ULID.String())

	var js bytes.Buffer
	require.NoError(t, WriteBlocksJSON(&js, blocks))
	var decoded []BlockInfo
	require.NoError(t, json.Unmarshal(js.Bytes(), &decoded))
	require.Equal(t, blocks, decoded)
}

func TestMark(t *testing.T) {
	ctx := context.Background()
	bkt, _ := newBucket(t)
	lbls := map[string]string{"tenant_id": "a"}
	m1 := uploadBlock(t, bkt, 0, 2*hour, lbls, 0)
	m2 := uploadBlock(t, bkt, 2*hour, 4*hour, lbls, 0)
	at := time.Unix(1_800_000_000, 0)

	require.NoError(t, Mark(ctx, nil, bkt, []ulid.ULID{m1.ULID, m2.ULID}, block.NoCompactMarkFilename, "broken", at))
	for _, id := range []ulid.ULID{m1.ULID, m2.ULID} {
		mark, err := block.ReadNoCompactMark(ctx, bkt, id)
		require.NoError(t, err)
		require.Equal(t, "broken", mark.Details)
		require.Equal(t, block.ReasonManual, mark.Reason)
		require.Equal(t, at.Unix(), mark.NoCompactTime)
	}
	require.NoError(t, Mark(ctx, nil, bkt, []ulid.ULID{m1.ULID}, block.DeletionMarkFilename, "", at))
	dm, err := block.ReadDeletionMark(ctx, bkt, m1.ULID)
	require.NoError(t, err)
	require.Equal(t, at.Unix(), dm.DeletionTime)
	require.NoError(t, Mark(ctx, nil, bkt, []ulid.ULID{m2.ULID}, block.NoDownsampleMarkFilename, "", at))
	_, err = block.ReadNoDownsampleMark(ctx, bkt, m2.ULID)
	require.NoError(t, err)

	missing := ulid.MustNew(1, nil)
	err = Mark(ctx, nil, bkt, []ulid.ULID{m2.ULID, missing}, block.DeletionMarkFilename, "", at)
	require.ErrorIs(t, err, ErrBlockNotFound)
	require.ErrorContains(t, err, missing.String())
	require.False(t, exists(t, bkt, m2.ULID, block.DeletionMarkFilename), "nothing is marked when one block is missing")

	require.ErrorIs(t, Mark(ctx, nil, bkt, []ulid.ULID{m1.ULID}, "meta.json", "", at), ErrUnknownMarker)
}
