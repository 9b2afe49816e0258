package deploy

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestMongoDBChart renders charts/marquee-mongodb for every region, validates each PerconaServerMongoDB against
// the operator's CRD (through the decoder) and checks the multi-region topology: one managed sharded cluster in
// the primary region, unmanaged replica sites elsewhere, and the primary's external members matching exactly
// the members the replica sites announce.
func TestMongoDBChart(t *testing.T) {
	f := newFixture(t)
	sites := map[string]map[string]any{}
	for _, region := range f.regions(t, "marquee-mongodb") {
		objs := f.render(t, "marquee-mongodb", f.repo.RegionValues("marquee-mongodb", region))
		crs := objectsOf(objs, "PerconaServerMongoDB")
		if len(crs) != 1 || len(objs) != 1 {
			t.Fatalf("%s: want exactly one PerconaServerMongoDB, got %d objects", region, len(objs))
		}
		sites[region] = crs[0].Raw
	}
	var primary string
	for region, cr := range sites {
		spec := cr["spec"].(map[string]any)
		if spec["unmanaged"] == true {
			checkReplicaSite(t, region, spec)
			continue
		}
		if primary != "" {
			t.Fatalf("two managed (primary) sites: %s and %s", primary, region)
		}
		primary = region
		checkPrimarySite(t, region, spec)
	}
	if primary == "" {
		t.Fatal("no region runs the managed (primary) cluster")
	}
	// Cross-site: the same cluster and replica set names everywhere, and every replica-site member is an
	// external node of the primary's replica set (and nothing else is).
	names := func(cr map[string]any) []string {
		var out []string
		for _, rs := range dig(cr, "spec", "replsets").([]any) {
			out = append(out, rs.(map[string]any)["name"].(string))
		}
		return out
	}
	p := sites[primary]
	for region, cr := range sites {
		if dig(cr, "metadata", "name") != dig(p, "metadata", "name") {
			t.Errorf("%s: cluster name %v differs from the primary's %v", region, dig(cr, "metadata", "name"), dig(p, "metadata", "name"))
		}
		if !slices.Equal(names(cr), names(p)) {
			t.Errorf("%s: replica sets %v differ from the primary's %v", region, names(cr), names(p))
		}
	}
	for _, rs := range replsetsWithConfig(p) {
		want := map[string]bool{}
		for region, cr := range sites {
			if region == primary {
				continue
			}
			for _, host := range announcedHosts(findReplset(cr, rs.name)) {
				want[host] = true
			}
		}
		got := map[string]bool{}
		for _, n := range asList(rs.spec["externalNodes"]) {
			node := n.(map[string]any)
			got[fmt.Sprintf("%v:%v", node["host"], node["port"])] = true
			if fmt.Sprint(node["votes"]) != "0" || fmt.Sprint(node["priority"]) != "0" {
				t.Errorf("%s: external member %v votes or may become primary; elections must stay in %s", rs.name, node["host"], primary)
			}
		}
		if !equalSets(got, want) {
			t.Errorf("%s: the primary's external members %v differ from the members the replica sites announce %v", rs.name, keys(got), keys(want))
		}
	}
}

func checkPrimarySite(t *testing.T, region string, spec map[string]any) {
	t.Helper()
	if dig(spec, "sharding", "enabled") != true {
		t.Errorf("%s: sharding is not enabled", region)
	}
	if n := fmt.Sprint(dig(spec, "sharding", "configsvrReplSet", "size")); n != "3" {
		t.Errorf("%s: %s config servers, want 3", region, n)
	}
	if n, err := strconv.Atoi(fmt.Sprint(dig(spec, "sharding", "mongos", "size"))); err != nil || n < 2 {
		t.Errorf("%s: %v mongos, want at least 2", region, dig(spec, "sharding", "mongos", "size"))
	}
	shards := asList(spec["replsets"])
	if len(shards) < 1 {
		t.Errorf("%s: no shards", region)
	}
	for _, rs := range replsetsWithConfig(map[string]any{"spec": spec}) {
		if rs.name != "cfg" && fmt.Sprint(rs.spec["size"]) != "3" {
			t.Errorf("%s: shard %s has %v members, want 3", region, rs.name, rs.spec["size"])
		}
		if dig(rs.spec, "affinity", "antiAffinityTopologyKey") == nil {
			t.Errorf("%s: %s has no anti-affinity", region, rs.name)
		}
		if dig(rs.spec, "podDisruptionBudget", "maxUnavailable") == nil {
			t.Errorf("%s: %s has no PodDisruptionBudget", region, rs.name)
		}
	}
	if dig(spec, "sharding", "mongos", "podDisruptionBudget", "maxUnavailable") == nil {
		t.Errorf("%s: mongos has no PodDisruptionBudget", region)
	}
	if dig(spec, "backup", "enabled") != true || len(asList(dig(spec, "backup", "tasks"))) == 0 || dig(spec, "backup", "storages") == nil {
		t.Errorf("%s: backups are not enabled with a storage and a schedule", region)
	}
	if dig(spec, "updateStrategy") != "SmartUpdate" {
		t.Errorf("%s: updateStrategy %v, want SmartUpdate", region, dig(spec, "updateStrategy"))
	}
}

func checkReplicaSite(t *testing.T, region string, spec map[string]any) {
	t.Helper()
	if dig(spec, "updateStrategy") != "OnDelete" {
		t.Errorf("%s: an unmanaged site must use updateStrategy OnDelete, not %v", region, dig(spec, "updateStrategy"))
	}
	if dig(spec, "backup", "enabled") != false {
		t.Errorf("%s: an unmanaged site must not run backups", region)
	}
	if spec["users"] != nil {
		t.Errorf("%s: an unmanaged site must not manage users (they replicate from the primary)", region)
	}
	if dig(spec, "sharding", "enabled") != true || dig(spec, "sharding", "mongos", "size") == nil {
		t.Errorf("%s: a replica site runs its own mongos", region)
	}
	for _, rs := range replsetsWithConfig(map[string]any{"spec": spec}) {
		if len(asList(rs.spec["externalNodes"])) > 0 {
			t.Errorf("%s: %s lists external nodes; only the primary site does", region, rs.name)
		}
		if dig(rs.spec, "expose", "enabled") != true || len(announcedHosts(rs.spec)) == 0 {
			t.Errorf("%s: %s members are not exposed and announced to the other regions", region, rs.name)
		}
	}
}

type replset struct {
	name string
	spec map[string]any
}

func replsetsWithConfig(cr map[string]any) []replset {
	var out []replset
	for _, rs := range asList(dig(cr, "spec", "replsets")) {
		m := rs.(map[string]any)
		out = append(out, replset{name: m["name"].(string), spec: m})
	}
	if cfg, ok := dig(cr, "spec", "sharding", "configsvrReplSet").(map[string]any); ok {
		out = append(out, replset{name: "cfg", spec: cfg})
	}
	return out
}

func findReplset(cr map[string]any, name string) map[string]any {
	for _, rs := range replsetsWithConfig(cr) {
		if rs.name == name {
			return rs.spec
		}
	}
	return nil
}

// announcedHosts lists the host:port each member of a replica set announces (replsetOverrides).
func announcedHosts(rs map[string]any) []string {
	var out []string
	overrides, _ := rs["replsetOverrides"].(map[string]any)
	for _, o := range overrides {
		if h, ok := o.(map[string]any)["host"].(string); ok {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
