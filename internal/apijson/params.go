package apijson

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
)

// The default bounds of optional time ranges are the ones Prometheus uses, so
// that clients that send Prometheus' own minimum and maximum timestamps back
// get the same behaviour.
const (
	minTimeSeconds = math.MinInt64/1000 + 62135596801
	maxTimeSeconds = math.MaxInt64/1000 - 62135596801
)

// MinTime is the earliest time the API reads, and the default start of
// optional time ranges.
func MinTime() time.Time { return time.Unix(minTimeSeconds, 0).UTC() }

// MaxTime is the latest time the API reads, and the default end of optional
// time ranges.
func MaxTime() time.Time { return time.Unix(maxTimeSeconds, 999999999).UTC() }

// ParseTime reads a time parameter as Prometheus does: a Unix timestamp in
// seconds, with a fraction rounded to milliseconds, or an RFC 3339 timestamp.
func ParseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(f)
		frac = math.Round(frac*1000) / 1000
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	// time.Parse handles only four-digit years; Prometheus' own range bounds have more.
	if minT := MinTime(); s == minT.Format(time.RFC3339Nano) {
		return minT, nil
	}
	if maxT := MaxTime(); s == maxT.Format(time.RFC3339Nano) {
		return maxT, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// ParseDuration reads a duration parameter: float seconds or a Prometheus
// duration such as "1m30s".
func ParseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ns := f * float64(time.Second)
		if ns > float64(math.MaxInt64) || ns < float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ns), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}
