package indexheader

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/prometheus/prometheus/storage"
)

// DecodePostings decodes the postings list at the start of b, the bytes of a range
// returned by Header.PostingsRange: length(4), count(4), count big-endian uint32
// series references, CRC32(4). Bytes after the list, such as alignment padding,
// are ignored. The references are those Prometheus' index reader returns: in
// format 2 and 3, a series' offset in the index divided by 16.
func DecodePostings(b []byte) ([]storage.SeriesRef, error) {
	sec, err := checkSection(b, "postings list")
	if err != nil {
		return nil, err
	}
	body := sec[4 : len(sec)-crc32.Size]
	if len(body) < 4 {
		return nil, fmt.Errorf("%w: postings list has no count", ErrCorruptIndex)
	}
	n := uint64(binary.BigEndian.Uint32(body))
	refs := body[4:]
	if uint64(len(refs)) != 4*n {
		return nil, fmt.Errorf("%w: postings list of %d entries has %d bytes", ErrCorruptIndex, n, len(refs))
	}
	out := make([]storage.SeriesRef, n)
	for i := range out {
		out[i] = storage.SeriesRef(binary.BigEndian.Uint32(refs[4*i:]))
	}
	return out, nil
}
