package queryfrontend

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/prometheus/prometheus/model/labels"
)

// extentVersion is the first byte of an encoded extent.
const extentVersion = 1

// Point kinds in the encoding.
const (
	kindFloat     = 0
	kindHistogram = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt is wrapped by every DecodeExtent error.
var errCorrupt = errors.New("corrupt extent")

// Extent is what the results cache holds for one split: the points of the
// query in [Start, End] (Unix milliseconds, inclusive, step-aligned). A series
// with no point in the range is simply absent, so an empty Response is a
// valid result for the whole range.
type Extent struct {
	Start, End int64
	Response   Response
}

// EncodeExtent returns the cache encoding of e, documented in doc.go. Float
// values are stored as their IEEE 754 bits, so NaN payloads (and with them
// Prometheus' stale markers) and infinities survive exactly.
func EncodeExtent(e Extent) []byte {
	b := []byte{extentVersion}
	b = binary.AppendVarint(b, e.Start)
	b = binary.AppendVarint(b, e.End-e.Start)
	b = binary.AppendUvarint(b, uint64(len(e.Response.Series)))
	for _, s := range e.Response.Series {
		b = binary.AppendUvarint(b, uint64(s.Labels.Len()))
		s.Labels.Range(func(l labels.Label) {
			b = appendString(b, l.Name)
			b = appendString(b, l.Value)
		})
		b = binary.AppendUvarint(b, uint64(len(s.Points)))
		prev := e.Start
		for _, p := range s.Points {
			b = binary.AppendVarint(b, p.T-prev)
			prev = p.T
			if len(p.H) == 0 {
				b = append(b, kindFloat)
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.V))
			} else {
				b = append(b, kindHistogram)
				b = appendString(b, string(p.H))
			}
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// DecodeExtent decodes the output of EncodeExtent. It checks the checksum and
// every invariant of a canonical response (sorted unique labels and series,
// points sorted, unique and inside the extent), so a value that decodes can
// be merged safely; any other input gets an error, never a panic.
func DecodeExtent(b []byte) (Extent, error) {
	e, err := decodeExtent(b)
	if err != nil {
		return Extent{}, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return e, nil
}

func decodeExtent(b []byte) (Extent, error) {
	if len(b) < 5 {
		return Extent{}, errors.New("too short")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return Extent{}, errors.New("checksum mismatch")
	}
	if body[0] != extentVersion {
		return Extent{}, fmt.Errorf("unknown version %d", body[0])
	}
	d := decoder{b: body[1:]}
	var e Extent
	e.Start = d.varint()
	span := d.varint()
	if d.err == nil && (span < 0 || e.Start > math.MaxInt64-span) {
		return Extent{}, errors.New("bad range")
	}
	e.End = e.Start + span
	nSeries := d.uvarint()
	var (
		sb   labels.ScratchBuilder
		prev labels.Labels
	)
	for i := uint64(0); d.err == nil && i < nSeries; i++ {
		sb.Reset()
		nLabels := d.uvarint()
		lastName := ""
		for j := uint64(0); d.err == nil && j < nLabels; j++ {
			name, value := d.string(), d.string()
			if d.err == nil && (name == "" || (j > 0 && name <= lastName)) {
				return Extent{}, fmt.Errorf("series %d: label names not sorted and unique", i)
			}
			lastName = name
			sb.Add(name, value)
		}
		lset := sb.Labels()
		if d.err == nil && i > 0 && labels.Compare(prev, lset) >= 0 {
			return Extent{}, fmt.Errorf("series %d: series not sorted and unique", i)
		}
		prev = lset
		s := Series{Labels: lset}
		nPoints := d.uvarint()
		// A point takes at least 4 bytes, which bounds what a corrupt count
		// can make us allocate.
		s.Points = make([]Point, 0, min(nPoints, uint64(len(d.b))/4))
		t := e.Start
		for j := uint64(0); d.err == nil && j < nPoints; j++ {
			delta := d.varint()
			if d.err == nil && (delta < 0 || (j > 0 && delta == 0) || delta > e.End-t) {
				return Extent{}, fmt.Errorf("series %d point %d: time out of order or outside the extent", i, j)
			}
			t += delta
			p := Point{T: t}
			switch kind := d.byte(); {
			case d.err != nil:
			case kind == kindFloat:
				p.V = math.Float64frombits(d.uint64())
			case kind == kindHistogram:
				h := d.string()
				if d.err == nil && h == "" {
					return Extent{}, fmt.Errorf("series %d point %d: empty histogram", i, j)
				}
				p.H = []byte(h)
			default:
				return Extent{}, fmt.Errorf("series %d point %d: unknown kind %d", i, j, kind)
			}
			s.Points = append(s.Points, p)
		}
		e.Response.Series = append(e.Response.Series, s)
	}
	if d.err != nil {
		return Extent{}, d.err
	}
	if len(d.b) != 0 {
		return Extent{}, fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return e, nil
}

// decoder reads from b; after the first error every read returns zero and
// err stays set, so callers check err once after a group of reads.
type decoder struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.err = errTruncated
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uint64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = errTruncated
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// string reads a length-prefixed string, copying it out of the buffer so
// that the decoded extent does not pin the cached value.
func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errTruncated
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
