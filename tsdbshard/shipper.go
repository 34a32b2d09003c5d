package tsdbshard

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
)

// ShipperStateFilename is the file in a tenant's TSDB directory where its Shipper
// records the blocks it has shipped.
const ShipperStateFilename = "strata.shipper.json"

// shipperStateVersion1 is the only version of the state file.
const shipperStateVersion1 = 1

// shipperState is the content of the state file:
// {"version":1,"shipped":["<ULID>",...]}, ULIDs in ascending order.
type shipperState struct {
	Version int         `json:"version"`
	Shipped []ulid.ULID `json:"shipped"`
}

// ShipperMetrics are the metrics of block shipping. One set is shared by all
// tenants' shippers, so no metric has a tenant label.
type ShipperMetrics struct {
	uploads        prometheus.Counter
	uploadFailures prometheus.Counter
	uploadedBytes  prometheus.Counter
	lastUpload     prometheus.Gauge
}

// NewShipperMetrics registers the shipping metrics with reg, which may be nil.
func NewShipperMetrics(reg prometheus.Registerer) *ShipperMetrics {
	f := promauto.With(reg)
	return &ShipperMetrics{
		uploads: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_shipper_uploads_total",
			Help: "Blocks uploaded to object storage.",
		}),
		uploadFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_shipper_upload_failures_total",
			Help: "Block uploads to object storage that failed, including failed checks of the bucket before an upload.",
		}),
		uploadedBytes: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_shipper_uploaded_bytes_total",
			Help: "Bytes of the blocks uploaded to object storage, counting completed uploads only.",
		}),
		lastUpload: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_shipper_last_successful_upload_timestamp_seconds",
			Help: "Unix time of the last block upload that completed, by any tenant.",
		}),
	}
}

// Shipper uploads the blocks of one tenant's TSDB directory to object storage and
// remembers, in ShipperStateFilename in that directory, which ones it shipped.
//
// A block is shipped once its meta.json is in the bucket; that is checked before
// each upload, so a lost or corrupt state file costs bucket lookups, never a
// duplicate upload. Blocks go up oldest first (by minTime) and Sync stops at the
// first failure, so a failed upload never leaves a gap behind newer blocks in the
// bucket.
//
// Only blocks of compaction level 1 (cut from the head) are uploaded: a receiver
// does not compact locally, and a higher-level block would overlap the level-1
// blocks it was made from. Such a block is logged and reported not shipped.
//
// Sync is meant to be called by one goroutine at a time; concurrent calls are
// serialised. Shipped is safe to call at any time, concurrently with Sync.
type Shipper struct {
	logger  *slog.Logger
	metrics *ShipperMetrics
	bkt     objstore.Bucket
	dir     string
	labels  func() labels.Labels
	source  block.SourceType

	// syncMtx serialises Sync, which alone writes the state file and warned.
	syncMtx sync.Mutex
	warned  map[ulid.ULID]struct{} // higher-level blocks already logged

	// mtx guards shipped, which Shipped reads while Sync runs.
	mtx     sync.RWMutex
	shipped map[ulid.ULID]struct{}
}

// NewShipper returns a Shipper of the blocks in dir, one tenant's TSDB directory,
// to bkt. extLabels returns the external labels written into each block's meta.json at
// upload time; they must not be empty. source is recorded as the blocks' origin.
// dir need not exist yet. metrics may be nil, and so may logger.
//
// The state file in dir is loaded now: a missing one means nothing was shipped; an
// unreadable one is logged and ignored, since the bucket check in Sync keeps
// already shipped blocks from being uploaded again.
func NewShipper(logger *slog.Logger, metrics *ShipperMetrics, bkt objstore.Bucket, dir string, extLabels func() labels.Labels, source block.SourceType) *Shipper {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewShipperMetrics(nil)
	}
	if extLabels == nil {
		// Uploads are then refused with block.ErrNoExternalLabels.
		extLabels = labels.EmptyLabels
	}
	s := &Shipper{
		logger:  logger,
		metrics: metrics,
		bkt:     bkt,
		dir:     dir,
		labels:  extLabels,
		source:  source,
		warned:  map[ulid.ULID]struct{}{},
		shipped: map[ulid.ULID]struct{}{},
	}
	shipped, err := readShipperState(filepath.Join(dir, ShipperStateFilename))
	if err != nil {
		logger.Warn("ignoring shipper state file; the bucket will tell what is shipped", "err", err)
		return s
	}
	for _, id := range shipped {
		s.shipped[id] = struct{}{}
	}
	return s
}

