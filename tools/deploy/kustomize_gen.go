package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Release names and namespaces the kustomize tree is generated for (and that the runbook installs with).
const (
	ReleaseName      = "marquee"
	Namespace        = "marquee"
	MongoReleaseName = "marquee-mongodb"
	MongoNamespace   = "mongodb"
)

const generatedHeader = "# Generated from %s by `go run ./tools/deploy/cmd/genk8s` (run from the repository root).\n" +
	"# Do not edit: change the chart and regenerate; `go test ./deploy/...` in tools fails while this is stale.\n"

// monitoringValues switches on the objects that need the prometheus-operator CRDs or Grafana.
func monitoringValues() map[string]any {
	return map[string]any{
		"serviceMonitor": map[string]any{"enabled": true},
		"prometheusRule": map[string]any{"enabled": true},
		"dashboard":      map[string]any{"enabled": true},
	}
}

// GenerateKustomize renders the generated part of the k8s/ tree from the charts, as files keyed by their path
// relative to k8s/:
//   - base/: the system with the chart's default values (the monitoring objects left out), its service
//     ConfigMaps as configMapGenerator env files so that overlays can merge keys and pods roll on change;
//   - components/monitoring/: ServiceMonitor, PrometheusRule and Grafana dashboard, as a kustomize Component;
//   - mongodb/<region>/: the PerconaServerMongoDB resource of each region of charts/marquee-mongodb.
//
// The region overlays (k8s/overlays/<region>) are written by hand; a test checks that each builds to exactly
// what the chart renders with that region's values.
func GenerateKustomize(repo Repo, dec *Decoder) (map[string][]byte, error) {
	files := map[string][]byte{}
	base, err := renderNormalized(repo.Chart("marquee"), nil, ReleaseName, Namespace, dec)
	if err != nil {
		return nil, err
	}
	if err := writeBase(files, base); err != nil {
		return nil, err
	}
	withMonitoring, err := renderNormalizedValues(repo.Chart("marquee"), monitoringValues(), ReleaseName, Namespace, dec)
	if err != nil {
		return nil, err
	}
	var monitoring []*Object
	for _, o := range withMonitoring {
		if componentOf(o) == "monitoring" {
			monitoring = append(monitoring, o)
		}
	}
	if err := writeObjects(files, "components/monitoring/monitoring.yaml", "charts/marquee (monitoring enabled)", monitoring); err != nil {
		return nil, err
	}
	files["components/monitoring/kustomization.yaml"] = []byte(fmt.Sprintf(generatedHeader, "charts/marquee") +
		"# The monitoring objects (prometheus-operator and Grafana); overlays include this Component.\n" +
		"apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n  - monitoring.yaml\n")

	regions, err := repo.Regions("marquee-mongodb")
	if err != nil {
		return nil, err
	}
	for _, region := range regions {
		objs, err := renderNormalized(repo.Chart("marquee-mongodb"), []string{repo.RegionValues("marquee-mongodb", region)}, MongoReleaseName, MongoNamespace, dec)
		if err != nil {
			return nil, err
		}
		dir := "mongodb/" + region
		if err := writeObjects(files, dir+"/perconaservermongodb.yaml", "charts/marquee-mongodb/values-"+region+".yaml", objs); err != nil {
			return nil, err
		}
		files[dir+"/kustomization.yaml"] = []byte(fmt.Sprintf(generatedHeader, "charts/marquee-mongodb/values-"+region+".yaml") +
			"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: " + MongoNamespace +
			"\nresources:\n  - perconaservermongodb.yaml\n")
	}
	return files, nil
}

// renderNormalized renders a chart with value files and returns its objects in the form kustomize deploys them.
func renderNormalized(chartDir string, valueFiles []string, release, namespace string, dec *Decoder) ([]*Object, error) {
	r, err := RenderChart(chartDir, valueFiles, release, namespace)
	if err != nil {
		return nil, err
	}
	return decodeNormalized(r, dec)
}

func renderNormalizedValues(chartDir string, vals map[string]any, release, namespace string, dec *Decoder) ([]*Object, error) {
	r, err := RenderChartValues(chartDir, vals, release, namespace)
	if err != nil {
		return nil, err
	}
	return decodeNormalized(r, dec)
}

func decodeNormalized(r *Render, dec *Decoder) ([]*Object, error) {
	objs, err := dec.DecodeRender(r)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		NormalizeHelmObject(o.Raw)
	}
	return objs, nil
}

