package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// FilesystemConfig configures a bucket kept in a local directory.
type FilesystemConfig struct {
	// Directory is the root of the bucket. It is created if missing.
	Directory string `yaml:"directory"`
}

// Validate reports whether the configuration can be used.
func (c FilesystemConfig) Validate() error {
	if c.Directory == "" {
		return errors.New("filesystem bucket: directory is required")
	}
	return nil
}

// Filesystem is a Bucket in a local directory. Objects are regular files; uploads
// write a temporary file and rename it into place, so readers never see a partial object.
type Filesystem struct {
	root string
}

// NewFilesystem returns a bucket rooted at dir, creating the directory if needed.
func NewFilesystem(dir string) (*Filesystem, error) {
	if dir == "" {
		return nil, errors.New("filesystem bucket: directory is required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve bucket directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("create bucket directory: %w", err)
	}
	return &Filesystem{root: abs}, nil
}

// Name implements Bucket.
func (b *Filesystem) Name() string { return b.root }

// Close implements Bucket.
func (b *Filesystem) Close() error { return nil }

// cleanName checks that name stays inside the bucket and returns it in canonical form.
func cleanName(name string, allowEmpty bool) (string, error) {
	trimmed := strings.TrimSuffix(name, DirDelim)
	if trimmed == "" {
		if allowEmpty {
			return "", nil
		}
		return "", fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if strings.HasPrefix(trimmed, DirDelim) || strings.ContainsRune(trimmed, 0) {
		return "", fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	for _, elem := range strings.Split(trimmed, DirDelim) {
		if elem == "" || elem == "." || elem == ".." {
			return "", fmt.Errorf("%w: %q", ErrInvalidName, name)
		}
	}
	return trimmed, nil
}

func (b *Filesystem) path(name string) (string, error) {
	n, err := cleanName(name, false)
	if err != nil {
		return "", err
	}
	return filepath.Join(b.root, filepath.FromSlash(n)), nil
}

// Iter implements BucketReader.
func (b *Filesystem) Iter(ctx context.Context, dir string, f func(string) error, opts ...IterOption) error {
	params := ApplyIterOptions(opts...)
	d, err := cleanName(dir, true)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	base := b.root
	prefix := ""
	if d != "" {
		base = filepath.Join(b.root, filepath.FromSlash(d))
		prefix = d + DirDelim
	}
	// A dir naming a regular file has no entries, as with an object store,
	// where "name/" is a prefix no object starts with.
	if st, err := os.Stat(base); isNotExist(err) || (err == nil && !st.IsDir()) {
		return nil
	}
	if params.Recursive {
		return b.iterRecursive(ctx, base, prefix, f)
	}
	entries, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %q: %w", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if isTempName(e.Name()) {
			continue
		}
		n := prefix + e.Name()
		if e.IsDir() {
			// An empty directory holds no object, so it is not an entry.
			if empty, err := dirHasNoFiles(filepath.Join(base, e.Name())); err != nil {
				return err
			} else if empty {
				continue
			}
			n += DirDelim
		}
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f(n); err != nil {
			return err
		}
	}
	return nil
}

func (b *Filesystem) iterRecursive(ctx context.Context, base, prefix string, f func(string) error) error {
	var names []string
	err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || isTempName(e.Name()) {
			return nil
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		names = append(names, prefix+filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk %q: %w", base, err)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f(n); err != nil {
			return err
		}
	}
	return nil
}

func dirHasNoFiles(dir string) (bool, error) {
	empty := true
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && !isTempName(e.Name()) {
			empty = false
			return fs.SkipAll
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("inspect %q: %w", dir, err)
	}
	return empty, nil
}

// Get implements BucketReader.
func (b *Filesystem) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	return b.GetRange(ctx, name, 0, -1)
}