// Shipped reports whether block id was shipped, or needed no shipping because it
// holds no samples. It is false for blocks the Shipper does not upload (compaction
// level above 1), so nothing treats them as safe to delete locally.
func (s *Shipper) Shipped(id ulid.ULID) bool {
	s.mtx.RLock()
	defer s.mtx.RUnlock()
	_, ok := s.shipped[id]
	return ok
}

// Sync uploads every block of the directory not shipped yet, oldest first, and
// returns how many it uploaded. It stops at the first block it cannot ship and
// returns that error with the count so far; the next Sync resumes there. Blocks
// without samples are recorded as shipped without an upload, and blocks already in
// the bucket are recorded without a second upload.
func (s *Shipper) Sync(ctx context.Context) (uploaded int, err error) {
	s.syncMtx.Lock()
	defer s.syncMtx.Unlock()

	metas, present, err := s.localBlocks()
	if err != nil {
		return 0, err
	}
	if s.prune(present) {
		if err := s.writeState(); err != nil {
			return 0, err
		}
	}

	for _, m := range metas {
		if err := ctx.Err(); err != nil {
			return uploaded, err
		}
		if s.Shipped(m.ULID) {
			continue
		}
		logger := s.logger.With("block", m.ULID)
		if m.Stats.NumSamples == 0 {
			logger.Debug("block has no samples; recording it as shipped without upload")
			if err := s.markShipped(m.ULID); err != nil {
				return uploaded, err
			}
			continue
		}
		if m.Compaction.Level > 1 {
			if _, ok := s.warned[m.ULID]; !ok {
				s.warned[m.ULID] = struct{}{}
				logger.Warn("not shipping locally compacted block", "level", m.Compaction.Level)
			}
			continue
		}
		ok, err := s.upload(ctx, logger, m)
		if err != nil {
			s.metrics.uploadFailures.Inc()
			return uploaded, fmt.Errorf("ship block %s: %w", m.ULID, err)
		}
		if ok {
			uploaded++
		}
		if err := s.markShipped(m.ULID); err != nil {
			return uploaded, err
		}
	}
	return uploaded, nil
}

// upload uploads one block unless its meta.json is already in the bucket, and
// reports whether it uploaded.
func (s *Shipper) upload(ctx context.Context, logger *slog.Logger, m *block.Meta) (bool, error) {
	exists, err := s.bkt.Exists(ctx, path.Join(m.ULID.String(), block.MetaFilename))
	if err != nil {
		return false, fmt.Errorf("check bucket: %w", err)
	}
	if exists {
		logger.Info("block already in the bucket; recording it as shipped")
		return false, nil
	}

	out := *m
	// The local meta.json is Prometheus'; the thanos section is this shipper's alone.
	out.Thanos = block.ThanosMeta{
		Version:    block.ThanosVersion1,
		Labels:     s.labels().Map(),
		Downsample: block.Downsample{Resolution: 0},
		Source:     s.source,
	}
	blockDir := filepath.Join(s.dir, m.ULID.String())
	// The bucket gets the files themselves, not a wrapper around them, so that a
	// backend can see their size and a retrying one can rewind them.
	if err := block.Upload(ctx, logger, s.bkt, blockDir, &out); err != nil {
		return false, err
	}
	size := shipperBlockSize(blockDir)
	s.metrics.uploads.Inc()
	s.metrics.uploadedBytes.Add(float64(size))
	s.metrics.lastUpload.SetToCurrentTime()
	logger.Info("block shipped", "min_time", m.MinTime, "max_time", m.MaxTime, "bytes", size)
	return true, nil
}

