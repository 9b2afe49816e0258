package devstack

import (
	"slices"
	"testing"
)

func TestArgsFor(t *testing.T) {
	args := []string{"--config", "f.yaml", "--set", "data_dir=/x", "--set", "gateway.ratelimit.anonymous_per_minute=0",
		"--set", "catalog.cache.ttl=1m", "--set", "log.level=debug"}
	for _, tc := range []struct {
		service string
		want    []string
	}{
		{"", []string{"--config", "f.yaml", "--set", "data_dir=/x", "--set", "log.level=debug"}},
		{"gateway", []string{"--config", "f.yaml", "--set", "data_dir=/x", "--set", "gateway.ratelimit.anonymous_per_minute=0", "--set", "log.level=debug"}},
		{"catalog", []string{"--config", "f.yaml", "--set", "data_dir=/x", "--set", "catalog.cache.ttl=1m", "--set", "log.level=debug"}},
	} {
		if got := argsFor(tc.service, args); !slices.Equal(got, tc.want) {
			t.Errorf("argsFor(%q) = %v, want %v", tc.service, got, tc.want)
		}
	}
}
