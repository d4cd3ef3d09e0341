package bench

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"strings"
)

// WriteScaleSVG draws rows as an SVG image: throughput against the number of workers (a
// linear x axis), with the linear ideal (the first row's throughput per worker × workers) as a
// dashed reference and each point labelled with its speed-up and limit. It returns the
// writer's error.
func WriteScaleSVG(w io.Writer, title string, rows []ScaleRow) error {
	nMax, yMax := 1, 1.0
	for _, r := range rows {
		nMax = max(nMax, r.Workers)
		yMax = max(yMax, r.Result.Saga.Throughput)
	}
	var perWorker float64
	if len(rows) > 0 && rows[0].Workers > 0 {
		perWorker = rows[0].Result.Saga.Throughput / float64(rows[0].Workers)
		yMax = max(yMax, perWorker*float64(nMax))
	}
	yMax = niceCeil(yMax * 1.05)
	innerW, innerH := float64(plotW-marginL-marginR), float64(plotH-marginT-marginB)
	x := func(n float64) float64 { return marginL + n/float64(nMax)*innerW }
	y := func(v float64) float64 { return marginT + innerH - v/yMax*innerH }

	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		plotW, plotH, plotW, plotH)
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(title))
	for i := 0; i <= 5; i++ {
		v := yMax * float64(i) / 5
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, y(v), marginL+innerW, y(v))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, y(v)+4, formatNum(v))
	}
	for n := 0; n <= nMax; n++ {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", x(float64(n)), marginT+innerH+18, n)
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", marginL, marginT, innerW, innerH)
	fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">workers</text>`+"\n", marginL+innerW/2, plotH-12)
	fmt.Fprintf(b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">completed purchases/s</text>`+"\n", marginT+innerH/2)
	if perWorker > 0 {
		fmt.Fprintf(b, `<line class="ideal" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888" stroke-dasharray="4 4"/>`+"\n",
			x(0), y(0), x(float64(nMax)), y(perWorker*float64(nMax)))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#888">linear: %s/s per worker</text>`+"\n",
			x(float64(nMax))-4, y(perWorker*float64(nMax))-6, formatNum(perWorker))
	}
	var coords []string
	for _, r := range rows {
		coords = append(coords, fmt.Sprintf("%.1f,%.1f", x(float64(r.Workers)), y(r.Result.Saga.Throughput)))
	}
	if len(coords) > 0 {
		fmt.Fprintf(b, `<polyline class="done" fill="none" stroke="#264653" stroke-width="2" points="%s"/>`+"\n", strings.Join(coords, " "))
	}
	for i, r := range rows {
		cx, cy, _ := strings.Cut(coords[i], ",")
		fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="#264653"/>`+"\n", cx, cy)
		limit, _, _ := strings.Cut(r.Limit, " (")
		fmt.Fprintf(b, `<text x="%s" y="%s" dx="6" dy="14">%.0f/s ×%.2f %s</text>`+"\n", cx, cy, r.Result.Saga.Throughput, r.Speedup, html.EscapeString(limit))
	}
	fmt.Fprintln(b, `</svg>`)
	return b.Flush()
}
