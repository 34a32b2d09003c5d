package cache

import "github.com/prometheus/client_golang/prometheus"

// Gateway holds the three caches of a store gateway, one per kind of data, so
// that a burst of chunk reads cannot evict the postings every query needs.
// Each is safe for concurrent use.
type Gateway struct {
	// Postings caches postings lists, labelled cache="postings".
	Postings Cache
	// Series caches series entries of the index, labelled cache="series".
	Series Cache
	// Chunks caches chunk bytes, labelled cache="chunks".
	Chunks Cache
}

// NewGateway returns the caches of a store gateway with the given byte budgets,
// usually read from --store.cache.*-size flags. A budget of zero disables that
// cache. Items are limited only by the budget of a shard (see NewLRU).
func NewGateway(postings, series, chunks Bytes, reg prometheus.Registerer) *Gateway {
	return &Gateway{
		Postings: New("postings", int64(postings), 0, reg),
		Series:   New("series", int64(series), 0, reg),
		Chunks:   New("chunks", int64(chunks), 0, reg),
	}
}
