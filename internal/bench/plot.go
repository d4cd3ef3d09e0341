package bench

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Curve is the latency of fulfil against the offered load at one partner latency.
type Curve struct {
	// Title heads the plot.
	Title string
	// CriticalPath is drawn as a horizontal reference line (when positive).
	CriticalPath time.Duration
	// Capacity and BareCapacity (purchases per second, open loop) are drawn as vertical
	// reference lines (when positive).
	Capacity, BareCapacity float64
	// Points are the measured points; WriteSVG sorts them by offered load.
	Points []CurvePoint
}

// CurvePoint is one measured load.
type CurvePoint struct {
	Offered  float64 // purchases per second
	P50, P99 time.Duration
}

// Plot geometry.
const (
	plotW, plotH                       = 760, 460
	marginL, marginR, marginT, marginB = 78, 24, 48, 56
)

// WriteSVG draws c as an SVG image: offered load on a linear x axis, latency on a logarithmic
// y axis, p50 solid and p99 dashed, with the reference lines. It returns the writer's error.
func (c Curve) WriteSVG(w io.Writer) error {
	pts := slices.Clone(c.Points)
	slices.SortFunc(pts, func(a, b CurvePoint) int { return cmpFloat(a.Offered, b.Offered) })

	xMax := max(c.Capacity, c.BareCapacity)
	yMin, yMax := math.Inf(1), math.Inf(-1)
	observe := func(d time.Duration) {
		if ms := durMS(d); ms > 0 {
			yMin, yMax = math.Min(yMin, ms), math.Max(yMax, ms)
		}
	}
	for _, p := range pts {
		xMax = math.Max(xMax, p.Offered)
		observe(p.P50)
		observe(p.P99)
	}
	observe(c.CriticalPath)
	if math.IsInf(yMin, 1) {
		yMin, yMax = 1, 10
	}
	xMax = niceCeil(xMax * 1.05)
	lo, hi := math.Floor(math.Log10(yMin)), math.Ceil(math.Log10(yMax))
	if hi <= lo {
		hi = lo + 1
	}
	innerW, innerH := float64(plotW-marginL-marginR), float64(plotH-marginT-marginB)
	x := func(v float64) float64 { return marginL + v/xMax*innerW }
	y := func(ms float64) float64 {
		return marginT + innerH - (math.Log10(math.Max(ms, math.Pow(10, lo)))-lo)/(hi-lo)*innerH
	}

	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotW, plotH, plotW, plotH)
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(c.Title))

	// Grid and axes.
	for i := 0; i <= 5; i++ {
		v := xMax * float64(i) / 5
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x(v), marginT, x(v), marginT+innerH)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(v), marginT+innerH+18, formatNum(v))
	}
	for e := lo; e <= hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			ms := m * math.Pow(10, e)
			if e == hi && m > 1 {
				break
			}
			fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, y(ms), marginL+innerW, y(ms))
			fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, y(ms)+4, formatMS(ms))
		}
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", marginL, marginT, innerW, innerH)
	fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">offered load (purchases/s)</text>`+"\n", marginL+innerW/2, plotH-12)
	fmt.Fprintf(b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">latency, publish → completed (ms, log scale)</text>`+"\n", marginT+innerH/2)

	// Reference lines.
	if c.CriticalPath > 0 {
		cy := y(durMS(c.CriticalPath))
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#2a9d8f" stroke-dasharray="2 3"/>`+"\n", marginL, cy, marginL+innerW, cy)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#2a9d8f">critical path %s</text>`+"\n", marginL+innerW-4, cy-4, c.CriticalPath)
	}
	vline := func(v float64, label, color string, dy float64) {
		if v <= 0 {
			return
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="2 3"/>`+"\n", x(v), marginT, x(v), marginT+innerH, color)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="%s">%s %s/s</text>`+"\n", x(v)-4, marginT+dy, color, label, formatNum(v))
	}
	vline(c.Capacity, "fulfil capacity", "#e76f51", 14)
	vline(c.BareCapacity, "bare loop", "#888", 28)

	// Series.
	series := []struct {
		name, dash string
		get        func(CurvePoint) time.Duration
	}{
		{"p50", "", func(p CurvePoint) time.Duration { return p.P50 }},
		{"p99", ` stroke-dasharray="6 4"`, func(p CurvePoint) time.Duration { return p.P99 }},
	}
	for i, s := range series {
		var coords []string
		for _, p := range pts {
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", x(p.Offered), y(durMS(s.get(p)))))
		}
		if len(coords) > 0 {
			fmt.Fprintf(b, `<polyline class="%s" fill="none" stroke="#264653" stroke-width="2"%s points="%s"/>`+"\n", s.name, s.dash, strings.Join(coords, " "))
			for _, xy := range coords {
				cx, cy, _ := strings.Cut(xy, ",")
				fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="#264653"/>`+"\n", cx, cy)
			}
		}
		lx := float64(plotW - marginR - 140 + 70*i)
		fmt.Fprintf(b, `<line x1="%.1f" y1="36" x2="%.1f" y2="36" stroke="#264653" stroke-width="2"%s/>`+"\n", lx, lx+24, s.dash)
		fmt.Fprintf(b, `<text x="%.1f" y="40">%s</text>`+"\n", lx+30, s.name)
	}
	fmt.Fprintln(b, `</svg>`)
	return b.Flush()
}

func durMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// niceCeil rounds v up to a round multiple of a power of ten (1, 1.2, 1.5, 2, 2.5, 3, 4, 5,
// 6 or 8 times it).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func formatNum(v float64) string {
	if v >= 100 || v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func formatMS(ms float64) string {
	if ms >= 1000 {
		return formatNum(ms/1000) + "s"
	}
	if ms < 1 {
		return fmt.Sprintf("%gms", ms)
	}
	return formatNum(ms) + "ms"
}
