package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Key describes one configuration key, for reference documentation.
type Key struct {
	// Name is the dotted key ("catalog.grpc_addr").
	Name string
	// Env is its environment variable (MARQUEE_CATALOG_GRPC_ADDR).
	Env string
	// Default is the default value as text; secrets never show theirs.
	Default string
	// Secret is true for keys tagged `secret:"true"`.
	Secret bool
}

// Keys lists every key of cfg (a struct or pointer to one filled with its
// defaults) in declaration order.
func Keys(cfg any) []Key {
	rv := reflect.ValueOf(cfg)
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	var keys []Key
	walk(rv, "", func(key string, f reflect.Value, sf reflect.StructField) {
		k := Key{
			Name:   key,
			Env:    EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_")),
			Secret: sf.Tag.Get("secret") == "true",
		}
		switch {
		case k.Secret:
		case f.Type() == durationType:
			k.Default = time.Duration(f.Int()).String()
		case f.Kind() == reflect.Slice:
			parts := make([]string, f.Len())
			for i := range parts {
				parts[i] = fmt.Sprint(f.Index(i).Interface())
			}
			k.Default = strings.Join(parts, ",")
		default:
			k.Default = fmt.Sprint(f.Interface())
		}
		keys = append(keys, k)
	})
	return keys
}
