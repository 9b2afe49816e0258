package deploy

import (
	"encoding/json"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// TestStrictDecodingRejects feeds the decoder objects a cluster would refuse or silently alter.
func TestStrictDecodingRejects(t *testing.T) {
	f := newFixture(t)
	cases := map[string]struct{ doc, mention string }{
		"unknown field": {`apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replica: 2
  selector: {matchLabels: {a: b}}
  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: "i:1"}]}}
`, `unknown field "spec.replica"`},
		"wrong type": {`apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replicas: "2"
  selector: {matchLabels: {a: b}}
  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: "i:1"}]}}
`, "replicas"},
		"bad quantity": {`apiVersion: v1
kind: Pod
metadata: {name: x}
spec: {containers: [{name: c, image: "i:1", resources: {limits: {memory: 1Gigabyte}}}]}
`, "quantities must match"},
		"duplicate key": {`apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data:
  A: "1"
  A: "2"
`, "duplicate"},
		"unknown kind": {`apiVersion: example.com/v1
kind: Widget
metadata: {name: x}
`, "no schema known"},
		"servicemonitor unknown field": {`apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  endpoints: [{prot: admin}]
`, `unknown field "spec.endpoints[0].prot"`},
		"psmdb unknown field": {`apiVersion: psmdb.percona.com/v1
kind: PerconaServerMongoDB
metadata: {name: x}
spec:
  image: percona/percona-server-mongodb:8.0.19-7
  replsets: [{name: rs0, size: 3, sise: 3}]
`, "spec.replsets[0].sise: unknown field"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := f.dec.Decode(name, []byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("want an error mentioning %q, got %v", c.mention, err)
			}
		})
	}
}

// TestCRDValidationRejects mutates the rendered primary PerconaServerMongoDB in ways its CRD forbids.
func TestCRDValidationRejects(t *testing.T) {
	f := newFixture(t)
	objs := f.render(t, "marquee-mongodb")
	base := objectsOf(objs, "PerconaServerMongoDB")[0].Raw
	gvk := schema.GroupVersionKind{Group: "psmdb.percona.com", Version: "v1", Kind: "PerconaServerMongoDB"}
	if err := f.crds.Validate(gvk, base); err != nil {
		t.Fatalf("the unmodified resource is invalid: %v", err)
	}
	cases := map[string]struct {
		mutate  func(cr map[string]any)
		mention string
	}{
		"unknown nested field": {func(cr map[string]any) { replset0(cr)["sise"] = json.Number("3") }, "spec.replsets[0].sise: unknown field"},
		"string for integer":   {func(cr map[string]any) { replset0(cr)["size"] = "3" }, "spec.replsets[0].size: must be an integer"},
		"missing required":     {func(cr map[string]any) { delete(replset0(cr), "size") }, "spec.replsets[0].size: required field missing"},
		"enum": {func(cr map[string]any) {
			dig(cr, "spec", "backup", "tasks").([]any)[0].(map[string]any)["type"] = "snapshot"
		}, "is not one of"},
		"int-or-string": {func(cr map[string]any) {
			replset0(cr)["podDisruptionBudget"].(map[string]any)["maxUnavailable"] = true
		}, "must be an integer or a string"},
		"metadata":          {func(cr map[string]any) { cr["metadata"].(map[string]any)["labelz"] = map[string]any{} }, `unknown field "labelz"`},
		"unknown top-level": {func(cr map[string]any) { cr["sepc"] = map[string]any{} }, "sepc: unknown field"},
		"CEL rules": {func(cr map[string]any) {
			cr["spec"].(map[string]any)["storageScaling"] = map[string]any{"enableVolumeScaling": false}
		}, "CEL rules"},
		"duplicate list-map key": {func(cr map[string]any) {
			claim := map[string]any{"name": "gpu"}
			replset0(cr)["resources"].(map[string]any)["claims"] = []any{claim, claim}
		}, "duplicate entry"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cr := deepCopyJSON(t, base)
			c.mutate(cr)
			err := f.crds.Validate(gvk, cr)
			if err == nil || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("want an error mentioning %q, got %v", c.mention, err)
			}
		})
	}
}

func replset0(cr map[string]any) map[string]any {
	return dig(cr, "spec", "replsets").([]any)[0].(map[string]any)
}

