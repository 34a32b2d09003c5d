package indexheader

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
)

// indexName is the object name of a block's index, as package block lays it out.
func indexName(id ulid.ULID) string { return path.Join(id.String(), "index") }

// Build reads the index header of block id from bkt with ranged reads and writes
// it atomically to dir/<id>/index-header, replacing any file there.
func Build(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID, dir string) error {
	_, err := build(ctx, bkt, id, dir)
	return err
}

// build is Build returning the parsed header, so Open need not read it back.
func build(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID, dir string) (*Header, error) {
	c, read, err := fetch(ctx, bkt, id)
	if err != nil {
		return nil, fmt.Errorf("build index header of block %s: %w", id, err)
	}
	h, err := newHeader(c)
	if err != nil {
		return nil, fmt.Errorf("build index header of block %s: %w", id, err)
	}
	h.bucketBytes = read
	if err := writeFileAtomic(filepath.Join(dir, id.String()), Filename, c.encode()); err != nil {
		return nil, fmt.Errorf("build index header of block %s: %w", id, err)
	}
	return h, nil
}

// fetch reads the parts of the index the header holds and returns them with the
// number of bytes read from the bucket.
func fetch(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (_ *fileContent, read int64, _ error) {
	name := indexName(id)
	attrs, err := bkt.Attributes(ctx, name)
	if err != nil {
		return nil, 0, fmt.Errorf("stat %s: %w", name, err)
	}
	size := attrs.Size
	if size < indexHeaderLen+indexTOCLen {
		return nil, 0, fmt.Errorf("%w: %s is only %d bytes", ErrCorruptIndex, name, size)
	}
	r := rangeReader{bkt: bkt, name: name}

	b, err := r.read(ctx, 0, indexHeaderLen)
	if err != nil {
		return nil, r.n, err
	}
	if m := binary.BigEndian.Uint32(b); m != indexMagic {
		return nil, r.n, fmt.Errorf("%w: %s has magic number %08x", ErrCorruptIndex, name, m)
	}
	c := &fileContent{id: id, indexVersion: int(b[4]), size: size}
	if c.indexVersion != 2 && c.indexVersion != 3 {
		return nil, r.n, fmt.Errorf("%w: %s has version %d", ErrUnsupportedVersion, name, c.indexVersion)
	}

	if b, err = r.read(ctx, size-indexTOCLen, indexTOCLen); err != nil {
		return nil, r.n, err
	}
	if c.toc, err = decodeTOC(b); err != nil {
		return nil, r.n, fmt.Errorf("read %s: %w", name, err)
	}
	if err := c.toc.validate(size); err != nil {
		return nil, r.n, fmt.Errorf("read %s: %w", name, err)
	}

	// The symbol table is followed by padding up to the 16-byte aligned series
	// section, and the postings offset table by the TOC: read each up to its
	// known end in one request rather than length first, then body.
	if b, err = r.read(ctx, int64(c.toc.Symbols), int64(c.toc.Series-c.toc.Symbols)); err != nil {
		return nil, r.n, err
	}
	if c.symbols, err = checkSection(b, "symbol table"); err != nil {
		return nil, r.n, fmt.Errorf("read %s: %w", name, err)
	}
	if b, err = r.read(ctx, int64(c.toc.PostingsTable), size-indexTOCLen-int64(c.toc.PostingsTable)); err != nil {
		return nil, r.n, err
	}
	if c.postings, err = checkSection(b, "postings offset table"); err != nil {
		return nil, r.n, fmt.Errorf("read %s: %w", name, err)
	}
	return c, r.n, nil
}

// rangeReader reads byte ranges of one object and counts the bytes read.
type rangeReader struct {
	bkt  objstore.BucketReader
	name string
	n    int64
}

func (r *rangeReader) read(ctx context.Context, off, length int64) (_ []byte, err error) {
	rc, err := r.bkt.GetRange(ctx, r.name, off, length)
	if err != nil {
		return nil, fmt.Errorf("get range %d+%d of %s: %w", off, length, r.name, err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", r.name, cerr)
		}
	}()
	b := make([]byte, length)
	n, err := io.ReadFull(rc, b)
	r.n += int64(n)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s ends within range %d+%d", ErrCorruptIndex, r.name, off, length)
	}
	if err != nil {
		return nil, fmt.Errorf("read range %d+%d of %s: %w", off, length, r.name, err)
	}
	return b, nil
}

// writeFileAtomic writes data to dir/name so that readers see the old file or the
// complete new one: a uniquely named temporary file (so concurrent builds of one
// block do not clash), fsync, rename, fsync of dir.
func writeFileAtomic(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return block.WriteFileAtomic(nil, filepath.Join(dir, name), data)
}
