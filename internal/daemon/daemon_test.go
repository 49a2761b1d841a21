package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

func TestRestartKeys(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"nothing", func(*Config) {}, nil},
		{"reloadable only", func(c *Config) {
			c.LogLevel = 4
			c.Links.IncludeNames = []string{"eth*"}
			c.Policy.Chain = []policy.Spec{{Name: "fullmesh", Config: []byte(`{"max_subflows":1}`)}}
		}, nil},
		{"everything else", func(c *Config) {
			c.Mode = policy.ModeKernel
			c.SetPathManager = true
			c.OwnedIDs = pm.IDRange{Min: 1, Max: 9}
			c.WithdrawOnExit = false
			c.Workers = 1
			c.Backoff = pm.Backoff{Initial: time.Second, Max: time.Minute}
			c.EventBuffer = 1 << 20
		}, []string{
			"mode", "set_path_manager", "kernel.owned_ids", "kernel.withdraw_on_exit", "engine.workers",
			"engine.backoff_initial", "engine.backoff_max", "engine.event_buffer",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.change(cfg)
			if diff := cmp.Diff(tt.want, restartKeys(DefaultConfig(), cfg)); diff != "" {
				t.Errorf("restartKeys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReloadNotRunning(t *testing.T) {
	var d Daemon
	if err := d.Reload(context.Background(), DefaultConfig()); err == nil {
		t.Error("Reload of a daemon that does not run succeeded")
	}
}
