package bucketstore

import (
	"context"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/stratametrics/strata/storegw/indexheader"
)

// term is what one matcher selects, as a union of postings lists: the series
// having one of the label pairs, or (neg) every series but those.
type term struct {
	neg  bool
	keys []labels.Label
}

// terms turns matchers into postings terms, following Prometheus' semantics: a
// matcher that matches the empty value also selects series without the label, so
// it becomes "all series but those with a value it rejects". ok is false when a
// matcher can select nothing in this block.
func terms(h *indexheader.Header, ms []*labels.Matcher) (out []term, ok bool) {
	for _, m := range ms {
		if m.Type == labels.MatchEqual && m.Value != "" {
			out = append(out, term{keys: []labels.Label{{Name: m.Name, Value: m.Value}}})
			continue
		}
		values := h.LabelValues(m.Name)
		if m.Matches("") {
			t := term{neg: true}
			for _, v := range values {
				if !m.Matches(v) {
					t.keys = append(t.keys, labels.Label{Name: m.Name, Value: v})
				}
			}
			if len(t.keys) > 0 {
				out = append(out, t)
			}
			continue
		}
		t := term{}
		for _, v := range values {
			if m.Matches(v) {
				t.keys = append(t.keys, labels.Label{Name: m.Name, Value: v})
			}
		}
		if len(t.keys) == 0 {
			return nil, false
		}
		out = append(out, t)
	}
	if !slices.ContainsFunc(out, func(t term) bool { return !t.neg }) {
		// Only subtractions: start from every series, the "" = "" list.
		out = append(out, term{keys: []labels.Label{{}}})
	}
	return out, true
}

// postings returns the sorted series references of the block's series that match
// every matcher. Each postings list needed is read with a ranged read of the
// index; lists close to each other share one.
func (b *Block) postings(ctx context.Context, ms []*labels.Matcher) ([]storage.SeriesRef, error) {
	ts, ok := terms(b.hdr, ms)
	if !ok {
		return nil, nil
	}
	var (
		parts []part
		keys  []labels.Label
	)
	for _, t := range ts {
		for _, k := range t.keys {
			start, end, found := b.hdr.PostingsRange(k.Name, k.Value)
			if !found {
				continue
			}
			parts = append(parts, part{off: start, end: end, id: len(keys)})
			keys = append(keys, k)
		}
	}
	lists := make(map[labels.Label][]storage.SeriesRef, len(keys))
	err := fetchParts(ctx, b.bkt, b.indexName(), b.hdr.Size(), parts, func(p part, data []byte) error {
		refs, err := indexheader.DecodePostings(data)
		if err != nil {
			return errorf(ErrCorrupt, "postings of %s: %v", keys[p.id], err)
		}
		lists[keys[p.id]] = refs
		return nil
	})
	if err != nil {
		return nil, err
	}

	var (
		result []storage.SeriesRef
		first  = true
	)
	for _, t := range ts {
		if t.neg {
			continue
		}
		u := union(t.keys, lists)
		if first {
			result, first = u, false
		} else {
			result = intersect(result, u)
		}
		if len(result) == 0 {
			return nil, nil
		}
	}
	for _, t := range ts {
		if t.neg {
			result = subtract(result, union(t.keys, lists))
		}
	}
	return result, nil
}

// union returns the sorted, distinct references of the lists of keys.
func union(keys []labels.Label, lists map[labels.Label][]storage.SeriesRef) []storage.SeriesRef {
	if len(keys) == 1 {
		return lists[keys[0]]
	}
	var out []storage.SeriesRef
	for _, k := range keys {
		out = append(out, lists[k]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// intersect returns the references in both sorted lists.
func intersect(a, b []storage.SeriesRef) []storage.SeriesRef {
	var out []storage.SeriesRef
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// subtract returns the references of sorted a that are not in sorted b.
func subtract(a, b []storage.SeriesRef) []storage.SeriesRef {
	var out []storage.SeriesRef
	j := 0
	for _, r := range a {
		for j < len(b) && b[j] < r {
			j++
		}
		if j < len(b) && b[j] == r {
			continue
		}
		out = append(out, r)
	}
	return out
}
