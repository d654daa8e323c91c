package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	_ "gonum.org/v1/plot/vg/vgimg" // registers png
	_ "gonum.org/v1/plot/vg/vgsvg" // registers svg

	"github.com/gcbits/gcbits/cmd/gcbits/internal/bench"
)

// plotFormat returns the image format of path from its extension: svg or
// png.
func plotFormat(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".svg", ".png":
		return ext[1:], nil
	default:
		return "", fmt.Errorf("%q: want a .svg or .png file", path)
	}
}

// checkPlotPath reports what would stop writePlot from creating path, so
// that a run does not end in a file it cannot write: an extension other
// than .svg or .png, or what checkWritable finds.
func checkPlotPath(path string) error {
	if _, err := plotFormat(path); err != nil {
		return err
	}
	return checkWritable(path)
}

// checkWritable reports what would stop a run from creating the file at
// path when it ends: a folder that does not exist or cannot be written,
// or a folder in the file's place. It leaves an existing file as it is.
func checkWritable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%q is a folder", path)
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("folder of %q: %w", path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%q is not a folder", dir)
	}
	f, err := os.CreateTemp(dir, ".gcbits-*")
	if err != nil {
		return fmt.Errorf("cannot write in %q: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// writePlot writes an SVG (or PNG) file of Mop/s against workers: one
// panel per scenario, one line per allocator; unsafe rows are dashed.
func writePlot(rep *bench.Report, path string) error {
	var scenarios, allocators []string
	for _, r := range rep.Results {
		if !slices.Contains(scenarios, r.Scenario) {
			scenarios = append(scenarios, r.Scenario)
		}
		if !slices.Contains(allocators, r.Allocator) {
			allocators = append(allocators, r.Allocator)
		}
	}
	if len(scenarios) == 0 {
		return fmt.Errorf("no results to plot")
	}
	plots := make([]*plot.Plot, len(scenarios))
	for i, sc := range scenarios {
		p := plot.New()
		p.Title.Text = sc
		p.X.Label.Text = "workers"
		p.Y.Label.Text = "Mop/s"
		if sc == bench.Sweep {
			p.Y.Label.Text = "million spans swept/s"
		}
		p.Y.Min = 0
		p.Legend.Top = true
		p.Legend.Left = true
		for j, name := range allocators {
			var xys plotter.XYs
			unsafe := false
			for _, r := range rep.Results {
				if r.Scenario == sc && r.Allocator == name {
					xys = append(xys, plotter.XY{X: float64(r.Workers), Y: r.Mops})
					unsafe = unsafe || r.Unsafe
				}
			}
			if len(xys) == 0 {
				continue
			}
			label := name
			if unsafe {
				label += " (unsafe)"
			}
			if err := addLine(p, label, j, unsafe, xys); err != nil {
				return err
			}
		}
		p.X.Tick.Marker = intTicks(workerCounts(rep, sc))
		plots[i] = p
	}
	return writePanels(plots, path)
}

// writePanels writes plots side by side, one square panel each, to an SVG
// or PNG file at path.
func writePanels(plots []*plot.Plot, path string) error {
	format, err := plotFormat(path)
	if err != nil {
		return err
	}
	const panel = 4 * vg.Inch
	img, err := draw.NewFormattedCanvas(panel*vg.Length(len(plots)), panel, format)
	if err != nil {
		return err
	}
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 2,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := img.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// addLine adds a line with points to p, in the j'th color and shape,
// dashed if asked, under label in the legend.
func addLine(p *plot.Plot, label string, j int, dashed bool, xys plotter.XYs) error {
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	line.Color = plotutil.Color(j)
	line.Width = vg.Points(1.5)
	if dashed {
		line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	points.Color = plotutil.Color(j)
	points.Shape = plotutil.Shape(j)
	p.Add(line, points)
	p.Legend.Add(label, line, points)
	return nil
}

// intTicks marks the axis at each of xs.
func intTicks(xs []int) plot.ConstantTicks {
	ticks := make(plot.ConstantTicks, len(xs))
	for i, x := range xs {
		ticks[i] = plot.Tick{Value: float64(x), Label: fmt.Sprint(x)}
	}
	return ticks
}

// workerCounts returns the worker counts measured in scenario sc.
func workerCounts(rep *bench.Report, sc string) []int {
	var ws []int
	for _, r := range rep.Results {
		if r.Scenario == sc && !slices.Contains(ws, r.Workers) {
			ws = append(ws, r.Workers)
		}
	}
	slices.Sort(ws)
	return ws
}
