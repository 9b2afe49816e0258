package deploy

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// TestMarqueeChart renders charts/marquee with its defaults and with every region's values through Helm's Go
// packages, decodes every object strictly, and checks policies, inventory, configuration and network flows.
func TestMarqueeChart(t *testing.T) {
	f := newFixture(t)
	cases := map[string][]string{"defaults": nil}
	for _, r := range f.regions(t, "marquee") {
		cases[r] = []string{f.repo.RegionValues("marquee", r)}
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			objs := f.render(t, "marquee", files...)
			if err := CheckPolicies(objs); err != nil {
				t.Errorf("policy violations:\n%v", err)
			}
			checkInventory(t, objs, name != "defaults")
			checkServiceConfig(t, objs)
			checkNetworkFlows(t, objs, Namespace)
		})
	}
}

// checkInventory asserts the render holds the whole system.
func checkInventory(t *testing.T, objs []*Object, region bool) {
	t.Helper()
	for _, svc := range []string{"catalog", "auth", "gateway"} {
		d := mustFind(t, objs, "Deployment", "marquee-"+svc)
		if c := d.Typed.(*appsv1.Deployment).Spec.Template.Spec.Containers[0]; c.StartupProbe == nil {
			t.Errorf("%s has no startup probe", d.ID())
		}
	}
	sts := mustFind(t, objs, "StatefulSet", "marquee-search").Typed.(*appsv1.StatefulSet)
	if len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Name != "index" {
		t.Errorf("search StatefulSet lacks its index volume claim template")
	}
	mounted := false
	for _, m := range sts.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounted = mounted || (m.Name == "index" && m.MountPath == "/var/lib/marquee/search")
	}
	if !mounted {
		t.Errorf("search does not mount its index at /var/lib/marquee/search")
	}
	for _, svc := range []string{"catalog", "search", "auth", "gateway"} {
		mustFind(t, objs, "Service", "marquee-"+svc)
		mustFind(t, objs, "HorizontalPodAutoscaler", "marquee-"+svc)
		mustFind(t, objs, "PodDisruptionBudget", "marquee-"+svc)
		mustFind(t, objs, "NetworkPolicy", "marquee-"+svc)
		mustFind(t, objs, "ServiceAccount", "marquee-"+svc)
		if svc != "gateway" {
			h := mustFind(t, objs, "Service", "marquee-"+svc+"-headless").Typed.(*corev1.Service)
			if h.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("marquee-%s-headless is not headless", svc)
			}
		}
	}
	mustFind(t, objs, "NetworkPolicy", "marquee-default-deny")
	mustFind(t, objs, "Ingress", "marquee-gateway")

	job := mustFind(t, objs, "Job", "marquee-migrate")
	hooks := strings.Split(job.Typed.(*batchv1.Job).Annotations["helm.sh/hook"], ",")
	slices.Sort(hooks)
	if !slices.Equal(hooks, []string{"post-install", "pre-upgrade"}) {
		t.Errorf("the bootstrap Job runs as hooks %v, want post-install and pre-upgrade", hooks)
	}
	spec := job.Typed.(*batchv1.Job).Spec
	if spec.BackoffLimit == nil || *spec.BackoffLimit < 5 || spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("the bootstrap Job does not retry (backoffLimit %v, restartPolicy %s)", spec.BackoffLimit, spec.Template.Spec.RestartPolicy)
	}
	c := spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"migrate"}) || !(strings.Contains(c.Image, "/catalog:") || strings.Contains(c.Image, "/catalog@")) {
		t.Errorf("the bootstrap Job runs %s %v, want the catalog image with `migrate`", c.Image, c.Args)
	}
	if region {
		for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
			if len(objectsOf(objs, kind)) != 1 {
				t.Errorf("region render has %d %s objects, want 1", len(objectsOf(objs, kind)), kind)
			}
		}
		checkMonitoring(t, objs)
	}
}

