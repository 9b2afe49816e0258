package deploy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// fixture is what most tests share: the repository, the project's CRDs and a strict decoder.
type fixture struct {
	repo Repo
	crds *CRDSet
	dec  *Decoder
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	repo, err := FindRepo(".")
	if err != nil {
		t.Fatal(err)
	}
	crds, err := LoadProjectCRDs(repo)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder(crds)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{repo: repo, crds: crds, dec: dec}
}

// render renders a chart with value files and decodes the result strictly, failing the test on any error.
func (f *fixture) render(t *testing.T, chart string, valueFiles ...string) []*Object {
	t.Helper()
	release, ns := ReleaseName, Namespace
	if chart == "marquee-mongodb" {
		release, ns = MongoReleaseName, MongoNamespace
	}
	r, err := RenderChart(f.repo.Chart(chart), valueFiles, release, ns)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := f.dec.DecodeRender(r)
	if err != nil {
		t.Fatalf("strict decoding of %s: %v", chart, err)
	}
	if len(objs) == 0 {
		t.Fatalf("%s rendered no objects", chart)
	}
	return objs
}

// regions lists a chart's regions, requiring at least three.
func (f *fixture) regions(t *testing.T, chart string) []string {
	t.Helper()
	regions, err := f.repo.Regions(chart)
	if err != nil {
		t.Fatal(err)
	}
	if len(regions) < 3 {
		t.Fatalf("%s has values for %d regions (%v); the project deploys to at least three", chart, len(regions), regions)
	}
	return regions
}

func objectsOf(objs []*Object, kind string) []*Object {
	var out []*Object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func mustFind(t *testing.T, objs []*Object, kind, name string) *Object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			return o
		}
	}
	t.Fatalf("no %s/%s in the render", kind, name)
	return nil
}

// serviceKeys are the configuration keys of the services (their Config structs in services/*/app; the contract
// is notes/config-keys.md), without the "<service>." prefix; "" holds the shared keys.
func serviceKeys() map[string][]string {
	mongo := []string{"mongo.uri", "mongo.database", "mongo.max_pool_size", "mongo.connect_timeout",
		"mongo.operation_timeout", "mongo.read_preference", "mongo.max_staleness"}
	return map[string][]string{
		"": {"log.level", "log.format", "telemetry.otlp_endpoint", "telemetry.service_name", "data_dir"},
		"catalog": append([]string{"grpc_addr", "admin_addr", "auth_addr", "auth_issuer", "auth_audience", "client_id",
			"client_secret", "redis_addr", "cache.max_entries", "cache.ttl", "changes.retention", "changes.settle",
			"changes.poll_interval", "changes.purge_interval", "shard_zones", "page_token_key", "migrate_on_start"}, mongo...),
		"search": {"grpc_addr", "admin_addr", "index_dir", "partitions", "catalog_addr", "auth_addr", "client_id",
			"client_secret", "max_lag", "page_token_secret", "search_timeout"},
		"auth": append([]string{"grpc_addr", "admin_addr", "issuer", "audience", "access_token_ttl",
			"refresh_token_ttl", "service_token_ttl", "key_rotation_interval", "key_encryption_key",
			"service_clients", "admin_email", "admin_password", "trusted_proxies", "api_key_cache_ttl"}, mongo...),
		"gateway": {"http_addr", "admin_addr", "catalog_addr", "search_addr", "auth_addr", "auth_issuer",
			"auth_audience", "client_id", "client_secret", "redis_addr", "redis_password", "trusted_proxies",
			"ratelimit.anonymous_per_minute", "ratelimit.user_per_minute", "ratelimit.admin_per_minute",
			"ratelimit.token_per_minute", "max_concurrency", "request_timeout", "cache.max_bytes", "cache.max_age",
			"cache.stale_while_revalidate", "cache.stale_if_error", "cors_allowed_origins", "tls_cert_file",
			"tls_key_file", "shutdown_grace"},
	}
}

// secretKeys are the keys the services tag secret:"true".
func secretKeys() []string {
	return []string{"catalog.mongo.uri", "catalog.client_secret", "catalog.page_token_key", "search.client_secret",
		"search.page_token_secret", "auth.mongo.uri", "auth.key_encryption_key", "auth.service_clients",
		"auth.admin_password", "gateway.client_secret", "gateway.redis_password"}
}

// envName is the environment variable of a configuration key.
func envName(key string) string {
	return "MARQUEE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// configEnvNames lists the environment variable names the services read, plus the OpenTelemetry and Go runtime
// variables the chart sets.
func configEnvNames() map[string]bool {
	names := map[string]bool{"OTEL_SERVICE_NAME": true, "OTEL_RESOURCE_ATTRIBUTES": true, "GOMEMLIMIT": true}
	for svc, ks := range serviceKeys() {
		for _, k := range ks {
			if svc != "" {
				k = svc + "." + k
			}
			names[envName(k)] = true
		}
	}
	return names
}

// podEnv returns a container's environment: its env entries and the keys of the ConfigMaps it loads.
func podEnv(objs []*Object, c *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		for _, o := range objs {
			if cm, ok := o.Typed.(*corev1.ConfigMap); ok && o.Name == ef.ConfigMapRef.Name {
				for k, v := range cm.Data {
					env[k] = v
				}
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			env[e.Name] = "(from " + describeSource(e.ValueFrom) + ")"
		} else {
			env[e.Name] = e.Value
		}
	}
	return env
}

func describeSource(s *corev1.EnvVarSource) string {
	switch {
	case s.SecretKeyRef != nil:
		return "secret " + s.SecretKeyRef.Name + "/" + s.SecretKeyRef.Key
	case s.ConfigMapKeyRef != nil:
		return "configmap " + s.ConfigMapKeyRef.Name + "/" + s.ConfigMapKeyRef.Key
	case s.ResourceFieldRef != nil:
		return "resource " + s.ResourceFieldRef.Resource
	default:
		return "field"
	}
}
