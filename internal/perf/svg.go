package perf

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"time"
)

// Series is one line of a percentile chart: values in nanoseconds.
type Series struct {
	Name   string
	Points []Point
}

// palette colours the series in turn (colour-blind safe, Okabe–Ito).
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"}

// chart geometry, in SVG user units.
const (
	svgW, svgH                         = 860, 480
	padLeft, padRight, padTop, padBott = 72, 200, 44, 56
)

// percentileX maps a percentile to the chart's x value, log10(1/(1-p)):
// 0% → 0, 90% → 1, 99% → 2, 99.9% → 3 … 100% is clamped to xmax.
func percentileX(p, xmax float64) float64 {
	if p >= 100 {
		return xmax
	}
	return min(math.Log10(1/(1-p/100)), xmax)
}

// PercentileSVG draws the series as a latency-by-percentile chart in the
// manner of HdrHistogram's plots: the x axis runs from 0% through 90%,
// 99%, 99.9% … on a log scale of 1/(1-p), the y axis is latency on a log
// scale. Each series' last point (100%, its maximum) is drawn at the right
// edge. The SVG is self-contained.
func PercentileSVG(title string, series []Series) []byte {
	// The x range: up to the highest finite percentile of any series,
	// at least 99% and at most 99.999%.
	xmax := 2.0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, pt := range s.Points {
			if pt.Percentile < 100 {
				xmax = max(xmax, math.Ceil(percentileX(pt.Percentile, 5)-1e-9))
			}
			v := math.Log10(max(float64(pt.Value), 1) / 1e6) // ms
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = -1, 1
	}
	ymin, ymax := math.Floor(lo), math.Ceil(hi)
	if ymax <= ymin {
		ymax = ymin + 1
	}
	plotW := float64(svgW - padLeft - padRight)
	plotH := float64(svgH - padTop - padBott)
	px := func(x float64) float64 { return padLeft + x/xmax*plotW }
	py := func(y float64) float64 { return padTop + plotH - (y-ymin)/(ymax-ymin)*plotH }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", svgW, svgH)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", padLeft, esc(title))

	// Grid and axes.
	b.WriteString(`<g stroke="#dddddd" stroke-width="1">` + "\n")
	for k := 0.0; k <= xmax; k++ {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f"/>`+"\n", px(k), padTop, px(k), padTop+plotH)
	}
	for y := ymin; y <= ymax; y++ {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", padLeft, py(y), padLeft+plotW, py(y))
	}
	b.WriteString("</g>\n")
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#444444"/>`+"\n", padLeft, padTop, plotW, plotH)
	for k := 0.0; k <= xmax; k++ {
		anchor := "middle"
		if k == xmax {
			anchor = "end" // inside the picture
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="%s">%s</text>`+"\n", px(k), padTop+plotH+18, anchor, percentileLabel(int(k)))
	}
	for y := ymin; y <= ymax; y++ {
		d := time.Duration(math.Round(math.Pow(10, y) * 1e6))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padLeft-6, py(y)+4, esc(decadeLabel(d)))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">percentile (the right edge is the maximum)</text>`+"\n", padLeft+plotW/2, svgH-12)
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">latency (log scale)</text>`+"\n", padTop+plotH/2)

	// The series and the legend.
	for i, s := range series {
		colour := palette[i%len(palette)]
		if len(s.Points) > 0 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="`, colour)
			for j, pt := range s.Points {
				if j > 0 {
					b.WriteByte(' ')
				}
				y := math.Log10(max(float64(pt.Value), 1) / 1e6)
				fmt.Fprintf(&b, "%.1f,%.1f", px(percentileX(pt.Percentile, xmax)), py(y))
			}
			b.WriteString(`"/>` + "\n")
		}
		ly := float64(padTop + 10 + 20*i)
		lx := float64(svgW - padRight + 16)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="3"/>`+"\n", lx, ly, lx+22, ly, colour)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", lx+28, ly+4, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// percentileLabel names the grid line at x = k: 0%, 90%, 99%, 99.9% …
func percentileLabel(k int) string {
	switch k {
	case 0:
		return "0%"
	case 1:
		return "90%"
	}
	s := "99."
	for i := 2; i < k; i++ {
		s += "9"
	}
	if k == 2 {
		s = "99"
	}
	return s + "%"
}

// decadeLabel renders a power of ten of latency: 100µs, 1ms, 10ms, 1s.
func decadeLabel(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return fmt.Sprintf("%gµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%gms", float64(d)/1e6)
	}
	return fmt.Sprintf("%gs", float64(d)/1e9)
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
