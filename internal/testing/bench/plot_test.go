package bench

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gonum.org/v1/plot/plotter"
)

func TestCDFPoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      []time.Duration
		want    plotter.XYs
		wantErr bool
	}{
		{name: "sorted, one step per sample",
			in:   []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond},
			want: plotter.XYs{{X: 1, Y: 0.25}, {X: 2, Y: 0.5}, {X: 3, Y: 0.75}, {X: 4, Y: 1}}},
		{name: "zero clamped to the axis",
			in:   []time.Duration{0, 500 * time.Microsecond},
			want: plotter.XYs{{X: minPlotMs, Y: 0.5}, {X: 0.5, Y: 1}}},
		{name: "empty", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := cdfPoints(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("cdfPoints error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("cdfPoints (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteCDF(t *testing.T) {
	t.Parallel()
	ms := func(fs ...float64) []time.Duration {
		var out []time.Duration
		for _, f := range fs {
			out = append(out, time.Duration(f*float64(time.Millisecond)))
		}
		return out
	}
	tests := []struct {
		name    string
		series  []Series
		wantErr bool
	}{
		{name: "two managers, two loads", series: []Series{
			{Label: "mptcpgod 1", Manager: "mptcpgod-userspace", InFlight: 1, Samples: ms(0.1, 0.15, 0.2, 1)},
			{Label: "mptcpgod 32", Manager: "mptcpgod-userspace", InFlight: 32, Samples: ms(0.05, 1.5, 4)},
			{Label: "kernel 1", Manager: "kernel-kernel", InFlight: 1, Samples: ms(0.1, 0.12)},
			{Label: "other", Manager: "other", InFlight: 1, Samples: ms(0, 30)},
		}},
		{name: "a series without samples", series: []Series{{Label: "empty"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), CDFFile)
			err := WriteCDF(path, tt.series)
			if (err != nil) != tt.wantErr {
				t.Fatalf("WriteCDF error = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cfg, err := png.DecodeConfig(f)
			if err != nil {
				t.Fatalf("%s is not a PNG: %v", path, err)
			}
			if diff := cmp.Diff([2]int{960, 600}, [2]int{cfg.Width, cfg.Height}); diff != "" {
				t.Errorf("PNG size (-want +got):\n%s", diff)
			}
		})
	}
}
