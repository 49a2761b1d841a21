package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manDate is the date printed in the man pages. It is fixed so that the
// generated files change only when the commands do; move it forward when
// they do.
var manDate = time.Date(2026, time.November, 23, 0, 0, 0, 0, time.UTC)

// Completion script file names, as bash-completion, zsh and fish look for
// them.
const (
	bashCompletion = "mptcpctl.bash"
	zshCompletion  = "_mptcpctl"
	fishCompletion = "mptcpctl.fish"
)

func (a *app) genDocsCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-docs MANDIR COMPLETIONDIR",
		Short:  "Write the man pages and the shell completion scripts",
		Hidden: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("expected MANDIR COMPLETIONDIR, got %d words", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return genDocs(cmd.Root(), args[0], args[1])
		},
	}
}

// genDocs writes the man pages of root's command tree (section 8) into
// manDir, replacing any mptcpctl*.8 already there, and the bash, zsh and
// fish completion scripts into complDir.
func genDocs(root *cobra.Command, manDir, complDir string) error {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.InitDefaultVersionFlag()
	for _, d := range []string{manDir, complDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	old, err := filepath.Glob(filepath.Join(manDir, "mptcpctl*.8"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	header := &doc.GenManHeader{Section: "8", Source: "mptcpgod", Manual: "mptcpgod manual", Date: &manDate}
	if err := doc.GenManTree(root, header, manDir); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	gens := []struct {
		name string
		gen  func(string) error
	}{
		{bashCompletion, func(p string) error { return root.GenBashCompletionFileV2(p, true) }},
		{zshCompletion, root.GenZshCompletionFile},
		{fishCompletion, func(p string) error { return root.GenFishCompletionFile(p, true) }},
	}
	for _, g := range gens {
		if err := g.gen(filepath.Join(complDir, g.name)); err != nil {
			return fmt.Errorf("completion %s: %w", g.name, err)
		}
	}
	return nil
}

// completeNetns completes -n with the names in /run/netns.
func completeNetns(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	ents, err := os.ReadDir(netnsDir)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
