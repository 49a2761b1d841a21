package syncbuf_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
)

// TestConcurrent: lines written by several goroutines while another
// reads all arrive whole (the race detector checks the rest).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	var b syncbuf.Buffer
	const writers, lines = 4, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(&b, "writer %d line %d\n", w, i)
			}
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for strings.Count(b.String(), "\n") < writers*lines {
		}
	}()
	wg.Wait()
	<-done
	got := b.String()
	for w := range writers {
		for i := range lines {
			if !strings.Contains(got, fmt.Sprintf("writer %d line %d\n", w, i)) {
				t.Fatalf("line %d of writer %d is missing or torn:\n%s", i, w, got)
			}
		}
	}
}
