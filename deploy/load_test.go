// Loading the manifests: YAML documents decoded strictly into typed objects.

package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// object is one decoded YAML document.
type object struct {
	file string // relative to the deploy folder
	obj  any
}

func (o object) String() string {
	var tm metav1.TypeMeta
	var om metav1.Object
	switch v := o.obj.(type) {
	case *knService:
		tm, om = v.TypeMeta, &v.ObjectMeta
	case *knBroker:
		tm, om = v.TypeMeta, &v.ObjectMeta
	case *knTrigger:
		tm, om = v.TypeMeta, &v.ObjectMeta
	case *appsv1.Deployment:
		tm, om = v.TypeMeta, &v.ObjectMeta
	case *appsv1.StatefulSet:
		tm, om = v.TypeMeta, &v.ObjectMeta
	case *corev1.Service:
		tm, om = v.TypeMeta, &v.ObjectMeta
	case *corev1.Secret:
		tm, om = v.TypeMeta, &v.ObjectMeta
	case *policyv1.PodDisruptionBudget:
		tm, om = v.TypeMeta, &v.ObjectMeta
	default:
		return fmt.Sprintf("%s: %T", o.file, o.obj)
	}
	return fmt.Sprintf("%s: %s %s/%s", o.file, tm.APIVersion, tm.Kind, om.GetName())
}

// kinds maps apiVersion/kind to a constructor of the type it decodes into.
var kinds = map[string]func() any{
	"apps/v1/Deployment":              func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":             func() any { return new(appsv1.StatefulSet) },
	"v1/Service":                      func() any { return new(corev1.Service) },
	"v1/Secret":                       func() any { return new(corev1.Secret) },
	"v1/ConfigMap":                    func() any { return new(corev1.ConfigMap) },
	"policy/v1/PodDisruptionBudget":   func() any { return new(policyv1.PodDisruptionBudget) },
	"serving.knative.dev/v1/Service":  func() any { return new(knService) },
	"eventing.knative.dev/v1/Broker":  func() any { return new(knBroker) },
	"eventing.knative.dev/v1/Trigger": func() any { return new(knTrigger) },
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// documents splits a YAML stream, dropping documents with only comments.
func documents(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range docSeparator.Split(string(data), -1) {
		empty := true
		for _, line := range strings.Split(d, "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// readStrict decodes the YAML file at path strictly (no unknown field) into a T.
func readStrict[T any](t *testing.T, path string) T {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := yaml.UnmarshalStrict(data, &v); err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	return v
}

// decodeFile decodes every document of a manifest strictly into its type.
func decodeFile(path string) ([]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []any
	for i, doc := range documents(data) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %v", i, err)
		}
		newObj := kinds[tm.APIVersion+"/"+tm.Kind]
		if newObj == nil {
			return nil, fmt.Errorf("document %d: no type known for apiVersion %q kind %q", i, tm.APIVersion, tm.Kind)
		}
		obj := newObj()
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("document %d (%s %s): %v", i, tm.APIVersion, tm.Kind, err)
		}
		out = append(out, obj)
	}
	return out, nil
}

// manifests decodes every manifest of dir (kustomization.yaml excepted).
// With examples false, *.example.yaml files are left out.
func manifests(t *testing.T, dir string, examples bool) []object {
	t.Helper()
	files, err := manifestFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var objs []object
	for _, f := range files {
		if !examples && isExample(f) {
			continue
		}
		rel := filepath.Join(dir, f)
		decoded, err := decodeFile(rel)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		for _, o := range decoded {
			objs = append(objs, object{file: rel, obj: o})
		}
	}
	return objs
}

func manifestFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "kustomization.yaml" || name == "kustomization.yml" {
			continue
		}
		if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") {
			files = append(files, name)
		}
	}
	return files, nil
}

func isExample(name string) bool {
	return strings.HasSuffix(name, ".example.yaml") || strings.HasSuffix(name, ".example.yml")
}

func allManifests(t *testing.T) []object {
	t.Helper()
	var objs []object
	for _, dir := range manifestDirs {
		objs = append(objs, manifests(t, dir, false)...)
	}
	return objs
}

func ofType[T any](objs []object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}