// shipperBlockSize returns the size of the files block.Upload sends: the chunk
// files and the index. It is for metrics and logs only, so unreadable files count
// as empty.
func shipperBlockSize(dir string) int64 {
	var size int64
	entries, _ := os.ReadDir(filepath.Join(dir, block.ChunksDirname))
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			size += info.Size()
		}
	}
	if info, err := os.Stat(filepath.Join(dir, block.IndexFilename)); err == nil {
		size += info.Size()
	}
	return size
}

// localBlocks returns the metas of the finished blocks in the directory, oldest
// first, and the IDs of every block directory present, finished or not.
//
// A block directory is named by its ULID. Anything else (wal, chunks_head, wbl, the
// TSDB's "<ULID>.tmp-for-creation" and "<ULID>.tmp-for-deletion" directories) is
// not a block, and a block directory without meta.json is not finished yet or is
// being deleted.
func (s *Shipper) localBlocks() ([]*block.Meta, map[ulid.ULID]struct{}, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list blocks: %w", err)
	}
	var metas []*block.Meta
	present := map[ulid.ULID]struct{}{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		id, err := ulid.ParseStrict(e.Name())
		if err != nil {
			continue
		}
		present[id] = struct{}{}
		m, err := block.ReadMetaFromDir(filepath.Join(s.dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read meta of block %s: %w", id, err)
		}
		if m.ULID != id {
			return nil, nil, fmt.Errorf("read meta of block %s: it describes block %s", id, m.ULID)
		}
		metas = append(metas, m)
	}
	slices.SortFunc(metas, func(a, b *block.Meta) int {
		if c := cmp.Compare(a.MinTime, b.MinTime); c != 0 {
			return c
		}
		return a.ULID.Compare(b.ULID)
	})
	return metas, present, nil
}

// prune forgets shipped blocks that are no longer in the directory and reports
// whether it forgot any.
func (s *Shipper) prune(present map[ulid.ULID]struct{}) bool {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	pruned := false
	for id := range s.shipped {
		if _, ok := present[id]; !ok {
			delete(s.shipped, id)
			pruned = true
		}
	}
	for id := range s.warned {
		if _, ok := present[id]; !ok {
			delete(s.warned, id)
		}
	}
	return pruned
}

// markShipped records id as shipped, in memory and then in the state file. If the
// file cannot be written the block still counts as shipped in memory: it is in the
// bucket (or needs no upload), and after a restart the bucket check finds it again.
func (s *Shipper) markShipped(id ulid.ULID) error {
	s.mtx.Lock()
	s.shipped[id] = struct{}{}
	s.mtx.Unlock()
	return s.writeState()
}

// writeState replaces the state file atomically with the current shipped set.
func (s *Shipper) writeState() error {
	s.mtx.RLock()
	st := shipperState{Version: shipperStateVersion1, Shipped: make([]ulid.ULID, 0, len(s.shipped))}
	for id := range s.shipped {
		st.Shipped = append(st.Shipped, id)
	}
	s.mtx.RUnlock()
	slices.SortFunc(st.Shipped, ulid.ULID.Compare)

	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode shipper state: %w", err)
	}
	if err := block.WriteFileAtomic(s.logger, filepath.Join(s.dir, ShipperStateFilename), b); err != nil {
		return fmt.Errorf("write shipper state: %w", err)
	}
	return nil
}

// readShipperState returns the blocks recorded in the state file at p; none if
// the file does not exist.
func readShipperState(p string) ([]ulid.ULID, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read shipper state: %w", err)
	}
	var st shipperState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decode shipper state %s: %w", p, err)
	}
	if st.Version != shipperStateVersion1 {
		return nil, fmt.Errorf("decode shipper state %s: unexpected version %d", p, st.Version)
	}
	return st.Shipped, nil
}
