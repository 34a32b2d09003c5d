package queryshard

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
)

// hashSep separates names and values in the shard hash. 0xff never occurs in
// valid UTF-8, so no two label sets hash the same byte string.
const hashSep = 0xff

// Selector picks shard Index of Total by a hash of series labels. With By it
// hashes the labels named in Labels; without By, every label except those
// named in Labels. A selector is valid when 0 <= Index < Total, 2 <= Total <=
// 65536, every name in Labels is non-empty valid UTF-8 without a comma, and By has at
// least one label; see Validate.
//
// The order of Labels does not matter: the hash always takes the labels of the
// series in name order (see Hash).
type Selector struct {
	Index, Total int
	By           bool
	Labels       []string
}

// Validate returns nil if s is a valid selector, and otherwise an error that
// says why it is not.
func (s Selector) Validate() error {
	switch {
	case s.Total < 2:
		return fmt.Errorf("shard count %d is below 2", s.Total)
	case s.Total > maxTotal:
		return fmt.Errorf("shard count %d is above %d", s.Total, maxTotal)
	case s.Index < 0 || s.Index >= s.Total:
		return fmt.Errorf("shard index %d is not in [0, %d)", s.Index, s.Total)
	case s.By && len(s.Labels) == 0:
		return errors.New("sharding by no labels puts every series in one shard")
	}
	for _, n := range s.Labels {
		if err := validLabelName(n); err != nil {
			return err
		}
	}
	return nil
}

func validLabelName(n string) error {
	switch {
	case n == "":
		return errors.New("empty label name")
	case !utf8.ValidString(n):
		return fmt.Errorf("label name %q is not valid UTF-8", n)
	case strings.ContainsRune(n, ','):
		return fmt.Errorf("label name %q contains a comma", n)
	}
	return nil
}

// Hash returns the shard hash of lset under s's By and Labels: xxhash64 over
// name, 0xff, value, 0xff of each hashed label in name order. A label that
// lset lacks is not hashed, which is the same as hashing it with an empty
// value: PromQL's grouping treats a missing label and an empty one alike, and
// labels.Labels never holds empty values. Hash does not allocate.
func (s Selector) Hash(lset labels.Labels) uint64 {
	var d xxhash.Digest
	d.Reset()
	sep := []byte{hashSep}
	lset.Range(func(l labels.Label) {
		if l.Value == "" || slices.Contains(s.Labels, l.Name) != s.By {
			return
		}
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write(sep)
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write(sep)
	})
	return d.Sum64()
}

// Matches reports whether a series with labels lset belongs to shard s.Index:
// Hash(lset) mod Total equals Index. A selector with Total below 2 matches
// every series.
func (s Selector) Matches(lset labels.Labels) bool {
	if s.Total < 2 {
		return true
	}
	return s.Hash(lset)%uint64(s.Total) == uint64(s.Index)
}
