package main

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

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/compactor/bucket"
	"github.com/stratametrics/strata/objstore"
)

const bucketTestHour = int64(time.Hour / time.Millisecond)

// bucketFixture is a filesystem bucket and an object storage configuration
// file that points at it.
type bucketFixture struct {
	bkt        *objstore.Filesystem
	configFile string
}

func newBucketFixture(t *testing.T) *bucketFixture {
	t.Helper()
	dir := t.TempDir()
	bkt, err := objstore.NewFilesystem(dir)
	require.NoError(t, err)
	cfg := filepath.Join(t.TempDir(), "bucket.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("type: FILESYSTEM\nconfig:\n  directory: "+dir+"\n"), 0o644))
	return &bucketFixture{bkt: bkt, configFile: cfg}
}

// upload writes a real block covering [mint, maxt) with the given external
// labels and uploads it.
func (f *bucketFixture) upload(t *testing.T, mint, maxt int64, lbls map[string]string) ulid.ULID {
	t.Helper()
	dir := t.TempDir()
	id := blocktest.Create(t, dir, mint, maxt, 2)
	meta, err := block.ReadMetaFromDir(filepath.Join(dir, id.String()))
	require.NoError(t, err)
	meta.MinTime, meta.MaxTime = mint, maxt
	meta.Thanos.Labels = lbls
	meta.Thanos.Source = block.SourceTest
	require.NoError(t, block.Upload(context.Background(), nil, f.bkt, filepath.Join(dir, id.String()), meta))
	return id
}

// run parses args as a strata command line, with the bench tools registered
// too, and runs the selected bucket tool in-process with the fixture's
// configuration file. It returns what the tool wrote to its output.
func (f *bucketFixture) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := kingpin.New("strata", "")
	registerBenchWrite(app)
	c := registerBucket(toolsClause(app))
	cmd, err := app.Parse(append(args, "--objstore.config-file="+f.configFile))
	require.NoError(t, err)
	var out bytes.Buffer
	err = c.run(context.Background(), cmd, nil, prometheus.NewRegistry(), &out)
	return out.String(), err
}

func TestBucketCommandsRegistered(t *testing.T) {
	app := kingpin.New("strata", "")
	runs := toolsBucketCommands(app)
	bench, _ := registerBenchWrite(app) // after the bucket tools: shares the tools command
	require.Equal(t, "tools bench write", bench.FullCommand())
	var names []string
	for name := range runs {
		names = append(names, name)
	}
	require.ElementsMatch(t, []string{"tools bucket ls", "tools bucket inspect", "tools bucket verify", "tools bucket mark", "tools bucket cleanup", "tools bucket upload"}, names)
	cmd, err := app.Parse([]string{"tools", "bucket", "cleanup", "--objstore.config={type: FILESYSTEM, config: {directory: /tmp/x}}"})
	require.NoError(t, err)
	require.Contains(t, runs, cmd)
}

func TestBucketLsAndInspect(t *testing.T) {
	f := newBucketFixture(t)
	a := f.upload(t, 0, 2*bucketTestHour, map[string]string{"tenant_id": "a"})
	b := f.upload(t, 0, 2*bucketTestHour, map[string]string{"tenant_id": "b"})

	out, err := f.run(t, "tools", "bucket", "ls")
	require.NoError(t, err)
	require.Contains(t, out, a.String())
	require.Contains(t, out, b.String())
	require.Less(t, strings.Index(out, a.String()), strings.Index(out, b.String()))

	out, err = f.run(t, "tools", "bucket", "ls", "--output=json")
	require.NoError(t, err)
	var blocks []bucket.BlockInfo
	require.NoError(t, json.Unmarshal([]byte(out), &blocks))
	require.Len(t, blocks, 2)
	require.Equal(t, a, blocks[0].ID)
	require.Equal(t, "a", blocks[0].Tenant)
	require.Equal(t, uint64(2), blocks[0].Series)

	out, err = f.run(t, "tools", "bucket", "inspect", "--selector", "tenant_id=b")
	require.NoError(t, err)
	require.Contains(t, out, "TENANT b: 1 blocks")
	require.Contains(t, out, b.String())
	require.NotContains(t, out, a.String())

	out, err = f.run(t, "tools", "bucket", "inspect", "--output=json", `--selector=tenant_id="a"`)
	require.NoError(t, err)
	blocks = nil
	require.NoError(t, json.Unmarshal([]byte(out), &blocks))
	require.Len(t, blocks, 1)
	require.Equal(t, a, blocks[0].ID)

	_, err = f.run(t, "tools", "bucket", "ls", "--selector=tenant_id")
	require.ErrorContains(t, err, "want name=value")
}

