package indexheader

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	"github.com/oklog/ulid/v2"
)

// sampleEvery is the distance between the entries of the symbol table and of the
// postings offset table whose positions a Header keeps. A lookup decodes at most
// this many entries.
const sampleEvery = 32

// Header answers questions about a block's index from its index header: symbols,
// label names and values, and where each postings list lies in the index file.
// It is immutable and safe for concurrent use.
type Header struct {
	id           ulid.ULID
	indexVersion int
	size         int64
	toc          TOC
	bucketBytes  int64

	// symbols holds the symbol entries (after the count); symbolPos[i] is the
	// position in it of symbol i*sampleEvery.
	symbols    []byte
	numSymbols int
	symbolPos  []uint32

	// entries holds the postings offset table entries (after the count), sorted by
	// label name, then value. names is sorted by name.
	entries []byte
	names   []labelName
}

// labelName locates the entries of one label name in Header.entries.
type labelName struct {
	name       string
	start, end int // byte positions of its first entry and one past its last
	// samples are every sampleEvery-th entry of the name, starting with the first.
	samples []valueSample
}

type valueSample struct {
	value string
	pos   int
}

// ID returns the ULID of the block the header describes.
func (h *Header) ID() ulid.ULID { return h.id }

// IndexVersion returns the format version of the block's index, 2 or 3.
func (h *Header) IndexVersion() int { return h.indexVersion }

// Size returns the size in bytes of the block's index file.
func (h *Header) Size() int64 { return h.size }

// TOC returns the table of contents of the block's index.
func (h *Header) TOC() TOC { return h.toc }

// BucketBytes returns how many bytes were read from the bucket to make this
// header: zero when it was loaded from a valid local file.
func (h *Header) BucketBytes() int64 { return h.bucketBytes }

// NumSymbols returns the number of symbols in the index.
func (h *Header) NumSymbols() int { return h.numSymbols }

// Symbol returns the symbol with reference ref. In index format 2 and 3 a symbol's
// reference is its position in the sorted symbol table, which is what series
// entries use for their label names and values.
func (h *Header) Symbol(ref uint32) (string, error) {
	if uint64(ref) >= uint64(h.numSymbols) {
		return "", fmt.Errorf("symbol %d of %d: %w", ref, h.numSymbols, ErrUnknownSymbol)
	}
	pos := int(h.symbolPos[ref/sampleEvery])
	for range ref % sampleEvery {
		_, pos = uvarintBytes(h.symbols, pos)
	}
	b, _ := uvarintBytes(h.symbols, pos)
	return string(b), nil
}

// LabelNames returns the block's label names, sorted. The caller owns the slice.
func (h *Header) LabelNames() []string {
	out := make([]string, 0, len(h.names))
	for _, n := range h.names {
		if n.name != "" { // the all-postings entry, not a label
			out = append(out, n.name)
		}
	}
	return out
}

// LabelValues returns the values of the label name, sorted; nil if the block has
// no such label. The caller owns the slice.
func (h *Header) LabelValues(name string) []string {
	ln := h.lookupName(name)
	if ln == nil || name == "" {
		return nil
	}
	var out []string
	for pos := ln.start; pos < ln.end; {
		e := decodeEntry(h.entries, pos)
		out = append(out, string(e.value))
		pos = e.next
	}
	return out
}

// PostingsRange returns the byte range [start, end) of the index file holding the
// postings list of the label pair name=value, and false if the block has no such
// pair. The pair "" = "" is the list of all series.
//
// The range starts with the list's 4-byte big-endian length and ends where the
// next list starts (or the postings section ends): length(4), count(4), count
// 4-byte series references, CRC32(4), then up to 3 bytes of alignment padding.
// DecodePostings reads exactly that. It is what a caller fetches with GetRange.
func (h *Header) PostingsRange(name, value string) (start, end int64, ok bool) {
	ln := h.lookupName(name)
	if ln == nil {
		return 0, 0, false
	}
	// The last sample at or before value; entries are sorted by value.
	i := sort.Search(len(ln.samples), func(i int) bool { return ln.samples[i].value > value }) - 1
	if i < 0 {
		return 0, 0, false
	}
	for pos := ln.samples[i].pos; pos < ln.end; {
		e := decodeEntry(h.entries, pos)
		if v := string(e.value); v > value {
			return 0, 0, false
		} else if v < value {
			pos = e.next
			continue
		}
		end := int64(h.toc.LabelIndicesTable)
		if e.next < len(h.entries) {
			end = int64(decodeEntry(h.entries, e.next).offset)
		}
		return int64(e.offset), end, true
	}
	return 0, 0, false
}

func (h *Header) lookupName(name string) *labelName {
	i, found := slices.BinarySearchFunc(h.names, name, func(n labelName, name string) int {
		switch {
		case n.name < name:
			return -1
		case n.name > name:
			return 1
		}
		return 0
	})
	if !found {
		return nil
	}
	return &h.names[i]
}

