// Package block holds what every component needs to know about a TSDB block in
// object storage: its meta.json, and how a block is uploaded and downloaded.
//
// A block in the bucket lives under "<ULID>/" at the bucket root, the layout Thanos
// uses, so Thanos tools and strata read each other's buckets:
//
//	<ULID>/chunks/000001 ...  chunk segment files
//	<ULID>/index              the Prometheus index
//	<ULID>/meta.json          Prometheus' block meta plus a "thanos" section
//
// meta.json is written last and is the commit marker: a block directory without it
// is a partial upload, which readers ignore and the compactor eventually removes.
//
// This package is a leaf: it imports no strata package except objstore.
package block

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/fileutil"

	"github.com/stratametrics/strata/objstore"
)

// Names of the files and directories of a block, locally and in the bucket.
const (
	// MetaFilename is the block's meta.json, written last on upload.
	MetaFilename = "meta.json"
	// IndexFilename is the block's Prometheus index.
	IndexFilename = "index"
	// ChunksDirname is the directory holding the block's chunk segment files.
	ChunksDirname = "chunks"
)

// Versions of the two halves of meta.json this package reads and writes.
const (
	// TSDBVersion1 is the only version of Prometheus' block meta in use.
	TSDBVersion1 = 1
	// ThanosVersion1 is the only version of the thanos section in use.
	ThanosVersion1 = 1
)

// SourceType names the component that produced a block. It is stored as
// thanos.source in meta.json.
type SourceType string

// Sources a block can come from. The strings are the ones Thanos writes, so either
// system can tell where a block in a shared bucket came from.
const (
	// SourceReceive marks a block cut by a receiver from its head.
	SourceReceive SourceType = "receive"
	// SourceSidecar marks a block uploaded by a Thanos sidecar next to Prometheus.
	SourceSidecar SourceType = "sidecar"
	// SourceCompactor marks a block produced by compaction or downsampling.
	SourceCompactor SourceType = "compactor"
	// SourceCompactorRepair marks a block rewritten by the compactor to repair it.
	SourceCompactorRepair SourceType = "compactor.repair"
	// SourceRuler marks a block cut by a ruler from its local TSDB.
	SourceRuler SourceType = "ruler"
	// SourceBucketRepair marks a block rewritten by a bucket repair tool.
	SourceBucketRepair SourceType = "bucket.repair"
	// SourceBucketRewrite marks a block rewritten by a bucket rewrite tool.
	SourceBucketRewrite SourceType = "bucket.rewrite"
	// SourceBucketUpload marks a block uploaded by hand with a bucket tool.
	SourceBucketUpload SourceType = "bucket.upload"
	// SourceTest marks a block made by a test.
	SourceTest SourceType = "test"
)

// Meta is the content of a block's meta.json: Prometheus' block meta, whose fields
// appear at the top level of the JSON object, plus the thanos section.
type Meta struct {
	tsdb.BlockMeta

	// Thanos is the section that object-storage components read: external labels,
	// resolution and provenance.
	Thanos ThanosMeta `json:"thanos"`
}

// ThanosMeta is the "thanos" section of meta.json. Field names follow Thanos'
// format exactly, so Thanos tools read strata's blocks and the other way round.
// Sections of the Thanos format strata does not use (rewrites, index stats,
// extensions) are not modelled and are dropped when a Meta is re-encoded.
type ThanosMeta struct {
	// Version is the version of this section, ThanosVersion1. A local block cut by
	// Prometheus has no thanos section, which reads as version 0.
	Version int `json:"version,omitempty"`
	// Labels are the external labels of the block, such as tenant_id and
	// receive_replica. A block in the bucket must have at least one.
	Labels map[string]string `json:"labels"`
	// Downsample describes the resolution of the block's samples.
	Downsample Downsample `json:"downsample"`
	// Source is the component that produced the block.
	Source SourceType `json:"source"`
	// SegmentFiles lists chunk segment file names. Thanos deprecated it in favour of
	// Files; it is kept so older blocks read without loss.
	SegmentFiles []string `json:"segment_files,omitempty"`
	// Files lists the block's files with their sizes, as uploaded.
	Files []File `json:"files,omitempty"`
	// UploadTime is when the block's meta.json was uploaded, zero if unknown.
	UploadTime time.Time `json:"upload_time,omitzero"`
}

// Downsample describes the resolution of a block.
type Downsample struct {
	// Resolution is the distance between aggregated samples in milliseconds: 0 for
	// raw data, 300000 for 5m and 3600000 for 1h downsampled data.
	Resolution int64 `json:"resolution"`
}

// File describes one file of a block.
type File struct {
	// RelPath is the slash-separated path of the file inside the block directory,
	// for example "chunks/000001" or "index".
	RelPath string `json:"rel_path"`
	// SizeBytes is the size of the file.
	SizeBytes int64 `json:"size_bytes,omitempty"`
}

