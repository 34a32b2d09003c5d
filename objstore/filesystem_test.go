package objstore_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/objstore"
)

// TestFilesystemUploadRacesDirectoryRemoval checks uploads that race deletes
// emptying, and so removing, the directories the uploads go into. Two
// Filesystems share the root, as two components of one process may.
func TestFilesystemUploadRacesDirectoryRemoval(t *testing.T) {
	root := t.TempDir()
	var buckets [2]objstore.Bucket
	for i := range buckets {
		bkt, err := objstore.NewFilesystem(root)
		require.NoError(t, err)
		buckets[i] = bkt
	}
	const workers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for w := range workers {
		bkt := buckets[w%len(buckets)]
		wg.Go(func() {
			// Siblings under a/b/ and deeper, so that every level comes and goes.
			name := fmt.Sprintf("a/b/w%d/c/object", w)
			for range 50 {
				err := bkt.Upload(t.Context(), name, strings.NewReader("x"))
				if err == nil {
					err = bkt.Delete(t.Context(), name)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))

	var left []string
	require.NoError(t, buckets[0].Iter(t.Context(), "", func(n string) error {
		left = append(left, n)
		return nil
	}, objstore.WithRecursiveIter()))
	require.Empty(t, left)
}
