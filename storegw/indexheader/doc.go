// Package indexheader builds and loads index headers: small local files that hold
// the parts of a block's Prometheus index a store gateway needs to plan its reads,
// so that it never downloads a whole index from object storage.
//
// # What is read from the bucket
//
// Build reads only these byte ranges of "<ULID>/index", each with one GetRange:
//
//   - the 5-byte file header (magic number and index format version);
//   - the 52-byte table of contents at the end of the file (six big-endian uint64
//     section offsets and their CRC32);
//   - the symbol table, from the TOC's symbols offset up to the series section;
//   - the postings offset table, from its TOC offset up to the TOC.
//
// Series entries and postings lists, which make up most of an index, are never
// read. Only index format versions 2 and 3 are supported; they share the layout of
// these sections. Version 1, written by Prometheus before 2.10, is refused.
//
// # The index-header file
//
// The header is stored as "<dir>/<ULID>/index-header". All integers are big-endian.
//
//	offset  size  field
//	0       4     magic number 0x53544948 ("STIH")
//	4       1     header format version, 1
//	5       1     index format version (2 or 3)
//	6       16    block ULID
//	22      8     index file size in bytes
//	30      48    TOC: symbols, series, label indices, postings,
//	              label indices table, postings table offsets (uint64 each)
//	78      4     length S of the symbol table section
//	82      S     symbol table section, verbatim from the index:
//	              len(4) count(4) {uvarint len, bytes}... CRC32(4)
//	82+S    4     length P of the postings offset table section
//	86+S    P     postings offset table section, verbatim from the index:
//	              len(4) count(4) {uvarint 2, name, value, uvarint64 offset}... CRC32(4)
//	86+S+P  4     CRC32 (Castagnoli) of every byte before it
//
// The file is written to a temporary file in the same directory, synced and
// renamed into place, so readers see either no file or a complete one. Open
// rebuilds a file that is missing, truncated, fails its checksum or describes
// another block.
//
// # In memory
//
// A Header keeps the two sections as raw bytes plus sparse indexes into them: the
// position of every 32nd symbol, and for each label name the position of every
// 32nd of its entries in the postings offset table. A lookup decodes at most 32
// entries. A Header is immutable and safe for concurrent use.
package indexheader
