package bucketstore

import (
	"encoding/binary"
	"strconv"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/storegw/cache"
)

// Cache keys start with a letter for the kind of data and the block's ULID, so
// that the kinds cannot collide even in one shared cache. A postings key spells
// the label name's length so that no name and value pair can be mistaken for
// another: "P:<ulid>:<len(name)>:<name><value>".

func (b *Block) postingsKey(l labels.Label) string {
	return "P:" + b.meta.ULID.String() + ":" + strconv.Itoa(len(l.Name)) + ":" + l.Name + l.Value
}

func (b *Block) seriesKey(ref storage.SeriesRef) string {
	return "S:" + b.meta.ULID.String() + ":" + strconv.FormatUint(uint64(ref), 10)
}

func (b *Block) chunkKey(ref chunks.ChunkRef) string {
	return "C:" + b.meta.ULID.String() + ":" + strconv.FormatUint(uint64(ref), 10)
}

// cacheGet looks keys up in c, which may be nil: then everything misses. The
// returned values are shared with the cache and must not be modified.
func cacheGet(c cache.Cache, keys []string) map[string][]byte {
	if c == nil || len(keys) == 0 {
		return nil
	}
	hits, _ := c.GetMulti(keys)
	return hits
}

// cacheSet stores a copy of value under key in c, if c is not nil. value must
// have been verified: a cache never holds bytes that failed a checksum. It is
// copied because it usually aliases a larger read buffer, which the cache would
// otherwise keep alive and not account for.
func cacheSet(c cache.Cache, key string, value []byte) {
	if c == nil {
		return
	}
	c.Set(key, append(make([]byte, 0, len(value)), value...))
}

// A cached chunk is its wire encoding (one byte, a storepb.Chunk_Encoding)
// followed by its data as sent, so that an XOR2 chunk is re-encoded only once.

func encodeCachedChunk(c *storepb.Chunk) []byte {
	v := make([]byte, 0, 1+len(c.Data))
	v = append(v, byte(c.Type))
	return append(v, c.Data...)
}

// decodeCachedChunk returns the chunk of a cached value, sharing its bytes.
func decodeCachedChunk(v []byte) (*storepb.Chunk, bool) {
	if len(v) < 1 {
		return nil, false
	}
	data := v[1:]
	return &storepb.Chunk{Type: storepb.Chunk_Encoding(v[0]), Data: data, Hash: xxhash.Sum64(data)}, true
}

// chunkSamples returns the number of samples of chunk data, read from its
// header. Every chunk encoding Prometheus writes (XOR, XOR2, histogram, float
// histogram) starts with the sample count as a big-endian uint16; data too short
// for one counts as no samples.
func chunkSamples(data []byte) int {
	if len(data) < 2 {
		return 0
	}
	return int(binary.BigEndian.Uint16(data))
}

// keyAt returns keys[i], or "" if keys is nil because the cache is disabled.
func keyAt(keys []string, i int) string {
	if keys == nil {
		return ""
	}
	return keys[i]
}
