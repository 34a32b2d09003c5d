// Package sidecar brings a Prometheus server that does not remote-write into
// strata: it runs next to the server and serves its data over the Store API,
// and uploads the blocks the server writes to the bucket. docs/sidecar.md is
// the operator's guide.
//
// # Reading
//
// A Sidecar serves the Store API through a storeapi.TSDBStore whose storage is
// Prometheus itself: series and chunks come from Prometheus' remote-read API,
// asked for streamed XOR chunks (the chunks Prometheus holds, passed through
// without re-encoding), and label names, label values and series without
// chunks come from Prometheus' HTTP API. The store attaches Prometheus'
// external labels to every series and reports them over the Info API, so a
// querier deduplicates an HA pair of servers by their replica label.
//
// Everything Prometheus retains is served, including what is already in the
// bucket; the querier merges the overlap.
//
// # Shipping
//
// With a bucket, the blocks Prometheus writes into its data directory are
// uploaded by a tsdbshard.Shipper with Prometheus' external labels and source
// "sidecar" in meta.json. The shipper records what it uploaded in a state file
// in the data directory, so a restart neither repeats nor skips a block, and
// uploads only level-1 blocks whose meta.json exists (Prometheus writes it
// last). Prometheus' local compaction must therefore be off: the sidecar
// checks --storage.tsdb.min-block-duration and --storage.tsdb.max-block-duration
// at start and refuses to run when they differ.
//
// # Lifecycle
//
// Run waits for Prometheus to be ready, then refreshes its readiness, external
// labels and lowest timestamp every refresh interval, and ships blocks every
// ship interval. The Sidecar is ready only while Prometheus is ready and has
// external labels.
package sidecar
