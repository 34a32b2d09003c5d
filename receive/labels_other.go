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
