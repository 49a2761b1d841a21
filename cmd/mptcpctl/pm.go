package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/genl"
)

func (a *app) pmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pm [kernel|userspace]",
		Short: "Show or set the namespace's path manager",
		Long: `Show or set the namespace's path manager (sysctl net.mptcp.path_manager, or
net.mptcp.pm_type before Linux 6.15):

    kernel     the in-kernel path manager, driven by endpoints and limits
    userspace  a userspace daemon (mptcpgod, mptcpd) decides for each connection

A connection keeps the path manager it was created with. Setting needs
CAP_NET_ADMIN (root, or the daemon's unit).
With --json, pm prints {"path_manager": "kernel"|"userspace"}, after the change
when one is given.`,
		Example: "  mptcpctl pm\n  sudo mptcpctl pm userspace",
		Args:    maxArgs(1, "kernel or userspace"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.pm(args)
		},
		ValidArgs: []cobra.Completion{
			cobra.CompletionWithDesc("kernel", "the in-kernel path manager"),
			cobra.CompletionWithDesc("userspace", "a userspace daemon decides"),
		},
	}
}

// pm implements pm [kernel|userspace].
func (a *app) pm(args []string) error {
	var want genl.PathManager
	if len(args) == 1 {
		pm, err := parsePM(args[0])
		if err != nil {
			return err
		}
		want = pm
	}
	s, gc, err := a.openKernel()
	if err != nil {
		return err
	}
	defer s.Close()
	if want != "" {
		if err := gc.SetPathManager(want); err != nil {
			return pmSetError(want, err)
		}
		if !a.json {
			return nil
		}
	}
	pm, err := gc.PathManager()
	if err != nil {
		return kernelError("", err)
	}
	if a.json {
		return writeJSON(a.stdout, pmOut{PathManager: string(pm)})
	}
	_, err = fmt.Fprintln(a.stdout, pm)
	return err
}

// pmSetError explains a failure to set the path manager.
func pmSetError(want genl.PathManager, err error) error {
	if errors.Is(err, os.ErrPermission) {
		return &refusedError{msg: fmt.Sprintf("set path manager %s: permission denied: setting the path manager needs CAP_NET_ADMIN (try sudo)", want), err: err}
	}
	return kernelError("set path manager "+string(want), err)
}
