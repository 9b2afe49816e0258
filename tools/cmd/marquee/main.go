// Command marquee is the project's command-line tool: it runs the dev stack,
// imports movie files into the catalog and generates synthetic catalogues of
// any size. Each
// subcommand lives in its own file and is listed in commands().
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], newEnv())
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "marquee:", err)
		os.Exit(1)
	}
}

// env is what commands may touch of the outside world, so that tests can
// run them in-process with their own streams and environment.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// isTerminal tells whether w is an interactive terminal (progress bars
	// are drawn only there).
	isTerminal func(w io.Writer) bool
}

func newEnv() *env {
	return &env{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
		isTerminal: func(w io.Writer) bool {
			f, ok := w.(*os.File)
			return ok && term.IsTerminal(int(f.Fd()))
		},
	}
}

// commands lists the subcommands. Adding one is a constructor in its own
// file and a line here.
func commands() []func(*env) *cobra.Command {
	return []func(*env) *cobra.Command{
		newDevCmd,
		newImportCmd,
		newGenerateCmd,
		newConfigCmd,
		newBenchCmd,
	}
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "marquee",
		Short:         "Marquee's command-line tool",
		Long:          "marquee imports movie files into the catalog and generates synthetic catalogues.",
		SilenceUsage:  true, // errors are about the work, not the syntax
		SilenceErrors: true, // main prints the error once
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.CompletionOptions.DisableDefaultCmd = true
	for _, c := range commands() {
		root.AddCommand(c(e))
	}
	return root
}

// run executes the command line args.
func run(ctx context.Context, args []string, e *env) error {
	root := newRootCmd(e)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
