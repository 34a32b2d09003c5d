// Package bucket holds the maintenance operations the compactor and the
// `strata tools bucket` commands run over the blocks of a bucket: cleanup of
// blocks marked for deletion and of partial uploads, verification of block
// indexes and of the bucket's consistency, listing and inspection of blocks,
// and writing marks.
//
// The model is the one the block package describes: a block lives under
// "<ULID>/" at the bucket root and is complete once its meta.json exists. A
// ULID directory without meta.json is a partial upload, or a block whose
// deletion was interrupted after meta.json was removed. Top-level entries
// whose names are not ULIDs belong to something else (for example debug
// directories) and are never touched.
package bucket
