//go:build e2e

package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DecodeYAML splits a multi-document YAML (or JSON) stream into objects, skipping empty documents.
func DecodeYAML(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decoding YAML document %d: %w", len(objs)+1, err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// ReadYAMLFiles decodes every *.yaml file matching the glob patterns, in name order.
func ReadYAMLFiles(patterns ...string) ([]*unstructured.Unstructured, error) {
	var files []string
	for _, p := range patterns {
		m, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("bad glob %q: %w", p, err)
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("no file matches %s", p)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading manifest: %w", err)
		}
		o, err := DecodeYAML(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

// Apply creates each object, or replaces it when it already exists. Objects keep their own
// namespace; a namespaced object without one gets namespace.
func Apply(ctx context.Context, c client.Client, namespace string, objs ...client.Object) error {
	for _, obj := range objs {
		if obj.GetNamespace() == "" && namespace != "" {
			namespaced, err := c.IsObjectNamespaced(obj)
			if err != nil {
				return fmt.Errorf("resolving the scope of %s: %w", describe(obj), err)
			}
			if namespaced {
				obj.SetNamespace(namespace)
			}
		}
		err := c.Create(ctx, obj)
		if apierrors.IsAlreadyExists(err) {
			err = replace(ctx, c, obj)
		}
		if err != nil {
			return fmt.Errorf("applying %s: %w", describe(obj), err)
		}
	}
	return nil
}

// ApplyYAML decodes a YAML stream and applies every object in it.
func ApplyYAML(ctx context.Context, c client.Client, namespace string, data []byte) error {
	objs, err := DecodeYAML(data)
	if err != nil {
		return err
	}
	return Apply(ctx, c, namespace, unstructuredObjects(objs)...)
}

func replace(ctx context.Context, c client.Client, obj client.Object) error {
	current := &unstructured.Unstructured{}
	current.SetGroupVersionKind(obj.GetObjectKind().GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), current); err != nil {
		return fmt.Errorf("reading the existing object: %w", err)
	}
	obj.SetResourceVersion(current.GetResourceVersion())
	return c.Update(ctx, obj)
}

func unstructuredObjects(objs []*unstructured.Unstructured) []client.Object {
	out := make([]client.Object, len(objs))
	for i, o := range objs {
		out[i] = o
	}
	return out
}

func describe(obj client.Object) string {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		kind = fmt.Sprintf("%T", obj)
	}
	if obj.GetNamespace() == "" {
		return kind + " " + obj.GetName()
	}
	return kind + " " + obj.GetNamespace() + "/" + obj.GetName()
}
