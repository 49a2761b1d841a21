//go:build linux

// Command joincorrupt reproduces a corruption of MPTCP data on Linux: when
// a subflow joins a connection early in its life, the receiver sometimes
// gets one block of 2–64 KB replaced by other bytes of the same stream,
// with the right length (docs/kernel-issues.md).
//
// It uses only the standard library, so it runs anywhere Go does: copy
// this file and `go run main.go`. joincorrupt.sh, beside it, builds two
// network namespaces joined by two veth links and runs it as root:
//
//	sudo ./joincorrupt.sh -at 0-10ms -duration 2m
//
// The server verifies every transfer against the stream the client
// generated from a seed and answers what differs:
//
//	joincorrupt server -listen 192.0.2.2:5201
//
// The client runs -workers transfers at a time of -size bytes each,
// written 64 KiB at a time, for -duration. With -join-from, each of its
// connections gets one extra subflow, from -join-from to -join-to (the
// server's port), opened through the userspace path manager
// (MPTCP_PM_CMD_SUBFLOW_CREATE) at a random moment in -at after connect()
// returned, or once the connection has sent -bytes (mptcpi_bytes_sent).
// Without -join-from it opens none itself: the in-kernel path manager's
// endpoints, if any, join the connection.
//
//	joincorrupt client -server 192.0.2.2:5201 -join-from 198.51.100.1 -join-to 198.51.100.2 -at 0-10ms
//
// It prints every corrupted transfer (where each bad block lies against
// the stream's position when the join was made and against the 64 KiB
// writes) and, at the end, the transfers, joins and corruptions by the
// moment of the join.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: joincorrupt server|client [flags] (-h for the flags)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = serverMain(os.Args[2:])
	case "client":
		err = clientMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: want server or client", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "joincorrupt:", err)
		os.Exit(1)
	}
}

// writeSize is the size of the client's writes.
const writeSize = 64 << 10

// headerSize is the size of the transfer header: the seed and the size,
// big endian, written over the stream's first bytes.
const headerSize = 16

// stream returns the size bytes a transfer with seed sends: pseudo-random
// bytes whose first headerSize carry the seed and the size.
func stream(seed uint64, size int) []byte {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(key).Read(b)
	binary.BigEndian.PutUint64(b[0:], seed)
	binary.BigEndian.PutUint64(b[8:], uint64(size))
	return b
}

// Block is a range of the stream the server received wrong.
type Block struct {
	Start, End int64
	// From is where in the sent stream the received bytes come from, -1
	// if from nowhere (or too short to tell).
	From int64
}

// Reply is the server's verdict on a transfer.
type Reply struct {
	Received int64   // bytes received
	Blocks   []Block // the differing ranges, at most maxBlocks
	Error    string  // why the transfer could not be checked
}

// maxBlocks bounds the blocks a reply lists.
const maxBlocks = 8

// serverMain accepts transfers and answers each with a Reply.
func serverMain(args []string) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	listen := fs.String("listen", "", "address:port to listen on (MPTCP)")
	_ = fs.Parse(args)
	if *listen == "" {
		return errors.New("server: -listen is required")
	}
	lc := net.ListenConfig{}
	lc.SetMultipathTCP(true)
	ln, err := lc.Listen(context.Background(), "tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Println("listening on", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			r := check(c)
			_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			_ = json.NewEncoder(c).Encode(r)
		}()
	}
}

// check reads a transfer until EOF and verifies it.
func check(c net.Conn) Reply {
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	got, err := io.ReadAll(c)
	if err != nil {
		return Reply{Received: int64(len(got)), Error: err.Error()}
	}
	return verify(got)
}

// verify compares a transfer with the stream its header names.
func verify(got []byte) Reply {
	r := Reply{Received: int64(len(got))}
	if len(got) < headerSize {
		r.Error = "shorter than the header"
		return r
	}
	seed, size := binary.BigEndian.Uint64(got), binary.BigEndian.Uint64(got[8:])
	if size != uint64(len(got)) {
		r.Error = fmt.Sprintf("the header says %d bytes (seed %d): header corrupted or data lost", size, seed)
		return r
	}
	r.Blocks = diff(stream(seed, len(got)), got)
	return r
}

