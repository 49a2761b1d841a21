package nmmetered_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"

	"github.com/mptcpgod/mptcpgod/internal/nmmetered"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// startBus starts a dbus-daemon of its own, with its socket in a
// temporary directory, and returns its address; it is stopped when the
// test ends.
func startBus(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		runtest.Unavailable(t, fmt.Sprintf("no dbus-daemon (apt package dbus-daemon): %v", err))
	}
	cmd := exec.Command(bin, "--session", "--nofork", "--nopidfile", "--print-address",
		"--address=unix:dir="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case addr := <-line:
		if addr == "" {
			t.Fatalf("dbus-daemon printed no address: %s", stderr.String())
		}
		return addr
	case <-time.After(10 * time.Second):
		t.Fatalf("dbus-daemon printed no address in 10s: %s", stderr.String())
	}
	return ""
}

// fakeNM is a stand-in NetworkManager on a test bus: the manager object
// with GetDeviceByIpIface, and a device object with the Device
// interface's Interface and Metered properties for each interface.
type fakeNM struct {
	conn  *dbus.Conn
	mu    sync.Mutex
	devs  map[string]dbus.ObjectPath
	props map[string]*prop.Properties
}

// manager is the exported org.freedesktop.NetworkManager interface.
type manager struct{ nm *fakeNM }

// GetDeviceByIpIface is NetworkManager's method of that name.
func (m manager) GetDeviceByIpIface(iface string) (dbus.ObjectPath, *dbus.Error) {
	m.nm.mu.Lock()
	defer m.nm.mu.Unlock()
	p, ok := m.nm.devs[iface]
	if !ok {
		return "", dbus.NewError("org.freedesktop.NetworkManager.UnknownDevice", []any{"No device found for the requested iface."})
	}
	return p, nil
}

func startNM(t *testing.T, addr string, devices map[string]nmmetered.Value) *fakeNM {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	nm := &fakeNM{conn: conn, devs: map[string]dbus.ObjectPath{}, props: map[string]*prop.Properties{}}
	const path = "/org/freedesktop/NetworkManager"
	if err := conn.Export(manager{nm}, path, "org.freedesktop.NetworkManager"); err != nil {
		t.Fatal(err)
	}
	node := &introspect.Node{Name: path, Interfaces: []introspect.Interface{
		introspect.IntrospectData,
		{Name: "org.freedesktop.NetworkManager", Methods: introspect.Methods(manager{})},
	}}
	if err := conn.Export(introspect.NewIntrospectable(node), path, "org.freedesktop.DBus.Introspectable"); err != nil {
		t.Fatal(err)
	}
	i := 1
	for name, v := range devices {
		p := dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/NetworkManager/Devices/%d", i))
		i++
		props, err := prop.Export(conn, p, prop.Map{"org.freedesktop.NetworkManager.Device": {
			"Interface": {Value: name, Emit: prop.EmitTrue},
			"Metered":   {Value: uint32(v), Emit: prop.EmitTrue},
		}})
		if err != nil {
			t.Fatal(err)
		}
		devNode := &introspect.Node{Name: string(p), Interfaces: []introspect.Interface{
			introspect.IntrospectData, prop.IntrospectData,
			{Name: "org.freedesktop.NetworkManager.Device", Properties: props.Introspection("org.freedesktop.NetworkManager.Device")},
		}}
		if err := conn.Export(introspect.NewIntrospectable(devNode), p, "org.freedesktop.DBus.Introspectable"); err != nil {
			t.Fatal(err)
		}
		nm.devs[name], nm.props[name] = p, props
	}
	reply, err := conn.RequestName("org.freedesktop.NetworkManager", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName: %v, %v", reply, err)
	}
	return nm
}

// set changes a device's Metered property.
func (nm *fakeNM) set(name string, v nmmetered.Value) {
	nm.props[name].SetMust("org.freedesktop.NetworkManager.Device", "Metered", uint32(v))
}

// stop releases NetworkManager's name: it no longer runs.
func (nm *fakeNM) stop(t *testing.T) {
	t.Helper()
	if _, err := nm.conn.ReleaseName("org.freedesktop.NetworkManager"); err != nil {
		t.Fatal(err)
	}
}

type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

var devices = map[string]nmmetered.Value{
	"wwan0": nmmetered.Yes, "usb0": nmmetered.GuessYes, "eth0": nmmetered.No,
	"wlan0": nmmetered.GuessNo, "eth1": nmmetered.Unknown,
}

