package bucketstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"path"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/encoding"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/storegw/cache"
	"github.com/stratametrics/strata/storegw/indexheader"
)

// Errors about a block's data in the bucket. Classify them with errors.Is; the
// message names the block.
var (
	// ErrCorrupt means a series entry, postings list or chunk read from the bucket
	// is malformed or fails its checksum.
	ErrCorrupt = errors.New("corrupt block data")
	// ErrTruncated means an object in the bucket is shorter than the block's index
	// or meta.json says.
	ErrTruncated = errors.New("truncated object")
)

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segmentHeaderLen is the length of a chunk segment file's header: magic(4),
// version(1), padding(3). No chunk starts before it.
const segmentHeaderLen = 8

// Block is one block in object storage, served with ranged reads: its index
// header is local, and postings, series entries and chunks are read from the
// bucket per request. A Block is immutable and safe for concurrent use.
type Block struct {
	meta *block.Meta
	ext  labels.Labels
	hdr  *indexheader.Header
	bkt  objstore.BucketReader
	// segments are the chunk segment files in name order: a chunk reference's
	// segment index is a position in this list, as in Prometheus' chunk reader.
	segments []block.File
	// caches are consulted before ranged reads; nil fields disable them. Set by
	// the Store before the block is served, never after.
	caches cache.Gateway
}

// OpenBlock opens the block meta describes: it loads its index header from
// dir/<ULID>/index-header, building it from bkt with ranged reads if needed, and
// learns the sizes of its chunk segment files from meta (or, for a meta.json that
// does not list its files, from the bucket). logger may be nil.
func OpenBlock(ctx context.Context, bkt objstore.BucketReader, meta *block.Meta, dir string, logger *slog.Logger) (*Block, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	id := meta.ULID
	hdr, err := indexheader.Open(ctx, bkt, id, dir, indexheader.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("open block %s: %w", id, err)
	}
	b := &Block{meta: meta, ext: labels.FromMap(meta.Thanos.Labels), hdr: hdr, bkt: bkt}
	prefix := block.ChunksDirname + "/"
	for _, f := range meta.Thanos.Files {
		if strings.HasPrefix(f.RelPath, prefix) {
			b.segments = append(b.segments, f)
		}
	}
	if len(b.segments) == 0 {
		// An older meta.json without the files list: ask the bucket.
		err := bkt.Iter(ctx, path.Join(id.String(), block.ChunksDirname)+"/", func(name string) error {
			attrs, err := bkt.Attributes(ctx, name)
			if err != nil {
				return err
			}
			b.segments = append(b.segments, block.File{RelPath: strings.TrimPrefix(name, id.String()+"/"), SizeBytes: attrs.Size})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("open block %s: list chunk segments: %w", id, err)
		}
	}
	slices.SortFunc(b.segments, func(a, c block.File) int { return strings.Compare(a.RelPath, c.RelPath) })
	return b, nil
}

// Meta returns the block's meta.json. The caller must not modify it.
func (b *Block) Meta() *block.Meta { return b.meta }

// ExternalLabels returns the block's external labels, from meta.json's thanos.labels.
func (b *Block) ExternalLabels() labels.Labels { return b.ext }

func (b *Block) indexName() string { return path.Join(b.meta.ULID.String(), block.IndexFilename) }

// overlaps reports whether the block holds samples in [mint, maxt]; a block's
// MaxTime is exclusive.
func (b *Block) overlaps(mint, maxt int64) bool {
	return b.meta.MinTime <= maxt && mint < b.meta.MaxTime
}

// Query selects series of a block.
type Query struct {
	// MinTime and MaxTime bound the chunks, in milliseconds, inclusive.
	MinTime, MaxTime int64
	// Matchers select series. Matchers on the block's external labels are
	// evaluated against the external values and not looked up in the index.
	Matchers []*labels.Matcher
	// SkipChunks returns series without chunks and reads no chunk data.
	SkipChunks bool
	// WithoutReplicaLabels names external labels to leave out of the result.
	WithoutReplicaLabels []string
	// Aggregates are the aggregates a downsampled block serves: the
	// storepb.Aggr values other than RAW that it lists, or COUNT and SUM if it
	// lists none. Raw blocks ignore them.
	Aggregates []storepb.Aggr

	// ranges, if not empty, are the sorted, disjoint parts of time this block
	// serves, with unbounded ends where they end with the query (openEnds):
	// chunks outside them are not read, and chunks that cross from one into a
	// time range served by another resolution are cut to them.
	ranges []interval
}

// Series is one series of a block with its labels as clients see them: the
// block's external labels attached (replacing series labels of the same name)
// and the replica labels removed. Chunks overlap the query's time range, sorted
// by min time; nil if the query skipped chunks.
type Series = storeapi.Series

// Series returns the block's series that match q and have a chunk overlapping
// its time range, in the block's order (by labels before the external labels are
// attached). A downsampled block returns each series once, without
// block.AggregateLabel, with the aggregates of q.Aggregates in its chunks (see
// the package documentation). An error names the block.
func (b *Block) Series(ctx context.Context, q Query) ([]Series, error) {
	out, err := b.series(ctx, q, nil)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", b.meta.ULID, err)
	}
	return out, nil
}