func checkMonitoring(t *testing.T, objs []*Object) {
	t.Helper()
	for _, o := range objectsOf(objs, "PrometheusRule") {
		for _, g := range o.Typed.(*monitoringv1.PrometheusRule).Spec.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" || r.Expr.String() == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
					t.Errorf("%s: rule %q lacks an alert name, expression, severity or summary", o.ID(), r.Alert)
				}
			}
		}
	}
	dash := mustFind(t, objs, "ConfigMap", "marquee-dashboard").Typed.(*corev1.ConfigMap)
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(dash.Data["marquee-red.json"]), &d); err != nil {
		t.Fatalf("the Grafana dashboard is not JSON: %v", err)
	}
	exprs := ""
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs += tg.Expr + "\n"
		}
	}
	for _, metric := range []string{"http_server_request_duration_seconds", "rpc_server_call_duration_seconds"} {
		if !strings.Contains(exprs, metric) {
			t.Errorf("the dashboard does not chart %s", metric)
		}
	}
}

// checkServiceConfig asserts every container reads only configuration keys the services define, that secrets
// come from Secrets, and that peers are addressed through the headless Services.
func checkServiceConfig(t *testing.T, objs []*Object) {
	t.Helper()
	known := configEnvNames()
	secret := map[string]bool{}
	for _, k := range secretKeys() {
		secret[envName(k)] = true
	}
	for _, w := range Workloads(objs) {
		for i := range w.Template.Spec.Containers {
			c := &w.Template.Spec.Containers[i]
			if c.Name == "redis" {
				continue
			}
			env := podEnv(objs, c)
			for k, v := range env {
				if !known[k] {
					t.Errorf("%s container %s: %s is not a configuration key of the services", w.Object.ID(), c.Name, k)
				}
				if secret[k] && !strings.HasPrefix(v, "(from secret ") {
					t.Errorf("%s container %s: secret %s does not come from a Secret", w.Object.ID(), c.Name, k)
				}
				if strings.HasSuffix(k, "_ADDR") && strings.HasPrefix(v, "dns:///") && !strings.Contains(v, "-headless:") {
					t.Errorf("%s container %s: %s=%s does not use a headless Service", w.Object.ID(), c.Name, k, v)
				}
			}
		}
		// The secrets each service cannot run safely without.
		required := map[string][]string{
			"catalog": {"catalog.mongo.uri", "catalog.client_secret", "catalog.page_token_key"},
			"auth":    {"auth.mongo.uri", "auth.key_encryption_key", "auth.service_clients"},
			"search":  {"search.client_secret"},
			"gateway": {"gateway.client_secret"},
		}
		for _, c := range w.Template.Spec.Containers {
			env := podEnv(objs, &c)
			for _, k := range required[c.Name] {
				if !strings.HasPrefix(env[envName(k)], "(from secret ") {
					t.Errorf("%s container %s: %s is not set from a Secret", w.Object.ID(), c.Name, k)
				}
			}
		}
	}
}

