// Package objstoretest holds the acceptance suite of the objstore.Bucket
// contract, run against every backend and every wrapper.
package objstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	mathrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/objstore"
)

// attributesClockTolerance bounds how far an object's LastModified may be from
// the client's clock around the upload. S3 keeps whole seconds, and a remote
// store's clock may be a little off.
const attributesClockTolerance = 2 * time.Minute

// AcceptanceTest checks that bkt keeps the whole objstore.Bucket contract.
// Everything it writes is under one prefix unique to the run, removed at the
// end, so it can run against a shared bucket, concurrently with other runs.
//
// Where backends could legitimately differ, the suite stays neutral:
//   - It never stores an object "a" next to objects under "a/". S3 allows that,
//     a directory tree cannot.
//   - LastModified is only checked to be plausible, within a tolerance: S3
//     keeps whole seconds and its clock is not the client's.
//   - Listing the bucket root only checks that the suite's prefix is there,
//     because a shared bucket holds other entries.
//
// Behaviour every backend must share, even where S3 natively differs, and
// which the backends therefore implement on purpose:
//   - Names that are empty, absolute, or contain empty, "." or ".." elements
//     fail with objstore.ErrInvalidName, whether or not the store would take them.
//   - A range starting at or past the end of an object reads no bytes and is
//     not an error, as with a file. S3 answers such a request with 416.
//   - Deleting an absent object fails with objstore.ErrNotFound. S3 deletes
//     absent keys without complaint.
func AcceptanceTest(t *testing.T, bkt objstore.Bucket) {
	root := uniquePrefix(t)
	t.Cleanup(func() { removeAll(t, bkt, root) })

	t.Run("upload and get", func(t *testing.T) { testUploadGet(t, bkt, root+"roundtrip/") })
	t.Run("overwrite", func(t *testing.T) { testOverwrite(t, bkt, root+"overwrite/") })
	t.Run("get range", func(t *testing.T) { testGetRange(t, bkt, root+"range/") })
	t.Run("exists", func(t *testing.T) { testExists(t, bkt, root+"exists/") })
	t.Run("attributes", func(t *testing.T) { testAttributes(t, bkt, root+"attributes/") })
	t.Run("delete", func(t *testing.T) { testDelete(t, bkt, root+"delete/") })
	t.Run("missing objects", func(t *testing.T) { testMissing(t, bkt, root+"missing/") })
	t.Run("iter", func(t *testing.T) { testIter(t, bkt, root) })
	t.Run("iter of missing dir", func(t *testing.T) { testIterMissing(t, bkt, root+"itermissing/") })
	t.Run("iter stops on error", func(t *testing.T) { testIterStops(t, bkt, root+"iterstop/") })
	t.Run("cancelled context", func(t *testing.T) { testCancelled(t, bkt, root+"cancelled/") })
	t.Run("invalid names", func(t *testing.T) { testInvalidNames(t, bkt) })
	t.Run("concurrent use", func(t *testing.T) { testConcurrent(t, bkt, root+"concurrent/") })
}

func testUploadGet(t *testing.T, bkt objstore.Bucket, p string) {
	large := make([]byte, 1<<20+17) // Not a multiple of any buffer size.
	fillRandom(large)
	payloads := []struct {
		name string
		data []byte
	}{
		{name: "empty", data: []byte{}},
		{name: "small", data: []byte("hello, strata")},
		{name: "large", data: large},
	}
	readers := []struct {
		name string
		wrap func([]byte) io.Reader
	}{
		{name: "seekable", wrap: func(b []byte) io.Reader { return bytes.NewReader(b) }},
		// No Len, no Seek: the backend cannot know the length up front.
		{name: "stream", wrap: func(b []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(b)} }},
	}
	for _, pl := range payloads {
		for _, rd := range readers {
			t.Run(pl.name+"/"+rd.name, func(t *testing.T) {
				name := p + pl.name + "-" + rd.name + "/object.bin"
				require.NoError(t, bkt.Upload(t.Context(), name, rd.wrap(pl.data)))
				require.Equal(t, pl.data, get(t, bkt, name))

				attrs, err := bkt.Attributes(t.Context(), name)
				require.NoError(t, err)
				require.Equal(t, int64(len(pl.data)), attrs.Size)
			})
		}
	}

	t.Run("upload from the reader's position", func(t *testing.T) {
		r := strings.NewReader("skipped|kept")
		_, err := r.Seek(int64(len("skipped|")), io.SeekStart)
		require.NoError(t, err)
		name := p + "position"
		require.NoError(t, bkt.Upload(t.Context(), name, r))
		require.Equal(t, "kept", string(get(t, bkt, name)))
	})
}

