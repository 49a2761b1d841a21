package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

//go:generate go run . gen-docs ../../docs/man ../../dist/completions

// Stdout and Stderr are where mptcpctl writes; tests replace them.
var (
	Stdout io.Writer = os.Stdout
	Stderr io.Writer = os.Stderr
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], Stdout, Stderr)
	stop()
	os.Exit(code)
}
