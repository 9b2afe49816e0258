package main

import (
	"github.com/spf13/cobra"

	"github.com/marquee-dev/marquee/tools/internal/devstack"
)

// dataDirEnv names the dev stack's data directory.
const dataDirEnv = "MARQUEE_DATA_DIR"

func devDataDir(e *env) string {
	if d := e.getenv(dataDirEnv); d != "" {
		return d
	}
	return "./.data"
}

func newDevCmd(e *env) *cobra.Command {
	var (
		service string
		seed    string
		sets    []string
		cfgFile string
	)
	cmd := &cobra.Command{
		Use:   "dev [--service NAME]",
		Short: "Run the whole stack on this machine",
		Long: `dev starts an embedded MongoDB-compatible engine (FerretDB on SQLite, files under
$MARQUEE_DATA_DIR, default ./.data) and every service on its own loopback port,
talking real gRPC to each other. The first start loads the seed catalogue and
creates an administrator (MARQUEE_ADMIN_EMAIL / MARQUEE_ADMIN_PASSWORD, or a
generated password printed once). Ctrl-C stops everything.

With --service it runs one service alone, which then expects the others at
their configured addresses.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var args []string
			if cfgFile != "" {
				args = append(args, "--config", cfgFile)
			}
			for _, s := range sets {
				args = append(args, "--set", s)
			}
			return devstack.Run(cmd.Context(), devstack.Options{
				Service:  service,
				Args:     args,
				Out:      e.stdout,
				Logs:     e.stderr,
				SeedFile: seed,
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&service, "service", "", "run only this service: auth, catalog, search or gateway")
	fl.StringVar(&seed, "seed", "data/imdb.json", "the catalogue loaded when the catalog is empty (\"\" for none)")
	fl.StringArrayVar(&sets, "set", nil, "a configuration key=value for every service (repeatable)")
	fl.StringVar(&cfgFile, "config", "", "a YAML configuration file")
	return cmd
}
