package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Object is one Kubernetes object of a rendered chart or kustomization.
type Object struct {
	// Source names where the object came from (a chart template or a kustomization directory).
	Source     string
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	// Raw is the object as generic JSON (numbers as json.Number).
	Raw map[string]any
	// Typed is the object strictly decoded into its Go API type, or nil for a custom resource checked
	// against a CRD schema instead.
	Typed runtime.Object
}

// ID names the object for messages: Kind/namespace/name.
func (o *Object) ID() string {
	if o.Namespace != "" {
		return o.Kind + "/" + o.Namespace + "/" + o.Name
	}
	return o.Kind + "/" + o.Name
}

// Decoder decodes manifests strictly into the Kubernetes API types, and checks custom resources against CRDs.
type Decoder struct {
	scheme  *runtime.Scheme
	decoder runtime.Decoder
	crds    *CRDSet
}

// NewDecoder returns a decoder knowing the built-in API groups Marquee uses, the prometheus-operator kinds and,
// through crds, the custom resources whose CRDs the project carries.
func NewDecoder(crds *CRDSet) (*Decoder, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, autoscalingv2.AddToScheme,
		policyv1.AddToScheme, networkingv1.AddToScheme, rbacv1.AddToScheme, apiextensionsv1.AddToScheme,
		monitoringv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return nil, fmt.Errorf("building the API scheme: %w", err)
		}
	}
	codecs := serializer.NewCodecFactory(scheme, serializer.EnableStrict)
	return &Decoder{scheme: scheme, decoder: codecs.UniversalDeserializer(), crds: crds}, nil
}

// DecodeRender decodes every manifest of a chart render.
func (d *Decoder) DecodeRender(r *Render) ([]*Object, error) {
	var (
		objs []*Object
		errs []error
	)
	for _, m := range r.Manifests {
		o, err := d.Decode(m.Source, []byte(m.Content))
		objs = append(objs, o...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return objs, errors.Join(errs...)
}

// Decode splits a YAML stream into documents and decodes each strictly. It returns the objects it could decode
// and every problem found.
func (d *Decoder) Decode(source string, data []byte) ([]*Object, error) {
	docs, err := splitYAML(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var (
		objs []*Object
		errs []error
	)
	for _, doc := range docs {
		o, err := d.decodeDocument(source, doc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
	return objs, errors.Join(errs...)
}

// splitYAML splits a YAML stream into its documents.
func splitYAML(data []byte) ([][]byte, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading YAML document %d: %w", i, err)
		}
		docs = append(docs, doc)
	}
}

// yamlToJSON converts one YAML document to JSON, rejecting duplicate keys (which YAML parsers otherwise resolve
// silently). An empty document (only comments) gives nil.
func yamlToJSON(doc []byte) ([]byte, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil, nil
	}
	return js, nil
}

func (d *Decoder) decodeDocument(source string, doc []byte) (*Object, error) {
	js, err := yamlToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if js == nil {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: decoding a document that is not an object: %w", source, err)
	}
	o := &Object{Source: source, Raw: raw}
	o.APIVersion, _ = raw["apiVersion"].(string)
	o.Kind, _ = raw["kind"].(string)
	if meta, ok := raw["metadata"].(map[string]any); ok {
		o.Name, _ = meta["name"].(string)
		o.Namespace, _ = meta["namespace"].(string)
	}
	if o.APIVersion == "" || o.Kind == "" || o.Name == "" {
		return nil, fmt.Errorf("%s: an object lacks apiVersion, kind or metadata.name", source)
	}
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: parsing apiVersion: %w", source, o.ID(), err)
	}
	gvk := gv.WithKind(o.Kind)
	if d.scheme.Recognizes(gvk) {
		typed, _, err := d.decoder.Decode(js, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: strict decoding into %s: %w", source, o.ID(), gvk, err)
		}
		o.Typed = typed
		return o, nil
	}
	if d.crds != nil && d.crds.Knows(gvk) {
		if err := d.crds.Validate(gvk, raw); err != nil {
			return nil, fmt.Errorf("%s: %s: validating against its CRD: %w", source, o.ID(), err)
		}
		return o, nil
	}
	return nil, fmt.Errorf("%s: %s: no schema known for %s (add its Go types or CRD to the checks)", source, o.ID(), gvk)
}
