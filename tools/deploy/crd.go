package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// CRDSet holds the OpenAPI v3 schemas of custom resources, by group, version and kind.
type CRDSet struct {
	schemas map[schema.GroupVersionKind]*apiextensionsv1.JSONSchemaProps
	// CRDs are the definitions themselves, strictly decoded.
	CRDs []*apiextensionsv1.CustomResourceDefinition
}

// LoadCRDs reads CustomResourceDefinitions from YAML files (several documents per file allowed), decoding them
// strictly, and keeps the schema of every served version.
func LoadCRDs(files ...string) (*CRDSet, error) {
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building the CRD scheme: %w", err)
	}
	dec := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	set := &CRDSet{schemas: map[schema.GroupVersionKind]*apiextensionsv1.JSONSchemaProps{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading CRDs: %w", err)
		}
		docs, err := splitYAML(data)
		if err != nil {
			return nil, fmt.Errorf("splitting %s: %w", f, err)
		}
		for i, doc := range docs {
			// The definitions are third-party files copied verbatim and decoded strictly below, so the
			// single-pass conversion suffices (the duplicate-key pass would double the time of the largest
			// file the tests read).
			js, err := yaml.YAMLToJSON(doc)
			if err != nil {
				return nil, fmt.Errorf("parsing %s document %d: %w", f, i, err)
			}
			if len(bytes.TrimSpace(js)) == 0 || string(bytes.TrimSpace(js)) == "null" {
				continue
			}
			obj, _, err := dec.Decode(js, nil, nil)
			if err != nil {
				return nil, fmt.Errorf("decoding %s document %d: %w", f, i, err)
			}
			crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
			if !ok {
				return nil, fmt.Errorf("decoding %s document %d: a %T, not a CustomResourceDefinition", f, i, obj)
			}
			set.CRDs = append(set.CRDs, crd)
			for _, v := range crd.Spec.Versions {
				if !v.Served || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
					continue
				}
				gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
				set.schemas[gvk] = v.Schema.OpenAPIV3Schema
			}
		}
	}
	return set, nil
}

// Knows reports whether the set has a schema for gvk.
func (s *CRDSet) Knows(gvk schema.GroupVersionKind) bool {
	_, ok := s.schemas[gvk]
	return ok
}

// Validate checks a custom resource against its CRD schema as strictly as the API server with field validation
// set to Strict: unknown fields (which the server would prune), wrong types, missing required fields, values
// outside enums, patterns and bounds, and duplicate keys of map-type lists all fail. metadata is decoded strictly
// into ObjectMeta. CEL rules (x-kubernetes-validations) cannot be evaluated offline, so a field that carries them
// fails too: keep such fields unset or add a dedicated check.
func (s *CRDSet) Validate(gvk schema.GroupVersionKind, obj map[string]any) error {
	root, ok := s.schemas[gvk]
	if !ok {
		return fmt.Errorf("no CRD schema for %s", gvk)
	}
	var errs []error
	for k, v := range obj {
		switch k {
		case "apiVersion", "kind":
		case "metadata":
			if err := strictObjectMeta(v); err != nil {
				errs = append(errs, fmt.Errorf("metadata: %w", err))
			}
		default:
			prop, ok := root.Properties[k]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: unknown field", k))
				continue
			}
			errs = append(errs, validateSchema(&prop, v, k)...)
		}
	}
	for _, r := range root.Required {
		if _, ok := obj[r]; !ok {
			errs = append(errs, fmt.Errorf("%s: required field missing", r))
		}
	}
	sortErrors(errs)
	return errors.Join(errs...)
}

func strictObjectMeta(v any) error {
	js, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding: %w", err)
	}
	var meta metav1.ObjectMeta
	strictErrs, err := sigsjson.UnmarshalStrict(js, &meta)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// validateSchema checks value v at path against a structural schema node.
