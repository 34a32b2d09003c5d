package tsdbshard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
)

// Errors of the Manager. Classify them with errors.Is.
var (
	// ErrNotReady means storage cannot take writes right now: the manager is still
	// replaying WALs or is shutting down, or the tenant is being closed. It is
	// transient; the caller should retry.
	ErrNotReady = errors.New("tenant storage not ready")
	// ErrInvalidTenant means the tenant name cannot name a directory safely.
	ErrInvalidTenant = errors.New("invalid tenant name")
)

// Defaults of Options.
const (
	DefaultBlockDuration       = 2 * time.Hour
	DefaultShipInterval        = 30 * time.Second
	DefaultBlockReloadInterval = 5 * time.Second
	DefaultTenantLabelName     = "tenant_id"
)

// Options configures a Manager. The zero value of each optional field picks the
// documented default.
type Options struct {
	// Dir holds one sub-directory per tenant. Required.
	Dir string
	// ExternalLabels are stamped on every tenant's blocks (for example receive_replica).
	ExternalLabels labels.Labels
	// TenantLabelName is the external label that carries the tenant. Default tenant_id.
	TenantLabelName string
	// Bucket receives the tenants' blocks. Nil disables shipping; local blocks are
	// then deleted by retention alone and idle tenants are closed but kept on disk.
	Bucket objstore.Bucket
	// Retention is how long local blocks are kept (by their max time against the wall
	// clock). A block is deleted only once it was shipped. Zero keeps blocks forever.
	Retention time.Duration
	// IdleTenantTimeout closes a tenant that got no write for this long, after
	// flushing and shipping it. Zero never closes idle tenants.
	IdleTenantTimeout time.Duration
	// OutOfOrderTimeWindow accepts samples this much older than a series' newest sample.
	OutOfOrderTimeWindow time.Duration
	// MaxExemplars is the per-tenant exemplar buffer size. Zero stores no exemplars.
	MaxExemplars int64
	// TenantLimits, when set, gives each tenant its own out-of-order window and
	// exemplar buffer size in place of the two fields above, read when the
	// tenant opens and again by ApplyTenantLimits.
	TenantLimits func(tenant string) TenantLimits
	// BlockDuration is the length of the blocks cut from the head. Default 2h.
	BlockDuration time.Duration
	// ShipInterval is how often Run ships new blocks. Default 30s.
	ShipInterval time.Duration
	// BlockReloadInterval is how often each TSDB reloads its blocks, which is when
	// retention deletes them, and moves full head chunks out of the Go heap into
	// memory-mapped files. Under a fast or backfilling writer a minute's worth of
	// full chunks is most of the head's memory, hence the short default: 5s.
	BlockReloadInterval time.Duration
	// ReplayConcurrency bounds how many tenants replay their WAL at once on start.
	// Default GOMAXPROCS.
	ReplayConcurrency int
	// DisableWALCompression turns off snappy compression of WAL records.
	DisableWALCompression bool
	// Now returns the current time. Default time.Now; tests move it.
	Now func() time.Time
}