// NormalizeHelmObject removes from a rendered object what only Helm uses: the chart and manager labels, hook
// annotations (the bootstrap Job becomes a plain Job) and the config checksum annotations (kustomize rolls pods
// through hashed ConfigMap names instead). The namespace is dropped: kustomize sets it.
func NormalizeHelmObject(raw map[string]any) {
	clean := func(meta map[string]any) {
		if meta == nil {
			return
		}
		if l, ok := meta["labels"].(map[string]any); ok {
			delete(l, "helm.sh/chart")
			delete(l, "app.kubernetes.io/managed-by")
		}
		if a, ok := meta["annotations"].(map[string]any); ok {
			for k := range a {
				if strings.HasPrefix(k, "helm.sh/") || strings.HasPrefix(k, "checksum/") {
					delete(a, k)
				}
			}
			if len(a) == 0 {
				delete(meta, "annotations")
			}
		}
	}
	meta, _ := raw["metadata"].(map[string]any)
	clean(meta)
	delete(meta, "namespace")
	if spec, ok := raw["spec"].(map[string]any); ok {
		if tpl, ok := spec["template"].(map[string]any); ok {
			tm, _ := tpl["metadata"].(map[string]any)
			clean(tm)
		}
	}
}

func componentOf(o *Object) string {
	meta, _ := o.Raw["metadata"].(map[string]any)
	l, _ := meta["labels"].(map[string]any)
	c, _ := l["app.kubernetes.io/component"].(string)
	return c
}

// isServiceConfig reports whether a ConfigMap is a service's environment (generated from env files in the base).
func isServiceConfig(o *Object) bool {
	if o.Kind != "ConfigMap" || !strings.HasSuffix(o.Name, "-config") {
		return false
	}
	data, _ := o.Raw["data"].(map[string]any)
	envName := regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	for k := range data {
		if !envName.MatchString(k) {
			return false
		}
	}
	return len(data) > 0
}

func writeBase(files map[string][]byte, objs []*Object) error {
	byFile := map[string][]*Object{}
	type gen struct {
		name   string
		env    string
		labels map[string]any
	}
	var gens []gen
	for _, o := range objs {
		if isServiceConfig(o) {
			data := o.Raw["data"].(map[string]any)
			var b strings.Builder
			for _, k := range sortedKeys(data) {
				v, _ := data[k].(string)
				if strings.ContainsAny(v, "\n\r") {
					return fmt.Errorf("generating the base: %s key %s holds a newline, which env files cannot", o.ID(), k)
				}
				fmt.Fprintf(&b, "%s=%s\n", k, v)
			}
			envFile := "config/" + o.Name + ".env"
			files["base/"+envFile] = []byte(b.String())
			meta := o.Raw["metadata"].(map[string]any)
			lbls, _ := meta["labels"].(map[string]any)
			gens = append(gens, gen{name: o.Name, env: envFile, labels: lbls})
			continue
		}
		c := componentOf(o)
		if c == "" {
			return fmt.Errorf("generating the base: %s has no app.kubernetes.io/component label", o.ID())
		}
		byFile[c+".yaml"] = append(byFile[c+".yaml"], o)
	}
	names := sortedKeys(byFile)
	for _, f := range names {
		if err := writeObjects(files, "base/"+f, "charts/marquee (default values)", byFile[f]); err != nil {
			return err
		}
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i].name < gens[j].name })
	k := map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1",
		"kind":       "Kustomization",
		"resources":  names,
	}
	var cmg []any
	for _, g := range gens {
		cmg = append(cmg, map[string]any{
			"name":    g.name,
			"envs":    []any{g.env},
			"options": map[string]any{"labels": g.labels},
		})
	}
	k["configMapGenerator"] = cmg
	out, err := yaml.Marshal(k)
	if err != nil {
		return fmt.Errorf("encoding the base kustomization: %w", err)
	}
	files["base/kustomization.yaml"] = append([]byte(fmt.Sprintf(generatedHeader, "charts/marquee (default values)")+
		"# Region differences live in ../overlays/<region>; monitoring objects in ../components/monitoring.\n"), out...)
	return nil
}