// plan splits matchers into those on external labels, evaluated here, and those
// for the index. ok is false if an external label matcher fails. In a
// downsampled block, matchers on block.AggregateLabel are evaluated against the
// empty value, since clients see its series without the label.
func (b *Block) plan(ms []*labels.Matcher) (index []*labels.Matcher, ok bool) {
	for _, m := range ms {
		if b.ext.Has(m.Name) {
			if !m.Matches(b.ext.Get(m.Name)) {
				return nil, false
			}
			continue
		}
		if m.Name == block.AggregateLabel && b.downsampled() {
			// Clients see a downsampled block's series without the label.
			if !m.Matches("") {
				return nil, false
			}
			continue
		}
		index = append(index, m)
	}
	return index, true
}

// visible returns the external labels to attach and the names to drop.
func (b *Block) visible(without []string) (ext labels.Labels, drop []string) {
	bld := labels.NewBuilder(b.ext)
	for _, n := range without {
		if b.ext.Has(n) {
			drop = append(drop, n)
			bld.Del(n)
		}
	}
	return bld.Labels(), drop
}

// series is Series without the block in errors. lim, which may be nil, counts
// the request's series as soon as the postings are known and its samples as
// chunks are read.
func (b *Block) series(ctx context.Context, q Query, lim *limiter) ([]Series, error) {
	if !b.overlaps(q.MinTime, q.MaxTime) {
		return nil, nil
	}
	ms, ok := b.plan(q.Matchers)
	if !ok {
		return nil, nil
	}
	aggrs := b.aggregates(q)
	if aggrs != nil {
		// Only the aggregate series needed: a rate reads counters alone.
		ms = append(ms, aggregateMatcher(aggrs))
	}
	refs, err := b.postings(ctx, ms)
	if err != nil {
		return nil, err
	}
	// Every reference counts, although a series without chunks in range is not
	// sent: this is the last point before memory grows with the series.
	if err := lim.addSeries(len(refs)); err != nil {
		return nil, err
	}
	entries, err := b.readSeries(ctx, refs)
	if err != nil {
		return nil, err
	}
	var groups []seriesGroup
	if aggrs != nil {
		groups = groupAggregates(entries)
	} else {
		groups = groupRaw(entries)
	}

	ext, drop := b.visible(q.WithoutReplicaLabels)
	bld := labels.NewBuilder(labels.EmptyLabels())
	out := make([]Series, 0, len(groups))
	// kept[i] is out[i] with only the in-range slots; it reuses groups.
	kept := groups[:0]
	var wanted []chunks.Meta
	for _, g := range groups {
		// Keep only chunks in range; a series without any is not sent.
		g.slots = slices.DeleteFunc(g.slots, func(s slot) bool {
			return s.maxt < q.MinTime || s.mint > q.MaxTime || (len(q.ranges) > 0 && !overlapsAny(q.ranges, s.mint, s.maxt))
		})
		if len(g.slots) == 0 {
			continue
		}
		bld.Reset(g.lset)
		ext.Range(func(l labels.Label) { bld.Set(l.Name, l.Value) })
		bld.Del(drop...)
		out = append(out, Series{Labels: bld.Labels()})
		kept = append(kept, g)
		for _, s := range g.slots {
			wanted = append(wanted, g.metas[s.lo:s.hi]...)
		}
	}
	if q.SkipChunks || len(out) == 0 {
		return out, nil
	}

	data, err := b.readChunks(ctx, wanted, lim)
	if err != nil {
		return nil, err
	}
	for i := range kept {
		g := &kept[i]
		out[i].Chunks = make([]*storepb.AggrChunk, 0, len(g.slots))
		for _, s := range g.slots {
			c, err := g.build(s, data, q.ranges)
			if err != nil {
				return nil, err
			}
			if c != nil {
				out[i].Chunks = append(out[i].Chunks, c)
			}
		}
	}
	// Cutting chunks at the ranges' bounds may have left a series without any.
	n := 0
	for _, s := range out {
		if len(s.Chunks) > 0 {
			out[n] = s
			n++
		}
	}
	return out[:n], nil
}

// seriesEntry is a decoded series entry of the index.
type seriesEntry struct {
	lset   labels.Labels
	chunks []chunks.Meta
}

