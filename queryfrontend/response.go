package queryfrontend

import (
	"cmp"
	"encoding/json"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

// Response is the result matrix of a range query. In the canonical form that
// Merge returns, series are sorted by labels and unique, every series has at
// least one point, and points are sorted by time and unique.
type Response struct {
	Series []Series
	// Warnings are the downstream's warnings (a partial response, for
	// example). A response with warnings is never cached.
	Warnings []string
	// Infos are the downstream's informational annotations. They do not
	// keep a response out of the cache, and are not cached.
	Infos []string
}

// Series is one series of a result matrix.
type Series struct {
	Labels labels.Labels
	Points []Point
}

// Point is one evaluation result of a series. A float point has an empty H
// and its value in V. A native histogram point has a non-empty H holding the
// histogram in the query API's JSON encoding, kept opaque because the
// frontend only moves it around; its V is ignored and not cached.
type Point struct {
	T int64
	V float64
	H json.RawMessage
}

// Merge combines responses for pieces of one query into one canonical
// response: the points of series with equal labels are concatenated and
// sorted by time. When several responses hold a point at the same time, the
// one from the latest argument wins, so a caller passes older (cached) data
// first and fresher data after it. The warnings and infos of all responses are kept,
// each once. Merge does not modify its arguments, but the result shares
// labels and histogram bytes with them.
func Merge(responses ...Response) Response {
	var (
		all             []Series
		warnings, infos []string
	)
	for _, r := range responses {
		all = append(all, r.Series...)
		warnings = appendUnique(warnings, r.Warnings)
		infos = appendUnique(infos, r.Infos)
	}
	// A stable sort keeps equal-labelled series in argument order, so that
	// their points concatenate oldest argument first.
	slices.SortStableFunc(all, func(a, b Series) int { return labels.Compare(a.Labels, b.Labels) })

	var out []Series
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && labels.Equal(all[i].Labels, all[j].Labels) {
			j++
		}
		var pts []Point
		for _, s := range all[i:j] {
			pts = append(pts, s.Points...)
		}
		pts = canonicalPoints(pts)
		if len(pts) > 0 {
			out = append(out, Series{Labels: all[i].Labels, Points: pts})
		}
		i = j
	}
	return Response{Series: out, Warnings: warnings, Infos: infos}
}

// appendUnique appends the strings of add that dst does not hold yet.
func appendUnique(dst, add []string) []string {
	for _, s := range add {
		if !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return dst
}

// canonicalPoints sorts pts by time in place and keeps the last of the
// points at each time.
func canonicalPoints(pts []Point) []Point {
	slices.SortStableFunc(pts, func(a, b Point) int { return cmp.Compare(a.T, b.T) })
	out := pts[:0]
	for i, p := range pts {
		if i+1 < len(pts) && pts[i+1].T == p.T {
			continue
		}
		out = append(out, p)
	}
	return out
}

// trim returns the points of r in [start, end], dropping series left
// without points. r must be canonical; the result shares its point slices.
func trim(r Response, start, end int64) Response {
	var out []Series
	for _, s := range r.Series {
		lo, _ := slices.BinarySearchFunc(s.Points, start, func(p Point, t int64) int { return cmp.Compare(p.T, t) })
		hi, found := slices.BinarySearchFunc(s.Points, end, func(p Point, t int64) int { return cmp.Compare(p.T, t) })
		if found {
			hi++
		}
		if lo < hi {
			out = append(out, Series{Labels: s.Labels, Points: s.Points[lo:hi]})
		}
	}
	return Response{Series: out, Warnings: r.Warnings, Infos: r.Infos}
}
