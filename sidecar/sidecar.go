package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/tsdbshard"
)

// ComponentType is what the sidecar's Info API reports, as Thanos' sidecar does.
const ComponentType = "sidecar"

// Errors of the checks of Prometheus. Classify them with errors.Is.
var (
	// ErrCompactionEnabled means Prometheus compacts its blocks locally, so
	// the sidecar would upload blocks that overlap each other once compacted.
	ErrCompactionEnabled = errors.New("local compaction is on in Prometheus")
	// ErrNoExternalLabels means Prometheus has no external labels: its data
	// could not be told apart from other sources' in the global view or in
	// the bucket.
	ErrNoExternalLabels = errors.New("no external labels in Prometheus' configuration")
)

// Flags of Prometheus that decide whether it compacts blocks locally.
const (
	minBlockDurationFlag = "storage.tsdb.min-block-duration"
	maxBlockDurationFlag = "storage.tsdb.max-block-duration"
)

// Config configures a Sidecar.
type Config struct {
	// PrometheusURL is the base URL of the Prometheus server, such as
	// http://localhost:9090.
	PrometheusURL string
	// TSDBPath is Prometheus' data directory (its --storage.tsdb.path), whose
	// blocks are shipped. Only needed with a Bucket.
	TSDBPath string
	// Bucket receives Prometheus' blocks; nil ships nothing.
	Bucket objstore.Bucket
	// RefreshInterval is how often Prometheus' readiness, external labels,
	// flags and lowest timestamp are read again. Default 30s.
	RefreshInterval time.Duration
	// ShipInterval is how often the data directory is checked for new blocks.
	// Default 30s.
	ShipInterval time.Duration
	// ReadyTimeout is how long Run waits at start for Prometheus to be ready
	// before it gives up. Zero waits forever.
	ReadyTimeout time.Duration
	// Client sends the requests to Prometheus; nil uses one without a
	// timeout (requests end with their context).
	Client *http.Client
}

type metrics struct {
	ready              prometheus.Gauge
	refreshFailures    prometheus.Counter
	remoteReads        prometheus.Counter
	remoteReadFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		ready: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_sidecar_prometheus_ready",
			Help: "1 if Prometheus was ready, with external labels, at the last refresh; else 0.",
		}),
		refreshFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_sidecar_prometheus_refresh_failures_total",
			Help: "Refreshes of Prometheus' readiness, external labels and flags that failed.",
		}),
		remoteReads: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_sidecar_remote_reads_total",
			Help: "Remote-read requests sent to Prometheus.",
		}),
		remoteReadFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_sidecar_remote_read_failures_total",
			Help: "Remote-read requests to Prometheus that failed.",
		}),
	}
}

// Sidecar serves one Prometheus server over the Store API and ships its
// blocks. Its methods are safe for concurrent use; Run runs once.
type Sidecar struct {
	cfg     Config
	logger  *slog.Logger
	metrics *metrics
	prom    *promClient
	reader  *reader
	server  *storeapi.MultiStore
	shipper *tsdbshard.Shipper // nil without a bucket

	// store is nil until Prometheus' external labels are known, and replaced
	// when they change.
	store atomic.Pointer[storeapi.TSDBStore]
	// promReady is whether Prometheus was ready at the last refresh.
	promReady atomic.Bool
	// compactionOff is whether the last look at Prometheus' flags found local
	// compaction off; shipping waits for it.
	compactionOff atomic.Bool
	// checkedLevel holds the blocks whose compaction level was looked at, so
	// that a locally compacted one is explained once.
	checkedLevel sync.Map
}

// New returns a Sidecar of the Prometheus server cfg names. reg and logger
// may be nil. Nothing is contacted until Run.
func New(cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*Sidecar, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 30 * time.Second
	}
	if cfg.ShipInterval <= 0 {
		cfg.ShipInterval = 30 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	prom, err := newPromClient(cfg.PrometheusURL, cfg.Client)
	if err != nil {
		return nil, err
	}
	if cfg.Bucket != nil && cfg.TSDBPath == "" {
		return nil, errors.New("shipping blocks needs Prometheus' data directory")
	}
	m := newMetrics(reg)
	s := &Sidecar{cfg: cfg, logger: logger, metrics: m, prom: prom, reader: newReader(prom, m)}
	s.server = storeapi.NewMultiStore(s.stores, ComponentType, logger)
	if cfg.Bucket != nil {
		s.shipper = tsdbshard.NewShipper(logger, tsdbshard.NewShipperMetrics(reg), cfg.Bucket, cfg.TSDBPath, s.ExternalLabels, block.SourceSidecar)
	}
	return s, nil
}

