package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/marquee-dev/marquee/tools/internal/configref"
)

func newConfigCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Print the reference table of every configuration key",
		Long: `config prints, as a Markdown table, every configuration key of every service
with its environment variable and default, read from the services' own Config
types. The README's reference table is this output.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprint(e.stdout, configref.Markdown())
			return err
		},
	}
}
