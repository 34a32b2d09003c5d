package queryfrontend

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned for requests the frontend cannot handle.
var (
	// ErrInvalidStep is returned for a step that is not a positive whole
	// number of milliseconds.
	ErrInvalidStep = errors.New("step must be a positive whole number of milliseconds")
	// ErrInvalidInterval is returned for a split interval that is not a
	// positive whole number of milliseconds.
	ErrInvalidInterval = errors.New("split interval must be a positive whole number of milliseconds")
	// ErrInvalidRange is returned for a request whose end is before its start.
	ErrInvalidRange = errors.New("end is before start")
	// ErrNotAligned is returned for a request whose end is not one of its
	// evaluation times: Start plus a whole number of steps.
	ErrNotAligned = errors.New("request's end is not on its step grid")
	// ErrSpansSplits is returned when a request given to the results cache
	// covers more than one split interval.
	ErrSpansSplits = errors.New("request spans more than one split interval")
)

// Request is a range query: the PromQL expression Query evaluated at every
// t in [Start, End] with t = Start + n*Step. Start and End are Unix
// milliseconds and inclusive. Tenant is the tenant the query runs as, and
// Options the request's other parameters that change its result (dedup,
// partial response, resolution, lookback delta), encoded canonically by the
// caller; both are part of every cache key.
type Request struct {
	Query      string
	Start, End int64
	Step       time.Duration
	Tenant     string
	Options    string
}

// stepMillis returns r.Step in milliseconds, or ErrInvalidStep.
func (r Request) stepMillis() (int64, error) {
	return wholeMillis(r.Step, ErrInvalidStep)
}

func wholeMillis(d time.Duration, invalid error) (int64, error) {
	if d <= 0 || d%time.Millisecond != 0 {
		return 0, invalid
	}
	return d.Milliseconds(), nil
}

// validate checks the step and the range of r and returns its step in
// milliseconds.
func (r Request) validate() (int64, error) {
	step, err := r.stepMillis()
	if err != nil {
		return 0, err
	}
	if r.End < r.Start {
		return 0, ErrInvalidRange
	}
	return step, nil
}

// aligned reports whether r's end is an evaluation time: its start plus a
// whole number of steps.
func (r Request) aligned(step int64) bool {
	return (r.End-r.Start)%step == 0
}

// phase returns where r's evaluation times fall within a step: r.Start
// modulo the step, in [0, step). Requests with equal step and phase evaluate
// the same points where their ranges overlap.
func (r Request) phase(step int64) int64 {
	return r.Start - floorTo(r.Start, step)
}

// floorOnGrid returns the largest t' <= t with t' = phase + n*step.
func floorOnGrid(t, step, phase int64) int64 {
	return phase + floorTo(t-phase, step)
}

// Trunc returns r with End moved back to its last evaluation time, which
// does not change the result: the points are Start + n*Step up to End.
func Trunc(r Request) (Request, error) {
	step, err := r.validate()
	if err != nil {
		return Request{}, err
	}
	r.End = r.Start + floorTo(r.End-r.Start, step)
	return r, nil
}

// Align returns r with Start snapped down and End snapped up to multiples of
// Step, so that r is evaluated at exactly the points t with t%Step == 0 in the
// widened range. Aligned requests from different clients then share points,
// which is what makes their results cacheable.
func Align(r Request) (Request, error) {
	step, err := r.validate()
	if err != nil {
		return Request{}, err
	}
	r.Start = floorTo(r.Start, step)
	r.End = ceilTo(r.End, step)
	return r, nil
}

// Split cuts a request whose end is an evaluation time (see Trunc) at every
// multiple of interval since the Unix epoch (UTC midnights for 24h).
// Sub-request k holds the points of r in [boundary_k, boundary_k+1); its
// Start and End are its first and last point, so every point of r is in
// exactly one sub-request, and the points do not move. Intervals that hold no
// point of r (when Step exceeds interval) get no sub-request. The
// sub-requests are in time order.
func Split(r Request, interval time.Duration) ([]Request, error) {
	step, err := r.validate()
	if err != nil {
		return nil, err
	}
	iv, err := wholeMillis(interval, ErrInvalidInterval)
	if err != nil {
		return nil, err
	}
	if !r.aligned(step) {
		return nil, fmt.Errorf("split %d..%d step %s: %w", r.Start, r.End, r.Step, ErrNotAligned)
	}
	var subs []Request
	for p := r.Start; p <= r.End; {
		// The last point before the next boundary; p itself is a point, and
		// boundary > p, so last >= p.
		last := min(r.End, floorOnGrid(floorTo(p, iv)+iv-1, step, p))
		sub := r
		sub.Start, sub.End = p, last
		subs = append(subs, sub)
		p = last + step
	}
	return subs, nil
}

// splitStart returns the start of the split interval that holds t.
func splitStart(t, interval int64) int64 {
	return floorTo(t, interval)
}

// floorTo returns the largest multiple of m not above t; m > 0.
func floorTo(t, m int64) int64 {
	q := t / m
	if t%m != 0 && t < 0 {
		q--
	}
	return q * m
}

// ceilTo returns the smallest multiple of m not below t; m > 0.
func ceilTo(t, m int64) int64 {
	f := floorTo(t, m)
	if f == t {
		return t
	}
	return f + m
}