func validateSchema(s *apiextensionsv1.JSONSchemaProps, v any, path string) []error {
	if v == nil {
		if s.Nullable {
			return nil
		}
		return []error{fmt.Errorf("%s: null is not allowed", path)}
	}
	var errs []error
	if len(s.XValidations) > 0 {
		errs = append(errs, fmt.Errorf("%s: carries CEL rules that offline validation cannot evaluate", path))
	}
	if s.XIntOrString {
		switch x := v.(type) {
		case string:
			errs = append(errs, checkString(s, x, path)...)
		case json.Number:
			if _, err := x.Int64(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s is not an integer or a string", path, x))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: must be an integer or a string, not %s", path, typeName(v)))
		}
		return errs
	}
	if len(s.AnyOf) > 0 && s.Type == "" {
		matched := false
		for i := range s.AnyOf {
			if len(validateSchema(&s.AnyOf[i], v, path)) == 0 {
				matched = true
				break
			}
		}
		if !matched {
			errs = append(errs, fmt.Errorf("%s: matches none of anyOf", path))
		}
		return errs
	}
	errs = append(errs, checkEnum(s, v, path)...)
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return append(errs, fmt.Errorf("%s: must be an object, not %s", path, typeName(v)))
		}
		errs = append(errs, checkObject(s, m, path)...)
	case "array":
		a, ok := v.([]any)
		if !ok {
			return append(errs, fmt.Errorf("%s: must be an array, not %s", path, typeName(v)))
		}
		errs = append(errs, checkArray(s, a, path)...)
	case "string":
		str, ok := v.(string)
		if !ok {
			return append(errs, fmt.Errorf("%s: must be a string, not %s", path, typeName(v)))
		}
		errs = append(errs, checkString(s, str, path)...)
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return append(errs, fmt.Errorf("%s: must be an integer, not %s", path, typeName(v)))
		}
		i, err := n.Int64()
		if err != nil {
			return append(errs, fmt.Errorf("%s: %s is not an integer", path, n))
		}
		if s.Format == "int32" && (i < math.MinInt32 || i > math.MaxInt32) {
			errs = append(errs, fmt.Errorf("%s: %d overflows int32", path, i))
		}
		errs = append(errs, checkBounds(s, float64(i), path)...)
	case "number":
		n, ok := v.(json.Number)
		if !ok {
			return append(errs, fmt.Errorf("%s: must be a number, not %s", path, typeName(v)))
		}
		f, err := n.Float64()
		if err != nil {
			return append(errs, fmt.Errorf("%s: %s is not a number", path, n))
		}
		errs = append(errs, checkBounds(s, f, path)...)
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, fmt.Errorf("%s: must be a boolean, not %s", path, typeName(v)))
		}
	case "":
		if s.XPreserveUnknownFields == nil || !*s.XPreserveUnknownFields {
			errs = append(errs, fmt.Errorf("%s: the schema gives no type and does not preserve unknown fields", path))
		}
	default:
		errs = append(errs, fmt.Errorf("%s: unsupported schema type %q", path, s.Type))
	}
	return errs
}

func checkObject(s *apiextensionsv1.JSONSchemaProps, m map[string]any, path string) []error {
	var errs []error
	preserve := s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields
	for _, k := range sortedKeys(m) {
		p := path + "." + k
		if prop, ok := s.Properties[k]; ok {
			errs = append(errs, validateSchema(&prop, m[k], p)...)
			continue
		}
		if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
			errs = append(errs, validateSchema(s.AdditionalProperties.Schema, m[k], p)...)
			continue
		}
		if (s.AdditionalProperties != nil && s.AdditionalProperties.Allows) || preserve {
			continue
		}
		if s.XEmbeddedResource && (k == "apiVersion" || k == "kind" || k == "metadata") {
			continue
		}
		errs = append(errs, fmt.Errorf("%s: unknown field", p))
	}
	for _, r := range s.Required {
		if _, ok := m[r]; !ok {
			errs = append(errs, fmt.Errorf("%s.%s: required field missing", path, r))
		}
	}
	if s.MinProperties != nil && int64(len(m)) < *s.MinProperties {
		errs = append(errs, fmt.Errorf("%s: fewer than %d properties", path, *s.MinProperties))
	}
	if s.MaxProperties != nil && int64(len(m)) > *s.MaxProperties {
		errs = append(errs, fmt.Errorf("%s: more than %d properties", path, *s.MaxProperties))
	}
	return errs
}

