package bucketstore

import (
	"fmt"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// chunkProto returns the chunk of encoding enc and bytes data as a raw wire
// chunk. data is kept, not copied. A float chunk in Prometheus' XOR2 encoding,
// which Thanos cannot read, is re-encoded as XOR, as the other stores do.
func chunkProto(enc byte, data []byte) (*storepb.Chunk, error) {
	var t storepb.Chunk_Encoding
	switch chunkenc.Encoding(enc) {
	case chunkenc.EncXOR:
		t = storepb.Chunk_XOR
	case chunkenc.EncHistogram:
		t = storepb.Chunk_HISTOGRAM
	case chunkenc.EncFloatHistogram:
		t = storepb.Chunk_FLOAT_HISTOGRAM
	case chunkenc.EncXOR2:
		// Prometheus' XOR2 iterator slices its 3-byte header without checking.
		if len(data) < xor2HeaderLen {
			return nil, fmt.Errorf("xor2 chunk of %d bytes", len(data))
		}
		c, err := chunkenc.FromData(chunkenc.EncXOR2, data)
		if err != nil {
			return nil, fmt.Errorf("decode xor2 chunk: %w", err)
		}
		xc, err := toXOR(c)
		if err != nil {
			return nil, fmt.Errorf("re-encode xor2 chunk: %w", err)
		}
		data, t = xc.Bytes(), storepb.Chunk_XOR
	default:
		return nil, fmt.Errorf("unsupported chunk encoding %d", enc)
	}
	return &storepb.Chunk{Type: t, Data: data, Hash: xxhash.Sum64(data)}, nil
}

// xor2HeaderLen is the length of an XOR2 chunk's header: sample count (2) and
// start-time header (1).
const xor2HeaderLen = 3

// toXOR re-encodes a float chunk as XOR. The chunk comes from the bucket and may
// be corrupt beyond what its checksum caught; a panic of Prometheus' decoder is
// turned into an error rather than taking the request down.
func toXOR(c chunkenc.Chunk) (_ chunkenc.Chunk, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decode chunk: %v", r)
		}
	}()
	return storeapi.ReencodeXOR(c)
}
