// Package downsample turns a block into a block of coarser resolution.
//
// # Format
//
// A downsampled block is a standard Prometheus block, so promtool and Prometheus
// read it. Each series S of the source becomes up to five series: S plus the label
// block.AggregateLabel set to one of block.AggregateCount, AggregateSum,
// AggregateMin, AggregateMax and AggregateCounter. A sample at time t belongs to
// the window floor(t/resolution); every window with data yields one sample per
// aggregate, stamped with the timestamp of the last input sample in the window.
//
// For float samples:
//
//   - count is the number of samples, sum their sum, min and max the extremes.
//
//   - counter is the series read as a counter with its resets applied, stored so
//     that it starts at the block's first raw value, ends at its last raw value
//     and rises by exactly the counter's true increase in between. With C the
//     running total (C starts at the first value; a value below its predecessor
//     adds itself, any other value adds its increase), a window before the
//     block's last reset stores C(t), and a window from the last reset on stores
//     the raw value, vLast - (Cfinal - C(t)). At the last reset the stored series
//     drops, which PromQL reads as a reset adding the raw value, as it is. When
//     the last reset falls inside a window, one extra sample just before it holds
//     C there, so the increase in that window before the reset is kept. The
//     counter also holds the first input sample, unless it is already the last
//     sample of its window.
//
//     The first and last stored values being the raw ones, rate and increase
//     over the counter series are exact across block boundaries too, with no
//     special reader: PromQL's own reset handling over the stored series adds
//     up to the true increase. resets() counts at most one reset per block.
//
// Stale markers are dropped before aggregating.
//
// Native histograms (integer or float) keep only count (the number of samples),
// sum (the sum of the window's histograms, as a gauge float histogram) and
// counter (the last histogram of the window as a float histogram, plus the first
// sample of the block). Resets of histograms are not applied: PromQL detects a
// reset between two windows, but several resets inside one window count as one,
// and a reset whose counter climbs back above the previous window's value inside
// the window is not seen.
//
// A series that mixes floats and histograms is handled window by window: count
// counts every sample; the other aggregates take the type of the window's last
// sample and ignore samples of the other type in that window.
//
// # Chunks
//
// All aggregates of one series are cut at the same windows: a new chunk every
// windowsPerChunk windows with data, so chunk i of each aggregate covers the same
// windows and a reader can pair them; the counter's extra first sample belongs
// to its first chunk. Histogram chunks are also cut where Prometheus' chunk
// format demands it (a counter reset or an incompatible bucket layout), and
// chunks of a mixed series are cut where the sample type changes; for such
// series the chunk counts of the aggregates may differ.
//
// # Downsampling a downsampled block
//
// A block of a finer resolution (5m) is downsampled again (to 1h) by grouping the
// aggregate series of each S and combining them: counts and sums are added, min
// of mins, max of maxes, and the counter series is read as a raw counter with the
// same algorithm, which keeps its first sample.
//
// # Writing
//
// The output is streamed: pass one reads the source series in order, computes
// their aggregates, writes their chunks into one temporary chunk directory per
// aggregate and spills the labels and chunk references to temporary files. Pass
// two writes the index in sorted order, copying each series' chunks into the
// block's chunk files so that chunk references grow with the series, as the
// Prometheus index requires. Memory use does not grow with the number of series,
// except in the rare case where a label name sorts before block.AggregateLabel,
// when the output order is not aggregate-major and pass two sorts in memory.
package downsample
