package hashring

// hashmodRing places replica n of a series with hash h on endpoint (h+n) mod N of
// the endpoints sorted by name. It needs no state beyond the endpoints, but
// changing N moves almost every series.
type hashmodRing struct {
	endpoints []Endpoint // sorted by Name
	rf        int
}

func newHashmod(endpoints []Endpoint, rf int) *hashmodRing {
	return &hashmodRing{endpoints: endpoints, rf: rf}
}

// Owners implements Ring. It computes (h mod N + n) mod N rather than
// (h + n) mod N as Thanos does: the two agree except for the hashes within RF
// of 2^64, where h+n wraps around and Thanos can name one owner twice.
func (r *hashmodRing) Owners(h uint64, dst []int) []int {
	n := len(r.endpoints)
	first := int(h % uint64(n))
	for i := range r.rf {
		dst = append(dst, (first+i)%n)
	}
	return dst
}

// Endpoints implements Ring.
func (r *hashmodRing) Endpoints() []Endpoint { return r.endpoints }

// ReplicationFactor implements Ring.
func (r *hashmodRing) ReplicationFactor() int { return r.rf }

// primaryShares returns each endpoint's share of primary ownership: the hash
// space is split evenly (up to 2^64 mod N, which is negligible).
func (r *hashmodRing) primaryShares() []float64 {
	s := make([]float64, len(r.endpoints))
	for i := range s {
		s[i] = 1 / float64(len(s))
	}
	return s
}
