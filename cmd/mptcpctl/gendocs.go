package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mptcpgod/mptcpgod/internal/mandoc"
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
	if err := genManTree(root, manDir); err != nil {
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

// genManTree writes the man page (section 8) of cmd and of each of its
// commands into dir, named after the command's path with "-" for spaces:
// mptcpctl-endpoints-add.8.
func genManTree(cmd *cobra.Command, dir string) error {
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
			continue
		}
		if err := genManTree(c, dir); err != nil {
			return err
		}
	}
	page, err := manPage(cmd)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, manName(cmd)+".8"), page, 0o644)
}

// manName is cmd's page name: its path with "-" for spaces.
func manName(cmd *cobra.Command) string { return strings.ReplaceAll(cmd.CommandPath(), " ", "-") }

// manPage is cmd's man page: its long help as the description, its
// options as tagged paragraphs, its examples, its parent and its
// commands. The help texts are Markdown, as cobra's generator took them.
func manPage(cmd *cobra.Command) ([]byte, error) {
	cmd.InitDefaultHelpFlag()
	page := mandoc.Page{
		Name: manName(cmd), Section: "8", Date: manDate.Format(time.DateOnly),
		Description: cmd.Short, Source: "mptcpgod", Manual: "mptcpgod manual",
		Synopsis: []string{"`" + cmd.UseLine() + "`"},
	}
	var body strings.Builder
	if cmd.Long != "" {
		body.WriteString(cmd.Long + "\n\n")
	} else {
		body.WriteString(cmd.Short + "\n\n")
	}
	manFlags(&body, "Options", cmd.NonInheritedFlags())
	manFlags(&body, "Options inherited from parent commands", cmd.InheritedFlags())
	if cmd.Example != "" {
		fmt.Fprintf(&body, "## Example\n\n```\n%s\n```\n\n", cmd.Example)
	}
	if cmd.HasParent() {
		page.SeeAlso = append(page.SeeAlso, manName(cmd.Parent())+"(8)")
	}
	children := cmd.Commands()
	slices.SortFunc(children, func(a, b *cobra.Command) int { return strings.Compare(a.Name(), b.Name()) })
	for _, c := range children {
		if c.IsAvailableCommand() && !c.IsAdditionalHelpTopicCommand() {
			page.SeeAlso = append(page.SeeAlso, manName(c)+"(8)")
		}
	}
	return mandoc.FromMarkdown(page, []byte(body.String()))
}

// manFlags writes a section titled title of the flags, each a term
// ("`-n`, `--netns` *NAME*") and its usage, with its default when it is
// not the zero value.
func manFlags(w *strings.Builder, title string, flags *pflag.FlagSet) {
	if !flags.HasAvailableFlags() {
		return
	}
	fmt.Fprintf(w, "## %s\n\n", title)
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Deprecated != "" {
			return
		}
		term := "`--" + f.Name + "`"
		if f.Shorthand != "" && f.ShorthandDeprecated == "" {
			term = "`-" + f.Shorthand + "`, " + term
		}
		arg, usage := pflag.UnquoteUsage(f)
		if arg != "" && f.NoOptDefVal == "" {
			term += " *" + arg + "*"
		}
		switch f.DefValue {
		case "", "false", "0", "[]":
		default:
			usage += " (default `" + f.DefValue + "`)"
		}
		fmt.Fprintf(w, "%s\n: %s\n\n", term, usage)
	})
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
