package compactor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Reasons of strata_compact_failures_total.
const (
	failureSync       = "sync"
	failureCompaction = "compaction"
	failureDownsample = "downsample"
	failureRetention  = "retention"
	failureCleanup    = "cleanup"
	failureMark       = "mark"
)

// Reasons of strata_compact_blocks_marked_for_deletion_total.
const (
	deletionCompacted = "compacted"
	deletionDuplicate = "duplicate"
	deletionRetention = "retention"
)

type metrics struct {
	passes             prometheus.Counter
	failures           *prometheus.CounterVec
	compactions        prometheus.Counter
	verticals          prometheus.Counter
	compactedBlocks    prometheus.Counter
	downsamples        *prometheus.CounterVec
	markedForDeletion  *prometheus.CounterVec
	markedNoCompact    *prometheus.CounterVec
	markedNoDownsample prometheus.Counter
	deleted            prometheus.Counter
	partialDeleted     prometheus.Counter
	halted             prometheus.Gauge
	todoGroups         prometheus.Gauge
	todoBlocks         prometheus.Gauge
	todoDownsample     prometheus.Gauge
	lastSuccess        prometheus.Gauge
	passDuration       prometheus.Histogram
	compactionDuration prometheus.Histogram
	downsampleDuration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	slow := []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400}
	m := &metrics{
		passes: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_compact_passes_total",
			Help: "Total number of compactor passes (sync, compaction, downsampling, retention, cleanup) started.",
		}),
		failures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_compact_failures_total",
			Help: "Total number of failed steps by reason; a failed group or block is retried in the next pass.",
		}, []string{"reason"}),
		compactions: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_compact_compactions_total",
			Help: "Total number of compactions whose result was uploaded (or was empty) and whose sources were marked for deletion.",
		}),
		verticals: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_compact_vertical_compactions_total",
			Help: "Total number of compactions of overlapping blocks, replica deduplication included.",
		}),
		compactedBlocks: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_compact_compacted_blocks_total",
			Help: "Total number of source blocks compacted.",
		}),
		downsamples: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_compact_downsamples_total",
			Help: "Total number of downsampled blocks uploaded, by target resolution in milliseconds.",
		}, []string{"resolution"}),
		markedForDeletion: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_compact_blocks_marked_for_deletion_total",
			Help: "Total number of blocks marked for deletion, by reason: compacted, duplicate or retention.",
		}, []string{"reason"}),
		markedNoCompact: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_compact_blocks_marked_no_compact_total",
			Help: "Total number of blocks the compactor excluded from compaction with a no-compact mark, by reason.",
		}, []string{"reason"}),
		markedNoDownsample: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_compact_blocks_marked_no_downsample_total",
			Help: "Total number of blocks the compactor excluded from downsampling because they have nothing to downsample.",
		}),
		deleted: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_compact_blocks_deleted_total",
			Help: "Total number of blocks deleted after their deletion mark aged past the delete delay.",
		}),
		partialDeleted: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_compact_partial_uploads_deleted_total",
			Help: "Total number of abandoned partial uploads deleted.",
		}),
		halted: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_compact_halted",
			Help: "Always 0: the compactor never halts. It is exported for dashboards and alerts written for Thanos' thanos_compact_halted.",
		}),
		todoGroups: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_compact_todo_compaction_groups",
			Help: "Number of groups with at least one compaction planned, at the last sync.",
		}),
		todoBlocks: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_compact_todo_compaction_blocks",
			Help: "Number of source blocks of the compactions planned at the last sync, simulating the whole group.",
		}),
		todoDownsample: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_compact_todo_downsample_blocks",
			Help: "Number of blocks waiting to be downsampled, at the last sync before downsampling.",
		}),
		lastSuccess: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_compact_last_successful_pass_timestamp_seconds",
			Help: "Unix time of the end of the last pass that finished without any failure.",
		}),
		passDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_compact_pass_duration_seconds",
			Help:    "Duration of compactor passes.",
			Buckets: slow,
		}),
		compactionDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_compact_compaction_duration_seconds",
			Help:    "Duration of one compaction: download, verification, compaction, upload and marks.",
			Buckets: slow,
		}),
		downsampleDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_compact_downsample_duration_seconds",
			Help:    "Duration of downsampling one block: download, downsampling and upload.",
			Buckets: slow,
		}),
	}
	for _, r := range []string{failureSync, failureCompaction, failureDownsample, failureRetention, failureCleanup, failureMark} {
		m.failures.WithLabelValues(r)
	}
	for _, r := range []string{deletionCompacted, deletionDuplicate, deletionRetention} {
		m.markedForDeletion.WithLabelValues(r)
	}
	return m
}
