package queryfrontend

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/stratametrics/strata/storegw/cache"
)

// CacheOutcome says how the results cache served a request.
type CacheOutcome int

// The outcomes of ResultsCache.Fetch.
const (
	// CacheBypass: the request was not cacheable (inside the freshness
	// window, @ start() or @ end(), or a query that does not parse) and was
	// fetched as it is.
	CacheBypass CacheOutcome = iota
	// CacheMiss: nothing usable was cached; the request was fetched.
	CacheMiss
	// CachePartial: part of the request came from the cache and the rest was
	// fetched.
	CachePartial
	// CacheHit: the request was answered from the cache alone.
	CacheHit
)

// String returns the outcome's name as metrics and response info show it.
func (o CacheOutcome) String() string {
	switch o {
	case CacheMiss:
		return "miss"
	case CachePartial:
		return "partial"
	case CacheHit:
		return "hit"
	default:
		return "bypass"
	}
}

// FetchFunc runs a range query downstream, normally on a querier. It is
// called with requests whose end is an evaluation time and must return the points of the query at
// exactly the request's evaluation times.
type FetchFunc func(ctx context.Context, r Request) (Response, error)

// ResultsCache caches the results of the sub-requests Split makes, one
// extent per tenant, options, query, step and phase, and split. It is safe for
// concurrent use if its cache is; two concurrent fetches of one split may
// both miss and both store, the last store winning, which is harmless
// because either extent is correct.
type ResultsCache struct {
	cache     cache.Cache
	parser    parser.Parser
	interval  int64 // split interval, ms
	freshness int64 // ms
}

// NewResultsCache returns a results cache over c for sub-requests split at
// interval. Results newer than now-freshness are never stored, because
// samples for them may still be arriving (remote-write delay, out-of-order
// ingestion, replicas catching up). p parses queries to normalize them for
// the cache key; nil means a parser with default options.
func NewResultsCache(c cache.Cache, interval, freshness time.Duration, p parser.Parser) (*ResultsCache, error) {
	iv, err := wholeMillis(interval, ErrInvalidInterval)
	if err != nil {
		return nil, err
	}
	if freshness < 0 {
		return nil, fmt.Errorf("freshness window %s is negative", freshness)
	}
	if p == nil {
		p = parser.NewParser(parser.Options{})
	}
	return &ResultsCache{cache: c, parser: p, interval: iv, freshness: freshness.Milliseconds()}, nil
}

// Fetch returns the result of r, a request within one split interval whose
// end is an evaluation time (as Split makes), using the cache where it can and fetch for the
// rest:
//
//   - A request that ends before the freshness window and lies inside the
//     cached extent is answered from the cache alone.
//   - Otherwise only the parts of r outside the cached extent are fetched, at
//     most one range before it and one after it, and the extent is extended
//     by the fetched points that are older than now-freshness and stored
//     again. If r does not overlap or touch the cached extent, r's cacheable
//     part replaces it.
//   - A request entirely inside the freshness window, a query that does not
//     parse, and a query using @ start() or @ end() (whose results depend on
//     the request's range) bypass the cache.
//
// A cached value that does not decode is a miss. Errors from fetch are
// returned as they are, and nothing is stored; neither is anything when a
// fetched response has warnings, which may mean that it is partial.
func (c *ResultsCache) Fetch(ctx context.Context, r Request, now time.Time, fetch FetchFunc) (Response, CacheOutcome, error) {
	l, err := c.Lookup(r, now)
	if err != nil {
		return Response{}, CacheBypass, err
	}
	return c.FetchLookup(ctx, l, fetch)
}

// Lookup is what the cache holds for one sub-request, as Lookup found it.
type Lookup struct {
	r             Request
	step          int64
	lastCacheable int64
	key           string // empty: not cacheable
	old           Extent
	hit           bool // old overlaps or touches the cacheable part of r
}

// Hit reports whether some of the request can come from the cache.
func (l Lookup) Hit() bool { return l.hit }

