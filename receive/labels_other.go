//go:build slicelabels || dedupelabels

package receive

import (
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// addLabel adds a label whose strings alias the request body to b. These Labels
// implementations keep (or intern) the strings they are given, so each one is
// copied first; that costs allocations, but only in these builds.
func addLabel(b *labels.ScratchBuilder, name, value string) {
	b.Add(strings.Clone(name), strings.Clone(value))
}

// sameLabels reports whether ls holds exactly the labels sl, in the same order.
// Since the labels in the cache were validated when they were stored, equal
// labels are valid labels.
func sameLabels(ls labels.Labels, sl []wireLabel) bool {
	i, same := 0, true
	ls.Range(func(l labels.Label) {
		if !same {
			return
		}
		if i >= len(sl) || sl[i].name != l.Name || sl[i].value != l.Value {
			same = false
		}
		i++
	})
	return same && i == len(sl)
}
