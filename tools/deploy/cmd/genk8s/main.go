// Command genk8s regenerates the generated part of the kustomize tree (k8s/base, k8s/components/monitoring,
// k8s/mongodb/<region>) from the Helm charts, so that the raw manifests and the charts deploy the same system.
//
// Usage, from the repository root: go run ./tools/deploy/cmd/genk8s [-check]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/marquee-dev/marquee/tools/deploy"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genk8s:", err)
		os.Exit(1)
	}
}

func run() error {
	root := flag.String("root", ".", "a directory inside the repository")
	check := flag.Bool("check", false, "only report whether the generated files are up to date (exit 1 if not)")
	flag.Parse()

	repo, err := deploy.FindRepo(*root)
	if err != nil {
		return err
	}
	crds, err := deploy.LoadProjectCRDs(repo)
	if err != nil {
		return err
	}
	dec, err := deploy.NewDecoder(crds)
	if err != nil {
		return err
	}
	files, err := deploy.GenerateKustomize(repo, dec)
	if err != nil {
		return err
	}
	stale, err := deploy.StaleGeneratedFiles(repo, files)
	if err != nil {
		return err
	}
	if *check {
		if len(stale) > 0 {
			return fmt.Errorf("out of date (run go run ./tools/deploy/cmd/genk8s): %v", stale)
		}
		return nil
	}
	for _, name := range sortedNames(files) {
		p := repo.K8s(filepath.FromSlash(name))
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, files[name]) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", filepath.Dir(p), err)
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		fmt.Println("wrote", p)
	}
	for _, name := range stale {
		if _, ok := files[name]; ok {
			continue
		}
		p := repo.K8s(filepath.FromSlash(name))
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("removing %s: %w", p, err)
		}
		fmt.Println("removed", p)
	}
	return nil
}

func sortedNames(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
