package main

import (
	"github.com/spf13/cobra"

	"github.com/marquee-dev/marquee/tools/internal/bench"
)

func newBenchCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "bench [flags]",
		Short: "Drive a running stack (or one it starts) with realistic traffic and report",
		Long: `bench runs open-model load with the realistic mix (Zipf-distributed movie ids,
reads by id, lists, search, suggest, authenticated calls and writes) at a target
rate, measures the baselines in the same run, and reports throughput, latency
percentiles, errors, the cache hit ratio and CPU and RSS per service, as JSON and
as a Markdown table appended to docs/benchmarks.md. Run "marquee bench -h" for
its flags; -spawn starts the services as separate processes.`,
		DisableFlagParsing: true, // bench parses its own flags
		RunE: func(cmd *cobra.Command, args []string) error {
			return bench.Main(cmd.Context(), args, e.stdout, e.stderr)
		},
	}
}