// diff returns the ranges where got differs from want, ranges closer
// than 64 bytes merged, each traced to where in want its first 32 bytes
// come from.
func diff(want, got []byte) []Block {
	var bs []Block
	for i := range want {
		if want[i] == got[i] {
			continue
		}
		if n := len(bs); n > 0 && int64(i)-bs[n-1].End < 64 {
			bs[n-1].End = int64(i) + 1
			continue
		}
		if len(bs) == maxBlocks {
			break
		}
		bs = append(bs, Block{Start: int64(i), End: int64(i) + 1, From: -1})
	}
	for k, b := range bs {
		probe := got[b.Start:min(b.Start+32, b.End)]
		if len(probe) >= 16 {
			bs[k].From = int64(bytes.Index(want, probe))
		}
	}
	return bs
}

// clientConfig is what the client's flags say.
type clientConfig struct {
	server             netip.AddrPort
	joinFrom, joinTo   netip.Addr
	joinIfIndex        int32
	atLo, atHi         time.Duration
	bytesLo, bytesHi   int64
	byBytes            bool
	workers, size      int
	duration           time.Duration
	maxTransfers       int64
	verbose            bool
	joinWait, pollTime time.Duration
	inject             int
}

// -inject replaces injectSize bytes with those injectShift bytes further
// on, the shape of the kernel's corruption.
const (
	injectSize  = 4096
	injectShift = 808
)

// clientMain runs transfers and prints what the server found.
func clientMain(args []string) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	server := fs.String("server", "", "server address:port (the initial subflow)")
	joinFrom := fs.String("join-from", "", "local address of the extra subflow, opened through the userspace path manager; empty: open none")
	joinTo := fs.String("join-to", "", "remote address of the extra subflow (the server's port); default: the server's address")
	joinDev := fs.String("join-dev", "", "interface to bind the extra subflow to")
	at := fs.String("at", "0-200ms", "join this long after connect() returned: a duration or a range lo-hi, drawn uniformly")
	nbytes := fs.String("bytes", "", "join once the connection has sent this many bytes (a count or a range lo-hi; KiB, MiB allowed) instead of -at")
	workers := fs.Int("workers", 8, "concurrent transfers")
	size := fs.String("size", "8MiB", "bytes per transfer")
	duration := fs.Duration("duration", time.Minute, "how long to run")
	transfers := fs.Int64("transfers", 0, "stop after this many transfers (0: no limit)")
	verbose := fs.Bool("v", false, "print every transfer, not only the corrupted ones")
	inject := fs.Int("inject", 0, fmt.Sprintf("check the checker: before sending, replace the %d bytes at this offset with those %d bytes further on (0: off)", injectSize, injectShift))
	_ = fs.Parse(args)

	cfg := clientConfig{workers: *workers, duration: *duration, maxTransfers: *transfers, verbose: *verbose,
		joinWait: 200 * time.Millisecond, pollTime: 100 * time.Microsecond}
	var err error
	if cfg.server, err = netip.ParseAddrPort(*server); err != nil {
		return fmt.Errorf("client: -server %q: %w", *server, err)
	}
	if *joinFrom != "" {
		if cfg.joinFrom, err = netip.ParseAddr(*joinFrom); err != nil {
			return fmt.Errorf("client: -join-from %q: %w", *joinFrom, err)
		}
		cfg.joinTo = cfg.server.Addr()
		if *joinTo != "" {
			if cfg.joinTo, err = netip.ParseAddr(*joinTo); err != nil {
				return fmt.Errorf("client: -join-to %q: %w", *joinTo, err)
			}
		}
		if cfg.joinFrom.Is4() != cfg.joinTo.Is4() {
			return fmt.Errorf("client: -join-from %s and -join-to %s: not the same address family", cfg.joinFrom, cfg.joinTo)
		}
	}
	if *joinDev != "" {
		ifi, err := net.InterfaceByName(*joinDev)
		if err != nil {
			return fmt.Errorf("client: -join-dev: %w", err)
		}
		cfg.joinIfIndex = int32(ifi.Index)
	}
	if *nbytes != "" {
		cfg.byBytes = true
		if cfg.bytesLo, cfg.bytesHi, err = parseRange(*nbytes, parseSize); err != nil {
			return fmt.Errorf("client: -bytes: %w", err)
		}
	} else {
		lo, hi, err := parseRange(*at, func(s string) (int64, error) {
			d, err := time.ParseDuration(s)
			return int64(d), err
		})
		if err != nil {
			return fmt.Errorf("client: -at: %w", err)
		}
		cfg.atLo, cfg.atHi = time.Duration(lo), time.Duration(hi)
	}
	sz, err := parseSize(*size)
	if err != nil || sz < headerSize {
		return fmt.Errorf("client: -size %q: want at least %d bytes (%v)", *size, headerSize, err)
	}
	cfg.size = int(sz)
	cfg.inject = *inject
	if cfg.inject < 0 || cfg.inject > 0 && (cfg.inject < headerSize || cfg.inject+injectShift+injectSize > cfg.size) {
		return fmt.Errorf("client: -inject %d: want 0 or an offset from %d to %d (-size less %d)", cfg.inject, headerSize, cfg.size-injectShift-injectSize, injectShift+injectSize)
	}
	if cfg.workers < 1 {
		return fmt.Errorf("client: -workers %d: want at least 1", cfg.workers)
	}
	return run(&cfg)
}

