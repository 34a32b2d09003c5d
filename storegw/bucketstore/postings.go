package bucketstore

import (
	"context"
	"encoding/binary"
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
// every matcher. Each postings list needed is looked up in the postings cache,
// or else read with a ranged read of the index, lists close to each other
// sharing one, and cached once its checksum is verified.
func (b *Block) postings(ctx context.Context, ms []*labels.Matcher) ([]storage.SeriesRef, error) {
	ts, ok := terms(b.hdr, ms)
	if !ok {
		return nil, nil
	}
	type want struct {
		label      labels.Label
		start, end int64
	}
	var wants []want
	for _, t := range ts {
		for _, k := range t.keys {
			start, end, found := b.hdr.PostingsRange(k.Name, k.Value)
			if found {
				wants = append(wants, want{label: k, start: start, end: end})
			}
		}
	}
	var cacheKeys []string
	if b.caches.Postings != nil {
		cacheKeys = make([]string, len(wants))
		for i, w := range wants {
			cacheKeys[i] = b.postingsKey(w.label)
		}
	}
	cached := cacheGet(b.caches.Postings, cacheKeys)
	lists := make(map[labels.Label][]storage.SeriesRef, len(wants))
	var parts []part
	for i, w := range wants {
		if data, ok := cached[keyAt(cacheKeys, i)]; ok {
			// A cached list was verified when it was stored.
			if refs, err := indexheader.DecodePostings(data); err == nil {
				lists[w.label] = refs
				continue
			}
		}
		parts = append(parts, part{off: w.start, end: w.end, id: i})
	}
	err := fetchParts(ctx, b.bkt, b.indexName(), b.hdr.Size(), parts, func(p part, data []byte) error {
		k := wants[p.id].label
		refs, err := indexheader.DecodePostings(data)
		if err != nil {
			return errorf(ErrCorrupt, "postings of %s: %v", k, err)
		}
		lists[k] = refs
		if cacheKeys != nil {
			// Only the list, not the padding after it; it decoded, so it fits.
			cacheSet(b.caches.Postings, cacheKeys[p.id], data[:8+int(binary.BigEndian.Uint32(data))])
		}
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