func (o *Options) applyDefaults() error {
	if o.Dir == "" {
		return errors.New("tsdb directory is required")
	}
	if o.TenantLabelName == "" {
		o.TenantLabelName = DefaultTenantLabelName
	}
	if o.BlockDuration <= 0 {
		o.BlockDuration = DefaultBlockDuration
	}
	if o.ShipInterval <= 0 {
		o.ShipInterval = DefaultShipInterval
	}
	if o.BlockReloadInterval <= 0 {
		o.BlockReloadInterval = DefaultBlockReloadInterval
	}
	if o.ReplayConcurrency <= 0 {
		o.ReplayConcurrency = runtime.GOMAXPROCS(0)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Retention < 0 || o.IdleTenantTimeout < 0 || o.OutOfOrderTimeWindow < 0 || o.MaxExemplars < 0 {
		return errors.New("retention, idle tenant timeout, out-of-order window and max exemplars must not be negative")
	}
	if o.ExternalLabels.Has(o.TenantLabelName) {
		return fmt.Errorf("external labels must not set the tenant label %q", o.TenantLabelName)
	}
	return nil
}

// TenantLimits are the storage settings that may differ between tenants.
type TenantLimits struct {
	OutOfOrderTimeWindow time.Duration
	MaxExemplars         int64
}

type tenantState int

const (
	tenantOpening tenantState = iota
	tenantOpen
	tenantClosing
)

// tenant is one tenant's TSDB. state is guarded by Manager.mtx; db, shipper, reg
// and labels are set before the state leaves tenantOpening and never change after.
type tenant struct {
	name    string
	dir     string
	state   tenantState
	opened  chan struct{} // closed when opening finished, successfully or not
	db      *tsdb.DB
	shipper *Shipper // nil without a bucket
	reg     *tenantRegisterer
	labels  labels.Labels

	// inflight counts appenders, ship runs and Store API requests in progress. It is only incremented
	// under Manager.mtx while the tenant is open, so once the tenant is marked
	// closing, Wait sees every user out.
	inflight  sync.WaitGroup
	lastWrite atomic.Int64 // unix milliseconds

	// seriesCache is where the write path keeps its cache of this TSDB's series
	// references. A tenant value lives for one open of its TSDB, and so does the
	// cache: references mean nothing to another open.
	seriesCache atomic.Value
}

// Manager owns the per-tenant TSDBs of one receiver. It is safe for concurrent use.
type Manager struct {
	opts    Options
	logger  *slog.Logger
	reg     prometheus.Registerer
	metrics *managerMetrics
	shipped *ShipperMetrics

	mtx     sync.RWMutex
	tenants map[string]*tenant
	ready   bool // accepting writes
}

type managerMetrics struct {
	tenants        prometheus.Gauge
	opens          prometheus.Counter
	openFailures   prometheus.Counter
	closes         *prometheus.CounterVec
	flushDuration  prometheus.Histogram
	replayDuration prometheus.Gauge
}

func newManagerMetrics(reg prometheus.Registerer) *managerMetrics {
	f := promauto.With(reg)
	return &managerMetrics{
		tenants: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_tsdbshard_tenants",
			Help: "Number of tenant TSDBs currently open.",
		}),
		opens: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_tsdbshard_tenant_opens_total",
			Help: "Tenant TSDBs opened, on start or on a tenant's first write.",
		}),
		openFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_tsdbshard_tenant_open_failures_total",
			Help: "Tenant TSDBs that could not be opened.",
		}),
		closes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_tsdbshard_tenant_closes_total",
			Help: "Tenant TSDBs flushed and closed, by reason (idle or shutdown).",
		}, []string{"reason"}),
		flushDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_tsdbshard_flush_duration_seconds",
			Help:    "Time to write a tenant's whole head as blocks.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}),
		replayDuration: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_tsdbshard_startup_replay_duration_seconds",
			Help: "Time the last start took to open every tenant and replay their WALs.",
		}),
	}
}

// NewManager returns a Manager over opts.Dir. Call Open before use.
func NewManager(opts Options, reg prometheus.Registerer, logger *slog.Logger) (*Manager, error) {
	if err := opts.applyDefaults(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create tsdb directory: %w", err)
	}
	m := &Manager{
		opts:    opts,
		logger:  logger,
		reg:     reg,
		metrics: newManagerMetrics(reg),
		shipped: NewShipperMetrics(reg),
		tenants: map[string]*tenant{},
	}
	if reg != nil {
		reg.MustRegister(activeSeriesCollector{m})
	}
	return m, nil
}

var activeSeriesDesc = prometheus.NewDesc("strata_receive_tenant_active_series",
	"Series in the tenant's head on this receiver: written within the last block range or so, counted as they are created.", []string{"tenant"}, nil)

// activeSeriesCollector exports Manager.ActiveSeries.
type activeSeriesCollector struct{ m *Manager }

func (c activeSeriesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- activeSeriesDesc }

func (c activeSeriesCollector) Collect(ch chan<- prometheus.Metric) {
	for tenant, n := range c.m.ActiveSeries() {
		ch <- prometheus.MustNewConstMetric(activeSeriesDesc, prometheus.GaugeValue, float64(n), tenant)
	}
}

// ValidateTenant reports whether name can be used as a tenant's directory name.
// The write path applies its own, stricter rules first; this is the last guard.
func ValidateTenant(name string) error {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name || len(name) > 255 {
		return fmt.Errorf("%w: %q", ErrInvalidTenant, name)
	}
	return nil
}