func (s *Sidecar) stores() ([]*storeapi.TSDBStore, func()) {
	if st := s.store.Load(); st != nil {
		return []*storeapi.TSDBStore{st}, func() {}
	}
	return nil, func() {}
}

// Server returns the Store API and Info API server over Prometheus. Until
// Prometheus' external labels are known it serves nothing, and its Info
// reports no labels and an empty time range.
func (s *Sidecar) Server() *storeapi.MultiStore { return s.server }

// ExternalLabels returns Prometheus' external labels as last read; empty
// before the first successful read.
func (s *Sidecar) ExternalLabels() labels.Labels {
	if st := s.store.Load(); st != nil {
		return st.ExternalLabels()
	}
	return labels.EmptyLabels()
}

// Ready reports whether the sidecar serves: Prometheus was ready with
// external labels at the last refresh, and, when blocks are shipped, its
// local compaction is off.
func (s *Sidecar) Ready() bool {
	return s.promReady.Load() && s.store.Load() != nil && (s.shipper == nil || s.compactionOff.Load())
}

// Run waits for Prometheus to be ready and checks it, then refreshes what it
// knows of Prometheus and ships blocks until ctx is done. It returns an error
// if Prometheus is not ready within the ready timeout, has no external labels,
// or compacts locally while blocks are to be shipped; it returns nil when ctx
// is done.
func (s *Sidecar) Run(ctx context.Context) error {
	if err := s.start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var wg sync.WaitGroup
	if s.shipper != nil {
		wg.Go(func() { s.shipLoop(ctx) })
	}
	t := time.NewTicker(s.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			if err := s.refresh(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("refresh Prometheus' state", "err", err)
			}
		}
	}
}

// start polls Prometheus until a refresh succeeds. A failed check of its
// configuration ends the wait at once: waiting does not fix it.
func (s *Sidecar) start(ctx context.Context) error {
	if s.cfg.ReadyTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.ReadyTimeout)
		defer cancel()
	}
	poll := min(time.Second, s.cfg.RefreshInterval)
	for logged := false; ; {
		err := s.refresh(ctx)
		if err == nil {
			s.logger.Info("Prometheus is ready", "external_labels", s.ExternalLabels().String())
			return nil
		}
		if errors.Is(err, ErrCompactionEnabled) || errors.Is(err, ErrNoExternalLabels) {
			return err
		}
		if !logged {
			s.logger.Info("waiting for Prometheus to be ready", "url", s.cfg.PrometheusURL, "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for Prometheus at %s to be ready: %w (last error: %w)", s.cfg.PrometheusURL, ctx.Err(), err)
		case <-time.After(poll):
		}
	}
}

// refreshTimeout bounds one refresh, so that a Prometheus that accepts
// connections but does not answer is noticed.
const refreshTimeout = 30 * time.Second

// refresh reads Prometheus' readiness, external labels, flags (when shipping)
// and lowest timestamp.
func (s *Sidecar) refresh(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	defer func() {
		if s.Ready() {
			s.metrics.ready.Set(1)
		} else {
			s.metrics.ready.Set(0)
		}
		if err != nil {
			s.metrics.refreshFailures.Inc()
		}
	}()
	if err := s.prom.ready(ctx); err != nil {
		s.promReady.Store(false)
		return fmt.Errorf("check readiness: %w", err)
	}
	ext, err := s.prom.externalLabels(ctx)
	if err != nil {
		return err
	}
	if ext.IsEmpty() {
		s.promReady.Store(false)
		return fmt.Errorf("%w: set global.external_labels in its configuration to labels that tell it apart from every other source, such as cluster and prometheus_replica for an HA pair", ErrNoExternalLabels)
	}
	if old := s.store.Load(); old == nil || !labels.Equal(old.ExternalLabels(), ext) {
		if old != nil {
			s.logger.Info("Prometheus' external labels changed", "old", old.ExternalLabels().String(), "new", ext.String())
		}
		s.store.Store(storeapi.NewTSDBStore(s.reader, ext, ComponentType, s.logger))
	}
	if s.shipper != nil {
		flags, err := s.prom.flags(ctx)
		if err != nil {
			return err
		}
		if err := checkCompactionOff(flags, s.logger); err != nil {
			s.compactionOff.Store(false)
			return err
		}
		s.compactionOff.Store(true)
	}
	if lowest, err := s.prom.lowestTimestamp(ctx); err != nil {
		// The time range is an optimisation for queriers; keep the last one.
		s.logger.Debug("read Prometheus' lowest timestamp", "err", err)
	} else {
		s.reader.lowest.Store(lowest)
	}
	s.promReady.Store(true)
	return nil
}