// parseRange parses "v" or "lo-hi" with parse.
func parseRange(s string, parse func(string) (int64, error)) (lo, hi int64, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = parse(a); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parse(b); err != nil {
			return 0, 0, err
		}
	}
	if lo < 0 || hi < lo {
		return 0, 0, fmt.Errorf("%q: want 0 <= lo <= hi", s)
	}
	return lo, hi, nil
}

// parseSize parses a byte count with an optional KiB, MiB or GiB suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if t, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = t, m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

// join is what a transfer's join request found.
type join struct {
	requested bool
	age       time.Duration // since connect() returned
	sent      int64         // mptcpi_bytes_sent when the join was requested
	acked     int64         // mptcpi_bytes_acked
	err       error
}

// outcome is a finished transfer.
type outcome struct {
	seed    uint64
	join    join
	joined  bool // the connection had an extra subflow when the writes ended
	reply   Reply
	corrupt bool
	err     error
}

// run runs the transfers and prints the results.
func run(cfg *clientConfig) error {
	fmt.Printf("joincorrupt client: %d workers, %d-byte transfers, %v; %s\n", cfg.workers, cfg.size, cfg.duration, cfg.joinDesc())
	deadline := time.Now().Add(cfg.duration)
	var (
		mu       sync.Mutex
		outcomes []outcome
		seq      uint64
		wg       sync.WaitGroup
	)
	next := func() (uint64, bool) {
		mu.Lock()
		defer mu.Unlock()
		if time.Now().After(deadline) || cfg.maxTransfers > 0 && int64(seq) >= cfg.maxTransfers {
			return 0, false
		}
		seq++
		return uint64(time.Now().UnixNano())<<16 | seq&0xffff, true
	}
	for w := range cfg.workers {
		var nl *genlConn
		if cfg.joinFrom.IsValid() {
			var err error
			if nl, err = dialGenl(); err != nil {
				return err
			}
			defer nl.close()
		}
		rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seed, ok := next()
				if !ok {
					return
				}
				o := transfer(cfg, nl, rng, seed)
				if o.corrupt || o.err != nil || cfg.verbose {
					fmt.Println(o.describe())
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	summarise(outcomes)
	return nil
}

// joinDesc describes the join.
func (cfg *clientConfig) joinDesc() string {
	if !cfg.joinFrom.IsValid() {
		return "no join of ours"
	}
	when := fmt.Sprintf("%v-%v after connect()", cfg.atLo, cfg.atHi)
	if cfg.byBytes {
		when = fmt.Sprintf("after %d-%d bytes sent", cfg.bytesLo, cfg.bytesHi)
	}
	return fmt.Sprintf("one join %s -> %s, %s", cfg.joinFrom, cfg.joinTo, when)
}

// transfer sends one stream, joins it as cfg says, and gets the
// server's verdict.
func transfer(cfg *clientConfig, nl *genlConn, rng *rand.Rand, seed uint64) outcome {
	o := outcome{seed: seed}
	// Generated before connect(): the join's clock starts there.
	data := stream(seed, cfg.size)
	if cfg.inject > 0 {
		copy(data[cfg.inject:cfg.inject+injectSize], data[cfg.inject+injectShift:])
	}
	var d net.Dialer
	d.SetMultipathTCP(true)
	d.Timeout = 10 * time.Second
	c, err := d.Dial("tcp", cfg.server.String())
	if err != nil {
		o.err = err
		return o
	}
	connected := time.Now()
	defer c.Close()
	tc := c.(*net.TCPConn)
	rc, err := tc.SyscallConn()
	if err != nil {
		o.err = err
		return o
	}
	info, err := mptcpInfo(rc)
	if err != nil {
		o.err = fmt.Errorf("MPTCP_INFO: %w (is the connection MPTCP?)", err)
		return o
	}

	writesDone := make(chan struct{})
	joinDone := make(chan join, 1)
	if nl != nil {
		go func() {
			joinDone <- joinAt(cfg, nl, rc, info.token, connected, rng, writesDone)
		}()
	} else {
		joinDone <- join{}
	}

	for off := 0; off < len(data) && err == nil; off += writeSize {
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err = c.Write(data[off:min(off+writeSize, len(data))])
	}
	if last, ierr := mptcpInfo(rc); ierr == nil {
		o.joined = last.subflows > 0
	}
	close(writesDone)
	o.join = <-joinDone
	if err != nil {
		o.err = fmt.Errorf("write: %w", err)
		return o
	}
	if err := tc.CloseWrite(); err != nil {
		o.err = err
		return o
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	if err := json.NewDecoder(c).Decode(&o.reply); err != nil {
		o.err = fmt.Errorf("the server's reply: %w", err)
		return o
	}
	switch {
	case o.reply.Error != "":
		o.err = fmt.Errorf("server: %s", o.reply.Error)
		o.corrupt = o.reply.Received == int64(len(data))
	case o.reply.Received != int64(len(data)):
		o.err = fmt.Errorf("server received %d bytes, sent %d", o.reply.Received, len(data))
	case len(o.reply.Blocks) > 0:
		o.corrupt = true
	}
	return o
}

// joinAt waits for the join moment (or the end of the writes), then
// asks the userspace path manager for the extra subflow; a connection
// that is not yet fully established (ENOTCONN) is asked again until
// cfg.joinWait has passed.
func joinAt(cfg *clientConfig, nl *genlConn, rc syscall.RawConn, token uint32, connected time.Time, rng *rand.Rand, done <-chan struct{}) join {
	if cfg.byBytes {
		target := cfg.bytesLo + rng.Int64N(cfg.bytesHi-cfg.bytesLo+1)
		for {
			info, err := mptcpInfo(rc)
			if err != nil {
				return join{err: err}
			}
			if info.bytesSent >= target {
				break
			}
			select {
			case <-done:
				return join{}
			case <-time.After(cfg.pollTime):
			}
		}
	} else {
		at := cfg.atLo + time.Duration(rng.Int64N(int64(cfg.atHi-cfg.atLo)+1))
		select {
		case <-done:
			return join{}
		case <-time.After(time.Until(connected.Add(at))):
		}
	}
	giveUp := time.Now().Add(cfg.joinWait)
	for {
		j := join{requested: true, age: time.Since(connected)}
		if info, err := mptcpInfo(rc); err == nil {
			j.sent, j.acked = info.bytesSent, info.bytesAcked
		}
		j.err = nl.createSubflow(token, cfg.joinFrom, cfg.joinIfIndex, netip.AddrPortFrom(cfg.joinTo, cfg.server.Port()))
		if !errors.Is(j.err, syscall.ENOTCONN) || time.Now().After(giveUp) {
			return j
		}
		select {
		case <-done:
			return j
		case <-time.After(cfg.pollTime):
		}
	}
}

// describe is a line about the outcome, with each bad block placed
// against the join and the writes.
func (o *outcome) describe() string {
	var b strings.Builder
	switch {
	case o.corrupt:
		fmt.Fprintf(&b, "CORRUPTED transfer %d", o.seed)
	case o.err != nil:
		fmt.Fprintf(&b, "FAILED transfer %d: %v", o.seed, o.err)
	default:
		fmt.Fprintf(&b, "ok transfer %d", o.seed)
	}
	if o.join.requested {
		fmt.Fprintf(&b, "; join requested %.3f ms after connect(), stream at %d bytes sent, %d acked", ms(o.join.age), o.join.sent, o.join.acked)
		if o.join.err != nil {
			fmt.Fprintf(&b, ", failed: %v", o.join.err)
		}
	}
	if !o.joined {
		b.WriteString("; no extra subflow when the writes ended")
	}
	for _, bl := range o.reply.Blocks {
		fmt.Fprintf(&b, "\n  bad bytes [%d, %d) (%d bytes), ", bl.Start, bl.End, bl.End-bl.Start)
		if o.join.requested {
			fmt.Fprintf(&b, "start = join's sent %+d / acked %+d, ", bl.Start-o.join.sent, bl.Start-o.join.acked)
		}
		fmt.Fprintf(&b, "start %% 64 KiB = %d, end %% 64 KiB = %d", bl.Start%writeSize, bl.End%writeSize)
		if bl.From >= 0 {
			fmt.Fprintf(&b, "; they are the stream's bytes at %d (%+d)", bl.From, bl.From-bl.Start)
		} else {
			b.WriteString("; from nowhere in the stream")
		}
	}
	return b.String()
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// bins are the join moments the summary counts by, in milliseconds after
// connect() returned.
var bins = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}

// summarise prints the totals and the corruptions by join moment.
func summarise(outs []outcome) {
	var corrupt, failed, joined, requested, joinErrs int
	type cell struct{ joins, corrupt int }
	cells := make([]cell, len(bins)+1)
	for _, o := range outs {
		if o.corrupt {
			corrupt++
		} else if o.err != nil {
			failed++
		}
		if o.joined {
			joined++
		}
		if o.join.requested {
			requested++
			if o.join.err != nil {
				joinErrs++
			}
		}
		if !o.joined || !o.join.requested || o.err != nil && !o.corrupt {
			continue
		}
		i := 0
		for i < len(bins) && ms(o.join.age) >= bins[i] {
			i++
		}
		cells[i].joins++
		if o.corrupt {
			cells[i].corrupt++
		}
	}
	fmt.Printf("\ntransfers %d: corrupted %d, failed %d; with an extra subflow %d; joins requested %d (%d refused)\n",
		len(outs), corrupt, failed, joined, requested, joinErrs)
	if requested == 0 {
		return
	}
	fmt.Println("join moment (ms after connect)  joins  corrupted  per 1,000")
	lo := 0.0
	for i, c := range cells {
		if c.joins == 0 {
			if i < len(bins) {
				lo = bins[i]
			}
			continue
		}
		label := fmt.Sprintf("%g+", lo)
		if i < len(bins) {
			label = fmt.Sprintf("%g-%g", lo, bins[i])
			lo = bins[i]
		}
		fmt.Printf("%-31s %6d %10d %10.1f\n", label, c.joins, c.corrupt, 1000*float64(c.corrupt)/float64(c.joins))
	}
}

// Socket options of MPTCP (include/uapi/linux/mptcp.h).
const (
	solMPTCP   = 284
	mptcpInfoO = 1 // MPTCP_INFO: struct mptcp_info
)

// info is the part of struct mptcp_info the client uses.
type info struct {
	subflows   uint8 // extra subflows (not counting the initial one)
	token      uint32
	bytesSent  int64 // since 6.5; -1 before
	bytesAcked int64 // since 6.5; -1 before
}

// mptcpInfo reads MPTCP_INFO of the connection.
func mptcpInfo(rc syscall.RawConn) (info, error) {
	var b [128]byte
	n := uint32(len(b))
	var errno syscall.Errno
	err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, solMPTCP, mptcpInfoO,
			uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&n)), 0)
	})
	if err != nil {
		return info{}, err
	}
	if errno != 0 {
		return info{}, errno
	}
	r := b[:n]
	in := info{subflows: r[0], token: binary.NativeEndian.Uint32(r[12:]), bytesSent: -1, bytesAcked: -1}
	if len(r) >= 80 {
		in.bytesSent = int64(binary.NativeEndian.Uint64(r[56:]))
		in.bytesAcked = int64(binary.NativeEndian.Uint64(r[72:]))
	}
	return in, nil
}