func TestBucketVerify(t *testing.T) {
	f := newBucketFixture(t)
	lbls := map[string]string{"tenant_id": "a"}
	first := f.upload(t, 0, 2*bucketTestHour, lbls)
	f.upload(t, 2*bucketTestHour, 4*bucketTestHour, lbls)

	out, err := f.run(t, "tools", "bucket", "verify")
	require.NoError(t, err)
	require.Contains(t, out, "2 blocks verified, 0 issues")

	overlapping := f.upload(t, bucketTestHour, 3*bucketTestHour, lbls)
	out, err = f.run(t, "tools", "bucket", "verify", "--skip-index")
	require.ErrorIs(t, err, errVerifyIssues)
	require.Contains(t, out, overlapping.String())
	require.Contains(t, out, string(bucket.IssueOverlap))

	out, err = f.run(t, "tools", "bucket", "verify", "--output=json", "--verify-chunks")
	require.ErrorIs(t, err, errVerifyIssues)
	var rep bucket.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Equal(t, 3, rep.Blocks)
	require.NotEmpty(t, rep.Issues)
	for _, is := range rep.Issues {
		require.Equal(t, bucket.IssueOverlap, is.Kind)
		require.NotEqual(t, first, is.Block, "the earliest block is not the one reported")
	}
}

func TestBucketMark(t *testing.T) {
	f := newBucketFixture(t)
	ctx := context.Background()
	id := f.upload(t, 0, 2*bucketTestHour, map[string]string{"tenant_id": "a"})

	out, err := f.run(t, "tools", "bucket", "mark", "--id", id.String(), "--marker=no-compact-mark.json", "--details", "broken index")
	require.NoError(t, err)
	require.Contains(t, out, id.String())
	mark, err := block.ReadNoCompactMark(ctx, f.bkt, id)
	require.NoError(t, err)
	require.Equal(t, "broken index", mark.Details)
	require.Equal(t, block.ReasonManual, mark.Reason)

	_, err = f.run(t, "tools", "bucket", "mark", "--id", id.String(), "--marker=deletion-mark.json")
	require.NoError(t, err)
	_, err = block.ReadDeletionMark(ctx, f.bkt, id)
	require.NoError(t, err)

	missing := ulid.MustNew(1, nil)
	_, err = f.run(t, "tools", "bucket", "mark", "--id", missing.String(), "--marker=no-downsample-mark.json")
	require.ErrorIs(t, err, bucket.ErrBlockNotFound)
	_, err = f.run(t, "tools", "bucket", "mark", "--id", "not-a-ulid", "--marker=no-downsample-mark.json")
	require.ErrorContains(t, err, "not-a-ulid")

	// The marked block is gone after cleanup with no delay.
	out, err = f.run(t, "tools", "bucket", "cleanup", "--delete-delay=0s")
	require.NoError(t, err)
	require.Contains(t, out, "1 deleted")
	ok, err := f.bkt.Exists(ctx, path.Join(id.String(), block.MetaFilename))
	require.NoError(t, err)
	require.False(t, ok)
}

func TestBucketCleanupKeepsYoungMarks(t *testing.T) {
	f := newBucketFixture(t)
	ctx := context.Background()
	id := f.upload(t, 0, 2*bucketTestHour, map[string]string{"tenant_id": "a"})
	require.NoError(t, block.WriteDeletionMark(ctx, f.bkt, id, time.Now(), ""))

	out, err := f.run(t, "tools", "bucket", "cleanup")
	require.NoError(t, err)
	require.Contains(t, out, "1 blocks looked at: 0 deleted")
	ok, err := f.bkt.Exists(ctx, path.Join(id.String(), block.MetaFilename))
	require.NoError(t, err)
	require.True(t, ok)
}

func TestBucketNeedsConfig(t *testing.T) {
	app := kingpin.New("strata", "")
	c := registerBucket(toolsClause(app))
	cmd, err := app.Parse([]string{"tools", "bucket", "ls"})
	require.NoError(t, err)
	err = c.run(context.Background(), cmd, nil, nil, &bytes.Buffer{})
	require.ErrorContains(t, err, "no bucket")
}
