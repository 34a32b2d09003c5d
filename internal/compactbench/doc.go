// Package compactbench measures the compactor on a generated bucket: it writes
// 2h blocks of node-like counters for a number of series, days and receive
// replicas into a filesystem bucket, then runs `strata compact` twice, first
// compaction with replica dedup only, then downsampling, and reports the
// throughput of each (input samples per CPU-second of the compactor process)
// and the bucket's size before, after dedup and compaction, and after
// downsampling. `make bench-compact` runs it; see TestCompactDataset.
package compactbench
