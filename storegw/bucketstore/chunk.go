package bucketstore

import (
	"fmt"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// chunkProto returns the chunk of encoding enc and bytes data as a raw wire
// chunk, as the other stores do (storeapi.ChunkToProto). data is kept, not
// copied. The chunk comes from the bucket and may be corrupt beyond what its
// checksum caught: a panic of Prometheus' decoder while an XOR2 chunk is
// re-encoded is turned into an error rather than taking the request down.
func chunkProto(enc byte, data []byte) (_ *storepb.Chunk, err error) {
	// Prometheus' XOR2 iterator slices its 3-byte header without checking.
	if chunkenc.Encoding(enc) == chunkenc.EncXOR2 && len(data) < xor2HeaderLen {
		return nil, fmt.Errorf("xor2 chunk of %d bytes", len(data))
	}
	c, err := chunkenc.FromData(chunkenc.Encoding(enc), data)
	if err != nil {
		return nil, fmt.Errorf("unsupported chunk encoding %d: %w", enc, err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decode chunk: %v", r)
		}
	}()
	return storeapi.ChunkToProto(c)
}

// xor2HeaderLen is the length of an XOR2 chunk's header: sample count (2) and
// start-time header (1).
const xor2HeaderLen = 3

// trimChunk returns the samples of c that lie in ranges as a new chunk of the
// same encoding, with their min and max time, or a nil chunk if there are none.
// cmint and cmaxt are the time range of c.
// Cutting a chunk at the boundary between two resolutions keeps a time range
// from being served twice. A histogram chunk that cannot be rebuilt sample by
// sample without cutting it in two is returned whole: rather a few samples
// twice than a failed query.
func trimChunk(c *storepb.Chunk, cmint, cmaxt int64, ranges []interval) (_ *storepb.Chunk, mint, maxt int64, err error) {
	enc, err := storeapi.ChunkEncodingFromProto(c.GetType())
	if err != nil {
		return nil, 0, 0, err
	}
	src, err := chunkenc.FromData(enc, c.GetData())
	if err != nil {
		return nil, 0, 0, err
	}
	dst, err := chunkenc.NewEmptyChunk(enc)
	if err != nil {
		return nil, 0, 0, err
	}
	app, err := dst.Appender()
	if err != nil {
		return nil, 0, 0, err
	}
	defer func() {
		// The chunk passed its checksum, but Prometheus' decoders do not check
		// every bound.
		if r := recover(); r != nil {
			err = fmt.Errorf("decode chunk: %v", r)
		}
	}()
	n := 0
	it := src.Iterator(nil)
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		t := it.AtT()
		if !contains(ranges, t) {
			continue
		}
		var (
			next chunkenc.Chunk
			err  error
		)
		switch vt {
		case chunkenc.ValFloat:
			_, v := it.At()
			app.Append(0, t, v)
		case chunkenc.ValHistogram:
			_, h := it.AtHistogram(nil)
			next, _, app, err = app.AppendHistogram(nil, 0, t, h, true)
		case chunkenc.ValFloatHistogram:
			_, h := it.AtFloatHistogram(nil)
			next, _, app, err = app.AppendFloatHistogram(nil, 0, t, h, true)
		}
		if err != nil || next != nil {
			return c, cmint, cmaxt, nil
		}
		if n == 0 {
			mint = t
		}
		maxt = t
		n++
	}
	if err := it.Err(); err != nil {
		return nil, 0, 0, err
	}
	if n == 0 {
		return nil, 0, 0, nil
	}
	data := dst.Bytes()
	return &storepb.Chunk{Type: c.GetType(), Data: data, Hash: xxhash.Sum64(data)}, mint, maxt, nil
}
