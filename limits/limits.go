// Package limits holds the per-tenant limits of strata: an overrides file of
// defaults and per-tenant values, reloaded at runtime, the ingestion rate
// limiter and the checks of a series' labels.
//
// The file:
//
//	defaults:
//	  ingestion_rate: 100000        # samples per second, 0 for no limit
//	  ingestion_burst: 200000       # samples at once; 0 means one second's worth
//	  max_active_series: 1000000
//	  max_labels_per_series: 40
//	  max_label_name_length: 128
//	  max_label_value_length: 2048
//	  max_request_bytes: 33554432
//	  max_exemplars: 100000
//	  out_of_order_window: 0s
//	  retention: 0s                 # 0 keeps data forever
//	tenants:
//	  team-a:
//	    ingestion_rate: 500000
//
// A tenant's values start from the defaults; the fields it sets replace them.
// Zero means no limit everywhere. Unknown fields are errors.
package limits

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// Limits are one tenant's limits. Zero means no limit.
type Limits struct {
	// IngestionRate is the sustained samples (and histograms) per second.
	IngestionRate float64 `yaml:"ingestion_rate" json:"ingestion_rate"`
	// IngestionBurst is how many samples may come at once; zero means one
	// second's worth of IngestionRate.
	IngestionBurst int `yaml:"ingestion_burst" json:"ingestion_burst"`
	// MaxActiveSeries bounds the series in the tenant's heads.
	MaxActiveSeries int `yaml:"max_active_series" json:"max_active_series"`
	// MaxLabelsPerSeries bounds the labels of a series, its name included.
	MaxLabelsPerSeries int `yaml:"max_labels_per_series" json:"max_labels_per_series"`
	// MaxLabelNameLength and MaxLabelValueLength bound a label's name and
	// value, in bytes.
	MaxLabelNameLength  int `yaml:"max_label_name_length" json:"max_label_name_length"`
	MaxLabelValueLength int `yaml:"max_label_value_length" json:"max_label_value_length"`
	// MaxRequestBytes bounds a write request's body as sent.
	MaxRequestBytes int64 `yaml:"max_request_bytes" json:"max_request_bytes"`
	// MaxExemplars bounds the exemplars the tenant's storage keeps.
	MaxExemplars int `yaml:"max_exemplars" json:"max_exemplars"`
	// OutOfOrderWindow is how far behind its series' latest sample a sample
	// may still be written.
	OutOfOrderWindow model.Duration `yaml:"out_of_order_window" json:"out_of_order_window"`
	// Retention is how long the tenant's blocks are kept in the bucket.
	Retention model.Duration `yaml:"retention" json:"retention"`
}

// Burst returns the burst the rate limiter allows: IngestionBurst, or one
// second's worth of IngestionRate, at least 1.
func (l Limits) Burst() int {
	if l.IngestionBurst > 0 {
		return l.IngestionBurst
	}
	return max(1, int(l.IngestionRate))
}

// Validate reports the first negative value.
func (l Limits) Validate() error {
	for name, v := range map[string]float64{
		"ingestion_rate":         l.IngestionRate,
		"ingestion_burst":        float64(l.IngestionBurst),
		"max_active_series":      float64(l.MaxActiveSeries),
		"max_labels_per_series":  float64(l.MaxLabelsPerSeries),
		"max_label_name_length":  float64(l.MaxLabelNameLength),
		"max_label_value_length": float64(l.MaxLabelValueLength),
		"max_request_bytes":      float64(l.MaxRequestBytes),
		"max_exemplars":          float64(l.MaxExemplars),
		"out_of_order_window":    float64(l.OutOfOrderWindow),
		"retention":              float64(l.Retention),
	} {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s must be a finite number, not negative, got %v", name, v)
		}
	}
	return nil
}

// Config is a parsed overrides file.
type Config struct {
	// Defaults apply to every tenant.
	Defaults Limits
	// Tenants are the limits of the tenants the file names, defaults applied.
	Tenants map[string]Limits
}

// For returns the limits of tenant.
func (c *Config) For(tenant string) Limits {
	if l, ok := c.Tenants[tenant]; ok {
		return l
	}
	return c.Defaults
}

// Parse decodes an overrides file strictly.
func Parse(content []byte) (*Config, error) { return ParseWith(content, Limits{}) }

