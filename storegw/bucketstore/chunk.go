package bucketstore

import (
	"fmt"

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
