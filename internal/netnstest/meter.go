package netnstest

import (
	"io"
	"sync/atomic"
	"time"
)

// Meter counts the bytes read from a stream, such as a download's output,
// so that its rate can be read over windows of time while it runs.
type Meter struct {
	n    atomic.Int64
	done chan struct{}
	err  error
}

// NewMeter reads r to its end in a goroutine of its own, counting.
func NewMeter(r io.Reader) *Meter {
	m := &Meter{done: make(chan struct{})}
	go func() {
		defer close(m.done)
		buf := make([]byte, 256<<10)
		for {
			n, err := r.Read(buf)
			m.n.Add(int64(n))
			if err == io.EOF {
				return
			}
			if err != nil {
				m.err = err
				return
			}
		}
	}()
	return m
}

// Bytes returns how many bytes have been read so far.
func (m *Meter) Bytes() int64 { return m.n.Load() }

// Done is closed when the stream has ended.
func (m *Meter) Done() <-chan struct{} { return m.done }

// Err returns the error that ended the stream, nil at its end or while
// it runs. Call it after Done is closed.
func (m *Meter) Err() error { return m.err }

// Rate waits for window and returns the rate in Mbit/s of what was read
// during it; it returns early, with the rate so far, if the stream ends.
func (m *Meter) Rate(window time.Duration) float64 {
	start, n0 := time.Now(), m.Bytes()
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case <-t.C:
	case <-m.done:
	}
	return float64(m.Bytes()-n0) * 8 / time.Since(start).Seconds() / 1e6
}