// Open opens every tenant found on disk, replaying their WALs with bounded
// parallelism, and then starts accepting writes. Until it returns, appenders fail
// with ErrNotReady.
func (m *Manager) Open(ctx context.Context) error {
	start := time.Now()
	entries, err := os.ReadDir(m.opts.Dir)
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if err := ValidateTenant(e.Name()); err != nil {
			m.logger.Warn("ignoring directory that is not a tenant", "dir", e.Name())
			continue
		}
		names = append(names, e.Name())
	}

	m.mtx.Lock()
	for _, name := range names {
		m.tenants[name] = &tenant{name: name, state: tenantOpening, opened: make(chan struct{})}
	}
	m.mtx.Unlock()

	sem := make(chan struct{}, m.opts.ReplayConcurrency)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				m.finishOpen(name, ctx.Err())
				return
			}
			defer func() { <-sem }()
			errs[i] = m.finishOpen(name, m.startTenant(m.tenantFor(name)))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("open tenants: %w", err)
	}

	m.mtx.Lock()
	m.ready = true
	m.mtx.Unlock()
	m.metrics.replayDuration.Set(time.Since(start).Seconds())
	m.logger.Info("tenant storage ready", "tenants", len(names), "duration", time.Since(start).String())
	return nil
}

func (m *Manager) tenantFor(name string) *tenant {
	m.mtx.RLock()
	defer m.mtx.RUnlock()
	return m.tenants[name]
}

// Ready reports whether the manager accepts writes.
func (m *Manager) Ready() bool {
	m.mtx.RLock()
	defer m.mtx.RUnlock()
	return m.ready
}

// TenantAppender returns an appender over tenant's TSDB, opening it on first use.
// Each appender must be finished with Commit or Rollback by one goroutine.
func (m *Manager) TenantAppender(ctx context.Context, name string) (storage.AppenderV2, error) {
	for {
		t, err := m.acquire(ctx, name)
		if err != nil {
			return nil, err
		}
		if t != nil {
			t.lastWrite.Store(m.opts.Now().UnixMilli())
			return &appender{AppenderV2: t.db.AppenderV2(ctx), t: t}, nil
		}
	}
}