func testOverwrite(t *testing.T, bkt objstore.Bucket, p string) {
	name := p + "object"
	upload(t, bkt, name, "the first, longer version")
	upload(t, bkt, name, "second")
	require.Equal(t, "second", string(get(t, bkt, name)))

	attrs, err := bkt.Attributes(t.Context(), name)
	require.NoError(t, err)
	require.Equal(t, int64(len("second")), attrs.Size)
}

func testGetRange(t *testing.T, bkt objstore.Bucket, p string) {
	const content = "0123456789abcdef"
	name := p + "object"
	upload(t, bkt, name, content)
	empty := p + "empty"
	upload(t, bkt, empty, "")

	for _, tc := range []struct {
		name        string
		object      string
		off, length int64
		want        string
	}{
		{name: "start", object: name, off: 0, length: 4, want: "0123"},
		{name: "middle", object: name, off: 5, length: 3, want: "567"},
		{name: "last byte", object: name, off: 15, length: 1, want: "f"},
		{name: "to end", object: name, off: 10, length: -1, want: "abcdef"},
		{name: "whole", object: name, off: 0, length: -1, want: content},
		{name: "exactly to end", object: name, off: 10, length: 6, want: "abcdef"},
		{name: "beyond end", object: name, off: 12, length: 100, want: "cdef"},
		{name: "longest length", object: name, off: 12, length: math.MaxInt64, want: "cdef"},
		{name: "zero length", object: name, off: 3, length: 0, want: ""},
		{name: "at end", object: name, off: 16, length: 4, want: ""},
		{name: "past end", object: name, off: 100, length: 4, want: ""},
		{name: "past end to end", object: name, off: 100, length: -1, want: ""},
		{name: "empty object", object: empty, off: 0, length: 10, want: ""},
		{name: "empty object to end", object: empty, off: 0, length: -1, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := bkt.GetRange(t.Context(), tc.object, tc.off, tc.length)
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			require.Equal(t, tc.want, string(got))
		})
	}

	t.Run("missing object", func(t *testing.T) {
		for _, length := range []int64{-1, 0, 4} {
			_, err := bkt.GetRange(t.Context(), p+"missing", 2, length)
			require.ErrorIs(t, err, objstore.ErrNotFound, "length %d", length)
		}
	})
	t.Run("negative offset", func(t *testing.T) {
		rc, err := bkt.GetRange(t.Context(), name, -1, 4)
		if err == nil {
			_ = rc.Close()
		}
		require.Error(t, err)
	})
}

func testExists(t *testing.T, bkt objstore.Bucket, p string) {
	upload(t, bkt, p+"object", "x")
	upload(t, bkt, p+"dir/object", "x")

	for _, tc := range []struct {
		name string
		want bool
	}{
		{name: p + "object", want: true},
		{name: p + "dir/object", want: true},
		{name: p + "missing", want: false},
		{name: p + "missing/deeper", want: false},
		// A directory is a prefix, not an object.
		{name: p + "dir", want: false},
		{name: p + "obj", want: false},
		{name: p + "object/child", want: false},
	} {
		ok, err := bkt.Exists(t.Context(), tc.name)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, ok, tc.name)
	}
}

func testAttributes(t *testing.T, bkt objstore.Bucket, p string) {
	name := p + "object"
	before := time.Now()
	upload(t, bkt, name, "12345")
	after := time.Now()

	attrs, err := bkt.Attributes(t.Context(), name)
	require.NoError(t, err)
	require.Equal(t, int64(5), attrs.Size)
	require.False(t, attrs.LastModified.IsZero(), "LastModified is zero")
	require.WithinRange(t, attrs.LastModified,
		before.Add(-attributesClockTolerance), after.Add(attributesClockTolerance))

	_, err = bkt.Attributes(t.Context(), p+"missing")
	require.ErrorIs(t, err, objstore.ErrNotFound)
	_, err = bkt.Attributes(t.Context(), p)
	require.ErrorIs(t, err, objstore.ErrNotFound, "a directory has no attributes")
}

