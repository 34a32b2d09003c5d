// Package sidebyside benchmarks remote-write ingestion of strata side by side
// with its peers: strata with one receiver, strata with three receivers at
// replication factor 3, Prometheus and VictoriaMetrics.
//
// The model: one system at a time runs alone on the machine, from empty data
// directories in a fresh temporary directory, listening on loopback ports
// that were free a moment before. The same load, from `strata tools bench
// write`, is sent to each: the same series, batch size, senders, warm-up and
// measured duration, as Remote Write 1.0 (the only protocol Prometheus 2.42
// receives). The load generator measures what the system acknowledged, the
// request latency, and the CPU time and resident memory of the server
// processes it is given by pid, summed over all of them; helpers the harness
// starts only to read data back (strata's querier) are not measured. At the
// end the generator reads every series back through the system's query API
// and compares the samples found with those acknowledged. Then the system is
// stopped and its data removed before the next one starts.
//
// Run builds a Report; Report.Markdown renders docs/benchmarks.md, keeping the
// hand-written notes below the notes marker of the previous file. The
// command internal/sidebyside/cmd/sidebyside, run by `make bench`, is the
// entry point; the package's test runs the whole harness at small sizes.
package sidebyside
