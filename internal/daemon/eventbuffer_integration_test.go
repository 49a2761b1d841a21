//go:build linux

package daemon

import (
	"log/slog"
	"testing"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// TestEventBuffer: engine.event_buffer left at 0 gives the event socket
// DefaultEventBuffer (16 MiB, past net.core.rmem_max with CAP_NET_ADMIN),
// and a value the configuration sets is what the socket gets.
func TestEventBuffer(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "evbuf")
	c, err := genl.New(&genl.Config{NetNS: h.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tt := range []struct {
		config string
		want   int
	}{
		{"", DefaultEventBuffer},
		{"[engine]\nevent_buffer = 0\n", DefaultEventBuffer},
		{"[engine]\nevent_buffer = 65536\n", 65536},
	} {
		cfg, err := Parse("t.toml", []byte(tt.config))
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.config, err)
		}
		sub, err := subscribe(c, cfg.EventBuffer, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("subscribe with %q: %v", tt.config, err)
		}
		got, err := sub.ReadBuffer()
		_ = sub.Close()
		// The kernel reports twice what it granted.
		if err != nil || got/2 != tt.want {
			t.Errorf("with %q the event socket's buffer is %d (%v), want %d", tt.config, got/2, err, tt.want)
		}
	}
}
