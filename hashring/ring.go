package hashring

import (
	"cmp"
	"fmt"
	"slices"
)

// Algorithm names a placement algorithm.
type Algorithm string

// Placement algorithms. Ketama is the default: adding or removing a node moves
// only about 1/N of the series. Hashmod moves about (N-1)/N of them and is kept
// for compatibility with existing Thanos hashring files.
const (
	AlgorithmKetama  Algorithm = "ketama"
	AlgorithmHashmod Algorithm = "hashmod"
)

// New builds a ring over endpoints with replication factor rf. The endpoints may
// come in any order: New copies and sorts them by Name, so that the same set of
// endpoints always gives the same ring, and the indexes that Owners returns refer
// to that sorted copy (see Ring.Endpoints).
//
// New returns an error if rf < 1, if a name is empty or repeated, if the
// algorithm is unknown, if endpoints have zones under hashmod, or if there are
// fewer endpoints than rf (wrapping ErrNotEnoughEndpoints).
func New(alg Algorithm, endpoints []Endpoint, rf int) (Ring, error) {
	if _, err := ParseAlgorithm(string(alg)); err != nil {
		return nil, fmt.Errorf("build ring: unknown algorithm %q (want %q or %q)", alg, AlgorithmKetama, AlgorithmHashmod)
	}
	if rf < 1 {
		return nil, fmt.Errorf("build %s ring: replication factor %d is less than 1", alg, rf)
	}
	eps := slices.Clone(endpoints)
	slices.SortFunc(eps, func(a, b Endpoint) int { return cmp.Compare(a.Name, b.Name) })
	for i, ep := range eps {
		if ep.Name == "" {
			return nil, fmt.Errorf("build %s ring: endpoint with address %q has an empty name", alg, ep.Address)
		}
		if i > 0 && eps[i-1].Name == ep.Name {
			return nil, fmt.Errorf("build %s ring: duplicate endpoint name %q", alg, ep.Name)
		}
	}
	if len(eps) < rf {
		return nil, fmt.Errorf("build %s ring: %d endpoints for replication factor %d: %w", alg, len(eps), rf, ErrNotEnoughEndpoints)
	}
	if alg == AlgorithmHashmod {
		for _, ep := range eps {
			if ep.Zone != "" {
				return nil, fmt.Errorf("build hashmod ring: endpoint %q has zone %q, but zones need the ketama algorithm", ep.Name, ep.Zone)
			}
		}
		return newHashmod(eps, rf), nil
	}
	return newKetama(eps, rf), nil
}

// ParseAlgorithm returns the algorithm named s, or an error naming the valid
// choices. It is meant for flags and configuration files.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch a := Algorithm(s); a {
	case AlgorithmKetama, AlgorithmHashmod:
		return a, nil
	default:
		return "", fmt.Errorf("parse hashring algorithm: unknown algorithm %q (want %q or %q)", s, AlgorithmKetama, AlgorithmHashmod)
	}
}
