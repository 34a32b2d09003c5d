package cache

import (
	"fmt"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// check verifies the invariants of every shard: the list and the map hold the
// same entries, the links are consistent, the byte accounting equals the sum of
// the stored entries' sizes, and it is within the shard's budget.
func (c *LRU) check() error {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		err := s.check()
		s.mu.Unlock()
		if err != nil {
			return fmt.Errorf("shard %d: %w", i, err)
		}
	}
	return nil
}

func (s *shard) check() error {
	var (
		n    int
		sum  int64
		prev *entry
	)
	for e := s.head; e != nil; e = e.next {
		if e.prev != prev {
			return fmt.Errorf("entry %q: prev link broken", e.key)
		}
		if s.items[e.key] != e {
			return fmt.Errorf("entry %q: in list but not in map", e.key)
		}
		n++
		sum += entrySize(e.key, e.value)
		prev = e
	}
	if s.tail != prev {
		return fmt.Errorf("tail is not the last entry of the list")
	}
	if n != len(s.items) {
		return fmt.Errorf("list has %d entries, map %d", n, len(s.items))
	}
	if sum != s.bytes {
		return fmt.Errorf("accounted %d bytes, entries sum to %d", s.bytes, sum)
	}
	if s.bytes > s.maxBytes {
		return fmt.Errorf("holds %d bytes, budget is %d", s.bytes, s.maxBytes)
	}
	return nil
}
