package limits

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"golang.org/x/time/rate"
)

// Error is a request or series over one of its tenant's limits.
type Error struct {
	// Limit is the field of the overrides file that was exceeded.
	Limit string
	// Status is the HTTP status the request gets: 429 for the rate and
	// active series limits, which a retry later may pass; 400 for the label
	// limits, which no retry passes.
	Status int
	// RetryAfter is how long to wait before a retry may pass; zero when no
	// wait will do.
	RetryAfter time.Duration
	msg        string
}

func (e *Error) Error() string { return e.msg }

// RetryAfterSeconds is the value of the Retry-After header, at least 1.
func (e *Error) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// CheckSeries checks a series' labels against l and names the first limit it
// exceeds, with the label and the series.
func CheckSeries(lset labels.Labels, l Limits) error {
	return CheckLabels(lset.Len(), func(yield func(name, value string) bool) {
		lset.Range(func(lb labels.Label) {
			// Range cannot stop early; CheckLabels stops looking at the first error.
			yield(lb.Name, lb.Value)
		})
	}, lset.String, l)
}

// CheckLabels is CheckSeries over any label source: n labels that each yields
// in turn, and series, which formats the series for the error message. It
// reads nothing when l sets no label limit.
func CheckLabels(n int, each func(yield func(name, value string) bool), series func() string, l Limits) error {
	if l.MaxLabelsPerSeries > 0 && n > l.MaxLabelsPerSeries {
		return &Error{Limit: "max_labels_per_series", Status: http.StatusBadRequest,
			msg: fmt.Sprintf("series %s has %d labels, more than max_labels_per_series=%d", truncate(series()), n, l.MaxLabelsPerSeries)}
	}
	if l.MaxLabelNameLength <= 0 && l.MaxLabelValueLength <= 0 {
		return nil
	}
	var err error
	each(func(name, value string) bool {
		switch {
		case err != nil:
		case l.MaxLabelNameLength > 0 && len(name) > l.MaxLabelNameLength:
			err = &Error{Limit: "max_label_name_length", Status: http.StatusBadRequest,
				msg: fmt.Sprintf("label name %q of series %s is %d bytes, more than max_label_name_length=%d", truncate(name), truncate(series()), len(name), l.MaxLabelNameLength)}
		case l.MaxLabelValueLength > 0 && len(value) > l.MaxLabelValueLength:
			err = &Error{Limit: "max_label_value_length", Status: http.StatusBadRequest,
				msg: fmt.Sprintf("value of label %q of series %s is %d bytes, more than max_label_value_length=%d", truncate(name), truncate(series()), len(value), l.MaxLabelValueLength)}
		}
		return err == nil
	})
	return err
}

// CheckActiveSeries checks whether a tenant that holds active series may add
// created new ones.
func CheckActiveSeries(active, created int, l Limits) error {
	if l.MaxActiveSeries > 0 && created > 0 && active+created > l.MaxActiveSeries {
		return &Error{Limit: "max_active_series", Status: http.StatusTooManyRequests, RetryAfter: time.Minute,
			msg: fmt.Sprintf("tenant has %d active series; %d more would exceed max_active_series=%d", active, created, l.MaxActiveSeries)}
	}
	return nil
}

const maxQuoted = 256

func truncate(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "..."
}

// RateLimiter holds a token bucket per tenant, sized by the tenant's
// IngestionRate and burst as they are at each call. It is safe for
// concurrent use.
type RateLimiter struct {
	mtx      sync.Mutex
	limiters map[string]*rate.Limiter
	now      func() time.Time
}

// NewRateLimiter returns a limiter with no tenant seen yet.
func NewRateLimiter() *RateLimiter {
	return &RateLimiter{limiters: map[string]*rate.Limiter{}, now: time.Now}
}

// Allow takes n samples from tenant's bucket, or returns an *Error with the
// time after which the same request would pass. A request larger than the
// burst can never pass: its error says so.
func (r *RateLimiter) Allow(tenant string, n int, l Limits) error {
	if l.IngestionRate <= 0 || n <= 0 {
		return nil
	}
	lim := r.limiter(tenant, l)
	now := r.now()
	res := lim.ReserveN(now, n)
	if !res.OK() {
		return &Error{Limit: "ingestion_burst", Status: http.StatusTooManyRequests,
			RetryAfter: time.Duration(float64(n) / l.IngestionRate * float64(time.Second)),
			msg:        fmt.Sprintf("request of %d samples is larger than the tenant's burst of %d (ingestion_rate=%g): split it into smaller requests", n, l.Burst(), l.IngestionRate)}
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return &Error{Limit: "ingestion_rate", Status: http.StatusTooManyRequests, RetryAfter: d,
			msg: fmt.Sprintf("tenant is over ingestion_rate=%g samples/s (burst %d): retry after %s", l.IngestionRate, l.Burst(), d.Round(time.Millisecond))}
	}
	return nil
}

func (r *RateLimiter) limiter(tenant string, l Limits) *rate.Limiter {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	lim, ok := r.limiters[tenant]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(l.IngestionRate), l.Burst())
		r.limiters[tenant] = lim
		return lim
	}
	// Limits reloaded at runtime apply from the next request on, with a full
	// bucket: a raised limit is usable at once.
	if lim.Limit() != rate.Limit(l.IngestionRate) || lim.Burst() != l.Burst() {
		lim = rate.NewLimiter(rate.Limit(l.IngestionRate), l.Burst())
		r.limiters[tenant] = lim
	}
	return lim
}
