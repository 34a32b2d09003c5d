package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Latencies are kept in a log-linear histogram: exact below 256ns, then 128
// buckets per power of two. A bucket's midpoint is within 1/256 of every value
// in it, so quantiles are that precise whatever the number of requests, in
// 58 KiB per sender.
const (
	subBits    = 7
	subBuckets = 1 << subBits
	// numBuckets covers every non-negative int64: values below 2*subBuckets
	// have a bucket each, then each shift from 1 to 55 has subBuckets.
	numBuckets = 2*subBuckets + 55*subBuckets
)

// histogram counts durations. The zero value is empty and ready to use. It is
// not safe for concurrent use.
type histogram struct {
	counts []uint64
	n      uint64
}

func bucketOf(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [subBuckets, 2*subBuckets)
	return 2*subBuckets + (shift-1)*subBuckets + int(v>>shift) - subBuckets
}

// bucketBounds returns the smallest and the largest value of bucket i.
func bucketBounds(i int) (lo, hi uint64) {
	if i < 2*subBuckets {
		return uint64(i), uint64(i)
	}
	j := i - 2*subBuckets
	shift := j/subBuckets + 1
	lo = uint64(j%subBuckets+subBuckets) << shift
	return lo, lo + 1<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	h.counts[bucketOf(uint64(max(d, 0)))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q <= 1) by the nearest-rank method: the
// smallest recorded value that at least q of all values are at most, to within
// the bucket precision. It is 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketBounds(i)
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return 0 // unreachable: the counts add up to n
}
