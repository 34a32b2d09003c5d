package bucketstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/objstore"
)

// Read policy. Series entries and chunks have no length known before they are
// read, so each is first read with a fixed window starting at its offset; an item
// longer than its window is read again with its exact length. Items of one object
// whose windows lie at most maxGap bytes apart are fetched with one GetRange, which
// trades a few wasted bytes for fewer requests: object stores charge and delay per
// request far more than per kilobyte.
const (
	// seriesWindow is the bytes read for one series entry. An entry holds the
	// label symbol references and the chunk metas: about 100 bytes for a series of
	// a few labels and chunks.
	seriesWindow = 512
	// chunkWindow is the bytes read for one chunk. A float chunk of 120 samples is
	// usually well under 1 KiB.
	chunkWindow = 1024
	// maxGap is the largest gap between two wanted ranges of one object that is
	// read rather than split into two requests.
	maxGap = 4 << 10
)

// part is a byte range [off, end) wanted from one object; id identifies what the
// caller wants it for.
type part struct {
	off, end int64
	id       int
}

// fetchParts reads parts of the object name, of size bytes, merging parts that
// overlap or lie at most maxGap apart into one GetRange. Parts are clipped to the
// object's size. fn is called once per part, in offset order, with the part's
// bytes; they alias a buffer that is never reused, so fn may keep them. Fewer
// bytes than the object should hold is an error: the object is truncated.
func fetchParts(ctx context.Context, bkt objstore.BucketReader, name string, size int64, parts []part, fn func(p part, data []byte) error) error {
	slices.SortFunc(parts, func(a, b part) int {
		switch {
		case a.off < b.off:
			return -1
		case a.off > b.off:
			return 1
		}
		return 0
	})
	for i := 0; i < len(parts); {
		start, end := parts[i].off, min(parts[i].end, size)
		j := i + 1
		for ; j < len(parts) && parts[j].off <= end+maxGap; j++ {
			end = max(end, min(parts[j].end, size))
		}
		if start < 0 || start >= end {
			return fmt.Errorf("read %s: range [%d, %d) outside an object of %d bytes", name, parts[i].off, parts[i].end, size)
		}
		buf, err := readRange(ctx, bkt, name, start, end-start)
		if err != nil {
			return err
		}
		for _, p := range parts[i:j] {
			if err := fn(p, buf[p.off-start:min(p.end, size)-start]); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

// readRange reads exactly length bytes of name from off.
func readRange(ctx context.Context, bkt objstore.BucketReader, name string, off, length int64) (_ []byte, err error) {
	rc, err := bkt.GetRange(ctx, name, off, length)
	if err != nil {
		return nil, fmt.Errorf("read %s [%d, %d): %w", name, off, off+length, err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", name, cerr)
		}
	}()
	buf := make([]byte, length)
	n, err := io.ReadFull(rc, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s [%d, %d): %w: got %d bytes", name, off, off+length, ErrTruncated, n)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s [%d, %d): %w", name, off, off+length, err)
	}
	return buf, nil
}

// meteredBucket counts the ranged reads that go through it and the bytes they
// return.
type meteredBucket struct {
	objstore.BucketReader
	m *metrics
}

func (b *meteredBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	rc, err := b.BucketReader.GetRange(ctx, name, off, length)
	if err != nil {
		return nil, err
	}
	b.m.rangeRequests.Inc()
	b.m.requests.Add(1)
	return &countingReader{ReadCloser: rc, counter: b.m.bytesRead, n: &b.m.bytes}, nil
}

type countingReader struct {
	io.ReadCloser
	counter prometheus.Counter
	n       *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.counter.Add(float64(n))
		r.n.Add(int64(n))
	}
	return n, err
}
