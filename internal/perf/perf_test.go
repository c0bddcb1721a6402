package perf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBucketsTileTheInt64Range(t *testing.T) {
	prevHi := int64(-1)
	for i := 0; i < numBuckets; i++ {
		lo, hi := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, want %d (right after the previous one)", i, lo, prevHi+1)
		}
		if hi < lo {
			t.Fatalf("bucket %d: hi %d < lo %d", i, hi, lo)
		}
		if got := bucketOf(lo); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", lo, got, i)
		}
		if got := bucketOf(hi); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", hi, got, i)
		}
		if lo >= subCount {
			if width := float64(hi-lo+1) / float64(lo); width > RelativeError {
				t.Fatalf("bucket %d [%d, %d] is %.4f of its lower bound wide, more than %.4f", i, lo, hi, width, RelativeError)
			}
		} else if lo != hi {
			t.Fatalf("bucket %d below %d holds more than one value", i, subCount)
		}
		prevHi = hi
	}
	if prevHi != math.MaxInt64 {
		t.Fatalf("the last bucket ends at %d, want MaxInt64", prevHi)
	}
}

func TestValueAtSmallValuesAreExact(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 100; v++ {
		h.Record(v)
	}
	for _, c := range []struct {
		p    float64
		want int64
	}{{0, 1}, {1, 1}, {50, 50}, {90, 90}, {99, 99}, {99.9, 100}, {100, 100}} {
		if got := h.ValueAt(c.p); got != c.want {
			t.Errorf("ValueAt(%v) = %d, want %d", c.p, got, c.want)
		}
	}
	if h.Count() != 100 || h.Min() != 1 || h.Max() != 100 || h.Mean() != 50.5 {
		t.Errorf("count %d min %d max %d mean %v", h.Count(), h.Min(), h.Max(), h.Mean())
	}
}

// exactPercentile is the nearest-rank percentile of sorted values.
func exactPercentile(sorted []int64, p float64) int64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestValueAtIsWithinTheRelativeErrorAboveTheTruth(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 1000, 200_000} {
		h := NewHistogram()
		vals := make([]int64, n)
		for i := range vals {
			// Log-normal around 1ms with a long tail, as latencies are.
			vals[i] = int64(math.Exp(rng.NormFloat64()*1.5) * 1e6)
			h.Record(vals[i])
		}
		slices.Sort(vals)
		for _, p := range []float64{0, 10, 50, 90, 99, 99.9, 99.99, 100} {
			want := exactPercentile(vals, p)
			if p == 0 {
				want = vals[0]
			}
			got := h.ValueAt(p)
			if got < want || float64(got) > float64(want)*(1+RelativeError) {
				t.Errorf("n=%d: ValueAt(%v) = %d, exact %d: outside [exact, exact×(1+%.4f)]", n, p, got, want, RelativeError)
			}
		}
		if h.Max() != vals[n-1] || h.Min() != vals[0] {
			t.Errorf("n=%d: min/max %d/%d, want %d/%d", n, h.Min(), h.Max(), vals[0], vals[n-1])
		}
	}
}

