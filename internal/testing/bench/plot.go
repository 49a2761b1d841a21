package bench

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// CDFFile is the name of the latency CDF plot WriteReport writes.
const CDFFile = "latency-cdf.png"

// Series is one line of a CDF plot: a label and its latency samples.
type Series struct {
	Label   string
	Samples []time.Duration
	// Manager and InFlight choose the line's colour (by manager) and
	// dashes (solid for one at a time, dashed otherwise).
	Manager  string
	InFlight int
}

// minPlotMs is the left end of the plot's logarithmic axis: samples
// shorter than this are drawn at it.
const minPlotMs = 0.001

// managerColors colours each path manager's lines; a manager not listed is
// drawn grey.
var managerColors = map[string]color.Color{
	"mptcpgod-userspace": color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	"mptcpgod-kernel":    color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	"kernel-kernel":      color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"mptcpd-kernel":      color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

// WriteCDF plots the cumulative distribution of each series' samples,
// latency in milliseconds on a logarithmic axis, as a PNG at path. It
// returns an error if a series has no samples.
func WriteCDF(path string, series []Series) error {
	p := plot.New()
	p.Title.Text = "Established → extra subflow established"
	p.X.Label.Text = "latency (ms, log scale)"
	p.Y.Label.Text = "fraction of connections"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Y.Tick.Marker = fractionTicks()
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Millimeter
	p.Legend.YOffs = 6 * vg.Millimeter
	p.Add(plotter.NewGrid())
	for _, s := range series {
		pts, err := cdfPoints(s.Samples)
		if err != nil {
			return fmt.Errorf("bench: cdf %q: %w", s.Label, err)
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("bench: cdf %q: %w", s.Label, err)
		}
		l.Color = color.Gray{Y: 0x80}
		if c, ok := managerColors[s.Manager]; ok {
			l.Color = c
		}
		l.Width = vg.Points(1.5)
		if s.InFlight > 1 {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		l.StepStyle = plotter.PostStep
		p.Add(l)
		p.Legend.Add(s.Label, l)
	}
	p.X.Min = minPlotMs
	p.Legend.ThumbnailWidth = 1.5 * vg.Centimeter
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	p.Legend.Padding = vg.Points(2)
	p.Title.Padding = vg.Points(6)
	// 10 × 6.25 inches: 960 × 600 pixels at the PNG's 96 dpi.
	if err := p.Save(10*vg.Inch, 6.25*vg.Inch, path); err != nil {
		return fmt.Errorf("bench: cdf: %w", err)
	}
	return nil
}

// fractionTicks labels the fraction axis every 0.1.
func fractionTicks() plot.ConstantTicks {
	var ts plot.ConstantTicks
	for i := range 11 {
		v := float64(i) / 10
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 1, 64)})
	}
	return ts
}

// cdfPoints returns the empirical CDF of ds as (milliseconds, fraction)
// points, one per sample in ascending order, clamped to minPlotMs on the
// left.
func cdfPoints(ds []time.Duration) (plotter.XYs, error) {
	if len(ds) == 0 {
		return nil, fmt.Errorf("no samples")
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	pts := make(plotter.XYs, len(s))
	for i, d := range s {
		pts[i].X = math.Max(float64(d)/float64(time.Millisecond), minPlotMs)
		pts[i].Y = float64(i+1) / float64(len(s))
	}
	return pts, nil
}