// seriesEnd returns where the index's series section ends.
func (b *Block) seriesEnd() int64 {
	toc := b.hdr.TOC()
	if toc.LabelIndices > toc.Series {
		return int64(toc.LabelIndices)
	}
	return int64(toc.Postings)
}

// readSeries reads and decodes the series entries of refs (sorted), in order.
// In index format 2 and 3 a reference is the entry's offset divided by 16.
// Entries in the series cache are not read; entries read are cached once their
// checksum is verified and they decode.
func (b *Block) readSeries(ctx context.Context, refs []storage.SeriesRef) ([]seriesEntry, error) {
	start, end := int64(b.hdr.TOC().Series), b.seriesEnd()
	out := make([]seriesEntry, len(refs))
	var keys []string
	if b.caches.Series != nil {
		keys = make([]string, len(refs))
		for i, ref := range refs {
			keys[i] = b.seriesKey(ref)
		}
	}
	cached := cacheGet(b.caches.Series, keys)
	parts := make([]part, 0, len(refs)-len(cached))
	for i, ref := range refs {
		if body, ok := cached[keyAt(keys, i)]; ok {
			// A cached body was verified and decoded when it was stored.
			if e, err := b.decodeSeries(body); err == nil {
				out[i] = e
				continue
			}
		}
		off := int64(ref) * 16
		if off < start || off >= end {
			return nil, errorf(ErrCorrupt, "series reference %d points outside the series section [%d, %d)", ref, start, end)
		}
		parts = append(parts, part{off: off, end: min(off+seriesWindow, end), id: i})
	}
	var again []part
	decode := func(p part, data []byte) error {
		l, n := binary.Uvarint(data)
		if n <= 0 {
			// The window is far longer than a uvarint, unless the section ends.
			return errorf(ErrCorrupt, "series %d: bad length", refs[p.id])
		}
		total := int64(n) + int64(l) + crc32.Size
		if total > int64(len(data)) {
			if p.off+total > end {
				return errorf(ErrCorrupt, "series %d: entry of %d bytes runs past the series section", refs[p.id], total)
			}
			again = append(again, part{off: p.off, end: p.off + total, id: p.id})
			return nil
		}
		body := data[n : int64(n)+int64(l)]
		if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(data[int64(n)+int64(l):]); got != want {
			return errorf(ErrCorrupt, "series %d: checksum %08x, want %08x", refs[p.id], got, want)
		}
		e, err := b.decodeSeries(body)
		if err != nil {
			return errorf(ErrCorrupt, "series %d: %v", refs[p.id], err)
		}
		out[p.id] = e
		if keys != nil {
			cacheSet(b.caches.Series, keys[p.id], body)
		}
		return nil
	}
	if err := fetchParts(ctx, b.bkt, b.indexName(), b.hdr.Size(), parts, decode); err != nil {
		return nil, err
	}
	for len(again) > 0 {
		parts, again = again, nil
		if err := fetchParts(ctx, b.bkt, b.indexName(), b.hdr.Size(), parts, decode); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeSeries decodes a series entry's body: label count, symbol references of
// each name and value, chunk count, then the chunk metas with min times and
// references delta-encoded.
func (b *Block) decodeSeries(body []byte) (seriesEntry, error) {
	d := encoding.Decbuf{B: body}
	n := d.Uvarint()
	// Each label takes at least two bytes; a larger count is garbage, and must
	// not size an allocation.
	if n < 0 || n > d.Len()/2 {
		return seriesEntry{}, fmt.Errorf("%d labels in %d bytes", n, d.Len())
	}
	bld := labels.NewScratchBuilder(n)
	for range n {
		nameRef, valueRef := d.Uvarint32(), d.Uvarint32()
		if d.Err() != nil {
			return seriesEntry{}, fmt.Errorf("read labels: %w", d.Err())
		}
		name, err := b.hdr.Symbol(nameRef)
		if err != nil {
			return seriesEntry{}, err
		}
		value, err := b.hdr.Symbol(valueRef)
		if err != nil {
			return seriesEntry{}, err
		}
		bld.Add(name, value)
	}
	e := seriesEntry{lset: bld.Labels()}
	k := d.Uvarint()
	if d.Err() != nil {
		return seriesEntry{}, fmt.Errorf("read chunk count: %w", d.Err())
	}
	if k < 0 || k > d.Len() {
		return seriesEntry{}, fmt.Errorf("%d chunks in %d bytes", k, d.Len())
	}
	if k == 0 {
		return e, nil
	}
	e.chunks = make([]chunks.Meta, 0, k)
	mint := d.Varint64()
	maxt := int64(d.Uvarint64()) + mint
	ref := int64(d.Uvarint64())
	e.chunks = append(e.chunks, chunks.Meta{Ref: chunks.ChunkRef(ref), MinTime: mint, MaxTime: maxt})
	for range k - 1 {
		mint = int64(d.Uvarint64()) + maxt
		maxt = int64(d.Uvarint64()) + mint
		ref += d.Varint64()
		e.chunks = append(e.chunks, chunks.Meta{Ref: chunks.ChunkRef(ref), MinTime: mint, MaxTime: maxt})
	}
	if d.Err() != nil {
		return seriesEntry{}, fmt.Errorf("read chunk metas: %w", d.Err())
	}
	return e, nil
}

// readChunks reads the chunks of metas and returns them by reference. A chunk
// reference is the segment index << 32 | the offset in that segment. Chunks in
// the chunk cache are not read; chunks read are cached once their checksum is
// verified and they convert to wire chunks. lim, which may be nil, counts the
// samples of every chunk, cached ones first, and stops the reads at the limit.
func (b *Block) readChunks(ctx context.Context, metas []chunks.Meta, lim *limiter) (map[chunks.ChunkRef]*storepb.Chunk, error) {
	out := make(map[chunks.ChunkRef]*storepb.Chunk, len(metas))
	var keys []string
	if b.caches.Chunks != nil {
		keys = make([]string, len(metas))
		for i, m := range metas {
			keys[i] = b.chunkKey(m.Ref)
		}
	}
	cached := cacheGet(b.caches.Chunks, keys)
	bySegment := map[int][]part{}
	refs := make([]chunks.ChunkRef, 0, len(metas)-len(cached))
	for i, m := range metas {
		if v, ok := cached[keyAt(keys, i)]; ok {
			if c, ok := decodeCachedChunk(v); ok {
				if err := lim.addSamples(chunkSamples(c.Data)); err != nil {
					return nil, err
				}
				out[m.Ref] = c
				continue
			}
		}
		seg, off := chunks.BlockChunkRef(m.Ref).Unpack()
		if seg >= len(b.segments) {
			return nil, errorf(ErrCorrupt, "chunk %d: segment %d of %d", m.Ref, seg, len(b.segments))
		}
		size := b.segments[seg].SizeBytes
		if off < segmentHeaderLen || int64(off) >= size {
			return nil, errorf(ErrCorrupt, "chunk %d: offset %d outside %s of %d bytes", m.Ref, off, b.segments[seg].RelPath, size)
		}
		bySegment[seg] = append(bySegment[seg], part{off: int64(off), end: min(int64(off)+chunkWindow, size), id: len(refs)})
		refs = append(refs, m.Ref)
	}
	segs := make([]int, 0, len(bySegment))
	for seg := range bySegment {
		segs = append(segs, seg)
	}
	slices.Sort(segs)
	for _, seg := range segs {
		f := b.segments[seg]
		name := path.Join(b.meta.ULID.String(), f.RelPath)
		var again []part
		decode := func(p part, data []byte) error {
			l, n := binary.Uvarint(data)
			if n <= 0 {
				return errorf(ErrCorrupt, "chunk %d in %s: bad length", refs[p.id], f.RelPath)
			}
			total := int64(n) + 1 + int64(l) + crc32.Size
			if total > int64(len(data)) {
				if p.off+total > f.SizeBytes {
					return errorf(ErrCorrupt, "chunk %d in %s: %d bytes run past the end of the segment", refs[p.id], f.RelPath, total)
				}
				again = append(again, part{off: p.off, end: p.off + total, id: p.id})
				return nil
			}
			encAndData := data[n : int64(n)+1+int64(l)]
			if got, want := crc32.Checksum(encAndData, castagnoli), binary.BigEndian.Uint32(data[int64(n)+1+int64(l):]); got != want {
				return errorf(ErrCorrupt, "chunk %d in %s: checksum %08x, want %08x", refs[p.id], f.RelPath, got, want)
			}
			// Count before converting: re-encoding an XOR2 chunk is the costly part.
			if err := lim.addSamples(chunkSamples(encAndData[1:])); err != nil {
				return err
			}
			c, err := chunkProto(encAndData[0], encAndData[1:])
			if err != nil {
				return errorf(ErrCorrupt, "chunk %d in %s: %v", refs[p.id], f.RelPath, err)
			}
			out[refs[p.id]] = c
			if b.caches.Chunks != nil {
				b.caches.Chunks.Set(b.chunkKey(refs[p.id]), encodeCachedChunk(c))
			}
			return nil
		}
		parts := bySegment[seg]
		for len(parts) > 0 {
			if err := fetchParts(ctx, b.bkt, name, f.SizeBytes, parts, decode); err != nil {
				return nil, err
			}
			parts, again = again, nil
		}
	}
	return out, nil
}
