package hashring

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// FileRinger serves the rings of a hashring file and follows changes to it.
// It is safe for concurrent use; Run must be called at most once.
//
// Changes are found by reading the file every refresh interval and comparing
// the SHA-256 of its content, which also sees the symlink swap with which
// Kubernetes updates a mounted ConfigMap. A file that does not parse, validate
// or build is logged and counted once per distinct content, and the rings
// already served stay in place.
type FileRinger struct {
	path       string
	defaultAlg Algorithm
	rf         int
	refresh    time.Duration
	logger     *slog.Logger
	metrics    *fileMetrics

	current atomic.Pointer[Multi]

	// Owned by the goroutine in Run (and the constructor before it).
	lastSum  [sha256.Size]byte // content last tried, good or bad
	lastRead string            // last read error, to log it once
}

type fileMetrics struct {
	reloadSuccess prometheus.Counter
	reloadFailure prometheus.Counter
	configHash    prometheus.Gauge
	lastSuccess   prometheus.Gauge
}

func newFileMetrics(reg prometheus.Registerer) *fileMetrics {
	reloads := promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "strata_hashring_file_reloads_total",
		Help: "Loads of the hashring file, by result; a success swaps in the new rings.",
	}, []string{"result"})
	return &fileMetrics{
		reloadSuccess: reloads.WithLabelValues("success"),
		reloadFailure: reloads.WithLabelValues("failure"),
		configHash: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "strata_hashring_file_config_hash",
			Help: "The first 48 bits of the SHA-256 of the hashring file that is served, as a number.",
		}),
		lastSuccess: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "strata_hashring_file_last_reload_success_timestamp_seconds",
			Help: "When the hashring file was last loaded successfully, in seconds since the epoch.",
		}),
	}
}

// NewFileRinger loads the hashring file at path and returns a FileRinger that
// serves it. It returns an error if the file cannot be read, parsed, validated
// or built into rings (see ParseConfig and NewMulti for defaultAlg and rf), or
// if refresh is not positive. Call Run to follow changes to the file.
func NewFileRinger(path string, defaultAlg Algorithm, rf int, refresh time.Duration, reg prometheus.Registerer, logger *slog.Logger) (*FileRinger, error) {
	if refresh <= 0 {
		return nil, fmt.Errorf("watch hashring file %s: refresh interval %v is not positive", path, refresh)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &FileRinger{
		path:       path,
		defaultAlg: defaultAlg,
		rf:         rf,
		refresh:    refresh,
		logger:     logger,
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load hashring file: %w", err)
	}
	f.lastSum = sha256.Sum256(data)
	m, err := f.build(data)
	if err != nil {
		return nil, fmt.Errorf("load hashring file %s: %w", path, err)
	}
	// Metrics are registered only once the file is good, so that a failed
	// start leaves nothing registered behind.
	f.metrics = newFileMetrics(reg)
	f.swap(m, f.lastSum)
	return f, nil
}

func (f *FileRinger) build(data []byte) (*Multi, error) {
	cfgs, err := ParseConfig(data)
	if err != nil {
		return nil, err
	}
	return NewMulti(cfgs, f.defaultAlg, f.rf)
}

// swap serves m. The metrics are updated first, so that whoever sees the new
// rings also sees the metrics that describe them.
func (f *FileRinger) swap(m *Multi, sum [sha256.Size]byte) {
	f.metrics.reloadSuccess.Inc()
	// 48 bits fit a float64 exactly.
	f.metrics.configHash.Set(float64(binary.BigEndian.Uint64(sum[:8]) >> 16))
	f.metrics.lastSuccess.SetToCurrentTime()
	f.current.Store(m)
}

// Ring implements Ringer with the rings of the file last loaded successfully.
func (f *FileRinger) Ring(tenant string) (Ring, error) {
	return f.current.Load().Ring(tenant)
}

// Multi returns the rings that are served now, for example for a status page.
func (f *FileRinger) Multi() *Multi { return f.current.Load() }

// Run reads the file every refresh interval and swaps in its rings when its
// content changes and is valid, until ctx is done; then it returns nil.
func (f *FileRinger) Run(ctx context.Context) error {
	t := time.NewTicker(f.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			f.reload()
		}
	}
}

// reload reads the file once and swaps in its rings if it changed and is good.
func (f *FileRinger) reload() {
	data, err := os.ReadFile(f.path)
	if err != nil {
		// Logged and counted once until it changes or the file comes back: a
		// missing file would otherwise log every interval.
		if msg := err.Error(); msg != f.lastRead {
			f.lastRead = msg
			f.logger.Error("hashring file unreadable; keeping the current hashrings", "file", f.path, "err", err)
			f.metrics.reloadFailure.Inc()
		}
		return
	}
	f.lastRead = ""
	sum := sha256.Sum256(data)
	if sum == f.lastSum {
		return
	}
	f.lastSum = sum
	m, err := f.build(data)
	if err != nil {
		f.logger.Error("hashring file rejected; keeping the current hashrings", "file", f.path, "err", err)
		f.metrics.reloadFailure.Inc()
		return
	}
	f.swap(m, sum)
	f.logger.Info("hashring file reloaded", "file", f.path, "hashrings", len(m.Rings()))
}