// Lookup reads what the cache holds for r, a request within one split
// interval whose end is an evaluation time, at time now. A request that
// cannot be cached (see Fetch) is a Lookup without a hit that FetchLookup
// and FetchRun fetch without storing.
func (c *ResultsCache) Lookup(r Request, now time.Time) (Lookup, error) {
	ls, err := c.LookupAll([]Request{r}, now)
	if err != nil {
		return Lookup{}, err
	}
	return ls[0], nil
}

// LookupAll is Lookup for the sub-requests of one request, with one
// GetMulti for all of them: one round trip to memcached, not one per split.
func (c *ResultsCache) LookupAll(rs []Request, now time.Time) ([]Lookup, error) {
	ls := make([]Lookup, len(rs))
	splits := make([]int64, len(rs))
	var keys []string
	for k, r := range rs {
		step, err := r.validate()
		if err != nil {
			return nil, err
		}
		if !r.aligned(step) {
			return nil, fmt.Errorf("cache %d..%d step %s: %w", r.Start, r.End, r.Step, ErrNotAligned)
		}
		splits[k] = splitStart(r.Start, c.interval)
		if splitStart(r.End, c.interval) != splits[k] {
			return nil, fmt.Errorf("cache %d..%d: %w", r.Start, r.End, ErrSpansSplits)
		}
		// The last evaluation time that may be stored: strictly before
		// now-freshness.
		ls[k] = Lookup{r: r, step: step, lastCacheable: floorOnGrid(now.UnixMilli()-c.freshness-1, step, r.phase(step))}
		if key, ok := c.key(r, step, splits[k]); ok && r.Start <= ls[k].lastCacheable {
			ls[k].key = key
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return ls, nil
	}
	hits, _ := c.cache.GetMulti(keys)
	for k := range ls {
		l := &ls[k]
		b, ok := hits[l.key]
		if l.key == "" || !ok {
			continue
		}
		l.old, l.hit = c.extent(b, l.step, l.r.phase(l.step), splits[k])
		if l.hit && (l.old.End+l.step < l.r.Start || min(l.r.End, l.lastCacheable)+l.step < l.old.Start) {
			// Disjoint: extending would mean fetching the gap as well.
			l.hit = false
		}
	}
	return ls, nil
}

// FetchLookup answers the request of l as Fetch does.
func (c *ResultsCache) FetchLookup(ctx context.Context, l Lookup, fetch FetchFunc) (Response, CacheOutcome, error) {
	r, step := l.r, l.step
	if l.key == "" {
		resp, err := fetch(ctx, r)
		if err != nil {
			return Response{}, CacheBypass, err
		}
		return trim(Merge(resp), r.Start, r.End), CacheBypass, nil
	}
	want := Extent{Start: r.Start, End: min(r.End, l.lastCacheable)}
	var (
		ranges  [][2]int64
		merged  []Response
		stored  Extent
		outcome = CacheMiss
		old     = l.old
	)
	if l.hit {
		outcome = CacheHit
		merged = append(merged, old.Response)
		stored = Extent{Start: min(old.Start, want.Start), End: max(old.End, want.End)}
		if r.Start < old.Start {
			ranges = append(ranges, [2]int64{r.Start, old.Start - step})
		}
		if r.End > old.End {
			// The range after the extent includes the fresh part of r, if
			// any, so that it takes one downstream query, not two.
			ranges = append(ranges, [2]int64{max(old.End+step, r.Start), r.End})
		}
		if len(ranges) > 0 {
			outcome = CachePartial
		}
	} else {
		stored = want
		ranges = append(ranges, [2]int64{r.Start, r.End})
	}
	for _, rg := range ranges {
		sub := r
		sub.Start, sub.End = rg[0], rg[1]
		resp, err := fetch(ctx, sub)
		if err != nil {
			return Response{}, outcome, err
		}
		// Only the points of the requested range are trusted, so that a
		// downstream that returns extra points cannot widen the extent.
		merged = append(merged, trim(Merge(resp), sub.Start, sub.End))
	}
	all := Merge(merged...)
	if len(all.Warnings) == 0 && (!l.hit || stored.Start != old.Start || stored.End != old.End) {
		stored.Response = trim(all, stored.Start, stored.End)
		c.cache.Set(l.key, EncodeExtent(stored))
	}
	return trim(all, r.Start, r.End), outcome, nil
}

// FetchRun answers consecutive sub-requests of one request, none of which
// has a hit, with one downstream request over all of them, and stores the
// cacheable part of each under its own key. A cold cache then costs one
// query, not one per split, and the next request still finds every split
// cached. Each sub-request's outcome is CacheMiss, or CacheBypass if it
// cannot be cached.
func (c *ResultsCache) FetchRun(ctx context.Context, ls []Lookup, fetch FetchFunc) ([]Response, []CacheOutcome, error) {
	if len(ls) == 0 {
		return nil, nil, nil
	}
	whole := ls[0].r
	whole.End = ls[len(ls)-1].r.End
	for k, l := range ls {
		if l.hit {
			return nil, nil, fmt.Errorf("cache run: sub-request %d has a hit", k)
		}
		if k > 0 && l.r.Start != ls[k-1].r.End+l.step {
			return nil, nil, fmt.Errorf("cache run: sub-request %d does not follow the one before", k)
		}
	}
	resp, err := fetch(ctx, whole)
	if err != nil {
		return nil, nil, err
	}
	all := Merge(resp)
	out := make([]Response, len(ls))
	outcomes := make([]CacheOutcome, len(ls))
	for k, l := range ls {
		out[k] = trim(all, l.r.Start, l.r.End)
		if l.key == "" {
			outcomes[k] = CacheBypass
			continue
		}
		outcomes[k] = CacheMiss
		if len(all.Warnings) == 0 {
			e := Extent{Start: l.r.Start, End: min(l.r.End, l.lastCacheable)}
			e.Response = trim(all, e.Start, e.End)
			c.cache.Set(l.key, EncodeExtent(e))
		}
	}
	return out, outcomes, nil
}

// extent decodes a cached value, and returns it if it fits the split, step
// and phase its key stands for.
func (c *ResultsCache) extent(b []byte, step, phase, split int64) (Extent, bool) {
	e, err := DecodeExtent(b)
	if err != nil {
		return Extent{}, false
	}
	if e.Start < split || e.End >= split+c.interval || floorOnGrid(e.Start, step, phase) != e.Start || floorOnGrid(e.End, step, phase) != e.End {
		return Extent{}, false
	}
	return e, true
}

// key returns the cache key of r, or false if r must not be cached. The
// key hashes the tenant, the options, the query as the PromQL parser prints
// it (so that spacing and quoting do not split the cache), the step and the
// phase of the evaluation times within it, the split interval and the
// split's start. Every field is length-prefixed, so no two distinct
// tuples hash the same input.
func (c *ResultsCache) key(r Request, step, split int64) (string, bool) {
	expr, err := c.parser.ParseExpr(r.Query)
	if err != nil || usesStartOrEnd(expr) {
		return "", false
	}
	query := expr.String()
	h := sha256.New()
	var b []byte
	b = appendString(b, r.Tenant)
	b = appendString(b, r.Options)
	b = appendString(b, query)
	b = binary.AppendVarint(b, step)
	b = binary.AppendVarint(b, r.phase(step))
	b = binary.AppendVarint(b, c.interval)
	b = binary.AppendVarint(b, split)
	h.Write(b)
	return "qf:" + hex.EncodeToString(h.Sum(nil)), true
}

// usesStartOrEnd reports whether expr has an @ start() or @ end() modifier.
func usesStartOrEnd(expr parser.Expr) bool {
	found := false
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			found = found || n.StartOrEnd != 0
		case *parser.MatrixSelector:
			if vs, ok := n.VectorSelector.(*parser.VectorSelector); ok {
				found = found || vs.StartOrEnd != 0
			}
		case *parser.SubqueryExpr:
			found = found || n.StartOrEnd != 0
		}
		return nil
	})
	return found
}