func deepCopyJSON(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPolicyChecksReject breaks one rule at a time in the default render and expects the policy checks to say so.
func TestPolicyChecksReject(t *testing.T) {
	f := newFixture(t)
	container := func(cr map[string]any) map[string]any {
		return dig(cr, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	}
	type edit struct {
		kind, name string
		mutate     func(o map[string]any) // nil removes the object
	}
	cases := map[string]struct {
		edits   []edit
		mention string
	}{
		"latest tag": {[]edit{{"Deployment", "marquee-catalog", func(o map[string]any) {
			container(o)["image"] = "ghcr.io/marquee-dev/marquee/catalog:latest"
		}}}, "latest tag"},
		"untagged image": {[]edit{{"Deployment", "marquee-catalog", func(o map[string]any) {
			container(o)["image"] = "ghcr.io/marquee-dev/marquee/catalog"
		}}}, "no tag"},
		"no limits": {[]edit{{"Deployment", "marquee-auth", func(o map[string]any) {
			delete(container(o)["resources"].(map[string]any), "limits")
		}}}, "no cpu limit"},
		"writable root": {[]edit{{"StatefulSet", "marquee-search", func(o map[string]any) {
			container(o)["securityContext"].(map[string]any)["readOnlyRootFilesystem"] = false
		}}}, "readOnlyRootFilesystem"},
		"capabilities kept": {[]edit{{"Deployment", "marquee-gateway", func(o map[string]any) {
			container(o)["securityContext"].(map[string]any)["capabilities"] = map[string]any{"drop": []any{"NET_RAW"}}
		}}}, "drop ALL"},
		"no seccomp": {[]edit{{"Deployment", "marquee-gateway", func(o map[string]any) {
			delete(container(o)["securityContext"].(map[string]any), "seccompProfile")
			delete(dig(o, "spec", "template", "spec", "securityContext").(map[string]any), "seccompProfile")
		}}}, "seccomp"},
		"root": {[]edit{{"Deployment", "marquee-gateway", func(o map[string]any) {
			container(o)["securityContext"].(map[string]any)["runAsNonRoot"] = false
		}}}, "runAsNonRoot"},
		"no readiness probe": {[]edit{{"Deployment", "marquee-catalog", func(o map[string]any) {
			delete(container(o), "readinessProbe")
		}}}, "no readiness probe"},
		"probe on an undeclared port": {[]edit{{"Deployment", "marquee-catalog", func(o map[string]any) {
			dig(container(o), "livenessProbe", "httpGet").(map[string]any)["port"] = "metrics"
		}}}, "does not declare"},
		"no PDB":          {[]edit{{"PodDisruptionBudget", "marquee-gateway", nil}}, "no PodDisruptionBudget"},
		"no default deny": {[]edit{{"NetworkPolicy", "marquee-default-deny", nil}}, "no default-deny"},
		"uncovered pods":  {[]edit{{"NetworkPolicy", "marquee-auth", nil}}, "no NetworkPolicy is written"},
		"dangling service port": {[]edit{{"Service", "marquee-catalog", func(o map[string]any) {
			dig(o, "spec", "ports").([]any)[0].(map[string]any)["targetPort"] = "grpcx"
		}}}, "does not declare"},
		"replicas fight the HPA": {[]edit{{"Deployment", "marquee-catalog", func(o map[string]any) {
			o["spec"].(map[string]any)["replicas"] = json.Number("3")
		}}}, "sets replicas"},
		"token mounted": {[]edit{{"Deployment", "marquee-catalog", func(o map[string]any) {
			dig(o, "spec", "template", "spec").(map[string]any)["automountServiceAccountToken"] = true
		}}}, "service account token"},
		"missing ConfigMap": {[]edit{{"ConfigMap", "marquee-search-config", nil}}, "ConfigMap \"marquee-search-config\" is not part"},
	}
	objs := f.render(t, "marquee")
	if err := CheckPolicies(objs); err != nil {
		t.Fatalf("the unmodified render violates policies: %v", err)
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			// Unchanged objects are shared (the checks only read them); edited ones are decoded afresh.
			var changed []*Object
			for _, o := range objs {
				var edits []edit
				for _, e := range c.edits {
					if o.Kind == e.kind && o.Name == e.name {
						edits = append(edits, e)
					}
				}
				if len(edits) == 0 {
					changed = append(changed, o)
					continue
				}
				raw := deepCopyJSON(t, o.Raw)
				removed := false
				for _, e := range edits {
					if e.mutate == nil {
						removed = true
					} else {
						e.mutate(raw)
					}
				}
				if removed {
					continue
				}
				y, err := yaml.Marshal(raw)
				if err != nil {
					t.Fatal(err)
				}
				decoded, err := f.dec.Decode(name, y)
				if err != nil {
					t.Fatal(err)
				}
				changed = append(changed, decoded...)
			}
			err := CheckPolicies(changed)
			if err == nil || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("want a violation mentioning %q, got %v", c.mention, err)
			}
		})
	}
}

// TestNetworkPolicyEvaluation checks the evaluator against the rules it implements.
func TestNetworkPolicyEvaluation(t *testing.T) {
	f := newFixture(t)
	objs := f.render(t, "marquee")
	var kept []*Object
	for _, o := range objs {
		if !(o.Kind == "NetworkPolicy" && o.Name == "marquee-catalog") {
			kept = append(kept, o)
		}
	}
	ep := map[string]Endpoint{}
	for _, w := range Workloads(objs) {
		ep[w.Template.Labels["app.kubernetes.io/name"]] = PodEndpoint(w, Namespace)
	}
	full := NewNetworkPolicies(objs, Namespace)
	if !full.Allowed(ep["gateway"], ep["catalog"], corev1.ProtocolTCP, 9091) {
		t.Fatal("gateway -> catalog:9091 is blocked by the full policy set")
	}
	if full.Allowed(ep["gateway"], ep["catalog"], corev1.ProtocolUDP, 9091) {
		t.Error("a TCP rule allows UDP")
	}
	partial := NewNetworkPolicies(kept, Namespace)
	if partial.Allowed(ep["gateway"], ep["catalog"], corev1.ProtocolTCP, 9091) {
		t.Error("without catalog's policy, default-deny should block gateway -> catalog")
	}
	if NewNetworkPolicies(nil, Namespace).Allowed(ep["gateway"], ep["redis"], corev1.ProtocolTCP, 1) != true {
		t.Error("without any policy everything is allowed")
	}
}

// TestUndocumentedValuesFound makes sure the documentation check finds an undocumented key.
func TestUndocumentedValuesFound(t *testing.T) {
	var doc yamlv3.Node
	src := "# -- documented\na: 1\nb:\n  # -- documented\n  c: 2\n  d: 3\ne: {}\n"
	if err := yamlv3.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(undocumented(doc.Content[0], ""), ",")
	if got != "b.d,e" {
		t.Fatalf("undocumented = %q, want b.d,e", got)
	}
}
