package indexheader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/oklog/ulid/v2"
)

// Errors returned by this package. Classify them with errors.Is.
var (
	// ErrCorruptIndex means a block's index in the bucket is malformed: truncated,
	// with a bad magic number, checksum or offset.
	ErrCorruptIndex = errors.New("corrupt index")
	// ErrUnsupportedVersion means the index has a format version this package does
	// not read (only 2 and 3 are read).
	ErrUnsupportedVersion = errors.New("unsupported index format version")
	// ErrCorruptHeader means a local index-header file is malformed. Open rebuilds
	// such a file; the error only surfaces from lower-level helpers.
	ErrCorruptHeader = errors.New("corrupt index header")
	// ErrUnknownSymbol means a symbol reference is past the end of the symbol table.
	ErrUnknownSymbol = errors.New("unknown symbol")
)

// Constants of the Prometheus index format.
const (
	indexMagic     = 0xBAAAD700
	indexHeaderLen = 5 // magic(4) + version(1)
	indexTOCLen    = 6*8 + crc32.Size
)

// Constants of the index-header file format; see the package documentation.
const (
	// Filename is the name of the index-header file inside a block's local directory.
	Filename = "index-header"

	headerMagic   = 0x53544948 // "STIH"
	headerVersion = 1
	// headerFixedLen is the length of everything before the symbol table length.
	headerFixedLen = 4 + 1 + 1 + 16 + 8 + 6*8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// TOC is the table of contents of a Prometheus index: the byte offset in the
// index file where each section starts.
type TOC struct {
	// Symbols is the offset of the symbol table.
	Symbols uint64
	// Series is the offset of the series section.
	Series uint64
	// LabelIndices is the offset of the label indices section.
	LabelIndices uint64
	// LabelIndicesTable is the offset of the label indices table. It is also where
	// the postings section ends.
	LabelIndicesTable uint64
	// Postings is the offset of the postings section.
	Postings uint64
	// PostingsTable is the offset of the postings offset table.
	PostingsTable uint64
}

func (t TOC) fields() [6]uint64 {
	return [6]uint64{t.Symbols, t.Series, t.LabelIndices, t.LabelIndicesTable, t.Postings, t.PostingsTable}
}

func tocFromFields(f [6]uint64) TOC {
	return TOC{Symbols: f[0], Series: f[1], LabelIndices: f[2], LabelIndicesTable: f[3], Postings: f[4], PostingsTable: f[5]}
}

// decodeTOC decodes the 52 bytes at the end of an index.
func decodeTOC(b []byte) (TOC, error) {
	if len(b) != indexTOCLen {
		return TOC{}, fmt.Errorf("%w: TOC is %d bytes, want %d", ErrCorruptIndex, len(b), indexTOCLen)
	}
	if got, want := crc32.Checksum(b[:6*8], castagnoli), binary.BigEndian.Uint32(b[6*8:]); got != want {
		return TOC{}, fmt.Errorf("%w: TOC checksum %08x, want %08x", ErrCorruptIndex, got, want)
	}
	var f [6]uint64
	for i := range f {
		f[i] = binary.BigEndian.Uint64(b[i*8:])
	}
	return tocFromFields(f), nil
}

// validate checks that the sections the header needs lie in order inside an
// index of size bytes.
func (t TOC) validate(size int64) error {
	end := uint64(size - indexTOCLen)
	if !(indexHeaderLen <= t.Symbols && t.Symbols < t.Series && t.Series <= t.Postings &&
		t.Postings <= t.LabelIndicesTable && t.LabelIndicesTable <= t.PostingsTable && t.PostingsTable < end) {
		return fmt.Errorf("%w: TOC offsets %v out of order for an index of %d bytes", ErrCorruptIndex, t.fields(), size)
	}
	return nil
}

// checkSection verifies a section as laid out in the index, len(4) body CRC32(4),
// at the start of b, and returns the section with any trailing bytes cut off.
func checkSection(b []byte, what string) ([]byte, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %s truncated", ErrCorruptIndex, what)
	}
	n := uint64(binary.BigEndian.Uint32(b))
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("%w: %s of %d bytes does not fit in %d bytes", ErrCorruptIndex, what, n, len(b)-8)
	}
	body := b[4 : 4+n]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[4+n:]); got != want {
		return nil, fmt.Errorf("%w: %s checksum %08x, want %08x", ErrCorruptIndex, what, got, want)
	}
	return b[:8+n], nil
}

// fileContent is what an index-header file holds.
type fileContent struct {
	id           ulid.ULID
	indexVersion int
	size         int64
	toc          TOC
	symbols      []byte // symbol table section, verbatim
	postings     []byte // postings offset table section, verbatim
}

// encode returns the index-header file for c.
func (c *fileContent) encode() []byte {
	b := make([]byte, 0, headerFixedLen+4+len(c.symbols)+4+len(c.postings)+4)
	b = binary.BigEndian.AppendUint32(b, headerMagic)
	b = append(b, headerVersion, byte(c.indexVersion))
	b = append(b, c.id[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.size))
	for _, f := range c.toc.fields() {
		b = binary.BigEndian.AppendUint64(b, f)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.symbols)))
	b = append(b, c.symbols...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.postings)))
	b = append(b, c.postings...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeFile decodes an index-header file. The returned sections alias b.
func decodeFile(b []byte) (*fileContent, error) {
	if len(b) < headerFixedLen+4+4+4 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorruptHeader, len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != headerMagic {
		return nil, fmt.Errorf("%w: magic number %08x", ErrCorruptHeader, m)
	}
	if v := b[4]; v != headerVersion {
		return nil, fmt.Errorf("%w: header version %d", ErrCorruptHeader, v)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorruptHeader, got, sum)
	}
	c := &fileContent{indexVersion: int(b[5])}
	copy(c.id[:], b[6:22])
	c.size = int64(binary.BigEndian.Uint64(b[22:]))
	var f [6]uint64
	for i := range f {
		f[i] = binary.BigEndian.Uint64(b[30+i*8:])
	}
	c.toc = tocFromFields(f)

	rest := body[headerFixedLen:]
	var ok bool
	if c.symbols, rest, ok = lengthPrefixed(rest); !ok {
		return nil, fmt.Errorf("%w: symbol table truncated", ErrCorruptHeader)
	}
	if c.postings, rest, ok = lengthPrefixed(rest); !ok {
		return nil, fmt.Errorf("%w: postings offset table truncated", ErrCorruptHeader)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorruptHeader, len(rest))
	}
	return c, nil
}

func lengthPrefixed(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := uint64(binary.BigEndian.Uint32(b))
	if n > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}
