//go:build !slicelabels && !dedupelabels

package receive

import (
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// addLabel adds a label whose strings alias the request body to b. The
// string-based Labels implementation copies every name and value into a buffer
// of its own when it builds Labels, so the strings need no copy here.
func addLabel(b *labels.ScratchBuilder, name, value string) {
	b.Add(name, value)
}

// sameLabels reports whether ls holds exactly the labels sl, in the same order.
// Since the labels in the cache were validated when they were stored, equal
// labels are valid labels.
//
// It is the series cache's check of every known series, so it reads the
// string-based Labels' flat encoding directly: each name and value preceded by
// its length in one byte, or 255 and three bytes little-endian. TestSameLabels
// checks it against Labels.Range.
func sameLabels(ls labels.Labels, sl []wireLabel) bool {
	data := *(*string)(unsafe.Pointer(&ls))
	i := 0
	for _, l := range sl {
		var s string
		var ok bool
		if s, i, ok = nextLabelString(data, i); !ok || s != l.name {
			return false
		}
		if s, i, ok = nextLabelString(data, i); !ok || s != l.value {
			return false
		}
	}
	return i == len(data)
}

// nextLabelString returns the string that starts at data[i] in the encoding of
// string-based Labels, and the index after it.
func nextLabelString(data string, i int) (string, int, bool) {
	if i >= len(data) {
		return "", i, false
	}
	n := int(data[i])
	i++
	if n == 255 {
		if i+3 > len(data) {
			return "", i, false
		}
		n = int(data[i]) | int(data[i+1])<<8 | int(data[i+2])<<16
		i += 3
	}
	if n > len(data)-i {
		return "", i, false
	}
	return data[i : i+n], i + n, true
}
