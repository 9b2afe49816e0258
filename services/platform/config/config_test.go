package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/services/platform/config"
)

// testConfig looks like a service config: the common keys squashed at the
// top, the service's own keys under its namespace.
type testConfig struct {
	config.Common `mapstructure:",squash"`
	Catalog       catalogConfig `mapstructure:"catalog"`
}

type catalogConfig struct {
	GRPCAddr    string        `mapstructure:"grpc_addr"`
	Timeout     time.Duration `mapstructure:"timeout"`
	Origins     []string      `mapstructure:"origins"`
	PageSize    int           `mapstructure:"page_size"`
	Cache       bool          `mapstructure:"cache"`
	AdminSecret string        `mapstructure:"admin_secret" secret:"true"`
	EmptySecret string        `mapstructure:"empty_secret" secret:"true"`
	Mongo       mongoConfig   `mapstructure:"mongo"`
}

type mongoConfig struct {
	URI string `mapstructure:"uri" secret:"true"`
}

func defaults() testConfig {
	return testConfig{
		Common: config.DefaultCommon(),
		Catalog: catalogConfig{
			GRPCAddr: "127.0.0.1:9091",
			Timeout:  5 * time.Second,
			Origins:  []string{"http://localhost"},
			PageSize: 50,
			Mongo:    mongoConfig{URI: "mongodb://127.0.0.1:27017"},
		},
	}
}

