package perf

import (
	"strconv"
	"strings"
	"time"
)

// Row is one line of the results table: one operation of one scenario.
type Row struct {
	Scenario string
	Op       string
	Requests int64   // successful requests in the measured window
	Errors   int64   // failed requests (unexpected status or no answer)
	RPS      float64 // successful requests per second
	P50      time.Duration
	P90      time.Duration
	P99      time.Duration
	P999     time.Duration
	Max      time.Duration
	// Note replaces the figures when set (a skipped scenario).
	Note string
}

// FormatDuration renders a latency with three significant digits in the
// largest unit that keeps it at least 1: 850ns, 12.3µs, 1.23ms, 2.50s.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	v := float64(d)
	var unit string
	switch {
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		v, unit = v/1e3, "µs"
	case d < time.Second:
		v, unit = v/1e6, "ms"
	default:
		v, unit = v/1e9, "s"
	}
	return sig3(v) + unit
}

// sig3 formats v (>= 1) with three significant digits, or as an integer
// when it has more than three integer digits.
func sig3(v float64) string {
	// Round first, so that 9.996 is "10.0", not "10.00".
	switch {
	case v >= 99.95:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 9.995:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// FormatRate renders requests per second: one decimal below 100, whole
// numbers above, with thousands separated by commas.
func FormatRate(r float64) string {
	if r < 100 {
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return groupThousands(strconv.FormatFloat(r, 'f', 0, 64))
}

// FormatCount renders a count with thousands separated by commas.
func FormatCount(n int64) string {
	if n < 0 {
		return "-" + groupThousands(strconv.FormatInt(-n, 10))
	}
	return groupThousands(strconv.FormatInt(n, 10))
}

func groupThousands(digits string) string {
	if len(digits) <= 3 {
		return digits
	}
	var b strings.Builder
	lead := len(digits) % 3
	if lead > 0 {
		b.WriteString(digits[:lead])
	}
	for i := lead; i < len(digits); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(digits[i : i+3])
	}
	return b.String()
}

// tableHeader names the columns of FormatTable.
var tableHeader = []string{"scenario", "op", "requests", "req/s", "p50", "p90", "p99", "p99.9", "max", "errors"}

// FormatTable renders rows as an aligned text table: text columns left
// aligned, figures right aligned, two spaces between columns, a rule under
// the header. A row with a Note shows the note after its scenario and op.
func FormatTable(rows []Row) string {
	cells := make([][]string, 0, len(rows)+1)
	cells = append(cells, tableHeader)
	for _, r := range rows {
		if r.Note != "" {
			cells = append(cells, []string{r.Scenario, r.Op, r.Note})
			continue
		}
		cells = append(cells, []string{
			r.Scenario, r.Op, FormatCount(r.Requests), FormatRate(r.RPS),
			FormatDuration(r.P50), FormatDuration(r.P90), FormatDuration(r.P99),
			FormatDuration(r.P999), FormatDuration(r.Max), FormatCount(r.Errors),
		})
	}
	width := make([]int, len(tableHeader))
	for _, row := range cells {
		if len(row) != len(tableHeader) {
			// A note row: only its first two cells set widths.
			row = row[:2]
		}
		for i, c := range row {
			width[i] = max(width[i], runeLen(c))
		}
	}
	var b strings.Builder
	for n, row := range cells {
		line := make([]string, 0, len(row))
		for i, c := range row {
			switch {
			case len(row) != len(tableHeader) && i == len(row)-1:
				line = append(line, c) // the note runs on
			case i < 2:
				line = append(line, c+strings.Repeat(" ", width[i]-runeLen(c)))
			default:
				line = append(line, strings.Repeat(" ", width[i]-runeLen(c))+c)
			}
		}
		b.WriteString(strings.TrimRight(strings.Join(line, "  "), " "))
		b.WriteByte('\n')
		if n == 0 {
			total := 0
			for _, w := range width {
				total += w
			}
			b.WriteString(strings.Repeat("-", total+2*(len(width)-1)))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func runeLen(s string) int { return len([]rune(s)) }
