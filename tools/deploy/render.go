package deploy

import (
	"fmt"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
)

// KubeVersion is the Kubernetes version charts are rendered for (the oldest minor the project supports is
// set by each chart's kubeVersion; rendering checks that constraint too).
const KubeVersion = "v1.33.0"

// Render is the outcome of rendering one chart with one set of values.
type Render struct {
	// Manifests are the rendered documents, hooks included, in a stable order.
	Manifests []Manifest
	// Notes is the rendered NOTES.txt.
	Notes string
}

// Manifest is one rendered YAML document and the template it came from.
type Manifest struct {
	Source  string
	Content string
}

// RenderChart renders a chart as `helm install --dry-run=client` would: dependencies are processed, values are
// merged over the chart's defaults (later files win) and validated against values.schema.json, the chart's
// kubeVersion constraint is checked, and hook manifests are returned along with the others.
func RenderChart(chartDir string, valueFiles []string, releaseName, namespace string) (*Render, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", chartDir, err)
	}
	vals := map[string]any{}
	for _, f := range valueFiles {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading values %s: %w", f, err)
		}
		vals = mergeValues(vals, v.AsMap())
	}
	return renderLoaded(chrt, vals, releaseName, namespace)
}

// RenderChartValues renders a chart with values given as a map (merged over the chart's defaults).
func RenderChartValues(chartDir string, vals map[string]any, releaseName, namespace string) (*Render, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", chartDir, err)
	}
	return renderLoaded(chrt, vals, releaseName, namespace)
}

func renderLoaded(c *chart.Chart, vals map[string]any, releaseName, namespace string) (*Render, error) {
	kv, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		return nil, fmt.Errorf("parsing kube version: %w", err)
	}
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.DryRun = true
	inst.DryRunOption = "client"
	inst.ClientOnly = true
	inst.Replace = true
	inst.ReleaseName = releaseName
	inst.Namespace = namespace
	inst.KubeVersion = kv
	rel, err := inst.Run(c, vals)
	if err != nil {
		return nil, fmt.Errorf("rendering chart %s: %w", c.Name(), err)
	}
	out := &Render{Notes: rel.Info.Notes}
	docs := releaseutil.SplitManifests(rel.Manifest)
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out.Manifests = append(out.Manifests, Manifest{Source: sourceOf(docs[k]), Content: docs[k]})
	}
	for _, h := range rel.Hooks {
		out.Manifests = append(out.Manifests, Manifest{Source: h.Path, Content: h.Manifest})
	}
	return out, nil
}

// sourceOf returns the template named by Helm's "# Source:" comment of a document.
func sourceOf(doc string) string {
	for _, line := range strings.Split(doc, "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "# Source: "); ok {
			return s
		}
	}
	return "(unknown template)"
}

// mergeValues deep-merges src over dst as Helm merges several -f files: maps merge key by key, anything else
// (lists included) is replaced.
func mergeValues(dst, src map[string]any) map[string]any {
	out := make(map[string]any, len(dst)+len(src))
	for k, v := range dst {
		out[k] = v
	}
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(dm, sm)
				continue
			}
		}
		out[k] = v
	}
	return out
}