// Generic netlink: the controller and the mptcp_pm family
// (include/uapi/linux/genetlink.h, include/uapi/linux/mptcp_pm.h).
const (
	genlIDCtrl           = 0x10
	ctrlCmdGetFamily     = 3
	ctrlAttrFamilyID     = 1
	ctrlAttrFamilyName   = 2
	solNetlink           = 270
	netlinkCapAck        = 10
	netlinkExtAck        = 11
	nlmsgerrAttrMsg      = 1
	nlaFNested           = 1 << 15
	pmCmdSubflowCreate   = 10
	pmAttrAddr           = 1
	pmAttrToken          = 4
	pmAttrAddrRemote     = 6
	pmAddrAttrFamily     = 1
	pmAddrAttrAddr4      = 3
	pmAddrAttrAddr6      = 4
	pmAddrAttrPort       = 5
	pmAddrAttrIfIdx      = 7
	nlmsgHdrLen          = 16
	genlHdrLen           = 4
	mptcpPMFamilyVersion = 1
)

// genlConn is a generic netlink socket talking to the mptcp_pm family;
// one goroutine at a time.
type genlConn struct {
	fd     int
	family uint16
	seq    uint32
}

// dialGenl opens a socket and looks the mptcp_pm family up.
func dialGenl() (*genlConn, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	c := &genlConn{fd: fd}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		c.close()
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	_ = syscall.SetsockoptInt(fd, solNetlink, netlinkExtAck, 1)
	_ = syscall.SetsockoptInt(fd, solNetlink, netlinkCapAck, 1)
	reply, err := c.request(genlIDCtrl, ctrlCmdGetFamily, 1, attr(nil, ctrlAttrFamilyName, []byte("mptcp_pm\x00")))
	if err != nil {
		c.close()
		return nil, fmt.Errorf("look up the mptcp_pm genl family (does the kernel have MPTCP?): %w", err)
	}
	for typ, val := range attrs(reply) {
		if typ == ctrlAttrFamilyID && len(val) >= 2 {
			c.family = binary.NativeEndian.Uint16(val)
		}
	}
	if c.family == 0 {
		c.close()
		return nil, errors.New("the kernel's answer has no mptcp_pm family id")
	}
	return c, nil
}

