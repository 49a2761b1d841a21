package sockdiag

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

var capture = flag.Bool("sockdiag.capture", false, "regenerate the real-* fuzz seeds in testdata/fuzz from the running kernel")

// TestCaptureSeeds rewrites the testdata/fuzz/*/real-* seed files with
// replies captured from the running kernel in a throw-away testbed. It runs
// only with -sockdiag.capture:
//
//	go test -run TestCaptureSeeds -sockdiag.capture ./internal/sockdiag
func TestCaptureSeeds(t *testing.T) {
	if !*capture {
		t.Skip("seed generator; run with -sockdiag.capture")
	}
	tb := netnstest.NewTestbed(t, 2)
	cli, srv := tb.Client, tb.Server
	for _, h := range []*netnstest.Host{cli, srv} {
		h.MustExec("ip", "mptcp", "limits", "set", "subflows", "2", "add_addr_accepted", "2")
	}
	cli.MustExec("ip", "mptcp", "endpoint", "add", "198.51.100.1", "dev", "eth1", "subflow")
	cli.MustExec("ip", "mptcp", "endpoint", "add", "2001:db8:2::1", "dev", "eth1", "subflow")

	ln := srv.Listen("tcp", ":5000")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	for _, raddr := range []string{"192.0.2.2:5000", "[2001:db8:1::2]:5000"} {
		c, err := cli.Dial("tcp", "", raddr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("seed")); err != nil {
			t.Fatal(err)
		}
	}
	// A plain TCP socket: its reply has no MPTCP ULP.
	plainLn := srv.Listen("tcp", ":5001") // MPTCP listener; a plain client falls back
	defer plainLn.Close()
	if err := cli.Do(func() error {
		c, err := net.Dial("tcp4", "192.0.2.2:5001")
		if err != nil {
			return err
		}
		t.Cleanup(func() { c.Close() })
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	c, err := Dial(&Config{NetNS: cli.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Wait for both joins.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		if err := c.Subflows(func(sf *Subflow) error {
			if sf.Flags&SubflowJoinLocal != 0 && sf.State == StateEstablished {
				n++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d joined subflows, want 2", n)
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, fam := range []uint8{afInet, afInet6} {
		suffix := "ipv4"
		if fam == afInet6 {
			suffix = "ipv6"
		}
		err := c.dump(encodeRequest(fam, ipprotoMPTCP, defaultConnStates, 0), func(b []byte) error {
			writeSeed(t, "FuzzParseConnection", "real-"+suffix, b)
			writeSeed(t, "FuzzParseDiagMsg", "real-msk-"+suffix, b)
			if fam == afInet {
				writeSeed(t, "FuzzParseMPTCPInfo", "real", attr(t, b, inetDiagInfo))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = c.dump(encodeRequest(fam, ipprotoTCP, defaultSubflowStates, 0), func(b []byte) error {
			sf, ok, err := parseSubflow(b)
			if err != nil {
				return err
			}
			name := "real-plain-" + suffix
			if ok {
				kind := "mcap"
				if sf.Flags&SubflowJoinLocal != 0 {
					kind = "join"
				}
				name = "real-" + kind + "-" + suffix
				writeSeed(t, "FuzzParseULPInfo", name, attr(t, b, inetDiagULPInfo))
			}
			writeSeed(t, "FuzzParseSubflow", name, b)
			writeSeed(t, "FuzzParseTCPSocket", name, b)
			if fam == afInet && ok && sf.Flags&SubflowJoinLocal != 0 {
				writeSeed(t, "FuzzParseTCPInfo", "real", attr(t, b, inetDiagInfo))
				writeSeed(t, "FuzzParseDiagMsg", "real-subflow-bound", b)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// attr returns the payload of the first top-level attribute of type typ
// in a sock_diag reply.
func attr(t *testing.T, msg []byte, typ uint16) []byte {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(msg[inetDiagMsgLen:])
	if err != nil {
		t.Fatal(err)
	}
	for ad.Next() {
		if ad.Type() == typ {
			return ad.Bytes()
		}
	}
	t.Fatalf("reply has no attribute %d", typ)
	return nil
}

// writeSeed writes b as a seed of the fuzz target in Go's corpus format.
func writeSeed(t *testing.T, target, name string, b []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readSeed reads a seed written by writeSeed.
func readSeed(t *testing.T, target, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "fuzz", target, name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		t.Fatalf("seed %s/%s: not a one-value corpus file", target, name)
	}
	lit, ok := strings.CutPrefix(lines[1], "[]byte(")
	if !ok || !strings.HasSuffix(lit, ")") {
		t.Fatalf("seed %s/%s: want a []byte value, got %q", target, name, lines[1])
	}
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if err != nil {
		t.Fatalf("seed %s/%s: %v", target, name, err)
	}
	return []byte(s)
}