// GetRange implements BucketReader.
func (b *Filesystem) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("get range of %q: negative offset %d", name, off)
	}
	p, err := b.path(name)
	if err != nil {
		return nil, err
	}
	file, err := os.Open(p)
	if err != nil {
		return nil, b.notFound(name, err)
	}
	st, err := file.Stat()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("stat %q: %w", name, err), file.Close())
	}
	if st.IsDir() {
		return nil, errors.Join(fmt.Errorf("get %q: %w", name, ErrNotFound), file.Close())
	}
	if off > 0 {
		if _, err := file.Seek(off, io.SeekStart); err != nil {
			return nil, errors.Join(fmt.Errorf("seek %q: %w", name, err), file.Close())
		}
	}
	if length < 0 {
		return file, nil
	}
	return &limitedFile{Reader: io.LimitReader(file, length), file: file}, nil
}

type limitedFile struct {
	io.Reader
	file *os.File
}

func (l *limitedFile) Close() error { return l.file.Close() }

// Exists implements BucketReader.
func (b *Filesystem) Exists(ctx context.Context, name string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p, err := b.path(name)
	if err != nil {
		return false, err
	}
	st, err := os.Stat(p)
	if isNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %q: %w", name, err)
	}
	return !st.IsDir(), nil
}

// Attributes implements BucketReader.
func (b *Filesystem) Attributes(ctx context.Context, name string) (ObjectAttributes, error) {
	if err := ctx.Err(); err != nil {
		return ObjectAttributes{}, err
	}
	p, err := b.path(name)
	if err != nil {
		return ObjectAttributes{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return ObjectAttributes{}, b.notFound(name, err)
	}
	if st.IsDir() {
		return ObjectAttributes{}, fmt.Errorf("attributes of %q: %w", name, ErrNotFound)
	}
	return ObjectAttributes{Size: st.Size(), LastModified: st.ModTime()}, nil
}

// Upload implements Bucket.
func (b *Filesystem) Upload(ctx context.Context, name string, r io.Reader) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(name)
	if err != nil {
		return err
	}
	tmp, err := createTemp(filepath.Dir(p), tempPrefix+path.Base(name)+"-*")
	if err != nil {
		return fmt.Errorf("create %q: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, &ctxReader{ctx: ctx, r: r}); err != nil {
		return fmt.Errorf("write %q: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %q: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %q: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("rename %q into place: %w", name, err)
	}
	return nil
}

// createTemp creates a temporary file in dir, creating dir first. A concurrent
// Delete, from this or another Filesystem on the same directory, removes the
// directories it leaves empty, and may remove dir or one of its parents while
// MkdirAll or CreateTemp runs. Each lost race means another Delete finished,
// so a few more tries suffice.
func createTemp(dir, pattern string) (*os.File, error) {
	var err error
	for range 10 {
		var tmp *os.File
		if err = os.MkdirAll(dir, 0o755); err == nil {
			if tmp, err = os.CreateTemp(dir, pattern); err == nil {
				return tmp, nil
			}
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// Delete implements Bucket. Directories left empty are removed up to the bucket root.
func (b *Filesystem) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(name)
	if err != nil {
		return err
	}
	st, err := os.Stat(p)
	if err != nil {
		return b.notFound(name, err)
	}
	if st.IsDir() {
		return fmt.Errorf("delete %q: %w", name, ErrNotFound)
	}
	if err := os.Remove(p); err != nil {
		return b.notFound(name, err)
	}
	for dir := filepath.Dir(p); dir != b.root && strings.HasPrefix(dir, b.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break // not empty, or already gone
		}
	}
	return nil
}

func (b *Filesystem) notFound(name string, err error) error {
	if isNotExist(err) {
		return fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	return fmt.Errorf("%q: %w", name, err)
}

// isNotExist reports whether err means a path is absent. ENOTDIR counts: "a/b"
// does not exist when "a" is a regular file.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// tempPrefix marks in-flight uploads; Iter hides them.
const tempPrefix = ".strata-upload-"

func isTempName(base string) bool { return strings.HasPrefix(base, tempPrefix) }

// ctxReader stops a copy once its context is done, so a large upload honours cancellation.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
