package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
)

// TestValuesRejectedBySchema renders each chart with value files that must be refused: unknown keys, wrong types,
// mutable image tags, secrets in values, removed required settings, open network rules.
func TestValuesRejectedBySchema(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		file, chart, mention string
	}{
		{"marquee-unknown-key.yaml", "marquee", "replicaCount"},
		{"marquee-wrong-type.yaml", "marquee", "replicas"},
		{"marquee-latest-tag.yaml", "marquee", "tag"},
		{"marquee-secret-in-values.yaml", "marquee", "mongo.uri"},
		{"marquee-missing-limits.yaml", "marquee", "limits"},
		{"marquee-open-egress.yaml", "marquee", "peers"},
		{"marquee-bad-duration.yaml", "marquee", "max_lag"},
		{"mongodb-unknown-key.yaml", "marquee-mongodb", "replicas"},
		{"mongodb-wrong-type.yaml", "marquee-mongodb", "shards"},
		{"mongodb-replica-with-backup.yaml", "marquee-mongodb", "enabled"},
		{"mongodb-latest-image.yaml", "marquee-mongodb", "mongod"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			_, err := RenderChart(f.repo.Chart(c.chart), []string{filepath.Join("testdata", "values", c.file)}, "marquee", "marquee")
			if err == nil {
				t.Fatalf("%s accepted %s", c.chart, c.file)
			}
			if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("%s refused %s, but not by its schema naming %q: %v", c.chart, c.file, c.mention, err)
			}
		})
	}
}

// TestValuesDocumented requires a `# --` comment on every value of every chart's values.yaml (a comment on a key
// documents its whole subtree), and a description on every property of values.schema.json, whose objects must
// all refuse unknown keys.
func TestValuesDocumented(t *testing.T) {
	f := newFixture(t)
	for _, chart := range []string{"marquee", "marquee-mongodb"} {
		t.Run(chart, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(f.repo.Chart(chart), "values.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var doc yamlv3.Node
			if err := yamlv3.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Content) != 1 || doc.Content[0].Kind != yamlv3.MappingNode {
				t.Fatal("values.yaml is not a mapping")
			}
			for _, missing := range undocumented(doc.Content[0], "") {
				t.Errorf("values.yaml: %s has no `# --` comment", missing)
			}

			raw, err := os.ReadFile(filepath.Join(f.repo.Chart(chart), "values.schema.json"))
			if err != nil {
				t.Fatal(err)
			}
			var schema map[string]any
			if err := json.Unmarshal(raw, &schema); err != nil {
				t.Fatal(err)
			}
			for _, p := range looseSchema(schema, "") {
				t.Errorf("values.schema.json: %s", p)
			}
		})
	}
}

func undocumented(m *yamlv3.Node, prefix string) []string {
	var out []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		name := prefix + k.Value
		if strings.Contains(k.HeadComment, "# --") {
			continue
		}
		if v.Kind == yamlv3.MappingNode && len(v.Content) > 0 {
			out = append(out, undocumented(v, name+".")...)
			continue
		}
		out = append(out, name)
	}
	return out
}

func looseSchema(s map[string]any, at string) []string {
	var out []string
	if props, ok := s["properties"].(map[string]any); ok {
		if ap, ok := s["additionalProperties"]; !ok || ap != false {
			out = append(out, at+": an object schema with properties must set additionalProperties: false")
		}
		for name, p := range props {
			pm, ok := p.(map[string]any)
			if !ok {
				continue
			}
			if _, ok := pm["description"]; !ok {
				out = append(out, at+"."+name+": no description")
			}
			out = append(out, looseSchema(pm, at+"."+name)...)
		}
	}
	if defs, ok := s["$defs"].(map[string]any); ok {
		for name, d := range defs {
			if dm, ok := d.(map[string]any); ok {
				out = append(out, looseSchema(dm, "$defs."+name)...)
			}
		}
	}
	for _, k := range []string{"items", "additionalProperties"} {
		if sub, ok := s[k].(map[string]any); ok {
			out = append(out, looseSchema(sub, at+"."+k)...)
		}
	}
	return out
}
