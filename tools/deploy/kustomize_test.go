package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestKustomizeGeneratedUpToDate fails when k8s/base, k8s/components/monitoring or k8s/mongodb no longer match
// what the charts render.
func TestKustomizeGeneratedUpToDate(t *testing.T) {
	f := newFixture(t)
	files, err := GenerateKustomize(f.repo, f.dec)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := StaleGeneratedFiles(f.repo, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Fatalf("generated manifests are stale: %v\nregenerate with `go run ./tools/deploy/cmd/genk8s` from the repository root", stale)
	}
}

// TestKustomizeOverlays builds every region overlay with krusty, decodes the output strictly, applies the policy
// and network-flow checks, and compares it object by object with the Helm render of the same region.
func TestKustomizeOverlays(t *testing.T) {
	f := newFixture(t)
	entries, err := os.ReadDir(f.repo.K8s("overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var overlays []string
	for _, e := range entries {
		if e.IsDir() {
			overlays = append(overlays, e.Name())
		}
	}
	if regions := f.regions(t, "marquee"); !slices.Equal(overlays, regions) {
		t.Fatalf("overlays %v do not match the chart's regions %v", overlays, regions)
	}
	files, err := GenerateKustomize(f.repo, f.dec)
	if err != nil {
		t.Fatal(err)
	}
	generated := GeneratedConfigMaps(files)
	for _, region := range overlays {
		t.Run(region, func(t *testing.T) {
			out, err := BuildKustomization(f.repo.K8s("overlays", region))
			if err != nil {
				t.Fatal(err)
			}
			objs, err := f.dec.Decode("k8s/overlays/"+region, out)
			if err != nil {
				t.Fatalf("strict decoding: %v", err)
			}
			for _, o := range objs {
				if o.Namespace != Namespace {
					t.Errorf("%s is not in namespace %s", o.ID(), Namespace)
				}
			}
			if err := CheckPolicies(objs); err != nil {
				t.Errorf("policy violations:\n%v", err)
			}
			checkServiceConfig(t, objs)
			checkNetworkFlows(t, objs, Namespace)

			helm := f.render(t, "marquee", f.repo.RegionValues("marquee", region))
			for _, o := range helm {
				NormalizeHelmObject(o.Raw)
			}
			want, err := CanonicalObjects(helm, generated)
			if err != nil {
				t.Fatal(err)
			}
			got, err := CanonicalObjects(objs, generated)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range sortedKeys(want) {
				g, ok := got[id]
				if !ok {
					t.Errorf("%s: rendered by Helm, missing from the overlay", id)
					continue
				}
				for _, d := range DiffValues(id, want[id], g) {
					t.Errorf("helm vs kustomize: %s", d)
				}
			}
			for _, id := range sortedKeys(got) {
				if _, ok := want[id]; !ok {
					t.Errorf("%s: in the overlay, not rendered by Helm", id)
				}
			}
		})
	}
}

// TestKustomizeCRDs checks k8s/crds: its kustomization lists exactly the CRD files, which decode strictly (the
// fixture loads them) and are the pinned operator release.
func TestKustomizeCRDs(t *testing.T) {
	f := newFixture(t)
	files, err := f.repo.CRDFiles()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, file := range files {
		want = append(want, filepath.Base(file))
	}
	raw, err := os.ReadFile(f.repo.K8s("crds", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
	}
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatal(err)
	}
	slices.Sort(k.Resources)
	if !slices.Equal(k.Resources, want) {
		t.Errorf("k8s/crds/kustomization.yaml lists %v, the directory holds %v", k.Resources, want)
	}
	kinds := map[string]bool{}
	for _, crd := range f.crds.CRDs {
		kinds[crd.Spec.Names.Kind] = true
		if crd.Labels["app.kubernetes.io/version"] != "v1.22.0" {
			t.Errorf("%s is not the pinned operator release v1.22.0", crd.Name)
		}
	}
	for _, kind := range []string{"PerconaServerMongoDB", "PerconaServerMongoDBBackup", "PerconaServerMongoDBRestore"} {
		if !kinds[kind] {
			t.Errorf("no CRD for %s", kind)
		}
	}
}

// TestKustomizeOtherTrees builds the base, the cluster objects and the MongoDB sites.
func TestKustomizeOtherTrees(t *testing.T) {
	f := newFixture(t)
	mongo, err := filepath.Glob(f.repo.K8s("mongodb", "*"))
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{"base", "cluster"}
	for _, m := range mongo {
		dirs = append(dirs, "mongodb/"+filepath.Base(m))
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			out, err := BuildKustomization(f.repo.K8s(filepath.FromSlash(dir)))
			if err != nil {
				t.Fatal(err)
			}
			objs, err := f.dec.Decode("k8s/"+dir, out)
			if err != nil {
				t.Fatalf("strict decoding: %v", err)
			}
			if len(objs) == 0 {
				t.Fatal("no objects")
			}
			switch {
			case dir == "base":
				if err := CheckPolicies(objs); err != nil {
					t.Errorf("policy violations:\n%v", err)
				}
			case strings.HasPrefix(dir, "mongodb/"):
				if len(objectsOf(objs, "PerconaServerMongoDB")) != 1 || objs[0].Namespace != MongoNamespace {
					t.Errorf("want one PerconaServerMongoDB in namespace %s", MongoNamespace)
				}
			}
		})
	}
}