// ParseWith decodes an overrides file strictly over base: the fields the
// file's defaults leave out keep base's values, so command-line flags can
// supply the defaults the file refines.
func ParseWith(content []byte, base Limits) (*Config, error) {
	// A strict pass rejects unknown fields and wrong types, with their lines.
	var strict struct {
		Defaults Limits            `yaml:"defaults" json:"defaults"`
		Tenants  map[string]Limits `yaml:"tenants" json:"tenants"`
	}
	strict.Defaults = base
	dec := yaml.NewDecoder(bytes.NewReader(content))
	dec.KnownFields(true)
	if err := dec.Decode(&strict); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	// A second pass decodes each tenant over a copy of the defaults, so that
	// the fields it leaves out keep the default.
	var raw struct {
		Tenants map[string]yaml.Node `yaml:"tenants" json:"tenants"`
	}
	if err := yaml.Unmarshal(content, &raw); err != nil {
		return nil, err
	}
	if err := strict.Defaults.Validate(); err != nil {
		return nil, fmt.Errorf("defaults: %w", err)
	}
	c := &Config{Defaults: strict.Defaults, Tenants: make(map[string]Limits, len(raw.Tenants))}
	names := make([]string, 0, len(raw.Tenants))
	for name := range raw.Tenants {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "" {
			return nil, errors.New("tenants: empty tenant name")
		}
		node := raw.Tenants[name]
		l := c.Defaults
		if err := node.Decode(&l); err != nil {
			return nil, fmt.Errorf("tenant %q: %w", name, err)
		}
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("tenant %q: %w", name, err)
		}
		c.Tenants[name] = l
	}
	return c, nil
}

// Overrides is an overrides file kept current: Reload re-reads it, and a file
// that fails to read or parse leaves the last good one in force. The zero
// path means the defaults given to NewOverrides for every tenant. It is safe
// for concurrent use.
type Overrides struct {
	path    string
	base    Limits
	logger  *slog.Logger
	cur     atomic.Pointer[Config]
	mtx     sync.Mutex
	hash    [sha256.Size]byte
	metrics *overridesMetrics
}

type overridesMetrics struct {
	reloads     *prometheus.CounterVec
	lastSuccess prometheus.Gauge
}

// NewOverrides reads the file at path, failing if it is invalid. The file's
// defaults start from defaults, and an empty path gives every tenant defaults.
func NewOverrides(path string, defaults Limits, reg prometheus.Registerer, logger *slog.Logger) (*Overrides, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := defaults.Validate(); err != nil {
		return nil, err
	}
	o := &Overrides{path: path, base: defaults, logger: logger, metrics: &overridesMetrics{
		reloads: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_limits_reloads_total",
			Help: "Reads of the limits overrides file that found it changed, by result (success, error).",
		}, []string{"result"}),
		lastSuccess: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "strata_limits_config_last_reload_successful",
			Help: "Whether the last read of the limits overrides file succeeded (1) or kept the previous limits (0).",
		}),
	}}
	o.cur.Store(&Config{Defaults: defaults})
	o.metrics.lastSuccess.Set(1)
	if path == "" {
		return o, nil
	}
	if _, err := o.Reload(); err != nil {
		return nil, err
	}
	return o, nil
}

// Reload re-reads the file and reports whether it changed. On an error the
// limits in force stay.
func (o *Overrides) Reload() (changed bool, err error) {
	if o.path == "" {
		return false, nil
	}
	o.mtx.Lock()
	defer o.mtx.Unlock()
	b, err := os.ReadFile(o.path)
	if err == nil {
		h := sha256.Sum256(b)
		if h == o.hash {
			return false, nil
		}
		var c *Config
		if c, err = ParseWith(b, o.base); err == nil {
			o.cur.Store(c)
			o.hash = h
			o.metrics.reloads.WithLabelValues("success").Inc()
			o.metrics.lastSuccess.Set(1)
			o.logger.Info("limits loaded", "file", o.path, "tenants", len(c.Tenants))
			return true, nil
		}
	}
	err = fmt.Errorf("limits overrides %s: %w", o.path, err)
	o.metrics.reloads.WithLabelValues("error").Inc()
	o.metrics.lastSuccess.Set(0)
	o.logger.Error("limits file rejected, the previous limits stay", "err", err)
	return false, err
}

// For returns the limits of tenant now in force.
func (o *Overrides) For(tenant string) Limits { return o.cur.Load().For(tenant) }

// Config returns the configuration now in force; it must not be modified.
func (o *Overrides) Config() *Config { return o.cur.Load() }
