package config_test

import (
	"testing"
	"time"

	"github.com/marquee-dev/marquee/services/platform/config"
)

func TestKeys(t *testing.T) {
	type section struct {
		Addr    string        `mapstructure:"grpc_addr"`
		Timeout time.Duration `mapstructure:"timeout"`
		Secret  string        `mapstructure:"client_secret" secret:"true"`
		Origins []string      `mapstructure:"origins"`
	}
	cfg := struct {
		config.Common `mapstructure:",squash"`
		S             section `mapstructure:"svc"`
	}{Common: config.DefaultCommon(), S: section{Addr: ":1", Timeout: 2 * time.Second, Secret: "hidden", Origins: []string{"a", "b"}}}

	got := map[string]config.Key{}
	for _, k := range config.Keys(&cfg) {
		got[k.Name] = k
	}
	for _, want := range []config.Key{
		{Name: "svc.grpc_addr", Env: "MARQUEE_SVC_GRPC_ADDR", Default: ":1"},
		{Name: "svc.timeout", Env: "MARQUEE_SVC_TIMEOUT", Default: "2s"},
		{Name: "svc.client_secret", Env: "MARQUEE_SVC_CLIENT_SECRET", Secret: true},
		{Name: "svc.origins", Env: "MARQUEE_SVC_ORIGINS", Default: "a,b"},
		{Name: "log.level", Env: "MARQUEE_LOG_LEVEL", Default: "info"},
	} {
		if got[want.Name] != want {
			t.Errorf("key %s: got %+v, want %+v", want.Name, got[want.Name], want)
		}
	}
}
