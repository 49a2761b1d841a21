// Command sockloop times socket(AF_INET, SOCK_STREAM, 0) and close in a C
// loop, through the C library, so that a preload library (mptcpize) sees
// the calls as well as a seccomp filter does. It prints the nanoseconds
// per socket and close, and the protocol (SO_PROTOCOL) of the sockets:
//
//	sockloop CALLS [PROTOCOL]
package main

/*
#include <errno.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// loop opens and closes n sockets and returns the nanoseconds it took,
// or -errno.
static long long loop(int n, int protocol) {
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, protocol);
		if (fd < 0)
			return -errno;
		close(fd);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
}

// protocol_of returns SO_PROTOCOL of a new socket, or -errno.
static int protocol_of(int protocol) {
	int fd = socket(AF_INET, SOCK_STREAM, protocol), p = 0;
	socklen_t len = sizeof p;
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &p, &len) < 0)
		p = -errno;
	close(fd);
	return p;
}
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: sockloop CALLS [PROTOCOL]")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "sockloop: CALLS %q: want a positive number\n", os.Args[1])
		os.Exit(2)
	}
	proto := 0
	if len(os.Args) == 3 {
		if proto, err = strconv.Atoi(os.Args[2]); err != nil {
			fmt.Fprintf(os.Stderr, "sockloop: PROTOCOL %q: want a number\n", os.Args[2])
			os.Exit(2)
		}
	}
	p := int(C.protocol_of(C.int(proto)))
	ns := int64(C.loop(C.int(n), C.int(proto)))
	if p < 0 || ns < 0 {
		fmt.Fprintf(os.Stderr, "sockloop: socket: %v\n", syscall.Errno(-min(p, int(ns))))
		os.Exit(1)
	}
	fmt.Printf("%d %.1f\n", p, float64(ns)/float64(n))
}
