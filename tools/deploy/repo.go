package deploy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Repo locates the deployment artefacts of a checkout.
type Repo struct {
	// Root is the repository root (the directory holding charts/ and k8s/).
	Root string
}

// FindRepo walks up from dir to the directory that holds charts/marquee/Chart.yaml.
func FindRepo(dir string) (Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Repo{}, fmt.Errorf("resolving %s: %w", dir, err)
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "charts", "marquee", "Chart.yaml")); err == nil {
			return Repo{Root: d}, nil
		}
		if filepath.Dir(d) == d {
			return Repo{}, errors.New("finding the repository root: no charts/marquee/Chart.yaml above " + abs)
		}
	}
}

// Chart returns the directory of the named chart.
func (r Repo) Chart(name string) string { return filepath.Join(r.Root, "charts", name) }

// K8s returns a path under k8s/.
func (r Repo) K8s(elem ...string) string {
	return filepath.Join(append([]string{r.Root, "k8s"}, elem...)...)
}

// Regions lists the regions that have a values-<region>.yaml in the named chart, sorted.
func (r Repo) Regions(chart string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(r.Chart(chart), "values-*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("listing region values of %s: %w", chart, err)
	}
	regions := make([]string, 0, len(matches))
	for _, m := range matches {
		regions = append(regions, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), "values-"), ".yaml"))
	}
	sort.Strings(regions)
	return regions, nil
}

// RegionValues returns the path of a chart's values file for a region.
func (r Repo) RegionValues(chart, region string) string {
	return filepath.Join(r.Chart(chart), "values-"+region+".yaml")
}

// CRDFiles lists the CustomResourceDefinition files under k8s/crds.
func (r Repo) CRDFiles() ([]string, error) {
	matches, err := filepath.Glob(r.K8s("crds", "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("listing CRDs: %w", err)
	}
	var files []string
	for _, m := range matches {
		if filepath.Base(m) != "kustomization.yaml" {
			files = append(files, m)
		}
	}
	if len(files) == 0 {
		return nil, errors.New("listing CRDs: none under " + r.K8s("crds"))
	}
	return files, nil
}

// LoadProjectCRDs loads the CRDs the project carries under k8s/crds.
func LoadProjectCRDs(r Repo) (*CRDSet, error) {
	files, err := r.CRDFiles()
	if err != nil {
		return nil, err
	}
	return LoadCRDs(files...)
}

// generatedDirs are the directories of k8s/ that GenerateKustomize owns entirely.
func generatedDirs() []string { return []string{"base", "components/monitoring", "mongodb"} }

// StaleGeneratedFiles compares generated files (keyed by path relative to k8s/) with the tree on disk and lists,
// sorted, those that differ or are missing, and the files under the generated directories that are no longer
// generated.
func StaleGeneratedFiles(r Repo, files map[string][]byte) ([]string, error) {
	var stale []string
	for name, want := range files {
		got, err := os.ReadFile(r.K8s(filepath.FromSlash(name)))
		if err != nil || string(got) != string(want) {
			stale = append(stale, name)
		}
	}
	for _, dir := range generatedDirs() {
		root := r.K8s(filepath.FromSlash(dir))
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return filepath.SkipDir
				}
				return err
			}
			if d.IsDir() {
				return nil
			}
			rel, err := filepath.Rel(r.K8s(), p)
			if err != nil {
				return err
			}
			if _, ok := files[filepath.ToSlash(rel)]; !ok {
				stale = append(stale, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("walking %s: %w", root, err)
		}
	}
	sort.Strings(stale)
	return stale, nil
}