// checkCompactionOff returns an error wrapping ErrCompactionEnabled, which
// says how to fix it, unless Prometheus' flags turn local compaction off:
// equal minimum and maximum block durations. A block duration other than 2h
// works but is logged.
func checkCompactionOff(flags map[string]string, logger *slog.Logger) error {
	minRaw, okMin := flags[minBlockDurationFlag]
	maxRaw, okMax := flags[maxBlockDurationFlag]
	if !okMin || !okMax {
		return fmt.Errorf("%w: Prometheus does not report --%s and --%s in /api/v1/status/flags", ErrCompactionEnabled, minBlockDurationFlag, maxBlockDurationFlag)
	}
	minD, err := model.ParseDuration(minRaw)
	if err != nil {
		return fmt.Errorf("parse Prometheus' --%s=%q: %w", minBlockDurationFlag, minRaw, err)
	}
	maxD, err := model.ParseDuration(maxRaw)
	if err != nil {
		return fmt.Errorf("parse Prometheus' --%s=%q: %w", maxBlockDurationFlag, maxRaw, err)
	}
	if minD != maxD {
		return fmt.Errorf("%w (--%s=%s, --%s=%s): compacted blocks would overlap the blocks already uploaded. "+
			"Restart Prometheus with --%s=2h --%s=2h, and let strata's compactor compact the bucket",
			ErrCompactionEnabled, minBlockDurationFlag, minRaw, maxBlockDurationFlag, maxRaw, minBlockDurationFlag, maxBlockDurationFlag)
	}
	if time.Duration(minD) != 2*time.Hour {
		logger.Warn("Prometheus' block duration is not 2h; 2h blocks are what the compactor expects", "block_duration", minRaw)
	}
	return nil
}

// shipLoop ships blocks now and then every ship interval, while Prometheus'
// local compaction is off, until ctx is done.
func (s *Sidecar) shipLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ShipInterval)
	defer t.Stop()
	for {
		if s.compactionOff.Load() {
			s.explainCompacted()
			if n, err := s.shipper.Sync(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("ship blocks; retrying at the next interval", "uploaded", n, "err", err)
			} else if n > 0 {
				s.logger.Info("shipped blocks", "uploaded", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// explainCompacted logs, once per block, why a block Prometheus compacted
// locally (before compaction was turned off) is not uploaded. The shipper
// skips such blocks itself.
func (s *Sidecar) explainCompacted() {
	entries, err := os.ReadDir(s.cfg.TSDBPath)
	if err != nil {
		return // the shipper reports it
	}
	for _, e := range entries {
		id, err := ulid.ParseStrict(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		if _, done := s.checkedLevel.Load(id); done {
			continue
		}
		m, err := block.ReadMetaFromDir(filepath.Join(s.cfg.TSDBPath, e.Name()))
		if err != nil {
			continue // not finished yet, or the shipper reports it
		}
		s.checkedLevel.Store(id, struct{}{})
		if m.Compaction.Level <= 1 {
			continue
		}
		s.logger.Warn("not uploading a block Prometheus compacted locally, before its compaction was turned off: "+
			"it overlaps the blocks it was made from, which may be in the bucket already; it leaves with Prometheus' retention",
			"block", id, "level", m.Compaction.Level, "min_time", m.MinTime, "max_time", m.MaxTime)
	}
}

// Status is what the sidecar knows of its Prometheus, as StatusHandler
// serves it.
type Status struct {
	PrometheusURL string `json:"prometheus_url"`
	// Ready is whether the sidecar is ready (see Sidecar.Ready).
	Ready bool `json:"ready"`
	// PrometheusReady is whether Prometheus was ready at the last refresh.
	PrometheusReady bool `json:"prometheus_ready"`
	// ExternalLabels are Prometheus' external labels as last read.
	ExternalLabels map[string]string `json:"external_labels"`
	// Shipping is whether blocks are uploaded to a bucket.
	Shipping bool `json:"shipping"`
}

// Status returns what the sidecar knows of its Prometheus now.
func (s *Sidecar) Status() Status {
	return Status{
		PrometheusURL:   s.cfg.PrometheusURL,
		Ready:           s.Ready(),
		PrometheusReady: s.promReady.Load(),
		ExternalLabels:  s.ExternalLabels().Map(),
		Shipping:        s.shipper != nil,
	}
}

// StatusHandler serves Status as JSON.
func (s *Sidecar) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Status())
	})
}
