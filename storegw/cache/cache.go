package cache

import (
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Cache is a byte-slice cache keyed by string. Implementations are safe for
// concurrent use. Values are shared, not copied: the caller of Set must not
// modify the value afterwards, and callers of Get and GetMulti must not modify
// what they receive.
type Cache interface {
	// Get returns the value stored under key and whether it was found.
	Get(key string) ([]byte, bool)
	// Set stores value under key. It may decline to store it, for example when
	// the item is too large; a later Get then misses.
	Set(key string, value []byte)
	// GetMulti looks up keys at once. hits is never nil and maps each found key
	// to its value; misses lists the keys not found, in the order given, and is
	// owned by the caller.
	GetMulti(keys []string) (hits map[string][]byte, misses []string)
}

// New returns a cache called name holding up to maxBytes, or a disabled cache
// that always misses if maxBytes is zero or less. maxItemBytes is as for NewLRU.
func New(name string, maxBytes, maxItemBytes int64, reg prometheus.Registerer) Cache {
	if maxBytes <= 0 {
		return newDisabled(name, reg)
	}
	return NewLRU(name, maxBytes, maxItemBytes, reg)
}

// disabled is the cache of size zero: it stores nothing and counts requests.
type disabled struct {
	requests atomic.Int64
}

func newDisabled(name string, reg prometheus.Registerer) *disabled {
	d := &disabled{}
	newMetrics(reg, name, 0, func() stats { return stats{requests: d.requests.Load()} })
	return d
}

func (d *disabled) Get(string) ([]byte, bool) {
	d.requests.Add(1)
	return nil, false
}

func (d *disabled) Set(string, []byte) {}

func (d *disabled) GetMulti(keys []string) (map[string][]byte, []string) {
	d.requests.Add(int64(len(keys)))
	return map[string][]byte{}, slices.Clone(keys)
}