func testDelete(t *testing.T, bkt objstore.Bucket, p string) {
	a, b := p+"dir/a", p+"dir/b"
	upload(t, bkt, a, "a")
	upload(t, bkt, b, "b")

	require.NoError(t, bkt.Delete(t.Context(), a))
	ok, err := bkt.Exists(t.Context(), a)
	require.NoError(t, err)
	require.False(t, ok)
	_, err = bkt.Get(t.Context(), a)
	require.ErrorIs(t, err, objstore.ErrNotFound)
	require.Equal(t, "b", string(get(t, bkt, b)), "a sibling survives")

	require.ErrorIs(t, bkt.Delete(t.Context(), a), objstore.ErrNotFound, "deleting twice")
	require.ErrorIs(t, bkt.Delete(t.Context(), p+"never-existed"), objstore.ErrNotFound)
	require.ErrorIs(t, bkt.Delete(t.Context(), p+"dir"), objstore.ErrNotFound, "a directory is not an object")

	require.Equal(t, []string{p + "dir/"}, list(t, bkt, p))
	require.NoError(t, bkt.Delete(t.Context(), b))
	require.Empty(t, list(t, bkt, p), "a directory goes away with its last object")
}

func testMissing(t *testing.T, bkt objstore.Bucket, p string) {
	upload(t, bkt, p+"present", "x")
	// "present/child" is under an object: a file, not a directory, on a filesystem.
	for _, name := range []string{p + "absent", p + "absent/deeper/still", p + "presen", p + "present/child"} {
		_, err := bkt.Get(t.Context(), name)
		require.ErrorIs(t, err, objstore.ErrNotFound, "get %s", name)
		_, err = bkt.GetRange(t.Context(), name, 0, 1)
		require.ErrorIs(t, err, objstore.ErrNotFound, "get range %s", name)
		_, err = bkt.Attributes(t.Context(), name)
		require.ErrorIs(t, err, objstore.ErrNotFound, "attributes %s", name)
		require.ErrorIs(t, bkt.Delete(t.Context(), name), objstore.ErrNotFound, "delete %s", name)
	}
}

func testIter(t *testing.T, bkt objstore.Bucket, root string) {
	p := root + "iter/"
	// The names probe ordering: '-' sorts before '/', which sorts before 'x',
	// so "dir1-file" < "dir1/" < "dir1x". Entries sort by their full name,
	// trailing "/" included, as S3 lists them.
	objects := []string{
		p + "obj1",
		p + "dir1/file1",
		p + "dir1/file2",
		p + "dir1/sub/file3",
		p + "dir1/sub/deeper/file4",
		p + "dir1-file",
		p + "dir1x",
		p + "dir2/file5",
		p + "Upper",
	}
	for _, o := range objects {
		upload(t, bkt, o, o)
	}

	for _, tc := range []struct {
		name      string
		dir       string
		recursive bool
		want      []string
	}{
		{
			name: "direct entries",
			dir:  root + "iter",
			want: []string{p + "Upper", p + "dir1-file", p + "dir1/", p + "dir1x", p + "dir2/", p + "obj1"},
		},
		{
			name: "dir with trailing slash",
			dir:  p,
			want: []string{p + "Upper", p + "dir1-file", p + "dir1/", p + "dir1x", p + "dir2/", p + "obj1"},
		},
		{
			name: "nested dir",
			dir:  p + "dir1",
			want: []string{p + "dir1/file1", p + "dir1/file2", p + "dir1/sub/"},
		},
		{
			name: "deeper nested dir",
			dir:  p + "dir1/sub/",
			want: []string{p + "dir1/sub/deeper/", p + "dir1/sub/file3"},
		},
		{
			name:      "recursive",
			dir:       p,
			recursive: true,
			want: []string{
				p + "Upper", p + "dir1-file", p + "dir1/file1", p + "dir1/file2",
				p + "dir1/sub/deeper/file4", p + "dir1/sub/file3", p + "dir1x", p + "dir2/file5", p + "obj1",
			},
		},
		{
			name:      "recursive nested dir",
			dir:       p + "dir1/sub",
			recursive: true,
			want:      []string{p + "dir1/sub/deeper/file4", p + "dir1/sub/file3"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []objstore.IterOption
			if tc.recursive {
				opts = append(opts, objstore.WithRecursiveIter())
			}
			require.Equal(t, tc.want, list(t, bkt, tc.dir, opts...))
		})
	}

	t.Run("bucket root", func(t *testing.T) {
		// A shared bucket has other entries; ours must be among them, once.
		entries := list(t, bkt, "")
		require.IsNonDecreasing(t, entries)
		count := 0
		for _, e := range entries {
			if e == root {
				count++
			}
		}
		require.Equal(t, 1, count, "root listing %v lacks %q", entries, root)
	})
}

