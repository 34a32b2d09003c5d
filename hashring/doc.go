// Package hashring decides which receivers own a series. It does placement
// only: it knows nothing about writes, TSDBs or the network, and imports no
// other strata package.
//
// # Series hash
//
// A series is placed by Hash: xxhash64 (seed 0) over the tenant and the series'
// labels in name order, each string followed by the byte 0xff. The tenant is
// part of the key, so one series of two tenants usually lands on different
// receivers. The layout is that of Thanos receive.
//
// # Rings
//
// A Ring maps a series hash to ReplicationFactor distinct owners, given as
// indexes into its Endpoints, primary first. New builds one from a set of
// endpoints; the order they come in does not matter, since New sorts them by
// Name, so every receiver that sees the same members computes the same owners.
// Rings are immutable: membership changes build a new ring and swap it in.
//
// Ketama, the default, is a consistent-hash ring. Each endpoint puts 2000
// tokens on a circle of 2^64 positions (token i is the xxhash64 of
// "<name>:<i>"), and a series belongs to the first token at or after its hash,
// wrapping around. With that many tokens the busiest node's share of primary
// ownership is typically 2-5% above the mean (at worst 7.4% over 800 random
// sets of 3 to 24 node names), and adding or removing one node of N moves
// about 1/N of the series: only the arcs that the new node takes, or that the
// old one gave up. For replicas, each token's owners are found at build time
// by walking clockwise and taking each endpoint not taken yet, subject to the
// zone rule; a lookup is then a binary search and a copy of RF indexes,
// without allocation.
//
// Zones: the walk never gives a zone another replica while some other zone
// that still has a free endpoint holds fewer. So with at least RF zones every
// series has its replicas in RF distinct zones, and with fewer zones the
// replicas spread as evenly as the zones allow (RF=3 over two zones gives 2+1).
// An empty zone name is a zone of its own; a ring without zones is one zone
// and the rule changes nothing.
//
// Hashmod places replica n of a series with hash h on endpoint (h+n) mod N.
// It balances perfectly but moves about (N-1)/N of the series when N changes,
// which churns every receiver's head, and it has no notion of zones: New
// rejects zones with hashmod. It exists for hashring files written for Thanos.
//
// Endpoint.State plays no part in placement. An unhealthy receiver keeps its
// series, and quorum (Quorum) decides whether a write without it succeeds;
// moving its series elsewhere would only spread the churn.
//
// # Membership and tenants
//
// Membership comes from memberlist gossip (see the gossip files) or from a
// static hashring file in the JSON format of Thanos receive (ParseConfig),
// which FileRinger reloads when it changes. A file holds several rings, each
// for a set of tenants; Multi picks a tenant's ring as Thanos does: the first
// ring in file order that lists the tenant, matches it with a glob pattern,
// or lists no tenants at all. Consumers depend on the Ringer interface and do
// not care which source is behind it.
//
// # Status
//
// Status reports each endpoint of a ring with its exact share of primary
// ownership, computed from the token arcs, for the GET /api/v1/ring page.
package hashring