// newHeader validates c and indexes its sections. The header keeps references to
// c's sections.
func newHeader(c *fileContent) (*Header, error) {
	if c.indexVersion != 2 && c.indexVersion != 3 {
		return nil, fmt.Errorf("%w: %d", ErrUnsupportedVersion, c.indexVersion)
	}
	if c.size < indexHeaderLen+indexTOCLen {
		return nil, fmt.Errorf("%w: index of %d bytes", ErrCorruptIndex, c.size)
	}
	if err := c.toc.validate(c.size); err != nil {
		return nil, err
	}
	h := &Header{id: c.id, indexVersion: c.indexVersion, size: c.size, toc: c.toc}
	if err := h.indexSymbols(c.symbols); err != nil {
		return nil, err
	}
	if err := h.indexPostings(c.postings); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Header) indexSymbols(section []byte) error {
	sec, err := checkSection(section, "symbol table")
	if err != nil {
		return err
	}
	if len(sec) != len(section) {
		return fmt.Errorf("%w: symbol table has %d trailing bytes", ErrCorruptIndex, len(section)-len(sec))
	}
	body := sec[4 : len(sec)-4]
	if len(body) < 4 {
		return fmt.Errorf("%w: symbol table has no count", ErrCorruptIndex)
	}
	n := int(binary.BigEndian.Uint32(body))
	h.symbols = body[4:]
	h.numSymbols = n
	h.symbolPos = make([]uint32, 0, (n+sampleEvery-1)/sampleEvery)
	pos := 0
	var prev []byte
	for i := range n {
		if i%sampleEvery == 0 {
			h.symbolPos = append(h.symbolPos, uint32(pos))
		}
		sym, next := uvarintBytes(h.symbols, pos)
		if next < 0 {
			return fmt.Errorf("%w: symbol %d of %d truncated", ErrCorruptIndex, i, n)
		}
		if i > 0 && string(sym) <= string(prev) {
			return fmt.Errorf("%w: symbol %d out of order", ErrCorruptIndex, i)
		}
		prev, pos = sym, next
	}
	if pos != len(h.symbols) {
		return fmt.Errorf("%w: symbol table has %d bytes after %d symbols", ErrCorruptIndex, len(h.symbols)-pos, n)
	}
	return nil
}

func (h *Header) indexPostings(section []byte) error {
	sec, err := checkSection(section, "postings offset table")
	if err != nil {
		return err
	}
	if len(sec) != len(section) {
		return fmt.Errorf("%w: postings offset table has %d trailing bytes", ErrCorruptIndex, len(section)-len(sec))
	}
	body := sec[4 : len(sec)-4]
	if len(body) < 4 {
		return fmt.Errorf("%w: postings offset table has no count", ErrCorruptIndex)
	}
	n := int(binary.BigEndian.Uint32(body))
	h.entries = body[4:]

	var (
		pos                 int
		prevName, prevValue []byte
		prevOffset          uint64
		cur                 *labelName
		valueCount          int
	)
	for i := range n {
		e := decodeEntry(h.entries, pos)
		if e.next < 0 {
			return fmt.Errorf("%w: postings offset table entry %d of %d is malformed", ErrCorruptIndex, i, n)
		}
		// Lookups rely on entries sorted by (name, value) and on lists laid out in
		// the same order, so the next entry's offset ends a list.
		if i > 0 {
			if c := compare(e.name, prevName); c < 0 || (c == 0 && string(e.value) <= string(prevValue)) {
				return fmt.Errorf("%w: postings offset table entry %d out of order", ErrCorruptIndex, i)
			}
			if e.offset <= prevOffset {
				return fmt.Errorf("%w: postings list %d does not follow the one before it", ErrCorruptIndex, i)
			}
		}
		if e.offset < h.toc.Postings || e.offset+12 > h.toc.LabelIndicesTable {
			return fmt.Errorf("%w: postings list %d at %d is outside the postings section", ErrCorruptIndex, i, e.offset)
		}
		if cur == nil || string(e.name) != cur.name {
			if cur != nil {
				cur.end = pos
			}
			h.names = append(h.names, labelName{name: string(e.name), start: pos})
			cur = &h.names[len(h.names)-1]
			valueCount = 0
		}
		if valueCount%sampleEvery == 0 {
			cur.samples = append(cur.samples, valueSample{value: string(e.value), pos: pos})
		}
		valueCount++
		prevName, prevValue, prevOffset, pos = e.name, e.value, e.offset, e.next
	}
	if cur != nil {
		cur.end = pos
	}
	if pos != len(h.entries) {
		return fmt.Errorf("%w: postings offset table has %d bytes after %d entries", ErrCorruptIndex, len(h.entries)-pos, n)
	}
	return nil
}

func compare(a, b []byte) int {
	switch {
	case string(a) < string(b):
		return -1
	case string(a) > string(b):
		return 1
	}
	return 0
}

// entry is one decoded entry of the postings offset table. name and value alias
// the table.
type entry struct {
	name, value []byte
	offset      uint64
	next        int // position of the next entry, -1 if this one is malformed
}

// decodeEntry decodes the entry at pos of b: uvarint 2, then the name and value
// as uvarint-length-prefixed strings, then the uvarint64 offset of its postings list.
func decodeEntry(b []byte, pos int) entry {
	bad := entry{next: -1}
	if pos < 0 || pos >= len(b) {
		return bad
	}
	keys, n := binary.Uvarint(b[pos:])
	if n <= 0 || keys != 2 {
		return bad
	}
	var e entry
	if e.name, pos = uvarintBytes(b, pos+n); pos < 0 {
		return bad
	}
	if e.value, pos = uvarintBytes(b, pos); pos < 0 {
		return bad
	}
	if e.offset, n = binary.Uvarint(b[pos:]); n <= 0 {
		return bad
	}
	e.next = pos + n
	return e
}

// uvarintBytes decodes the uvarint-length-prefixed byte string at pos of b and
// returns it with the position after it, or -1 if it does not fit.
func uvarintBytes(b []byte, pos int) ([]byte, int) {
	if pos < 0 || pos >= len(b) {
		return nil, -1
	}
	l, n := binary.Uvarint(b[pos:])
	if n <= 0 || l > uint64(len(b)-pos-n) {
		return nil, -1
	}
	start := pos + n
	return b[start : start+int(l)], start + int(l)
}