func testIterMissing(t *testing.T, bkt objstore.Bucket, p string) {
	upload(t, bkt, p+"object", "x")
	for _, dir := range []string{p + "absent", p + "absent/deeper/", p + "object", p + "obj"} {
		for _, recursive := range []bool{false, true} {
			var opts []objstore.IterOption
			if recursive {
				opts = append(opts, objstore.WithRecursiveIter())
			}
			calls := 0
			err := bkt.Iter(t.Context(), dir, func(string) error {
				calls++
				return nil
			}, opts...)
			require.NoError(t, err, "dir %q, recursive %v", dir, recursive)
			require.Zero(t, calls, "dir %q, recursive %v", dir, recursive)
		}
	}
}

func testIterStops(t *testing.T, bkt objstore.Bucket, p string) {
	for _, o := range []string{"a", "b", "c/d", "e/f"} {
		upload(t, bkt, p+o, o)
	}
	errStop := errors.New("stop here")
	for _, recursive := range []bool{false, true} {
		var opts []objstore.IterOption
		if recursive {
			opts = append(opts, objstore.WithRecursiveIter())
		}
		var seen []string
		err := bkt.Iter(t.Context(), p, func(name string) error {
			seen = append(seen, name)
			if len(seen) == 2 {
				return errStop
			}
			return nil
		}, opts...)
		require.ErrorIs(t, err, errStop, "recursive %v", recursive)
		require.Equal(t, []string{p + "a", p + "b"}, seen, "recursive %v", recursive)
	}
}

func testCancelled(t *testing.T, bkt objstore.Bucket, p string) {
	existing := p + "existing"
	upload(t, bkt, existing, "x")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	for _, tc := range []struct {
		name string
		op   func() error
	}{
		{name: "upload", op: func() error { return bkt.Upload(ctx, p+"new", strings.NewReader("x")) }},
		{name: "get", op: func() error { return closeIfOpened(bkt.Get(ctx, existing)) }},
		{name: "get range", op: func() error { return closeIfOpened(bkt.GetRange(ctx, existing, 0, 1)) }},
		{name: "exists", op: func() error { _, err := bkt.Exists(ctx, existing); return err }},
		{name: "attributes", op: func() error { _, err := bkt.Attributes(ctx, existing); return err }},
		{name: "delete", op: func() error { return bkt.Delete(ctx, existing) }},
		{name: "iter", op: func() error { return bkt.Iter(ctx, p, func(string) error { return nil }) }},
		{name: "iter recursive", op: func() error {
			return bkt.Iter(ctx, p, func(string) error { return nil }, objstore.WithRecursiveIter())
		}},
	} {
		require.ErrorIs(t, tc.op(), context.Canceled, tc.name)
	}

	// Nothing was written or removed.
	ok, err := bkt.Exists(t.Context(), p+"new")
	require.NoError(t, err)
	require.False(t, ok, "upload with a cancelled context created the object")
	require.Equal(t, "x", string(get(t, bkt, existing)), "delete with a cancelled context removed the object")
}

