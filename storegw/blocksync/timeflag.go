package blocksync

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// TimeOrDuration is a point in time given either absolutely, as an RFC 3339 time
// ("2024-05-01T00:00:00Z"), or relative to the moment it is used, as a Prometheus
// duration with an optional leading minus ("-2w", "-36h", "0d", "1h30m"). It
// implements kingpin's flag value interface through Set and String. The zero value
// is unset; see IsSet.
type TimeOrDuration struct {
	raw      string
	abs      *time.Time
	relative time.Duration
}

// AbsoluteTime returns a TimeOrDuration fixed at t.
func AbsoluteTime(t time.Time) TimeOrDuration {
	return TimeOrDuration{raw: t.Format(time.RFC3339Nano), abs: &t}
}

// RelativeTime returns a TimeOrDuration d away from the moment it is resolved;
// negative durations are in the past.
func RelativeTime(d time.Duration) TimeOrDuration {
	s := model.Duration(d.Abs()).String()
	if d < 0 {
		s = "-" + s
	}
	return TimeOrDuration{raw: s, relative: d}
}

// Set parses s as an RFC 3339 time or a signed Prometheus duration.
func (t *TimeOrDuration) Set(s string) error {
	if at, err := time.Parse(time.RFC3339Nano, s); err == nil {
		*t = TimeOrDuration{raw: s, abs: &at}
		return nil
	}
	neg := strings.HasPrefix(s, "-")
	d, err := model.ParseDuration(strings.TrimPrefix(s, "-"))
	if err != nil {
		return fmt.Errorf("parse time %q: neither an RFC 3339 time nor a duration like -2w or -36h", s)
	}
	rel := time.Duration(d)
	if neg {
		rel = -rel
	}
	*t = TimeOrDuration{raw: s, relative: rel}
	return nil
}

// String returns the value as it was given, or "" if unset.
func (t *TimeOrDuration) String() string { return t.raw }

// IsSet reports whether a time was given.
func (t *TimeOrDuration) IsSet() bool { return t.raw != "" }

// Time resolves the value: the absolute time, or now plus the relative duration.
// An unset value resolves to now.
func (t *TimeOrDuration) Time(now time.Time) time.Time {
	if t.abs != nil {
		return *t.abs
	}
	return now.Add(t.relative)
}

// UnixMilli resolves the value like Time and returns it in Unix milliseconds, the
// unit of Prometheus timestamps.
func (t *TimeOrDuration) UnixMilli(now time.Time) int64 {
	return t.Time(now).UnixMilli()
}
