// Package config loads a service's typed configuration with viper.
//
// Every service has one Config struct (mapstructure tags, secrets tagged
// `secret:"true"`) and a constructor for its defaults. Load layers, in rising
// precedence, those defaults, an optional YAML file, MARQUEE_* environment
// variables and --set key=value flags over it; Redacted renders the result for
// the start-up log with secrets masked.
//
// Keys are the mapstructure names joined by "." ("catalog.grpc_addr"); the
// environment variable for a key is MARQUEE_ plus the key upper-cased with "."
// replaced by "_" (MARQUEE_CATALOG_GRPC_ADDR).
package config

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix is the prefix of every environment variable Load reads.
const EnvPrefix = "MARQUEE"

// ConfigFileEnv names the environment variable holding the YAML file path
// when no --config flag is given.
const ConfigFileEnv = EnvPrefix + "_CONFIG"

// LogConfig configures logging.
type LogConfig struct {
	// Level is one of "debug", "info", "warn", "error".
	Level string `mapstructure:"level"`
	// Format is "json" (the default) or "text".
	Format string `mapstructure:"format"`
}

// TelemetryConfig configures traces and metrics export.
type TelemetryConfig struct {
	// OTLPEndpoint is the OTLP/gRPC collector, "host:port" (plaintext) or a
	// URL ("https://collector:4317"); empty disables OTLP export.
	OTLPEndpoint string `mapstructure:"otlp_endpoint"`
	// ServiceName overrides the service.name resource attribute.
	ServiceName string `mapstructure:"service_name"`
}

// Common holds the keys every service shares. Embed it with
// `mapstructure:",squash"` so its keys sit at the top level.
type Common struct {
	// DataDir is where embedded engines and indexes keep their files.
	DataDir   string          `mapstructure:"data_dir"`
	Log       LogConfig       `mapstructure:"log"`
	Telemetry TelemetryConfig `mapstructure:"telemetry"`
}

// DefaultCommon returns the defaults of the shared keys.
func DefaultCommon() Common {
	return Common{
		DataDir: "./.data",
		Log:     LogConfig{Level: "info", Format: "json"},
	}
}

// Load resolves cfg, a pointer to a struct pre-filled with defaults, from, in
// rising precedence: the defaults already in *cfg, a YAML file (path from the
// --config flag, else the MARQUEE_CONFIG variable), MARQUEE_* environment
// variables, and --set key=value flags (repeatable) in args.
//
// Every key of the struct gets a viper default, because viper ignores
// environment variables for keys it has no default for. Unknown keys in the
// file or in --set are an error, as are arguments other than --config and
// --set. Durations parse from strings such as "30s"; []string fields take
// comma-separated values from the environment and --set.
func Load(cfg any, args []string) error {
	rv := reflect.ValueOf(cfg)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("loading config: want a non-nil pointer to a struct, got %T", cfg)
	}

	fs := pflag.NewFlagSet("config", pflag.ContinueOnError)
	fs.SetOutput(discardWriter{})
	file := fs.String("config", "", "YAML config file")
	sets := fs.StringArray("set", nil, "key=value override (repeatable)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parsing config flags: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("parsing config flags: unexpected arguments %q", fs.Args())
	}

	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	leaves := map[string]bool{}
	walk(rv.Elem(), "", func(key string, f reflect.Value, _ reflect.StructField) {
		leaves[key] = true
		v.SetDefault(key, f.Interface())
	})

	path := *file
	if path == "" {
		path = os.Getenv(ConfigFileEnv)
	}
	if path != "" {
		if err := checkFileKeys(path, leaves); err != nil {
			return err
		}
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("reading config file %s: %w", path, err)
		}
	}

	for _, kv := range *sets {
		key, value, ok := strings.Cut(kv, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if !ok || key == "" {
			return fmt.Errorf("parsing --set %q: want key=value", kv)
		}
		if !known(key, leaves) {
			return fmt.Errorf("parsing --set %q: unknown key %q", kv, key)
		}
		v.Set(key, value)
	}

	err := v.Unmarshal(cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			stringToSliceHook(),
		)
	})
	if err != nil {
		return fmt.Errorf("decoding config: %w", err)
	}
	return nil
}