// ErrInvalidMeta is wrapped by every error about a meta.json that parses but does not
// describe a usable block. Classify it with errors.Is.
var ErrInvalidMeta = errors.New("invalid block meta")

// Validate reports whether the meta describes a usable block: version 1, a ULID,
// a non-empty time range and a thanos section that is absent or version 1.
func (m *Meta) Validate() error {
	if m.Version != TSDBVersion1 {
		return fmt.Errorf("%w: unexpected meta.json version %d", ErrInvalidMeta, m.Version)
	}
	if m.ULID == (ulid.ULID{}) {
		return fmt.Errorf("%w: missing ULID", ErrInvalidMeta)
	}
	if m.MinTime >= m.MaxTime {
		return fmt.Errorf("%w: block %s: minTime %d is not before maxTime %d", ErrInvalidMeta, m.ULID, m.MinTime, m.MaxTime)
	}
	if v := m.Thanos.Version; v != 0 && v != ThanosVersion1 {
		return fmt.Errorf("%w: block %s: unexpected thanos section version %d", ErrInvalidMeta, m.ULID, v)
	}
	return nil
}

// ReadMeta parses and validates the content of a meta.json.
func ReadMeta(r io.Reader) (*Meta, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read meta.json: %w", err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: decode meta.json: %w", ErrInvalidMeta, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// ReadMetaFromDir reads and validates the meta.json of the block in dir. A missing
// file is reported with an error matching fs.ErrNotExist.
func ReadMetaFromDir(dir string) (*Meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, MetaFilename))
	if err != nil {
		return nil, fmt.Errorf("read meta.json: %w", err)
	}
	m, err := ReadMeta(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, MetaFilename), err)
	}
	return m, nil
}

// ReadMetaFromBucket reads and validates the meta.json of block id in bkt. A block
// without meta.json yields an error matching objstore.ErrNotFound.
func ReadMetaFromBucket(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (_ *Meta, err error) {
	name := path.Join(id.String(), MetaFilename)
	rc, err := bkt.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", name, cerr)
		}
	}()
	m, err := ReadMeta(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if m.ULID != id {
		return nil, fmt.Errorf("read %s: %w: it describes block %s", name, ErrInvalidMeta, m.ULID)
	}
	return m, nil
}

// Marshal encodes the meta as indented JSON, the form written to disk and bucket.
func (m *Meta) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("encode meta.json: %w", err)
	}
	return b, nil
}

// WriteToDir writes the meta as dir/meta.json atomically: it writes and syncs a
// temporary file, renames it into place and syncs dir, so a crash leaves either the
// old or the new file, never a torn one. logger may be nil.
func (m *Meta) WriteToDir(logger *slog.Logger, dir string) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	return WriteFileAtomic(logger, filepath.Join(dir, MetaFilename), b)
}

// WriteFileAtomic replaces the file at p with data so that a crash leaves either
// the old or the new content: temporary file, fsync, rename, fsync of the parent
// directory. The temporary file has a unique name, so concurrent writers of one
// file do not clash (the last rename wins). A nil logger is allowed.
func WriteFileAtomic(logger *slog.Logger, p string, data []byte) (err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", p, err)
	}
	tmp := f.Name()
	defer func() {
		if err == nil {
			return
		}
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			logger.Warn("remove temporary file", "file", tmp, "err", rerr)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", tmp, err), f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(fmt.Errorf("sync %s: %w", tmp, err), f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := fileutil.Rename(tmp, p); err != nil {
		return fmt.Errorf("rename %s into place: %w", p, err)
	}
	return nil
}

// GroupKey names the compaction group of blocks with the given resolution and
// external labels: blocks of one group may be compacted together, blocks of
// different groups never are. The form "<resolution>@<hash of the labels>" is the
// one Thanos uses. Callers that deduplicate replicas remove the replica labels
// from lbls first.
func GroupKey(resolution int64, lbls map[string]string) string {
	return fmt.Sprintf("%d@%d", resolution, labels.FromMap(lbls).Hash())
}

// GroupKey returns the compaction group of the block, see GroupKey.
func (m *Meta) GroupKey() string {
	return GroupKey(m.Thanos.Downsample.Resolution, m.Thanos.Labels)
}

// ListIDs returns the IDs of the block directories at the root of bkt, in
// bucket order: the top-level directories whose names are ULIDs. Other entries
// (for example a debug/ directory) are skipped. Directories without meta.json
// (partial uploads) are listed too.
func ListIDs(ctx context.Context, bkt objstore.BucketReader) ([]ulid.ULID, error) {
	var ids []ulid.ULID
	err := bkt.Iter(ctx, "", func(name string) error {
		dir, ok := strings.CutSuffix(name, objstore.DirDelim)
		if !ok {
			return nil
		}
		if id, err := ulid.ParseStrict(dir); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	return ids, nil
}