// kindRank sorts objects the way they are read: identity and configuration first, then workloads, then the
// objects that point at them.
func kindRank(kind string) int {
	order := []string{"Namespace", "ServiceAccount", "ConfigMap", "Service", "Deployment", "StatefulSet", "Job",
		"HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "Ingress"}
	for i, k := range order {
		if k == kind {
			return i
		}
	}
	return len(order)
}

func writeObjects(files map[string][]byte, name, from string, objs []*Object) error {
	sorted := append([]*Object(nil), objs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		oi, oj := kindRank(sorted[i].Kind), kindRank(sorted[j].Kind)
		if oi != oj {
			return oi < oj
		}
		if sorted[i].Kind != sorted[j].Kind {
			return sorted[i].Kind < sorted[j].Kind
		}
		return sorted[i].Name < sorted[j].Name
	})
	var b bytes.Buffer
	fmt.Fprintf(&b, generatedHeader, from)
	for i, o := range sorted {
		if i > 0 {
			b.WriteString("---\n")
		}
		y, err := yaml.Marshal(o.Raw)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", o.ID(), err)
		}
		b.Write(y)
	}
	files[name] = b.Bytes()
	return nil
}

// CanonicalObjects maps each object's Kind/name to its canonical JSON, for comparing a Helm render with a
// kustomize build: namespaces are dropped, the content hashes of generated ConfigMap names are removed (in the
// names and in every reference to them) and keyed lists are put in a fixed order.
func CanonicalObjects(objs []*Object, generated []string) (map[string]any, error) {
	// The content hash kustomize appends to generated ConfigMap names.
	hashSuffix := regexp.MustCompile(`^(.+)-[a-z0-9]{10}$`)
	rename := map[string]string{}
	for _, o := range objs {
		if o.Kind != "ConfigMap" {
			continue
		}
		if m := hashSuffix.FindStringSubmatch(o.Name); m != nil {
			for _, g := range generated {
				if g == m[1] {
					rename[o.Name] = g
				}
			}
		}
	}
	out := map[string]any{}
	for _, o := range objs {
		js, err := json.Marshal(o.Raw)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", o.ID(), err)
		}
		s := string(js)
		for from, to := range rename {
			s = strings.ReplaceAll(s, `"`+from+`"`, `"`+to+`"`)
		}
		var v map[string]any
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", o.ID(), err)
		}
		if meta, ok := v["metadata"].(map[string]any); ok {
			delete(meta, "namespace")
		}
		sortKeyedLists(v)
		name := o.Name
		if to, ok := rename[name]; ok {
			name = to
		}
		out[o.Kind+"/"+name] = v
	}
	return out, nil
}

// sortKeyedLists orders, in place, the lists whose order carries no meaning and that strategic merge patches
// reorder: lists of objects keyed by name (containers, env, ports, volumes) or by topologyKey (spread
// constraints).
func sortKeyedLists(v any) {
	switch x := v.(type) {
	case map[string]any:
		for _, c := range x {
			sortKeyedLists(c)
		}
	case []any:
		for _, c := range x {
			sortKeyedLists(c)
		}
		for _, key := range []string{"name", "topologyKey"} {
			if keyed(x, key) {
				sort.SliceStable(x, func(i, j int) bool {
					return fmt.Sprint(x[i].(map[string]any)[key]) < fmt.Sprint(x[j].(map[string]any)[key])
				})
				return
			}
		}
	}
}

func keyed(list []any, key string) bool {
	if len(list) < 2 {
		return false
	}
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return false
		}
		if _, ok := m[key]; !ok {
			return false
		}
	}
	return true
}

// GeneratedConfigMaps lists the ConfigMap names the base generates (for CanonicalObjects).
func GeneratedConfigMaps(files map[string][]byte) []string {
	var names []string
	for f := range files {
		if strings.HasPrefix(f, "base/config/") {
			names = append(names, strings.TrimSuffix(path.Base(f), ".env"))
		}
	}
	sort.Strings(names)
	return names
}

// DiffValues lists the paths where two JSON values differ.
func DiffValues(p string, a, b any) []string {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %s vs %s", p, short(a), short(b))}
		}
		var out []string
		keys := map[string]bool{}
		for k := range av {
			keys[k] = true
		}
		for k := range bv {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			out = append(out, DiffValues(p+"."+k, av[k], bv[k])...)
		}
		return out
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return []string{fmt.Sprintf("%s: %s vs %s", p, short(a), short(b))}
		}
		var out []string
		for i := range av {
			out = append(out, DiffValues(fmt.Sprintf("%s[%d]", p, i), av[i], bv[i])...)
		}
		return out
	default:
		if !reflect.DeepEqual(a, b) {
			return []string{fmt.Sprintf("%s: %s vs %s", p, short(a), short(b))}
		}
		return nil
	}
}

func short(v any) string {
	if v == nil {
		return "(absent)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}