func testInvalidNames(t *testing.T, bkt objstore.Bucket) {
	names := []string{"", "/abs", "/", "../x", "a/../../x", "a/..", "a//b", "./a", "a/./b"}
	for _, name := range names {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			ctx := t.Context()
			require.ErrorIs(t, bkt.Upload(ctx, name, strings.NewReader("x")), objstore.ErrInvalidName, "upload")
			require.ErrorIs(t, closeIfOpened(bkt.Get(ctx, name)), objstore.ErrInvalidName, "get")
			require.ErrorIs(t, closeIfOpened(bkt.GetRange(ctx, name, 0, 1)), objstore.ErrInvalidName, "get range")
			_, err := bkt.Exists(ctx, name)
			require.ErrorIs(t, err, objstore.ErrInvalidName, "exists")
			_, err = bkt.Attributes(ctx, name)
			require.ErrorIs(t, err, objstore.ErrInvalidName, "attributes")
			require.ErrorIs(t, bkt.Delete(ctx, name), objstore.ErrInvalidName, "delete")
			if name != "" && name != "/" {
				// An empty dir is the bucket root, and so is "/" trimmed; both are valid for Iter.
				err = bkt.Iter(ctx, name, func(string) error { return nil })
				require.ErrorIs(t, err, objstore.ErrInvalidName, "iter")
			}
		})
	}
}

func testConcurrent(t *testing.T, bkt objstore.Bucket, p string) {
	const workers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	// The keeper stays, so the shared directory never empties. Uploads racing
	// deletes that empty a directory are a contract too, but MinIO's
	// single-drive mode, the S3 these tests run against, now and then answers
	// such an upload with 403 AccessDenied while it removes its own on-disk
	// directories: a test-server artifact. The filesystem's tests cover that race.
	upload(t, bkt, p+"shared/keeper", "keep")
	for w := range workers {
		wg.Go(func() {
			ctx := t.Context()
			name := fmt.Sprintf("%sshared/worker-%d", p, w)
			for i := range 5 {
				want := fmt.Sprintf("worker %d round %d", w, i)
				if err := bkt.Upload(ctx, name, strings.NewReader(want)); err != nil {
					fail(fmt.Errorf("upload %s: %w", name, err))
					return
				}
				rc, err := bkt.Get(ctx, name)
				if err != nil {
					fail(fmt.Errorf("get %s: %w", name, err))
					return
				}
				got, err := io.ReadAll(rc)
				if cerr := rc.Close(); err == nil {
					err = cerr
				}
				if err != nil || string(got) != want {
					fail(fmt.Errorf("read %s: got %q, want %q, err %v", name, got, want, err))
					return
				}
				if err := bkt.Iter(ctx, p+"shared", func(string) error { return nil }); err != nil {
					fail(fmt.Errorf("iter: %w", err))
					return
				}
				if err := bkt.Delete(ctx, name); err != nil {
					fail(fmt.Errorf("delete %s: %w", name, err))
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
}

func upload(t *testing.T, bkt objstore.Bucket, name, content string) {
	t.Helper()
	require.NoError(t, bkt.Upload(t.Context(), name, strings.NewReader(content)), "upload %s", name)
}

func get(t *testing.T, bkt objstore.Bucket, name string) []byte {
	t.Helper()
	rc, err := bkt.Get(t.Context(), name)
	require.NoError(t, err, "get %s", name)
	data, err := io.ReadAll(rc)
	require.NoError(t, err, "read %s", name)
	require.NoError(t, rc.Close(), "close %s", name)
	return data
}

func list(t *testing.T, bkt objstore.Bucket, dir string, opts ...objstore.IterOption) []string {
	t.Helper()
	var names []string
	require.NoError(t, bkt.Iter(t.Context(), dir, func(name string) error {
		names = append(names, name)
		return nil
	}, opts...), "iter %s", dir)
	return names
}

func closeIfOpened(rc io.ReadCloser, err error) error {
	if err != nil {
		return err
	}
	return rc.Close()
}

func uniquePrefix(t *testing.T) string {
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return fmt.Sprintf("strata-acceptance-%s-%s/", time.Now().UTC().Format("20060102t150405"), hex.EncodeToString(b))
}

func fillRandom(b []byte) {
	r := mathrand.NewChaCha8([32]byte{'s', 't', 'r', 'a', 't', 'a'})
	_, _ = r.Read(b)
}

// removeAll deletes everything under prefix. It runs in a cleanup, after the
// test's context is cancelled, so it has its own.
func removeAll(t *testing.T, bkt objstore.Bucket, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var names []string
	err := bkt.Iter(ctx, prefix, func(name string) error {
		names = append(names, name)
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		t.Errorf("list %s for cleanup: %v", prefix, err)
		return
	}
	for _, n := range names {
		if err := bkt.Delete(ctx, n); err != nil && !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("delete %s in cleanup: %v", n, err)
		}
	}
}