// clearEnv makes sure no MARQUEE_ variable from the outer environment leaks
// into a test, restoring them afterwards.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "MARQUEE_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		file  string // YAML body; passed with --config when set
		args  []string
		check func(t *testing.T, got testConfig)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, got testConfig) {
				if want := defaults(); !reflect.DeepEqual(got, want) {
					t.Errorf("got %+v, want %+v", got, want)
				}
			},
		},
		{
			name: "yaml file",
			file: "data_dir: /var/lib/marquee\nlog:\n  level: debug\ncatalog:\n  grpc_addr: 0.0.0.0:9091\n  timeout: 1m30s\n  origins: [a, b]\n  page_size: 10\n",
			check: func(t *testing.T, got testConfig) {
				want := defaults()
				want.DataDir = "/var/lib/marquee"
				want.Log.Level = "debug"
				want.Catalog.GRPCAddr = "0.0.0.0:9091"
				want.Catalog.Timeout = 90 * time.Second
				want.Catalog.Origins = []string{"a", "b"}
				want.Catalog.PageSize = 10
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got %+v, want %+v", got, want)
				}
			},
		},
		{
			name: "env overrides file",
			file: "catalog:\n  grpc_addr: from-file:1\n  page_size: 10\n",
			env: map[string]string{
				"MARQUEE_CATALOG_GRPC_ADDR":       "from-env:2",
				"MARQUEE_DATA_DIR":                "/env",
				"MARQUEE_TELEMETRY_OTLP_ENDPOINT": "collector:4317",
				"MARQUEE_CATALOG_MONGO_URI":       "mongodb://db/",
			},
			check: func(t *testing.T, got testConfig) {
				if got.Catalog.GRPCAddr != "from-env:2" {
					t.Errorf("grpc_addr = %q, want from-env:2", got.Catalog.GRPCAddr)
				}
				if got.Catalog.PageSize != 10 {
					t.Errorf("page_size = %d, want 10 from the file", got.Catalog.PageSize)
				}
				if got.DataDir != "/env" || got.Telemetry.OTLPEndpoint != "collector:4317" {
					t.Errorf("common keys = %+v, want data_dir and otlp_endpoint from env", got.Common)
				}
				if got.Catalog.Mongo.URI != "mongodb://db/" {
					t.Errorf("nested key = %q, want from env", got.Catalog.Mongo.URI)
				}
			},
		},
		{
			name: "env durations, lists, numbers, bools",
			env: map[string]string{
				"MARQUEE_CATALOG_TIMEOUT":   "250ms",
				"MARQUEE_CATALOG_ORIGINS":   "https://a.example, https://b.example",
				"MARQUEE_CATALOG_PAGE_SIZE": "7",
				"MARQUEE_CATALOG_CACHE":     "true",
			},
			check: func(t *testing.T, got testConfig) {
				c := got.Catalog
				if c.Timeout != 250*time.Millisecond || c.PageSize != 7 || !c.Cache {
					t.Errorf("got %+v", c)
				}
				if want := []string{"https://a.example", "https://b.example"}; !reflect.DeepEqual(c.Origins, want) {
					t.Errorf("origins = %q, want %q", c.Origins, want)
				}
			},
		},
		{
			name: "set flags override env and file",
			file: "catalog:\n  page_size: 10\n",
			env:  map[string]string{"MARQUEE_CATALOG_PAGE_SIZE": "20"},
			args: []string{"--set", "catalog.page_size=30", "--set=catalog.origins=x,y", "--set", "log.level=warn", "--set", "catalog.timeout=2s"},
			check: func(t *testing.T, got testConfig) {
				c := got.Catalog
				if c.PageSize != 30 || c.Timeout != 2*time.Second || got.Log.Level != "warn" {
					t.Errorf("got %+v", got)
				}
				if want := []string{"x", "y"}; !reflect.DeepEqual(c.Origins, want) {
					t.Errorf("origins = %q, want %q", c.Origins, want)
				}
			},
		},
		{
			name: "config file from env",
			env:  map[string]string{"MARQUEE_CONFIG": "FILE"},
			file: "log:\n  format: text\n",
			check: func(t *testing.T, got testConfig) {
				if got.Log.Format != "text" {
					t.Errorf("log.format = %q, want text", got.Log.Format)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			args := tt.args
			if tt.file != "" {
				path := writeFile(t, tt.file)
				if tt.env["MARQUEE_CONFIG"] == "FILE" {
					tt.env["MARQUEE_CONFIG"] = path
				} else {
					args = append([]string{"--config", path}, args...)
				}
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got := defaults()
			if err := config.Load(&got, args); err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, got)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		args []string
		want string // substring of the error
	}{
		{name: "unknown yaml key", file: "catalog:\n  grpc_adr: x\n", want: "unknown keys catalog.grpc_adr"},
		{name: "unknown top-level section", file: "catalgo:\n  grpc_addr: x\n", want: "unknown keys catalgo"},
		{name: "unknown set key", args: []string{"--set", "catalog.nope=1"}, want: "unknown key"},
		{name: "set without value", args: []string{"--set", "catalog.page_size"}, want: "want key=value"},
		{name: "bad duration", args: []string{"--set", "catalog.timeout=soon"}, want: "decoding config"},
		{name: "bad int", args: []string{"--set", "catalog.page_size=many"}, want: "decoding config"},
		{name: "unknown flag", args: []string{"--port", "1"}, want: "parsing config flags"},
		{name: "stray argument", args: []string{"serve"}, want: "unexpected arguments"},
		{name: "missing file", args: []string{"--config", "/nonexistent/marquee.yaml"}, want: "reading config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, tt.file)}, args...)
			}
			cfg := defaults()
			err := config.Load(&cfg, args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadRejectsNonPointer(t *testing.T) {
	if err := config.Load(defaults(), nil); err == nil {
		t.Fatal("Load(struct value) succeeded, want an error")
	}
}

func TestRedacted(t *testing.T) {
	cfg := defaults()
	cfg.Catalog.AdminSecret = "hunter2"
	got := config.Redacted(&cfg)

	catalog, ok := got["catalog"].(map[string]any)
	if !ok {
		t.Fatalf("catalog section missing: %#v", got)
	}
	if catalog["admin_secret"] != "***" {
		t.Errorf("admin_secret = %v, want ***", catalog["admin_secret"])
	}
	if catalog["empty_secret"] != "" {
		t.Errorf("empty_secret = %v, want empty", catalog["empty_secret"])
	}
	if uri := catalog["mongo"].(map[string]any)["uri"]; uri != "***" {
		t.Errorf("nested secret = %v, want ***", uri)
	}
	if catalog["timeout"] != "5s" {
		t.Errorf("timeout = %v, want 5s", catalog["timeout"])
	}
	if catalog["grpc_addr"] != "127.0.0.1:9091" {
		t.Errorf("grpc_addr = %v", catalog["grpc_addr"])
	}
	if got["data_dir"] != "./.data" {
		t.Errorf("squashed common keys not at top level: %#v", got)
	}
	if lvl := got["log"].(map[string]any)["level"]; lvl != "info" {
		t.Errorf("log.level = %v", lvl)
	}
	if strings.Contains(fmt.Sprint(got), "hunter2") {
		t.Error("secret value leaked")
	}
}