func TestDevice(t *testing.T) {
	t.Parallel()
	addr := startBus(t)
	startNM(t, addr, devices)
	logs := &logBuf{}
	r := nmmetered.New(&nmmetered.Config{Address: addr, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	t.Cleanup(func() { _ = r.Close() })
	tests := []struct {
		ifname  string
		want    nmmetered.Value
		err     error
		metered bool
		by      string
	}{
		{"wwan0", nmmetered.Yes, nil, true, "networkmanager"},
		{"usb0", nmmetered.GuessYes, nil, true, "networkmanager"},
		{"eth0", nmmetered.No, nil, false, "networkmanager"},
		{"wlan0", nmmetered.GuessNo, nil, false, "networkmanager"},
		{"eth1", nmmetered.Unknown, nil, false, "networkmanager"},
		{"veth9", 0, nmmetered.ErrNoDevice, false, "default"},
	}
	for _, tt := range tests {
		got, err := r.Device(context.Background(), tt.ifname)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("Device(%s) = %v, %v; want %v, %v", tt.ifname, got, err, tt.want, tt.err)
		}
		if m, by := r.Metered(tt.ifname); m != tt.metered || by != tt.by {
			t.Errorf("Metered(%s) = %v, %s; want %v, %s", tt.ifname, m, by, tt.metered, tt.by)
		}
	}
	if n := strings.Count(logs.String(), "networkmanager runs"); n != 1 {
		t.Errorf("\"networkmanager runs\" logged %d times, want 1:\n%s", n, logs)
	}
}

// TestChanges: Metered follows NetworkManager after its cache time, and
// falls back to unmetered, with a log line, when NetworkManager goes away.
func TestChanges(t *testing.T) {
	t.Parallel()
	addr := startBus(t)
	nm := startNM(t, addr, devices)
	logs := &logBuf{}
	r := nmmetered.New(&nmmetered.Config{Address: addr, CacheTTL: time.Nanosecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	t.Cleanup(func() { _ = r.Close() })
	cached := nmmetered.New(&nmmetered.Config{Address: addr, CacheTTL: time.Hour})
	t.Cleanup(func() { _ = cached.Close() })

	if m, _ := r.Metered("eth0"); m {
		t.Fatal("eth0 metered before the change")
	}
	cached.Metered("eth0")
	nm.set("eth0", nmmetered.GuessYes)
	if m, by := r.Metered("eth0"); !m || by != "networkmanager" {
		t.Errorf("after NetworkManager changed eth0: Metered = %v, %s", m, by)
	}
	if m, _ := cached.Metered("eth0"); m {
		t.Errorf("an answer cached for an hour changed")
	}

	nm.stop(t)
	_, err := r.Device(context.Background(), "wwan0")
	if !errors.Is(err, nmmetered.ErrNotRunning) {
		t.Errorf("Device without NetworkManager: %v, want ErrNotRunning", err)
	}
	if m, by := r.Metered("wwan0"); m || by != "default" {
		t.Errorf("Metered without NetworkManager = %v, %s; want false, default", m, by)
	}
	if !strings.Contains(logs.String(), "networkmanager is not running") {
		t.Errorf("no log line saying NetworkManager is not running:\n%s", logs)
	}
}

// TestRunning: Running follows NetworkManager's name on the bus.
func TestRunning(t *testing.T) {
	t.Parallel()
	addr := startBus(t)
	r := nmmetered.New(&nmmetered.Config{Address: addr})
	defer r.Close()
	if up, err := r.Running(t.Context()); err != nil || up {
		t.Fatalf("Running before NetworkManager = %v, %v; want false", up, err)
	}
	nm := startNM(t, addr, nil)
	if up, err := r.Running(t.Context()); err != nil || !up {
		t.Fatalf("Running with NetworkManager = %v, %v; want true", up, err)
	}
	nm.stop(t)
	if up, err := r.Running(t.Context()); err != nil || up {
		t.Fatalf("Running after NetworkManager left = %v, %v; want false", up, err)
	}
	none := nmmetered.New(&nmmetered.Config{Address: "unix:path=" + t.TempDir() + "/none"})
	defer none.Close()
	if _, err := none.Running(t.Context()); !errors.Is(err, nmmetered.ErrNotRunning) {
		t.Errorf("Running without a bus: %v, want ErrNotRunning", err)
	}
}

func TestNoBus(t *testing.T) {
	t.Parallel()
	logs := &logBuf{}
	r := nmmetered.New(&nmmetered.Config{Address: "unix:path=" + t.TempDir() + "/none", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	_, err := r.Device(context.Background(), "wwan0")
	if !errors.Is(err, nmmetered.ErrNotRunning) {
		t.Errorf("Device without a bus: %v, want ErrNotRunning", err)
	}
	if m, by := r.Metered("wwan0"); m || by != "default" {
		t.Errorf("Metered without a bus = %v, %s; want false, default", m, by)
	}
	if !strings.Contains(logs.String(), "networkmanager is not running") {
		t.Errorf("no log line:\n%s", logs)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
}

func TestValueString(t *testing.T) {
	t.Parallel()
	var got []string
	for v := range nmmetered.Value(6) {
		got = append(got, fmt.Sprintf("%s:%v", v, v.Metered()))
	}
	want := "unknown:false yes:true no:false guess-yes:true guess-no:false metered(5):false"
	if strings.Join(got, " ") != want {
		t.Errorf("values: %s, want %s", strings.Join(got, " "), want)
	}
}