// checkNetworkFlows evaluates the NetworkPolicies: every flow the architecture needs is allowed, and a
// selection of flows it does not need is denied.
func checkNetworkFlows(t *testing.T, objs []*Object, namespace string) {
	t.Helper()
	nps := NewNetworkPolicies(objs, namespace)
	pods := map[string]Endpoint{}
	for _, w := range Workloads(objs) {
		name := w.Template.Labels["app.kubernetes.io/name"]
		pods[name] = PodEndpoint(w, namespace)
	}
	external := func(ns string, lbls map[string]string) Endpoint {
		return Endpoint{Name: ns, Namespace: ns, NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": ns}, PodLabels: lbls}
	}
	ext := map[string]Endpoint{
		"ingress":    external("ingress-nginx", map[string]string{"app.kubernetes.io/name": "ingress-nginx"}),
		"prometheus": external("monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"}),
		"mongos":     external("mongodb", map[string]string{"app.kubernetes.io/component": "mongos"}),
		"mongod":     external("mongodb", map[string]string{"app.kubernetes.io/component": "mongod"}),
		"dns":        external("kube-system", map[string]string{"k8s-app": "kube-dns"}),
		"stranger":   external("default", map[string]string{"app": "stranger"}),
		"otel":       external("observability", map[string]string{"app.kubernetes.io/name": "opentelemetry-collector"}),
		"internet":   {Name: "internet", Addr: netip.MustParseAddr("203.0.113.7")},
	}
	get := func(n string) Endpoint {
		if e, ok := pods[n]; ok {
			return e
		}
		if e, ok := ext[n]; ok {
			return e
		}
		t.Fatalf("no endpoint %q in the render", n)
		return Endpoint{}
	}
	type flow struct {
		from, to string
		port     int32
	}
	allowed := []flow{
		{"ingress", "gateway", 8080},
		{"gateway", "catalog", 9091}, {"gateway", "search", 9092}, {"gateway", "auth", 9093}, {"gateway", "redis", 6379},
		{"catalog", "mongos", 27017}, {"catalog", "auth", 9093}, {"catalog", "redis", 6379},
		{"search", "catalog", 9091}, {"search", "auth", 9093},
		{"auth", "mongos", 27017}, {"migrate", "mongos", 27017},
		{"prometheus", "gateway", 9190}, {"prometheus", "catalog", 9191}, {"prometheus", "search", 9192}, {"prometheus", "auth", 9193},
	}
	denied := []flow{
		{"gateway", "mongos", 27017}, {"search", "mongos", 27017}, {"search", "redis", 6379}, {"auth", "redis", 6379},
		{"auth", "catalog", 9091}, {"catalog", "gateway", 8080}, {"catalog", "search", 9092}, {"migrate", "catalog", 9091},
		{"ingress", "catalog", 9091}, {"ingress", "gateway", 9190}, {"stranger", "catalog", 9091}, {"stranger", "redis", 6379},
		{"stranger", "gateway", 8080}, {"redis", "internet", 443}, {"catalog", "internet", 443}, {"gateway", "internet", 443},
		{"catalog", "mongod", 27017}, {"prometheus", "redis", 6379},
	}
	if _, ok := pods["redis"]; !ok {
		t.Fatalf("no redis pods in the render")
	}
	for _, f := range allowed {
		if !nps.Allowed(get(f.from), get(f.to), corev1.ProtocolTCP, f.port) {
			t.Errorf("the network policies block %s -> %s:%d, which the architecture needs", f.from, f.to, f.port)
		}
	}
	for _, f := range denied {
		if nps.Allowed(get(f.from), get(f.to), corev1.ProtocolTCP, f.port) {
			t.Errorf("the network policies allow %s -> %s:%d, which nothing needs", f.from, f.to, f.port)
		}
	}
	telemetry := false
	for _, o := range objectsOf(objs, "ConfigMap") {
		telemetry = telemetry || o.Typed.(*corev1.ConfigMap).Data["MARQUEE_TELEMETRY_OTLP_ENDPOINT"] != ""
	}
	for name, e := range pods {
		if !nps.Allowed(e, ext["dns"], corev1.ProtocolUDP, 53) {
			t.Errorf("%s pods cannot resolve names (DNS over UDP 53 is blocked)", name)
		}
		if telemetry && name != "redis" && !nps.Allowed(e, ext["otel"], corev1.ProtocolTCP, 4317) {
			t.Errorf("%s pods cannot export telemetry to the OTLP collector", name)
		}
	}
	for _, o := range objectsOf(objs, "NetworkPolicy") {
		np := o.Typed.(*networkingv1.NetworkPolicy)
		for _, r := range np.Spec.Egress {
			if len(r.To) == 0 {
				t.Errorf("%s: an egress rule without peers allows every destination", o.ID())
			}
		}
		for _, r := range np.Spec.Ingress {
			if len(r.From) == 0 {
				t.Errorf("%s: an ingress rule without peers allows every source", o.ID())
			}
		}
	}
}
