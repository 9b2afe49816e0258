package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/services/catalog/app"
	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/logging"
	"github.com/marquee-dev/marquee/services/platform/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

func TestConfigKeys(t *testing.T) {
	t.Setenv("MARQUEE_CATALOG_CHANGES_RETENTION", "48h")
	t.Setenv("MARQUEE_CATALOG_REDIS_ADDR", "127.0.0.1:6379")
	cfg := app.DefaultConfig()
	if err := config.Load(&cfg, []string{"--set", "catalog.cache.max_entries=5", "--set", "catalog.page_token_key=s3cret"}); err != nil {
		t.Fatal(err)
	}
	if cfg.GRPCAddr != ":9091" || cfg.AdminAddr != ":9191" || cfg.Mongo.Database != "catalog" ||
		cfg.Changes.Retention != 48*time.Hour || cfg.RedisAddr != "127.0.0.1:6379" || cfg.Cache.MaxEntries != 5 ||
		cfg.AuthAddr != "dns:///auth:9093" {
		t.Fatalf("resolved %+v", cfg)
	}
	if s := fmt.Sprint(config.Redacted(cfg)); strings.Contains(s, "s3cret") {
		t.Fatalf("secret in redacted config: %s", s)
	}
}

func TestMigrateAndServe(t *testing.T) {
	mc := testenv.Mongo(t)
	cfg := app.DefaultConfig()
	if err := app.Migrate(t.Context(), cfg, app.WithMongo(mc), app.WithLogger(logging.Discard())); err != nil {
		t.Fatal(err)
	}
	cfg.GRPCAddr, cfg.AdminAddr, cfg.AuthAddr = "127.0.0.1:0", "127.0.0.1:0", "passthrough:///127.0.0.1:1"
	ctx, cancel := context.WithCancel(t.Context())
	admin := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, cfg, app.WithMongo(mc), app.WithLogger(logging.Discard()),
			app.WithListening(func(_, a string) { admin <- a }))
	}()
	var addr string
	select {
	case addr = <-admin:
	case err := <-done:
		t.Fatal(err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.Changes.Settle = 0
	cfg.ShardZones = "nonsense"
	err := app.Run(t.Context(), cfg, app.WithLogger(logging.Discard()))
	if err == nil || !strings.Contains(err.Error(), "catalog.changes.settle") || !strings.Contains(err.Error(), "catalog.shard_zones") {
		t.Fatalf("Run: %v", err)
	}
}
