// Package perf holds the measuring parts of `sessiond-load` and of the
// performance scripts: a log-linear latency histogram in the manner of
// HdrHistogram, the results table and the SVG percentile chart.
package perf

import (
	"math"
	"math/bits"
)

// subBits sets the histogram's precision: values below 1<<subBits have a
// bucket each, and every power-of-two range above is cut into
// 1<<(subBits-1) equal buckets, so a bucket is never wider than 1/128 of its
// lower bound (relative error under 0.8%).
const (
	subBits   = 8
	subCount  = 1 << subBits  // 256 exact buckets at the bottom
	halfCount = subCount >> 1 // 128 buckets per power of two above
	// The largest int64 has 63 bits: its shift is 63-subBits and its
	// bucket (63-subBits)*halfCount + subCount-1.
	numBuckets = (63-subBits)*halfCount + subCount
)

// RelativeError bounds the difference between a recorded value and the
// value a percentile reports for it, relative to the value.
const RelativeError = 1.0 / halfCount

// Histogram counts non-negative int64 values (nanoseconds, for latencies)
// in log-linear buckets: exact below 256, then 128 buckets per power of
// two. It keeps the exact minimum, maximum and sum. Recording neither
// allocates nor locks: give each goroutine its own Histogram and Merge them
// at the end. The zero value is not ready; use NewHistogram.
type Histogram struct {
	counts []uint64
	total  uint64
	min    int64
	max    int64
	sum    float64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	h := &Histogram{counts: make([]uint64, numBuckets)}
	h.Reset()
	return h
}

// Reset empties h.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.total, h.min, h.max, h.sum = 0, math.MaxInt64, 0, 0
}

// bucketOf returns the index of the bucket that holds v (v >= 0).
func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits
	return shift*halfCount + int(v>>shift)
}

// bucketBounds returns the smallest and the largest value of bucket i.
func bucketBounds(i int) (lo, hi int64) {
	if i < subCount {
		return int64(i), int64(i)
	}
	shift := i/halfCount - 1
	m := int64(i - shift*halfCount)
	lo = m << shift
	return lo, lo + (int64(1) << shift) - 1
}

// Record adds one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is the number of values recorded.
func (h *Histogram) Count() int64 { return int64(h.total) }

// Min is the smallest value recorded, 0 when empty.
func (h *Histogram) Min() int64 {
	if h.total == 0 {
		return 0
	}
	return h.min
}

// Max is the largest value recorded, 0 when empty.
func (h *Histogram) Max() int64 { return h.max }

// Mean is the exact mean of the values, 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// ValueAt returns the value at percentile p (0–100): the least value v such
// that at least p% of the recorded values are at or below v, reported as
// the highest value of its bucket (never above Max nor below Min). So it
// never understates a latency, and overstates it by at most RelativeError.
// 0 gives Min, 100 gives Max; an empty histogram gives 0.
func (h *Histogram) ValueAt(p float64) int64 {
	if h.total == 0 {
		return 0
	}
	if p <= 0 {
		return h.min
	}
	if p >= 100 {
		return h.max
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		seen += c
		if seen >= rank {
			_, hi := bucketBounds(i)
			return min(max(hi, h.min), h.max)
		}
	}
	return h.max
}

// Point is one point of a percentile spectrum.
type Point struct {
	Percentile float64 `json:"percentile"`
	Value      int64   `json:"value"`
}

// SpectrumPercentiles are the percentiles of Spectrum: 0, then ten points
// per decade of 1/(1-p) up to 99.999, then 100. On the log axis of a
// percentile chart they fall at equal distances.
func SpectrumPercentiles() []float64 {
	ps := make([]float64, 0, 52)
	for k := 0; k <= 50; k++ {
		p := 100 * (1 - math.Pow(10, -float64(k)/10))
		ps = append(ps, math.Round(p*1e6)/1e6)
	}
	return append(ps, 100)
}

// Spectrum returns the values at SpectrumPercentiles, stopping after the
// first percentile whose rank reaches the last recorded value (further
// points would all be Max), and ending with 100 (Max). Empty: nil.
func (h *Histogram) Spectrum() []Point {
	if h.total == 0 {
		return nil
	}
	var pts []Point
	for _, p := range SpectrumPercentiles() {
		pts = append(pts, Point{Percentile: p, Value: h.ValueAt(p)})
		if p == 100 || math.Ceil(p/100*float64(h.total)) >= float64(h.total) {
			break
		}
	}
	if last := pts[len(pts)-1]; last.Percentile != 100 {
		pts = append(pts, Point{Percentile: 100, Value: h.max})
	}
	return pts
}
