package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Segment is one part of a bar.
type Segment struct {
	Name  string
	Value float64
}

// Bar is one labelled bar of a chart, made of stacked segments.
type Bar struct {
	Label    string
	Segments []Segment
}

// palette colours the segments by name, in order of first appearance.
var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f", "#bab0ac"}

// chartSVG draws a horizontal stacked bar chart as a standalone SVG
// document: one row per bar, the total at its end, and a legend of the
// segment names when there is more than one. format prints a value.
func chartSVG(title string, bars []Bar, format func(float64) string) string {
	const (
		width   = 760
		labelW  = 230
		valueW  = 110
		rowH    = 30
		barH    = 18
		top     = 44
		legendH = 22
	)
	var names []string
	seen := map[string]bool{}
	maxTotal := 0.0
	for _, b := range bars {
		t := 0.0
		for _, s := range b.Segments {
			if !seen[s.Name] && s.Value > 0 {
				seen[s.Name] = true
				names = append(names, s.Name)
			}
			t += s.Value
		}
		maxTotal = math.Max(maxTotal, t)
	}
	legend := len(names) > 1
	legendRows := 0
	if legend {
		legendRows = (len(names) + 3) / 4
	}
	height := top + len(bars)*rowH + 10 + legendRows*legendH
	plotW := float64(width - labelW - valueW)
	colour := func(name string) string {
		for i, n := range names {
			if n == name {
				return palette[i%len(palette)]
			}
		}
		return palette[0]
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n", width, height, width, height)
	fmt.Fprintf(&sb, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&sb, `<text x="10" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	for i, b := range bars {
		y := top + i*rowH
		fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+barH-4, html.EscapeString(b.Label))
		x := float64(labelW)
		total := 0.0
		for _, s := range b.Segments {
			if s.Value <= 0 || maxTotal <= 0 {
				continue
			}
			w := s.Value / maxTotal * plotW
			fmt.Fprintf(&sb, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %s</title></rect>`+"\n",
				x, y, w, barH, colour(s.Name), html.EscapeString(s.Name), html.EscapeString(format(s.Value)))
			x += w
			total += s.Value
		}
		fmt.Fprintf(&sb, `<text x="%.1f" y="%d">%s</text>`+"\n", x+6, y+barH-4, html.EscapeString(format(total)))
	}
	if legend {
		y0 := top + len(bars)*rowH + 10
		for i, n := range names {
			x := 10 + (i%4)*185
			y := y0 + (i/4)*legendH
			fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`+"\n", x, y, colour(n))
			fmt.Fprintf(&sb, `<text x="%d" y="%d">%s</text>`+"\n", x+18, y+11, html.EscapeString(n))
		}
	}
	sb.WriteString("</svg>\n")
	return sb.String()
}