func (c *genlConn) close() { _ = syscall.Close(c.fd) }

// createSubflow sends MPTCP_PM_CMD_SUBFLOW_CREATE.
func (c *genlConn) createSubflow(token uint32, local netip.Addr, ifindex int32, remote netip.AddrPort) error {
	la := addrAttrs(local)
	if ifindex != 0 {
		la = attr(la, pmAddrAttrIfIdx, binary.NativeEndian.AppendUint32(nil, uint32(ifindex)))
	}
	ra := attr(addrAttrs(remote.Addr()), pmAddrAttrPort, binary.NativeEndian.AppendUint16(nil, remote.Port()))
	a := attr(nil, pmAttrToken, binary.NativeEndian.AppendUint32(nil, token))
	a = attr(a, pmAttrAddr|nlaFNested, la)
	a = attr(a, pmAttrAddrRemote|nlaFNested, ra)
	_, err := c.request(c.family, pmCmdSubflowCreate, mptcpPMFamilyVersion, a)
	if err != nil {
		return fmt.Errorf("subflow create %s -> %s: %w", local, remote, err)
	}
	return nil
}

// addrAttrs are the MPTCP_PM_ADDR_ATTR_* of an address.
func addrAttrs(a netip.Addr) []byte {
	if a.Is4() {
		b := attr(nil, pmAddrAttrFamily, binary.NativeEndian.AppendUint16(nil, syscall.AF_INET))
		ip := a.As4()
		return attr(b, pmAddrAttrAddr4, ip[:])
	}
	b := attr(nil, pmAddrAttrFamily, binary.NativeEndian.AppendUint16(nil, syscall.AF_INET6))
	ip := a.As16()
	return attr(b, pmAddrAttrAddr6, ip[:])
}

