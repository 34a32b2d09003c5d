package hashring

import "time"

// MemberStatus is an endpoint of a ring as the status page shows it.
type MemberStatus struct {
	// Name identifies the endpoint in the ring.
	Name string `json:"name"`
	// Address is the endpoint's gRPC address.
	Address string `json:"address"`
	// Zone is the endpoint's availability zone, empty if none.
	Zone string `json:"zone"`
	// State is the endpoint's health as membership sees it.
	State State `json:"state"`
	// OwnedShare is the fraction of the hash space, from 0 to 1, for which
	// the endpoint is the primary owner. The shares of a ring add up to 1.
	OwnedShare float64 `json:"owned_share"`
	// LastHeartbeat is when the endpoint was last heard from, for membership
	// sources that know (gossip); zero otherwise.
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
}

// statusSamples is how many evenly spaced hashes Status tries on rings of
// other packages, whose token arcs it cannot see. The estimate is then
// accurate to about 1/statusSamples.
const statusSamples = 1 << 16

// Status returns the endpoints of r in the order of r.Endpoints, each with its
// share of primary ownership. The shares are exact for the rings New builds:
// the sum of an endpoint's token arcs for ketama, 1/N for hashmod. For other
// Ring implementations they are estimated from evenly spaced hashes.
func Status(r Ring) []MemberStatus {
	eps := r.Endpoints()
	var shares []float64
	if s, ok := r.(interface{ primaryShares() []float64 }); ok {
		shares = s.primaryShares()
	} else {
		shares = sampleShares(r)
	}
	out := make([]MemberStatus, len(eps))
	for i, ep := range eps {
		out[i] = MemberStatus{
			Name:       ep.Name,
			Address:    ep.Address,
			Zone:       ep.Zone,
			State:      ep.State,
			OwnedShare: shares[i],
		}
	}
	return out
}

func sampleShares(r Ring) []float64 {
	shares := make([]float64, len(r.Endpoints()))
	const step = (1 << 64) / statusSamples
	dst := make([]int, 0, r.ReplicationFactor())
	for i := range uint64(statusSamples) {
		dst = r.Owners(i*step+step/2, dst[:0])
		if len(dst) > 0 && dst[0] >= 0 && dst[0] < len(shares) {
			shares[dst[0]] += 1.0 / statusSamples
		}
	}
	return shares
}
