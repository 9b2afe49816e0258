// Package configref renders the reference table of every configuration key
// of every service, from the services' own Config types, so the README's
// table cannot drift from the code.
package configref

import (
	"fmt"
	"strings"

	authapp "github.com/marquee-dev/marquee/services/auth/app"
	catalogapp "github.com/marquee-dev/marquee/services/catalog/app"
	gatewayapp "github.com/marquee-dev/marquee/services/gateway/app"
	"github.com/marquee-dev/marquee/services/platform/config"
	searchapp "github.com/marquee-dev/marquee/services/search/app"
)

// Keys returns every key: the shared ones once, then each service's own.
func Keys() []config.Key {
	seen := map[string]bool{}
	var out []config.Key
	for _, cfg := range []any{catalogapp.DefaultConfig(), searchapp.DefaultConfig(), authapp.DefaultConfig(), gatewayapp.DefaultConfig()} {
		for _, k := range config.Keys(cfg) {
			if !seen[k.Name] {
				seen[k.Name] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// Markdown renders Keys as a Markdown table.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| key | environment variable | default |\n|---|---|---|\n")
	for _, k := range Keys() {
		def := "`" + k.Default + "`"
		switch {
		case k.Secret:
			def = "secret, no default"
		case k.Default == "":
			def = "empty"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", k.Name, k.Env, strings.ReplaceAll(def, "|", `\|`))
	}
	return b.String()
}
