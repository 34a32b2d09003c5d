//go:build !slicelabels && !dedupelabels

package receive

import "github.com/prometheus/prometheus/model/labels"

// addLabel adds a label whose strings alias the request body to b. The
// string-based Labels implementation copies every name and value into a buffer
// of its own when it builds Labels, so the strings need no copy here.
func addLabel(b *labels.ScratchBuilder, name, value string) {
	b.Add(name, value)
}
