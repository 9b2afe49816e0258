package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/marquee-dev/marquee/tools/internal/generator"
)

func newGenerateCmd(e *env) *cobra.Command {
	var (
		count       uint64
		start       uint64
		seed        uint64
		format      string
		yearSource  string
		profilePath string
	)
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write synthetic movies as NDJSON to standard output",
		Long: `generate writes --count synthetic movies, one JSON object a line, following the
distributions of data/generator_profile.json (genres and genre pairs, scores by genre,
votes, years by decade, directors and cast with power-law careers, title lengths).
The output is the Wikipedia file's shape plus imdbScore, votes, popularity and
runtimeMinutes, so it can be piped into "marquee import --format wikipedia -".

The same --seed always gives the same movies; movie i does not depend on the others,
so --start picks a range (for example to generate a large catalogue in parallel).
Memory use does not depend on --count.`,
		Example: `  marquee generate --count 1000 --seed 42 > movies.ndjson
  marquee generate --count 25000000 | gzip > movies.ndjson.gz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "ndjson" {
				return fmt.Errorf("unknown --format %q: only ndjson is supported", format)
			}
			profile, err := loadProfile(profilePath)
			if err != nil {
				return err
			}
			g, err := generator.New(profile, generator.Options{Seed: seed, YearSource: yearSource})
			if err != nil {
				return err
			}
			return g.WriteNDJSON(cmd.Context(), e.stdout, start, count)
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&count, "count", 1000, "number of movies")
	f.Uint64Var(&start, "start", 0, "index of the first movie")
	f.Uint64Var(&seed, "seed", 1, "seed; the same seed gives the same movies")
	f.StringVar(&format, "format", "ndjson", "output format (ndjson)")
	f.StringVar(&yearSource, "years", generator.DefaultYearSource,
		"year distribution of the profile: "+strings.Join([]string{"movie_metadata", "movielens", "wikipedia_us_films"}, ", "))
	f.StringVar(&profilePath, "profile", "", "generator profile JSON (default: the embedded copy of data/generator_profile.json)")
	return cmd
}

func loadProfile(path string) (*generator.Profile, error) {
	if path == "" {
		return generator.DefaultProfile()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the profile: %w", err)
	}
	return generator.ParseProfile(data)
}
