package sidecar

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// Errors of remote reading. Classify them with errors.Is.
var (
	// errNotStreamed means Prometheus answered a remote read with samples
	// rather than streamed chunks: it is older than 2.13.
	errNotStreamed = errors.New("remote read is not streamed as chunks")
	// errBadFrame means a frame of a streamed remote-read response is
	// malformed: it does not decode, or a series or chunk in it is invalid.
	errBadFrame = errors.New("malformed remote-read frame")
)

// maxFrameBytes bounds one frame of a streamed remote-read response, and so
// what a corrupt length can make the decoder allocate. Prometheus cuts frames
// at --storage.remote.read-max-bytes-in-frame (1MiB by default) but sends a
// single chunk over the limit whole; the bound is Prometheus' own default for
// reading them.
const maxFrameBytes = 50 << 20

// chunkSeries is one series of a remote-read response with its chunks, sorted
// by min time. It is a storage.ChunkSeries.
type chunkSeries struct {
	lset labels.Labels
	chks []chunks.Meta
}

// Labels returns the series' labels.
func (s *chunkSeries) Labels() labels.Labels { return s.lset }

// Iterator returns an iterator over the series' chunks.
func (s *chunkSeries) Iterator(chunks.Iterator) chunks.Iterator {
	return storage.NewListChunkSeriesIterator(s.chks...)
}

// decodeChunkedResponse reads a streamed remote-read response to a request of
// one query: frames of prompb.ChunkedReadResponse, each a uvarint length, a
// CRC32-Castagnoli of the message and the message. Prometheus may split the
// chunks of one series over several frames; they are joined. The series are
// returned sorted by labels, each with its chunks sorted by min time.
//
// The bytes come from the network and are checked: every frame must decode and
// belong to query 0, every series have valid labels, and every chunk a known
// encoding, min time <= max time and data its encoding accepts. Chunk data is
// not iterated; clients decode it. The result does not alias the decoder's
// buffers: the generated decoder copies bytes and strings.
func decodeChunkedResponse(r io.Reader) ([]*chunkSeries, error) {
	var (
		br   = bufio.NewReader(r)
		buf  []byte
		out  []*chunkSeries
		resp prompb.ChunkedReadResponse
		b    labels.ScratchBuilder
	)
	for frame := 0; ; frame++ {
		var err error
		buf, err = nextFrame(br, buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w %d: %w", errBadFrame, frame, err)
		}
		resp.Reset()
		if err := resp.Unmarshal(buf); err != nil {
			return nil, fmt.Errorf("%w %d: decode: %w", errBadFrame, frame, err)
		}
		if resp.QueryIndex != 0 {
			return nil, fmt.Errorf("%w %d: answers query %d of 1", errBadFrame, frame, resp.QueryIndex)
		}
		for _, cs := range resp.ChunkedSeries {
			s, err := seriesFromProto(&b, cs)
			if err != nil {
				return nil, fmt.Errorf("%w %d: %w", errBadFrame, frame, err)
			}
			// Frames of one series follow each other; join them at once.
			if n := len(out); n > 0 && labels.Equal(out[n-1].lset, s.lset) {
				out[n-1].chks = append(out[n-1].chks, s.chks...)
				continue
			}
			out = append(out, s)
		}
	}
	return mergeSeries(out), nil
}

// castagnoli is the CRC32 table of remote-read frames.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// nextFrame reads the next frame of a streamed response into buf, grown as
// needed, and returns its message. It returns io.EOF only at a clean end: no
// byte of another frame read. A truncated frame is io.ErrUnexpectedEOF.
func nextFrame(br *bufio.Reader, buf []byte) ([]byte, error) {
	size, err := binary.ReadUvarint(br)
	if err != nil {
		return buf, err
	}
	if size > maxFrameBytes {
		return buf, fmt.Errorf("frame of %d bytes, more than %d", size, maxFrameBytes)
	}
	var sum [4]byte
	if _, err := io.ReadFull(br, sum[:]); err != nil {
		return buf, noEOF(err)
	}
	buf = slices.Grow(buf[:0], int(size))[:size]
	if _, err := io.ReadFull(br, buf); err != nil {
		return buf, noEOF(err)
	}
	if crc32.Checksum(buf, castagnoli) != binary.BigEndian.Uint32(sum[:]) {
		return buf, errors.New("checksum mismatch")
	}
	return buf, nil
}

// noEOF turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// seriesFromProto converts one series of a frame, checking it.
func seriesFromProto(b *labels.ScratchBuilder, cs *prompb.ChunkedSeries) (*chunkSeries, error) {
	if cs == nil || len(cs.Labels) == 0 {
		return nil, errors.New("series without labels")
	}
	b.Reset()
	for _, l := range cs.Labels {
		if l.Name == "" || l.Value == "" {
			return nil, fmt.Errorf("series has an empty label %q=%q", l.Name, l.Value)
		}
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	lset := b.Labels()
	if name, dup := lset.HasDuplicateLabelNames(); dup {
		return nil, fmt.Errorf("series %s has label %q twice", lset, name)
	}
	s := &chunkSeries{lset: lset, chks: make([]chunks.Meta, 0, len(cs.Chunks))}
	for i, c := range cs.Chunks {
		chk, err := chunkFromProto(c)
		if err != nil {
			return nil, fmt.Errorf("series %s, chunk %d: %w", lset, i, err)
		}
		s.chks = append(s.chks, chunks.Meta{MinTime: c.MinTimeMs, MaxTime: c.MaxTimeMs, Chunk: chk})
	}
	return s, nil
}

func chunkFromProto(c prompb.Chunk) (chunkenc.Chunk, error) {
	var enc chunkenc.Encoding
	switch c.Type {
	case prompb.Chunk_XOR:
		enc = chunkenc.EncXOR
	case prompb.Chunk_HISTOGRAM:
		enc = chunkenc.EncHistogram
	case prompb.Chunk_FLOAT_HISTOGRAM:
		enc = chunkenc.EncFloatHistogram
	default:
		return nil, fmt.Errorf("unknown encoding %d", c.Type)
	}
	if c.MinTimeMs > c.MaxTimeMs {
		return nil, fmt.Errorf("min time %d after max time %d", c.MinTimeMs, c.MaxTimeMs)
	}
	if len(c.Data) < 2 {
		// Every encoding starts with a 2-byte sample count.
		return nil, fmt.Errorf("%d bytes of %s data", len(c.Data), enc)
	}
	chk, err := chunkenc.FromData(enc, c.Data)
	if err != nil {
		return nil, fmt.Errorf("%s data: %w", enc, err)
	}
	return chk, nil
}

// mergeSeries sorts series by labels, joins series with equal labels and sorts
// each one's chunks by min time. Prometheus sends series sorted by their TSDB
// labels, which its external labels can reorder.
func mergeSeries(all []*chunkSeries) []*chunkSeries {
	slices.SortStableFunc(all, func(a, b *chunkSeries) int { return labels.Compare(a.lset, b.lset) })
	out := all[:0]
	for _, s := range all {
		if n := len(out); n > 0 && labels.Equal(out[n-1].lset, s.lset) {
			out[n-1].chks = append(out[n-1].chks, s.chks...)
			continue
		}
		out = append(out, s)
	}
	for _, s := range out {
		slices.SortStableFunc(s.chks, func(a, b chunks.Meta) int {
			if c := cmp.Compare(a.MinTime, b.MinTime); c != 0 {
				return c
			}
			return cmp.Compare(a.MaxTime, b.MaxTime)
		})
	}
	return out
}
