// Package objstore is the contract between strata and object storage: one Bucket
// interface, a FILESYSTEM implementation (the embedded default) and an S3
// implementation. Components take a Bucket and never know which backend is behind it.
//
// Object names are slash-separated paths relative to the bucket root, without a
// leading slash. A "directory" is only a common prefix of object names; it exists
// while at least one object lives under it.
package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors returned by every Bucket implementation. Classify them with errors.Is.
var (
	// ErrNotFound means the named object does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrInvalidName means an object name is empty, absolute, or escapes the bucket
	// (for example it contains a ".." element).
	ErrInvalidName = errors.New("invalid object name")
)

// DirDelim is the delimiter of object name elements.
const DirDelim = "/"

// BucketReader is the read side of a bucket. All methods are safe for concurrent use.
// Readers returned by Get and GetRange are owned by the caller, who must close them.
type BucketReader interface {
	// Iter calls f for each entry directly under dir, in lexical order. Names are
	// full object names; sub-directories are reported once, with a trailing "/".
	// With the Recursive option every object below dir is reported instead, and no
	// directories. An empty dir means the bucket root. A dir that does not exist is
	// not an error: f is simply never called. Iteration stops at the first error f returns.
	Iter(ctx context.Context, dir string, f func(name string) error, opts ...IterOption) error
	// Get returns the whole object.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// GetRange returns length bytes of the object starting at off. A negative
	// length reads to the end of the object.
	GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error)
	// Exists reports whether the object exists.
	Exists(ctx context.Context, name string) (bool, error)
	// Attributes returns the object's size and last modification time.
	Attributes(ctx context.Context, name string) (ObjectAttributes, error)
}

// Bucket is a bucket that can also be written. Upload is atomic for readers: an
// object is either absent or complete, never partially visible.
type Bucket interface {
	BucketReader
	// Upload writes the contents of r to the object, replacing it if it exists.
	Upload(ctx context.Context, name string, r io.Reader) error
	// Delete removes the object. Deleting an absent object returns ErrNotFound.
	Delete(ctx context.Context, name string) error
	// Name returns a human readable name of the bucket, used in metrics and logs.
	Name() string
	// Close releases the bucket's resources.
	Close() error
}

// ObjectAttributes describes a stored object.
type ObjectAttributes struct {
	// Size is the object's length in bytes.
	Size int64
	// LastModified is when the object was last written.
	LastModified time.Time
}

// IterOption changes how Iter walks a bucket.
type IterOption func(*IterParams)

// IterParams holds the options of one Iter call. Implementations read it with ApplyIterOptions.
type IterParams struct {
	// Recursive lists every object below the directory instead of its direct entries.
	Recursive bool
}

// WithRecursiveIter makes Iter list every object below the directory.
func WithRecursiveIter() IterOption {
	return func(p *IterParams) { p.Recursive = true }
}

// ApplyIterOptions folds opts into one IterParams.
func ApplyIterOptions(opts ...IterOption) IterParams {
	var p IterParams
	for _, o := range opts {
		o(&p)
	}
	return p
}