func checkArray(s *apiextensionsv1.JSONSchemaProps, a []any, path string) []error {
	var errs []error
	if s.MinItems != nil && int64(len(a)) < *s.MinItems {
		errs = append(errs, fmt.Errorf("%s: fewer than %d items", path, *s.MinItems))
	}
	if s.MaxItems != nil && int64(len(a)) > *s.MaxItems {
		errs = append(errs, fmt.Errorf("%s: more than %d items", path, *s.MaxItems))
	}
	if s.Items != nil && s.Items.Schema != nil {
		for i, item := range a {
			errs = append(errs, validateSchema(s.Items.Schema, item, fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	listType := ""
	if s.XListType != nil {
		listType = *s.XListType
	}
	switch {
	case listType == "set" || s.UniqueItems:
		seen := map[string]bool{}
		for i, item := range a {
			key := canonicalJSON(item)
			if seen[key] {
				errs = append(errs, fmt.Errorf("%s[%d]: duplicate item of a set", path, i))
			}
			seen[key] = true
		}
	case listType == "map":
		seen := map[string]bool{}
		for i, item := range a {
			m, ok := item.(map[string]any)
			if !ok {
				continue
			}
			parts := make([]string, 0, len(s.XListMapKeys))
			for _, k := range s.XListMapKeys {
				parts = append(parts, canonicalJSON(m[k]))
			}
			key := strings.Join(parts, "\x00")
			if seen[key] {
				errs = append(errs, fmt.Errorf("%s[%d]: duplicate entry for keys %v", path, i, s.XListMapKeys))
			}
			seen[key] = true
		}
	}
	return errs
}

func checkString(s *apiextensionsv1.JSONSchemaProps, str, path string) []error {
	var errs []error
	if s.MinLength != nil && int64(len([]rune(str))) < *s.MinLength {
		errs = append(errs, fmt.Errorf("%s: shorter than %d", path, *s.MinLength))
	}
	if s.MaxLength != nil && int64(len([]rune(str))) > *s.MaxLength {
		errs = append(errs, fmt.Errorf("%s: longer than %d", path, *s.MaxLength))
	}
	if s.Pattern != "" {
		re, err := regexp.Compile(s.Pattern)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: compiling the schema's pattern: %w", path, err))
		} else if !re.MatchString(str) {
			errs = append(errs, fmt.Errorf("%s: %q does not match %s", path, str, s.Pattern))
		}
	}
	return errs
}

func checkBounds(s *apiextensionsv1.JSONSchemaProps, f float64, path string) []error {
	var errs []error
	if s.Minimum != nil && (f < *s.Minimum || (s.ExclusiveMinimum && f == *s.Minimum)) {
		errs = append(errs, fmt.Errorf("%s: %v is below the minimum %v", path, f, *s.Minimum))
	}
	if s.Maximum != nil && (f > *s.Maximum || (s.ExclusiveMaximum && f == *s.Maximum)) {
		errs = append(errs, fmt.Errorf("%s: %v is above the maximum %v", path, f, *s.Maximum))
	}
	return errs
}

func checkEnum(s *apiextensionsv1.JSONSchemaProps, v any, path string) []error {
	if len(s.Enum) == 0 {
		return nil
	}
	got := canonicalJSON(v)
	allowed := make([]string, 0, len(s.Enum))
	for _, e := range s.Enum {
		var ev any
		dec := json.NewDecoder(bytes.NewReader(e.Raw))
		dec.UseNumber()
		if err := dec.Decode(&ev); err != nil {
			return []error{fmt.Errorf("%s: decoding the schema's enum: %w", path, err)}
		}
		if canonicalJSON(ev) == got {
			return nil
		}
		allowed = append(allowed, string(e.Raw))
	}
	return []error{fmt.Errorf("%s: %s is not one of %s", path, got, strings.Join(allowed, ", "))}
}

func canonicalJSON(v any) string {
	b, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

func typeName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sortErrors orders validation errors by message, so that reports are stable.
func sortErrors(errs []error) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
}
