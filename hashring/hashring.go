package hashring

import (
	"errors"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
)

// Errors of ring construction and lookup. Classify them with errors.Is.
var (
	// ErrNotEnoughEndpoints means a ring has fewer endpoints (or zones, where
	// required) than its replication factor.
	ErrNotEnoughEndpoints = errors.New("not enough endpoints for the replication factor")
	// ErrNoRing means no ring serves the tenant.
	ErrNoRing = errors.New("no hashring for tenant")
)

// State is the health of a ring member as membership sees it.
type State string

// Member states. Unhealthy members keep their place in the ring, so that their
// series keep their owners and quorum decides whether a write succeeds; only a
// member that left gracefully is removed.
const (
	StateActive    State = "ACTIVE"
	StateUnhealthy State = "UNHEALTHY"
)

// Endpoint is a receiver that can own series.
type Endpoint struct {
	// Name identifies the node: its memberlist node name, or its address when it
	// comes from a static hashring file.
	Name string `json:"name"`
	// Address is the gRPC address writes are forwarded to.
	Address string `json:"address"`
	// Zone is the availability zone; empty when zones are not used.
	Zone string `json:"zone,omitempty"`
	// State is the member's health. Placement ignores it.
	State State `json:"state,omitempty"`
}

// Ring places series on endpoints. Implementations are immutable once built and
// safe for concurrent use.
type Ring interface {
	// Owners appends to dst the indexes into Endpoints of the ReplicationFactor
	// distinct owners of the series with hash h, primary first, and returns dst.
	Owners(h uint64, dst []int) []int
	// Endpoints returns the ring's endpoints. The caller must not modify the slice.
	Endpoints() []Endpoint
	// ReplicationFactor is how many owners every series has.
	ReplicationFactor() int
}

// Quorum is how many owners must hold a series before a write is acknowledged:
// a majority, floor(rf/2)+1.
func Quorum(rf int) int { return rf/2 + 1 }

// sep separates the tenant and label names and values in the hashed bytes; it
// cannot occur in valid UTF-8.
const sep = 0xff

// Hash returns the placement hash of a series: xxhash64 over the tenant and then
// the series' labels in name order (labels.Labels is always sorted by name), each
// string followed by the byte 0xff. It does not allocate for typical series.
func Hash(tenant string, lset labels.Labels) uint64 {
	var buf [1024]byte
	b := append(buf[:0], tenant...)
	b = append(b, sep)
	var d *xxhash.Digest
	lset.Range(func(l labels.Label) {
		if d == nil && len(b)+len(l.Name)+len(l.Value)+2 > len(buf) {
			d = xxhash.New()
		}
		if d != nil {
			_, _ = d.Write(b)
			b = b[:0]
		}
		b = append(b, l.Name...)
		b = append(b, sep)
		b = append(b, l.Value...)
		b = append(b, sep)
	})
	if d == nil {
		return xxhash.Sum64(b)
	}
	_, _ = d.Write(b)
	return d.Sum64()
}
