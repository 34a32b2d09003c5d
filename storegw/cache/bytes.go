package cache

import (
	"fmt"
	"strconv"

	"github.com/alecthomas/units"
)

// Bytes is a size in bytes that implements kingpin's flag value interface, for
// flags like --store.cache.postings-size=256MB. Units are powers of 1024 whether
// or not they are spelled with an i: "256MB" and "256MiB" are both 256<<20, and
// "1GiB" is 1<<30. A bare integer is a number of bytes, and "0" disables a cache.
type Bytes int64

// Set parses s as a non-negative size such as "512KiB", "256MB", "1.5GB" or "0".
func (b *Bytes) Set(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return fmt.Errorf("parse size %q: negative", s)
		}
		*b = Bytes(n)
		return nil
	}
	n, err := units.ParseBase2Bytes(s)
	if err != nil {
		return fmt.Errorf("parse size %q: want a number of bytes with a unit such as 512KiB, 256MB or 1GiB: %w", s, err)
	}
	if n < 0 {
		return fmt.Errorf("parse size %q: negative", s)
	}
	*b = Bytes(n)
	return nil
}

// String formats b in the units Set accepts, for example "256MiB" or "0B".
func (b Bytes) String() string {
	return units.Base2Bytes(b).String()
}
