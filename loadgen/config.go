package loadgen

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Protocol is a remote-write protocol version.
type Protocol string

// The protocols a load can be sent with.
const (
	// ProtocolRW1 is Remote Write 1.0: prometheus.WriteRequest.
	ProtocolRW1 Protocol = "rw1"
	// ProtocolRW2 is Remote Write 2.0: io.prometheus.write.v2.Request.
	ProtocolRW2 Protocol = "rw2"
)

// Defaults of the configuration, shared with the command line.
const (
	DefaultSeries          = 100000
	DefaultBatchSize       = 2000
	DefaultConcurrency     = 4
	DefaultScrapeInterval  = 15 * time.Second
	DefaultChurnInterval   = 10 * time.Minute
	DefaultTenantHeader    = "THANOS-TENANT"
	DefaultDuration        = 60 * time.Second
	DefaultWarmup          = 10 * time.Second
	DefaultRequestTimeout  = 30 * time.Second
	DefaultReadBackTimeout = 2 * time.Minute
)

// WorkloadConfig is what is sent: which series, in which batches, with which
// timestamps.
type WorkloadConfig struct {
	// Series is the number of series that are active at any time.
	Series int
	// BatchSize is the number of series per request; each has one sample.
	BatchSize int
	// Tenants partitions the series into tenants named tenant-0 ... tenant-N-1.
	// With one tenant requests carry no tenant header.
	Tenants int
	// Protocol selects Remote Write 1.0 or 2.0.
	Protocol Protocol
	// Start is the timestamp of the first round's samples.
	Start time.Time
	// ScrapeInterval is the sample time between two rounds.
	ScrapeInterval time.Duration
	// Churn is the share (0 to 1) of series replaced every ChurnInterval of
	// sample time.
	Churn float64
	// ChurnInterval is the sample time between two churn events, rounded down
	// to a multiple of ScrapeInterval.
	ChurnInterval time.Duration
	// Seed makes label values and sample values reproducible.
	Seed uint64
}

// Config is a load to run with Run.
type Config struct {
	WorkloadConfig

	// URLs are the remote-write endpoints; sender i uses URLs[i mod len(URLs)].
	URLs []string
	// Concurrency is the number of senders, each with at most one request in
	// flight. It is capped at the number of batches.
	Concurrency int
	// Rate is the total samples per second to send; 0 sends each request as soon
	// as the sender's previous one is answered.
	Rate float64
	// TenantHeader is the HTTP header that names the tenant.
	TenantHeader string
	// Header is added to every write and read-back request (Authorization, ...).
	Header http.Header
	// Warmup is run before the measured window; its samples are sent and count
	// for the read-back, but not for rates, latencies and CPU.
	Warmup time.Duration
	// Duration is the measured window.
	Duration time.Duration
	// RequestTimeout bounds every request.
	RequestTimeout time.Duration
	// Client sends the requests. Nil means NewClient(nil, Concurrency).
	Client *http.Client
	// PIDs are server processes whose CPU time and memory are measured.
	PIDs []int
	// ReadBackURL is the base URL of a Prometheus-compatible query API to count
	// the stored samples with after the run (see ReadBack). Empty skips it.
	ReadBackURL string
	// ReadBackTimeout bounds the read-back.
	ReadBackTimeout time.Duration
}

// DefaultConfig returns the configuration of `strata tools bench write` with
// no flags, sending to url.
func DefaultConfig(url string) Config {
	return Config{
		WorkloadConfig: WorkloadConfig{
			Series:         DefaultSeries,
			BatchSize:      DefaultBatchSize,
			Tenants:        1,
			Protocol:       ProtocolRW1,
			Start:          time.Now(),
			ScrapeInterval: DefaultScrapeInterval,
			ChurnInterval:  DefaultChurnInterval,
			Seed:           1,
		},
		URLs:            []string{url},
		Concurrency:     DefaultConcurrency,
		TenantHeader:    DefaultTenantHeader,
		Warmup:          DefaultWarmup,
		Duration:        DefaultDuration,
		RequestTimeout:  DefaultRequestTimeout,
		ReadBackTimeout: DefaultReadBackTimeout,
	}
}

// Validate reports the first invalid setting of the workload.
func (c *WorkloadConfig) Validate() error {
	switch {
	case c.Series < 1:
		return fmt.Errorf("series must be at least 1, not %d", c.Series)
	case c.BatchSize < 1:
		return fmt.Errorf("batch size must be at least 1, not %d", c.BatchSize)
	case c.Tenants < 1 || c.Tenants > c.Series:
		return fmt.Errorf("tenants must be between 1 and the number of series (%d), not %d", c.Series, c.Tenants)
	case c.Protocol != ProtocolRW1 && c.Protocol != ProtocolRW2:
		return fmt.Errorf("protocol must be %s or %s, not %q", ProtocolRW1, ProtocolRW2, c.Protocol)
	case c.ScrapeInterval < time.Millisecond:
		return fmt.Errorf("scrape interval must be at least 1ms, not %s", c.ScrapeInterval)
	case c.Churn < 0 || c.Churn > 1:
		return fmt.Errorf("churn must be between 0 and 1, not %g", c.Churn)
	case c.Churn > 0 && c.ChurnInterval < c.ScrapeInterval:
		return fmt.Errorf("churn interval (%s) must be at least the scrape interval (%s)", c.ChurnInterval, c.ScrapeInterval)
	case c.Start.IsZero():
		return errors.New("start time is not set")
	}
	return nil
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	if err := c.WorkloadConfig.Validate(); err != nil {
		return err
	}
	if len(c.URLs) == 0 {
		return errors.New("no remote-write URL")
	}
	for _, u := range c.URLs {
		if err := checkURL(u); err != nil {
			return fmt.Errorf("remote-write URL: %w", err)
		}
	}
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency must be at least 1, not %d", c.Concurrency)
	case c.Rate < 0:
		return fmt.Errorf("rate must not be negative, not %g", c.Rate)
	case c.Tenants > 1 && c.TenantHeader == "":
		return errors.New("several tenants need a tenant header")
	case c.Warmup < 0:
		return fmt.Errorf("warm-up must not be negative, not %s", c.Warmup)
	case c.Duration <= 0:
		return fmt.Errorf("duration must be positive, not %s", c.Duration)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("request timeout must be positive, not %s", c.RequestTimeout)
	}
	for _, pid := range c.PIDs {
		if pid <= 0 {
			return fmt.Errorf("invalid pid %d", pid)
		}
	}
	if c.ReadBackURL != "" {
		if err := checkURL(c.ReadBackURL); err != nil {
			return fmt.Errorf("read-back URL: %w", err)
		}
		if c.ReadBackTimeout <= 0 {
			return fmt.Errorf("read-back timeout must be positive, not %s", c.ReadBackTimeout)
		}
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http or https URL", s)
	}
	return nil
}
