package receive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// Errors of the protobuf wire reader. They describe malformed input and always
// become a 400 for the request that carried it.
var (
	// errTruncated means a field ran past the end of its message.
	errTruncated = errors.New("unexpected end of message")
	// errVarintOverflow means a varint is longer than ten bytes.
	errVarintOverflow = errors.New("varint overflows 64 bits")
	// errBadPackedLength means a packed fixed-width field has a length that is not
	// a multiple of its element size.
	errBadPackedLength = errors.New("packed field length is not a multiple of its element size")
)

// Protobuf wire types.
const (
	wireVarint   = 0
	wireFixed64  = 1
	wireBytes    = 2
	wireStartGrp = 3
	wireEndGrp   = 4
	wireFixed32  = 5
)

// pbuf reads protobuf wire format from a byte slice. It never allocates; strings
// it returns alias the slice (see yoloString).
type pbuf struct {
	b []byte
	i int
}

func (p *pbuf) done() bool { return p.i >= len(p.b) }

// varint reads a base-128 varint.
func (p *pbuf) varint() (uint64, error) {
	if p.i < len(p.b) {
		if c := p.b[p.i]; c < 0x80 {
			p.i++
			return uint64(c), nil
		}
	}
	return p.varintSlow()
}

func (p *pbuf) varintSlow() (uint64, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, errVarintOverflow
		}
		if p.i >= len(p.b) {
			return 0, errTruncated
		}
		c := p.b[p.i]
		p.i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
}

// tag reads a field key; one-byte keys of valid fields take a short path.
func (p *pbuf) tag() (field int32, wire int, err error) {
	if p.i < len(p.b) {
		if c := p.b[p.i]; c < 0x80 && c >= 8 && c&7 != wireEndGrp {
			p.i++
			return int32(c >> 3), int(c & 7), nil
		}
	}
	return p.tagSlow()
}

// tagSlow reads any field key. Field numbers are truncated to int32 the way the
// generated gogo decoders do, so both accept and reject the same keys.
func (p *pbuf) tagSlow() (field int32, wire int, err error) {
	v, err := p.varintSlow()
	if err != nil {
		return 0, 0, err
	}
	field, wire = int32(v>>3), int(v&7)
	if wire == wireEndGrp {
		return 0, 0, errors.New("end group without a start group")
	}
	if field <= 0 {
		return 0, 0, fmt.Errorf("illegal field number %d", field)
	}
	return field, wire, nil
}

func (p *pbuf) fixed64() (uint64, error) {
	if len(p.b)-p.i < 8 {
		return 0, errTruncated
	}
	v := binary.LittleEndian.Uint64(p.b[p.i:])
	p.i += 8
	return v, nil
}

// bytes reads a length-delimited field and returns its payload.
func (p *pbuf) bytes() ([]byte, error) {
	n, err := p.varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(p.b)-p.i) {
		return nil, errTruncated
	}
	b := p.b[p.i : p.i+int(n)]
	p.i += int(n)
	return b, nil
}

// skip skips the value of a field whose key (with wire type wire) was just read.
func (p *pbuf) skip(wire int) error {
	depth := 0
	for {
		switch wire {
		case wireVarint:
			if _, err := p.varint(); err != nil {
				return err
			}
		case wireFixed64:
			if len(p.b)-p.i < 8 {
				return errTruncated
			}
			p.i += 8
		case wireBytes:
			if _, err := p.bytes(); err != nil {
				return err
			}
		case wireStartGrp:
			depth++
		case wireEndGrp:
			depth--
		case wireFixed32:
			if len(p.b)-p.i < 4 {
				return errTruncated
			}
			p.i += 4
		default:
			return fmt.Errorf("illegal wire type %d", wire)
		}
		if depth == 0 {
			return nil
		}
		// Inside a group: read the next key, end groups included.
		v, err := p.varint()
		if err != nil {
			return err
		}
		wire = int(v & 7)
	}
}

// Typed readers: each checks the wire type the field must have.