// attr appends a netlink attribute to b.
func attr(b []byte, typ uint16, val []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(val)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// attrs iterates over the attributes in b.
func attrs(b []byte) func(yield func(uint16, []byte) bool) {
	return func(yield func(uint16, []byte) bool) {
		for len(b) >= 4 {
			n := int(binary.NativeEndian.Uint16(b))
			if n < 4 || n > len(b) {
				return
			}
			if !yield(binary.NativeEndian.Uint16(b[2:])&^nlaFNested, b[4:n]) {
				return
			}
			b = b[min((n+3)&^3, len(b)):]
		}
	}
}

// request sends a generic netlink request with an ack and returns the
// attributes of its answer (nil for a bare ack), or the kernel's error
// with its extended-ack message.
func (c *genlConn) request(family uint16, cmd, version uint8, a []byte) ([]byte, error) {
	c.seq++
	msg := binary.NativeEndian.AppendUint32(nil, uint32(nlmsgHdrLen+genlHdrLen+len(a)))
	msg = binary.NativeEndian.AppendUint16(msg, family)
	msg = binary.NativeEndian.AppendUint16(msg, syscall.NLM_F_REQUEST|syscall.NLM_F_ACK)
	msg = binary.NativeEndian.AppendUint32(msg, c.seq)
	msg = binary.NativeEndian.AppendUint32(msg, 0)
	msg = append(msg, cmd, version, 0, 0)
	msg = append(msg, a...)
	if err := syscall.Sendto(c.fd, msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return nil, err
	}
	var answer []byte
	buf := make([]byte, 1<<16)
	for {
		n, _, err := syscall.Recvfrom(c.fd, buf, 0)
		if err != nil {
			return nil, err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Header.Seq != c.seq {
				continue
			}
			if m.Header.Type != syscall.NLMSG_ERROR {
				if len(m.Data) >= genlHdrLen {
					answer = append([]byte(nil), m.Data[genlHdrLen:]...)
				}
				continue
			}
			if len(m.Data) < 4 {
				return nil, errors.New("short netlink error message")
			}
			errno := -int32(binary.NativeEndian.Uint32(m.Data))
			if errno == 0 {
				return answer, nil
			}
			err := error(syscall.Errno(errno))
			// With NETLINK_CAP_ACK only the request's header follows the
			// errno, then the extended-ack attributes.
			if m.Header.Flags&0x200 != 0 && len(m.Data) >= 4+nlmsgHdrLen {
				for typ, val := range attrs(m.Data[4+nlmsgHdrLen:]) {
					if typ == nlmsgerrAttrMsg {
						err = fmt.Errorf("%s: %w", strings.TrimRight(string(val), "\x00"), err)
					}
				}
			}
			return nil, err
		}
	}
}
