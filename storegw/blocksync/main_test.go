package blocksync_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/objstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testLabels = map[string]string{"tenant_id": "team-a", "receive_replica": "r0"}

func newBucket(t *testing.T) *objstore.Filesystem {
	t.Helper()
	bkt, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	return bkt
}

// uploadBlock writes a real block covering [mint, maxt) with external labels lset
// and uploads it to bkt.
func uploadBlock(t *testing.T, bkt objstore.Bucket, mint, maxt int64, lset map[string]string) *block.Meta {
	t.Helper()
	dir := t.TempDir()
	id := blocktest.Create(t, dir, mint, maxt, 2)
	blockDir := filepath.Join(dir, id.String())
	m, err := block.ReadMetaFromDir(blockDir)
	require.NoError(t, err)
	m.Thanos.Labels = lset
	m.Thanos.Source = block.SourceTest
	require.NoError(t, block.Upload(context.Background(), nil, bkt, blockDir, m))
	return m
}

// uploadMeta uploads only the meta.json of a block made up with the given ULID
// time, for tests that need many blocks or chosen ULIDs; the fetcher reads nothing
// else of a block.
func uploadMeta(t *testing.T, bkt objstore.Bucket, ulidTime time.Time, mint, maxt int64) *block.Meta {
	t.Helper()
	m := &block.Meta{}
	m.ULID = ulid.MustNew(ulid.Timestamp(ulidTime), rand.Reader)
	m.Version = block.TSDBVersion1
	m.MinTime, m.MaxTime = mint, maxt
	m.Thanos = block.ThanosMeta{Version: block.ThanosVersion1, Labels: testLabels, Source: block.SourceTest}
	b, err := m.Marshal()
	require.NoError(t, err)
	require.NoError(t, bkt.Upload(context.Background(), path.Join(m.ULID.String(), block.MetaFilename), bytes.NewReader(b)))
	return m
}

// deleteBlock removes every object of block id.
func deleteBlock(t *testing.T, bkt objstore.Bucket, id ulid.ULID) {
	t.Helper()
	ctx := context.Background()
	var names []string
	require.NoError(t, bkt.Iter(ctx, id.String()+"/", func(name string) error {
		names = append(names, name)
		return nil
	}, objstore.WithRecursiveIter()))
	require.NotEmpty(t, names)
	for _, n := range names {
		require.NoError(t, bkt.Delete(ctx, n))
	}
}

// countingBucket counts the meta.json objects read through it, tracks how many
// Gets run at once, and can fail Gets with a chosen error.
type countingBucket struct {
	objstore.Bucket

	mu          sync.Mutex
	metaGets    int
	inflight    int
	maxInflight int
	failGet     error
}

func (b *countingBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	b.mu.Lock()
	if strings.HasSuffix(name, "/"+block.MetaFilename) {
		b.metaGets++
	}
	b.inflight++
	b.maxInflight = max(b.maxInflight, b.inflight)
	fail := b.failGet
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.inflight--
		b.mu.Unlock()
	}()
	if fail != nil {
		return nil, fail
	}
	// Give concurrent readers a chance to overlap.
	time.Sleep(time.Millisecond)
	return b.Bucket.Get(ctx, name)
}

func (b *countingBucket) stats() (metaGets, maxInflight int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.metaGets, b.maxInflight
}

func (b *countingBucket) setFailGet(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failGet = err
}

func ids[V any](m map[ulid.ULID]V) []ulid.ULID {
	out := make([]ulid.ULID, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	return out
}