// wireError is the error of a field with the wrong wire type.
func wireError(got, want int) error {
	return fmt.Errorf("wire type %d, want %d", got, want)
}

func (p *pbuf) message(wire int) (pbuf, error) {
	if wire != wireBytes {
		return pbuf{}, wireError(wire, wireBytes)
	}
	b, err := p.bytes()
	return pbuf{b: b}, err
}

// yoloString returns a string that aliases b without copying. The string is only
// valid while b is neither modified nor reused: see request for who owns it.
func yoloString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func (p *pbuf) str(wire int) (string, error) {
	if wire != wireBytes {
		return "", wireError(wire, wireBytes)
	}
	b, err := p.bytes()
	return yoloString(b), err
}

func (p *pbuf) double(wire int) (float64, error) {
	if wire != wireFixed64 {
		return 0, wireError(wire, wireFixed64)
	}
	v, err := p.fixed64()
	return math.Float64frombits(v), err
}

func (p *pbuf) uvarint(wire int) (uint64, error) {
	if wire != wireVarint {
		return 0, wireError(wire, wireVarint)
	}
	return p.varint()
}

func (p *pbuf) int64(wire int) (int64, error) {
	v, err := p.uvarint(wire)
	return int64(v), err
}

func (p *pbuf) int32(wire int) (int32, error) {
	v, err := p.uvarint(wire)
	return int32(v), err
}

func (p *pbuf) uint32(wire int) (uint32, error) {
	v, err := p.uvarint(wire)
	return uint32(v), err
}

func (p *pbuf) sint32(wire int) (int32, error) {
	v, err := p.uvarint(wire)
	u := uint32(v)
	return int32(u>>1) ^ -int32(u&1), err
}

// appendUint32s appends every element of a repeated uint32 field, which may be
// sent packed (one length-delimited field) or unpacked (one field per element).
func (p *pbuf) appendUint32s(wire int, dst []uint32) ([]uint32, error) {
	switch wire {
	case wireVarint:
		v, err := p.varint()
		return append(dst, uint32(v)), err
	case wireBytes:
		b, err := p.bytes()
		if err != nil {
			return dst, err
		}
		sub := pbuf{b: b}
		for !sub.done() {
			v, err := sub.varint()
			if err != nil {
				return dst, err
			}
			dst = append(dst, uint32(v))
		}
		return dst, nil
	default:
		return dst, fmt.Errorf("wire type %d for a repeated varint", wire)
	}
}

// appendSint64s appends every element of a repeated sint64 field, packed or not.
func (p *pbuf) appendSint64s(wire int, dst []int64) ([]int64, error) {
	switch wire {
	case wireVarint:
		v, err := p.varint()
		return append(dst, zigzag64(v)), err
	case wireBytes:
		b, err := p.bytes()
		if err != nil {
			return dst, err
		}
		sub := pbuf{b: b}
		for !sub.done() {
			v, err := sub.varint()
			if err != nil {
				return dst, err
			}
			dst = append(dst, zigzag64(v))
		}
		return dst, nil
	default:
		return dst, fmt.Errorf("wire type %d for a repeated varint", wire)
	}
}

// repeatedDoubles appends every element of a repeated double field, packed or not.
func (p *pbuf) repeatedDoubles(wire int, dst []float64) ([]float64, error) {
	switch wire {
	case wireFixed64:
		v, err := p.fixed64()
		if err != nil {
			return dst, err
		}
		return append(dst, math.Float64frombits(v)), nil
	case wireBytes:
		b, err := p.bytes()
		if err != nil {
			return dst, err
		}
		if len(b)%8 != 0 {
			return dst, errBadPackedLength
		}
		for ; len(b) > 0; b = b[8:] {
			dst = append(dst, math.Float64frombits(binary.LittleEndian.Uint64(b)))
		}
		return dst, nil
	default:
		return dst, fmt.Errorf("wire type %d for a repeated double", wire)
	}
}

func zigzag64(v uint64) int64 { return int64(v>>1) ^ -int64(v&1) }
