package bucket

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
)

// issuesOf returns the kinds of issues reported for block id.
func issuesOf(rep *Report, id ulid.ULID) []IssueKind {
	var kinds []IssueKind
	for _, is := range rep.Issues {
		if is.Block == id {
			kinds = append(kinds, is.Kind)
		}
	}
	return kinds
}

func TestVerifyHealthyBucket(t *testing.T) {
	ctx := context.Background()
	bkt, _ := newBucket(t)
	a := map[string]string{"tenant_id": "a", "receive_replica": "0"}
	uploadBlock(t, bkt, 0, 2*hour, a, 0)
	uploadBlock(t, bkt, 2*hour, 4*hour, a, 0)
	// Same range, another resolution: another group.
	uploadBlock(t, bkt, 0, 4*hour, a, block.Resolution5m)
	require.NoError(t, bkt.Upload(ctx, "debug/whatever", strings.NewReader("x")))

	for _, opts := range []VerifyOptions{{}, {SkipIndex: true}, {ChunkRefs: true, TempDir: t.TempDir()}} {
		rep, err := Verify(ctx, nil, bkt, opts)
		require.NoError(t, err)
		require.Equal(t, 3, rep.Blocks)
		require.Empty(t, rep.Issues)
		require.True(t, rep.OK())
	}
}

func TestVerifyOverlaps(t *testing.T) {
	ctx := context.Background()
	bkt, _ := newBucket(t)
	r0 := map[string]string{"tenant_id": "a", "receive_replica": "0"}
	r1 := map[string]string{"tenant_id": "a", "receive_replica": "1"}
	first := uploadBlock(t, bkt, 0, 2*hour, r0, 0)
	overlapping := uploadBlock(t, bkt, hour, 3*hour, r0, 0)
	adjacent := uploadBlock(t, bkt, 3*hour, 5*hour, r0, 0) // touches, does not overlap
	replica := uploadBlock(t, bkt, 3*hour, 5*hour, r1, 0)  // another group unless the replica label is ignored
	otherTenant := uploadBlock(t, bkt, 0, 2*hour, map[string]string{"tenant_id": "b"}, 0)
	// A compacted block and a source marked for deletion overlap harmlessly.
	marked := uploadBlock(t, bkt, 3*hour, 4*hour, r0, 0)
	require.NoError(t, block.WriteDeletionMark(ctx, bkt, marked.ULID, time.Now(), ""))

	rep, err := Verify(ctx, nil, bkt, VerifyOptions{SkipIndex: true})
	require.NoError(t, err)
	require.Equal(t, 6, rep.Blocks)
	require.Len(t, rep.Issues, 1, "%+v", rep.Issues)
	// Sorted by minTime, the second block of the pair is the one reported.
	require.Equal(t, overlapping.ULID, rep.Issues[0].Block)
	require.Equal(t, IssueOverlap, rep.Issues[0].Kind)
	require.Contains(t, rep.Issues[0].Message, first.ULID.String())
	for _, m := range []*block.Meta{adjacent, replica, otherTenant, marked} {
		require.Empty(t, issuesOf(rep, m.ULID))
	}

	// With the replica label removed, the replicas' blocks are one group and overlap.
	rep, err = Verify(ctx, nil, bkt, VerifyOptions{SkipIndex: true, ReplicaLabels: []string{"receive_replica"}})
	require.NoError(t, err)
	require.Len(t, rep.Issues, 2, "%+v", rep.Issues)
	require.Equal(t, []IssueKind{IssueOverlap}, issuesOf(rep, overlapping.ULID))
	later := replica
	if replica.ULID.Compare(adjacent.ULID) < 0 {
		later = adjacent // equal ranges are ordered by ULID
	}
	require.Equal(t, []IssueKind{IssueOverlap}, issuesOf(rep, later.ULID))
	require.Empty(t, issuesOf(rep, otherTenant.ULID))
}

func TestVerifyFilesAndMarks(t *testing.T) {
	ctx := context.Background()
	bkt, root := newBucket(t)
	lbls := map[string]string{"tenant_id": "a"}

	missing := uploadBlock(t, bkt, 0, 2*hour, lbls, 0)
	require.NoError(t, bkt.Delete(ctx, path.Join(missing.ULID.String(), "chunks", "000001")))

	resized := uploadBlock(t, bkt, 2*hour, 4*hour, lbls, 0)
	require.NoError(t, os.Truncate(filepath.Join(root, resized.ULID.String(), "chunks", "000001"), 10))

	extra := uploadBlock(t, bkt, 4*hour, 6*hour, lbls, 0)
	require.NoError(t, bkt.Upload(ctx, path.Join(extra.ULID.String(), "chunks", "000002"), strings.NewReader("junk")))

	partial := uploadBlock(t, bkt, 6*hour, 8*hour, lbls, 0)
	require.NoError(t, bkt.Delete(ctx, path.Join(partial.ULID.String(), block.MetaFilename)))

	badMark := uploadBlock(t, bkt, 8*hour, 10*hour, lbls, 0)
	require.NoError(t, bkt.Upload(ctx, path.Join(badMark.ULID.String(), block.NoCompactMarkFilename), strings.NewReader(`{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","version":1}`)))

	badMeta := uploadBlock(t, bkt, 10*hour, 12*hour, lbls, 0)
	require.NoError(t, bkt.Upload(ctx, path.Join(badMeta.ULID.String(), block.MetaFilename), strings.NewReader(`{"version":1}`)))

	badIndex := uploadBlock(t, bkt, 12*hour, 14*hour, lbls, 0)
	require.NoError(t, os.Truncate(filepath.Join(root, badIndex.ULID.String(), block.IndexFilename), 100))

	healthy := uploadBlock(t, bkt, 14*hour, 16*hour, lbls, 0)
	require.NoError(t, block.WriteNoCompactMark(ctx, bkt, healthy.ULID, time.Now(), block.ReasonManual, ""))

	rep, err := Verify(ctx, nil, bkt, VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, 8, rep.Blocks)
	require.Equal(t, []IssueKind{IssueMissingFile}, issuesOf(rep, missing.ULID))
	require.Equal(t, []IssueKind{IssueFileSize}, issuesOf(rep, resized.ULID))
	require.Equal(t, []IssueKind{IssueUnlistedFile}, issuesOf(rep, extra.ULID))
	require.Equal(t, []IssueKind{IssuePartialUpload}, issuesOf(rep, partial.ULID))
	require.Equal(t, []IssueKind{IssueInvalidMark}, issuesOf(rep, badMark.ULID))
	require.Equal(t, []IssueKind{IssueInvalidMeta}, issuesOf(rep, badMeta.ULID))
	require.Equal(t, []IssueKind{IssueFileSize, IssueIndex}, issuesOf(rep, badIndex.ULID))
	require.Empty(t, issuesOf(rep, healthy.ULID))

	// Without the index check, the truncated index is only a size mismatch.
	rep, err = Verify(ctx, nil, bkt, VerifyOptions{SkipIndex: true})
	require.NoError(t, err)
	require.Equal(t, []IssueKind{IssueFileSize}, issuesOf(rep, badIndex.ULID))

	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), missing.ULID.String())
	require.Contains(t, text.String(), string(IssuePartialUpload))
	require.Contains(t, text.String(), "8 blocks verified, 7 issues")

	var js bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	var decoded Report
	require.NoError(t, json.Unmarshal(js.Bytes(), &decoded))
	require.Equal(t, *rep, decoded)
}