func TestMergeEqualsRecordingEverything(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	all, a, b := NewHistogram(), NewHistogram(), NewHistogram()
	for i := 0; i < 10_000; i++ {
		v := rng.Int64N(int64(time.Second))
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(b)
	a.Merge(NewHistogram()) // merging an empty one changes nothing
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() || math.Abs(a.Mean()-all.Mean()) > 1e-6 {
		t.Fatalf("merged count/min/max/mean %d/%d/%d/%v, want %d/%d/%d/%v",
			a.Count(), a.Min(), a.Max(), a.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
	for _, p := range SpectrumPercentiles() {
		if a.ValueAt(p) != all.ValueAt(p) {
			t.Fatalf("ValueAt(%v): merged %d, direct %d", p, a.ValueAt(p), all.ValueAt(p))
		}
	}
}

func TestEmptyAndNegative(t *testing.T) {
	h := NewHistogram()
	if h.ValueAt(50) != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 || h.Spectrum() != nil {
		t.Fatal("an empty histogram should report zeros and no spectrum")
	}
	h.Record(-5)
	if h.Count() != 1 || h.Max() != 0 || h.ValueAt(99) != 0 {
		t.Fatal("a negative value should count as 0")
	}
	h.Record(42)
	h.Reset()
	if h.Count() != 0 || h.ValueAt(50) != 0 {
		t.Fatal("Reset should empty the histogram")
	}
}

func TestSpectrum(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 100_000; v++ {
		h.Record(v * 1000)
	}
	pts := h.Spectrum()
	if pts[0].Percentile != 0 || pts[0].Value != h.Min() {
		t.Fatalf("first point %+v, want 0%% at the minimum", pts[0])
	}
	if last := pts[len(pts)-1]; last.Percentile != 100 || last.Value != h.Max() {
		t.Fatalf("last point %+v, want 100%% at the maximum", last)
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].Percentile <= pts[i-1].Percentile || pts[i].Value < pts[i-1].Value {
			t.Fatalf("points %d and %d go backwards: %+v %+v", i-1, i, pts[i-1], pts[i])
		}
	}
	// 100,000 values resolve up to 99.999%: the spectrum has every point.
	if len(pts) != len(SpectrumPercentiles()) {
		t.Fatalf("%d points, want %d", len(pts), len(SpectrumPercentiles()))
	}
	// Ten values: the spectrum stops once a rank reaches the last value.
	small := NewHistogram()
	for v := int64(1); v <= 10; v++ {
		small.Record(v)
	}
	sp := small.Spectrum()
	// Rank 10 (the last value) is first reached above 90%: the point after
	// 90% is the last before 100%.
	if len(sp) != 13 || sp[10].Percentile != 90 || sp[11].Value != 10 || sp[12].Percentile != 100 {
		t.Fatalf("spectrum of 10 values: %+v", sp)
	}
}

func TestFormatDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0ns"},
		{850, "850ns"},
		{1000, "1.00µs"},
		{12_345, "12.3µs"},
		{999_999, "1000µs"},
		{1_234_567, "1.23ms"},
		{9_996_000, "10.0ms"},
		{123_456_789, "123ms"},
		{2_500_000_000, "2.50s"},
		{-1_500_000, "-1.50ms"},
	} {
		if got := FormatDuration(c.d); got != c.want {
			t.Errorf("FormatDuration(%d) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestFormatRateAndCount(t *testing.T) {
	for _, c := range []struct {
		r    float64
		want string
	}{{0, "0.0"}, {12.345, "12.3"}, {99.94, "99.9"}, {100, "100"}, {1234.5, "1,234"}, {1234567.8, "1,234,568"}} {
		if got := FormatRate(c.r); got != c.want {
			t.Errorf("FormatRate(%v) = %q, want %q", c.r, got, c.want)
		}
	}
	for _, c := range []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {123456, "123,456"}, {-1234567, "-1,234,567"}} {
		if got := FormatCount(c.n); got != c.want {
			t.Errorf("FormatCount(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestFormatTable(t *testing.T) {
	ms := time.Millisecond
	got := FormatTable([]Row{
		{Scenario: "whoami", Op: "whoami", Requests: 123456, RPS: 12345.6, P50: 1200 * time.Microsecond,
			P90: 2 * ms, P99: 5 * ms, P999: 12 * ms, Max: 40 * ms},
		{Scenario: "mixed", Op: "login", Requests: 42, RPS: 4.2, Errors: 3, P50: 250 * ms, P90: 400 * ms,
			P99: 900 * ms, P999: 1100 * ms, Max: 1100 * ms},
		{Scenario: "refresh", Op: "refresh", Note: "skipped: no client-side sessions"},
	})
	want := "" +
		"scenario  op       requests   req/s     p50     p90     p99   p99.9     max  errors\n" +
		"-----------------------------------------------------------------------------------\n" +
		"whoami    whoami    123,456  12,346  1.20ms  2.00ms  5.00ms  12.0ms  40.0ms       0\n" +
		"mixed     login          42     4.2   250ms   400ms   900ms   1.10s   1.10s       3\n" +
		"refresh   refresh  skipped: no client-side sessions\n"
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	// Right-aligned figures end in the same column as their header.
	lines := strings.Split(got, "\n")
	for _, col := range []string{"requests", "req/s", "p99.9", "errors"} {
		end := len([]rune(lines[0][:strings.Index(lines[0], col)+len(col)]))
		for _, i := range []int{2, 3} {
			r := []rune(lines[i])
			if r[end-1] == ' ' || (end < len(r) && r[end] != ' ') {
				t.Errorf("column %q: line %d does not end at rune %d", col, i, end)
			}
		}
	}
}

func TestPercentileSVGIsWellFormed(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 5000; v++ {
		h.Record(v * 700)
	}
	login := NewHistogram()
	login.Record(int64(300 * time.Millisecond))
	svg := PercentileSVG("sessiond bench <test> & more", []Series{
		{Name: "whoami", Points: h.Spectrum()},
		{Name: "login & co", Points: login.Spectrum()},
		{Name: "empty"},
	})
	dec := xml.NewDecoder(bytes.NewReader(svg))
	polylines := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	if polylines != 2 {
		t.Errorf("%d polylines, want 2 (the empty series has none)", polylines)
	}
	for _, s := range []string{"login &amp; co", "&lt;test&gt;", "99.9%", "whoami"} {
		if !bytes.Contains(svg, []byte(s)) {
			t.Errorf("SVG lacks %q", s)
		}
	}
}

func TestPercentileLabels(t *testing.T) {
	for k, want := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"} {
		if got := percentileLabel(k); got != want {
			t.Errorf("percentileLabel(%d) = %q, want %q", k, got, want)
		}
	}
}