// stringToSliceHook splits a string on commas when a slice is wanted,
// trimming spaces and dropping empty items, so MARQUEE_X_Y="a, b" and
// MARQUEE_X_Y="" both mean what they say.
func stringToSliceHook() mapstructure.DecodeHookFuncType {
	return func(from, to reflect.Type, data any) (any, error) {
		if from.Kind() != reflect.String || to.Kind() != reflect.Slice {
			return data, nil
		}
		s := strings.TrimSpace(data.(string))
		if s == "" {
			return []string{}, nil
		}
		parts := strings.Split(s, ",")
		out := make([]string, 0, len(parts))
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out, nil
	}
}

// checkFileKeys reports keys in the YAML file at path that the config struct
// does not have; viper would silently ignore them, hiding typos.
func checkFileKeys(path string, leaves map[string]bool) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("parsing config file %s: %w", path, err)
	}
	var unknown []string
	var visit func(prefix string, m map[string]any)
	visit = func(prefix string, m map[string]any) {
		for k, val := range m {
			key := strings.ToLower(k)
			if prefix != "" {
				key = prefix + "." + key
			}
			if leaves[key] {
				continue
			}
			if sub, ok := val.(map[string]any); ok && hasPrefix(key, leaves) {
				visit(key, sub)
				continue
			}
			unknown = append(unknown, key)
		}
	}
	visit("", doc)
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config file %s: unknown keys %s", path, strings.Join(unknown, ", "))
	}
	return nil
}

// known reports whether key is a leaf of the struct, or lies under a leaf
// that is a map.
func known(key string, leaves map[string]bool) bool {
	if leaves[key] {
		return true
	}
	for k := range leaves {
		if strings.HasPrefix(key, k+".") {
			return true
		}
	}
	return false
}

// hasPrefix reports whether some leaf lies under the section key.
func hasPrefix(key string, leaves map[string]bool) bool {
	for k := range leaves {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

// durationType is treated as a leaf value, not as an int64.
var durationType = reflect.TypeFor[time.Duration]()

// walk calls fn for every leaf field of the struct value v, with its dotted
// key. Nested structs are sections; embedded structs tagged ",squash" merge
// into their parent; fields tagged "-" or unexported are skipped.
func walk(v reflect.Value, prefix string, fn func(key string, f reflect.Value, sf reflect.StructField)) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("mapstructure"), ",")
		if name == "-" {
			continue
		}
		f := v.Field(i)
		squash := slices.Contains(strings.Split(opts, ","), "squash")
		if squash && f.Kind() == reflect.Struct {
			walk(f, prefix, fn)
			continue
		}
		if name == "" {
			name = sf.Name
		}
		key := strings.ToLower(name)
		if prefix != "" {
			key = prefix + "." + key
		}
		if f.Kind() == reflect.Struct && f.Type() != durationType && f.Type() != reflect.TypeFor[time.Time]() {
			walk(f, key, fn)
			continue
		}
		fn(key, f, sf)
	}
}

// Redacted returns the resolved config as a nested map keyed like the YAML
// file, for logging at start-up. Fields tagged `secret:"true"` read "***", or
// "" when empty so an unset secret is visible as such; durations read as
// strings ("30s").
func Redacted(cfg any) map[string]any {
	rv := reflect.ValueOf(cfg)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return map[string]any{}
		}
		rv = rv.Elem()
	}
	out := map[string]any{}
	if rv.Kind() != reflect.Struct {
		return out
	}
	walk(rv, "", func(key string, f reflect.Value, sf reflect.StructField) {
		var val any
		switch {
		case sf.Tag.Get("secret") == "true":
			val = "***"
			if f.IsZero() {
				val = ""
			}
		case f.Type() == durationType:
			val = time.Duration(f.Int()).String()
		default:
			val = f.Interface()
		}
		setPath(out, strings.Split(key, "."), val)
	})
	return out
}

func setPath(m map[string]any, path []string, val any) {
	for _, p := range path[:len(path)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	m[path[len(path)-1]] = val
}

// discardWriter swallows pflag's usage output; Load reports errors itself.
type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
