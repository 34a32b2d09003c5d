package cache

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

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

// NewMemcachedGateway returns the caches of a store gateway kept on the
// memcached servers of cfg. The three caches share the servers: the store's
// keys start with a letter for their kind, so they cannot collide. Each cache
// has its own connections and metrics, labelled as in NewGateway.
func NewMemcachedGateway(cfg MemcachedConfig, reg prometheus.Registerer, logger *slog.Logger) (*Gateway, error) {
	var caches [3]*Memcached
	for i, name := range []string{"postings", "series", "chunks"} {
		c, err := NewMemcached(name, cfg, reg, logger)
		if err != nil {
			return nil, fmt.Errorf("%s cache: %w", name, err)
		}
		caches[i] = c
	}
	return &Gateway{Postings: caches[0], Series: caches[1], Chunks: caches[2]}, nil
}

// Close releases what the caches hold open, such as idle memcached
// connections. In-memory caches hold nothing.
func (g *Gateway) Close() error {
	var errs []error
	for _, c := range []Cache{g.Postings, g.Series, g.Chunks} {
		if cl, ok := c.(io.Closer); ok {
			errs = append(errs, cl.Close())
		}
	}
	return errors.Join(errs...)
}