// acquire returns the open tenant with its inflight count raised, or nil after it
// waited for or performed an open, in which case the caller asks again.
func (m *Manager) acquire(ctx context.Context, name string) (*tenant, error) {
	m.mtx.RLock()
	ready := m.ready
	t := m.tenants[name]
	var state tenantState
	if t != nil {
		state = t.state
	}
	if ready && t != nil && state == tenantOpen {
		t.inflight.Add(1)
		m.mtx.RUnlock()
		return t, nil
	}
	m.mtx.RUnlock()
	switch {
	case !ready:
		return nil, ErrNotReady
	case t != nil && state == tenantClosing:
		return nil, fmt.Errorf("tenant %q is being closed: %w", name, ErrNotReady)
	case t != nil:
		select {
		case <-t.opened:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := ValidateTenant(name); err != nil {
		return nil, err
	}

	m.mtx.Lock()
	if !m.ready {
		m.mtx.Unlock()
		return nil, ErrNotReady
	}
	if _, ok := m.tenants[name]; ok {
		// Someone else started opening it; go round again and wait for them.
		m.mtx.Unlock()
		return nil, nil
	}
	t = &tenant{name: name, state: tenantOpening, opened: make(chan struct{})}
	m.tenants[name] = t
	m.mtx.Unlock()

	return nil, m.finishOpen(name, m.startTenant(t))
}

// finishOpen publishes the outcome of opening a tenant.
func (m *Manager) finishOpen(name string, err error) error {
	m.mtx.Lock()
	defer m.mtx.Unlock()
	t := m.tenants[name]
	if err != nil {
		m.metrics.openFailures.Inc()
		delete(m.tenants, name)
	} else {
		t.state = tenantOpen
		m.metrics.opens.Inc()
		m.metrics.tenants.Inc()
	}
	close(t.opened)
	return err
}

// startTenant opens a tenant's TSDB, replaying its WAL.
func (m *Manager) startTenant(t *tenant) error {
	t.dir = filepath.Join(m.opts.Dir, t.name)
	b := labels.NewBuilder(m.opts.ExternalLabels)
	b.Set(m.opts.TenantLabelName, t.name)
	t.labels = b.Labels()
	logger := m.logger.With("tenant", t.name)

	if m.opts.Bucket != nil {
		t.shipper = NewShipper(logger, m.shipped, m.opts.Bucket, t.dir, func() labels.Labels { return t.labels }, block.SourceReceive)
	}
	var reg prometheus.Registerer
	if m.reg != nil {
		t.reg = newTenantRegisterer(m.reg, t.name)
		reg = t.reg
	}
	db, err := tsdb.Open(t.dir, logger, reg, m.tsdbOptions(t), nil)
	if err != nil {
		if t.reg != nil {
			t.reg.unregisterAll()
		}
		return fmt.Errorf("open tsdb of tenant %q: %w", t.name, err)
	}
	t.db = db
	t.lastWrite.Store(m.opts.Now().UnixMilli())
	return nil
}

func (m *Manager) tsdbOptions(t *tenant) *tsdb.Options {
	o := tsdb.DefaultOptions()
	blockMs := m.opts.BlockDuration.Milliseconds()
	o.MinBlockDuration, o.MaxBlockDuration = blockMs, blockMs
	// Retention is ours (blocksToDelete) so that unshipped blocks are never deleted.
	o.RetentionDuration = 0
	o.BlocksToDelete = m.blocksToDelete(t)
	o.BlockReloadInterval = m.opts.BlockReloadInterval
	if !m.opts.DisableWALCompression {
		o.WALCompression = compression.Snappy
	}
	o.OutOfOrderTimeWindow = m.opts.OutOfOrderTimeWindow.Milliseconds()
	o.EnableExemplarStorage = m.opts.MaxExemplars > 0
	o.MaxExemplars = m.opts.MaxExemplars
	if m.opts.TenantLimits != nil {
		l := m.opts.TenantLimits(t.name)
		o.OutOfOrderTimeWindow = l.OutOfOrderTimeWindow.Milliseconds()
		// Exemplar storage is on even at size 0, so that a reload can grow it.
		o.EnableExemplarStorage = true
		o.MaxExemplars = l.MaxExemplars
	}
	// Overlapping (out-of-order) blocks are merged by the compactor in the bucket;
	// merging them here would produce level-2 blocks the shipper does not ship.
	o.EnableOverlappingCompaction = false
	// Stagger head compaction of many tenants a little.
	o.EnableDelayedCompaction = true
	o.EnableSTAsZeroSample = true
	o.EnableMetadataWALRecords = true
	return o
}

// blocksToDelete applies retention: a block goes once it is past retention (or
// superseded by a compaction) and, when a bucket is configured, shipped.
func (m *Manager) blocksToDelete(t *tenant) tsdb.BlocksToDeleteFunc {
	return func(blocks []*tsdb.Block) map[ulid.ULID]struct{} {
		deletable := map[ulid.ULID]struct{}{}
		cutoff := m.opts.Now().Add(-m.opts.Retention).UnixMilli()
		for _, b := range blocks {
			meta := b.Meta()
			expired := m.opts.Retention > 0 && meta.MaxTime <= cutoff
			if !expired && !meta.Compaction.Deletable {
				continue
			}
			if expired && t.shipper != nil && !t.shipper.Shipped(meta.ULID) {
				continue
			}
			deletable[meta.ULID] = struct{}{}
		}
		return deletable
	}
}

// Querier returns a querier over one open tenant's data, or ErrNotReady when the
// tenant is not open.
func (m *Manager) Querier(tenantName string, mint, maxt int64) (storage.Querier, error) {
	m.mtx.RLock()
	t := m.tenants[tenantName]
	m.mtx.RUnlock()
	if t == nil || t.state != tenantOpen {
		return nil, fmt.Errorf("tenant %q: %w", tenantName, ErrNotReady)
	}
	return t.db.Querier(mint, maxt)
}

// ExemplarQuerier returns a querier over one open tenant's exemplars, or
// ErrNotReady when the tenant is not open.
func (m *Manager) ExemplarQuerier(ctx context.Context, tenantName string) (storage.ExemplarQuerier, error) {
	m.mtx.RLock()
	t := m.tenants[tenantName]
	m.mtx.RUnlock()
	if t == nil || t.state != tenantOpen {
		return nil, fmt.Errorf("tenant %q: %w", tenantName, ErrNotReady)
	}
	return t.db.ExemplarQuerier(ctx)
}

// Tenants returns the names of the open tenants.
func (m *Manager) Tenants() []string {
	m.mtx.RLock()
	defer m.mtx.RUnlock()
	names := make([]string, 0, len(m.tenants))
	for name, t := range m.tenants {
		if t.state == tenantOpen {
			names = append(names, name)
		}
	}
	return names
}

// ApplyTenantLimits applies Options.TenantLimits, as it now answers, to every
// open tenant: a changed out-of-order window or exemplar buffer size takes
// effect without reopening the TSDB.
func (m *Manager) ApplyTenantLimits() error {
	if m.opts.TenantLimits == nil {
		return nil
	}
	m.mtx.RLock()
	open := make([]*tenant, 0, len(m.tenants))
	for _, t := range m.tenants {
		if t.state == tenantOpen {
			// Counted in flight, so the tenant is not closed under ApplyConfig.
			t.inflight.Add(1)
			open = append(open, t)
		}
	}
	m.mtx.RUnlock()
	var errs []error
	for _, t := range open {
		l := m.opts.TenantLimits(t.name)
		cfg := &config.Config{StorageConfig: config.StorageConfig{
			TSDBConfig:      &config.TSDBConfig{OutOfOrderTimeWindow: l.OutOfOrderTimeWindow.Milliseconds()},
			ExemplarsConfig: &config.ExemplarsConfig{MaxExemplars: l.MaxExemplars},
		}}
		if err := t.db.ApplyConfig(cfg); err != nil {
			errs = append(errs, fmt.Errorf("apply limits to tenant %q: %w", t.name, err))
		}
		t.inflight.Done()
	}
	return errors.Join(errs...)
}

// ActiveSeries returns the series in the heads of the open tenants, by tenant.
func (m *Manager) ActiveSeries() map[string]int {
	m.mtx.RLock()
	defer m.mtx.RUnlock()
	out := make(map[string]int, len(m.tenants))
	for name, t := range m.tenants {
		if t.state == tenantOpen {
			out[name] = int(t.db.Head().NumSeries())
		}
	}
	return out
}

// appender counts itself in its tenant's inflight work until it is finished, so a
// tenant is never closed under an append.
type appender struct {
	storage.AppenderV2
	t    *tenant
	done bool
}

func (a *appender) Commit() error {
	err := a.AppenderV2.Commit()
	a.release()
	return err
}

func (a *appender) Rollback() error {
	err := a.AppenderV2.Rollback()
	a.release()
	return err
}

func (a *appender) release() {
	if !a.done {
		a.done = true
		a.t.inflight.Done()
	}
}

// SeriesCacheSlot returns the series cache slot of tenant's current open (see
// receive.TenantSeriesCaches), or nil if the tenant is not open.
func (m *Manager) SeriesCacheSlot(tenant string) *atomic.Value {
	m.mtx.RLock()
	defer m.mtx.RUnlock()
	if t := m.tenants[tenant]; t != nil && t.state == tenantOpen {
		return &t.seriesCache
	}
	return nil
}

// SeriesCacheSlot returns the tenant's slot for the write path's cache of series
// references (see receive.SeriesCacheHolder); it lives as long as this open of
// the tenant's TSDB.
func (a *appender) SeriesCacheSlot() *atomic.Value { return &a.t.seriesCache }

// ActiveSeries returns the series in the tenant's head, counted as they are
// created (see receive.ActiveSeriesCounter).
func (a *appender) ActiveSeries() int { return int(a.t.db.Head().NumSeries()) }

// GetRef forwards to the TSDB appender's series lookup, so the write path can
// resolve a series without copying its labels.
func (a *appender) GetRef(lset labels.Labels, hash uint64) (storage.SeriesRef, labels.Labels) {
	if g, ok := a.AppenderV2.(storage.GetRef); ok {
		return g.GetRef(lset, hash)
	}
	return 0, labels.EmptyLabels()
}
