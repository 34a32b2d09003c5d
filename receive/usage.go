package receive

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// discard is why samples a tenant sent were not written, as its usage reports
// it: the limits by name, and everything else rejected for good together.
type discard uint8

const (
	discardRateLimited discard = iota // ingestion_rate or ingestion_burst, 429
	discardSeriesLimit                // max_active_series, 429
	discardLabelLimit                 // max_labels_per_series, max_label_name_length, max_label_value_length, 400
	discardRejected                   // invalid, out of order, too old, duplicate... 400
	numDiscards
)

var discardNames = [numDiscards]string{
	discardRateLimited: "rate_limited",
	discardSeriesLimit: "max_active_series",
	discardLabelLimit:  "label_limit",
	discardRejected:    "rejected",
}

// TenantUsage is what one tenant sent to this receiver, counted where its
// requests arrived (a peer's forwarded writes are not counted again) since the
// receiver started.
type TenantUsage struct {
	Tenant string `json:"tenant"`
	// Requests are the remote write requests that carried series.
	Requests uint64 `json:"requests"`
	// SamplesReceived are the float and histogram samples of those requests.
	SamplesReceived uint64 `json:"samples_received"`
	// BytesReceived are the request bodies' bytes as sent (compressed).
	BytesReceived uint64 `json:"bytes_received"`
	// SamplesDiscarded are the received samples not written, by reason:
	// rate_limited, max_active_series, label_limit and rejected.
	SamplesDiscarded map[string]uint64 `json:"samples_discarded"`
}

// tenantCounters are one tenant's usage counters.
type tenantCounters struct {
	requests, samples, bytes atomic.Uint64
	discarded                [numDiscards]atomic.Uint64
}

func (c *tenantCounters) received(samples, bytes int) {
	c.requests.Add(1)
	c.samples.Add(uint64(samples))
	c.bytes.Add(uint64(bytes))
}

func (c *tenantCounters) discard(why discard, n int) {
	if n > 0 {
		c.discarded[why].Add(uint64(n))
	}
}

func (c *tenantCounters) discardAll(d *[numDiscards]int) {
	for why, n := range d {
		c.discard(discard(why), n)
	}
}

// usage holds every tenant's counters and exports them as metrics with a
// tenant label. Tenants are never forgotten while the receiver runs: the
// counters are what an operator bills from.
type usage struct {
	mtx     sync.RWMutex
	tenants map[string]*tenantCounters

	requests, samples, bytes, discarded *prometheus.Desc
}

func newUsage(reg prometheus.Registerer) *usage {
	u := &usage{
		tenants: map[string]*tenantCounters{},
		requests: prometheus.NewDesc("strata_receive_tenant_requests_total",
			"Remote write requests with series received from the tenant (forwarded writes are counted where they arrived first).", []string{"tenant"}, nil),
		samples: prometheus.NewDesc("strata_receive_tenant_samples_received_total",
			"Float and histogram samples received from the tenant, written or not.", []string{"tenant"}, nil),
		bytes: prometheus.NewDesc("strata_receive_tenant_received_bytes_total",
			"Remote write request bytes received from the tenant, as sent (compressed).", []string{"tenant"}, nil),
		discarded: prometheus.NewDesc("strata_receive_tenant_samples_discarded_total",
			"Samples received from the tenant and not written, by reason: rate_limited, max_active_series, label_limit or rejected (invalid, out of order, too old...).", []string{"tenant", "reason"}, nil),
	}
	if reg != nil {
		reg.MustRegister(u)
	}
	return u
}

// of returns tenant's counters, creating them on first use.
func (u *usage) of(tenant string) *tenantCounters {
	u.mtx.RLock()
	c := u.tenants[tenant]
	u.mtx.RUnlock()
	if c != nil {
		return c
	}
	u.mtx.Lock()
	defer u.mtx.Unlock()
	if c = u.tenants[tenant]; c == nil {
		c = &tenantCounters{}
		u.tenants[tenant] = c
	}
	return c
}

// Describe implements prometheus.Collector.
func (u *usage) Describe(ch chan<- *prometheus.Desc) {
	ch <- u.requests
	ch <- u.samples
	ch <- u.bytes
	ch <- u.discarded
}

// Collect implements prometheus.Collector.
func (u *usage) Collect(ch chan<- prometheus.Metric) {
	for _, t := range u.snapshot() {
		ch <- prometheus.MustNewConstMetric(u.requests, prometheus.CounterValue, float64(t.Requests), t.Tenant)
		ch <- prometheus.MustNewConstMetric(u.samples, prometheus.CounterValue, float64(t.SamplesReceived), t.Tenant)
		ch <- prometheus.MustNewConstMetric(u.bytes, prometheus.CounterValue, float64(t.BytesReceived), t.Tenant)
		for _, why := range discardNames {
			ch <- prometheus.MustNewConstMetric(u.discarded, prometheus.CounterValue, float64(t.SamplesDiscarded[why]), t.Tenant, why)
		}
	}
}

// snapshot returns every tenant's usage, sorted by tenant.
func (u *usage) snapshot() []TenantUsage {
	u.mtx.RLock()
	out := make([]TenantUsage, 0, len(u.tenants))
	for name, c := range u.tenants {
		t := TenantUsage{
			Tenant:           name,
			Requests:         c.requests.Load(),
			SamplesReceived:  c.samples.Load(),
			BytesReceived:    c.bytes.Load(),
			SamplesDiscarded: make(map[string]uint64, numDiscards),
		}
		for why, name := range discardNames {
			t.SamplesDiscarded[name] = c.discarded[why].Load()
		}
		out = append(out, t)
	}
	u.mtx.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Tenant < out[j].Tenant })
	return out
}

// Usage returns what each tenant sent to this receiver since it started,
// sorted by tenant.
func (h *Handler) Usage() []TenantUsage { return h.usage.snapshot() }
