// Every folder decodes strictly and is a kustomization without secrets.

package deploy_test

import (
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func TestManifestsDecodeStrictly(t *testing.T) {
	for _, dir := range manifestDirs {
		objs := manifests(t, dir, true)
		if len(objs) == 0 {
			t.Errorf("%s: no manifests", dir)
		}
		for _, o := range objs {
			t.Logf("decoded %v", o)
		}
	}
}

func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	// The check above is only worth something if a typo fails it.
	dir := t.TempDir()
	bad := map[string]string{
		"deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n",
		"ksvc.yaml":       "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containerConcurrenc: 1\n",
		"trigger.yaml":    "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: x}\nspec:\n  broker: b\n  filter: {attribute: {type: t}}\n",
		"dup.yaml":        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nmetadata: {name: y}\n",
		"unknown.yaml":    "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: x}\n",
	}
	for name, text := range bad {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := decodeFile(path); err == nil {
			t.Errorf("%s decoded without error", name)
		}
	}
}

func TestKustomizations(t *testing.T) {
	for _, dir := range manifestDirs {
		path := filepath.Join(dir, "kustomization.yaml")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		var k kustomization
		if err := yaml.UnmarshalStrict(data, &k); err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
			t.Errorf("%s: apiVersion/kind %s/%s, want kustomize.config.k8s.io/v1beta1/Kustomization", path, k.APIVersion, k.Kind)
		}
		listed := map[string]bool{}
		for _, r := range k.Resources {
			if listed[r] {
				t.Errorf("%s: %s listed twice", path, r)
			}
			listed[r] = true
			if isExample(r) {
				t.Errorf("%s: lists the example %s (real secrets are created with kubectl create secret)", path, r)
			}
			if fi, err := os.Stat(filepath.Join(dir, r)); err != nil {
				t.Errorf("%s: resource %s: %v", path, r, err)
			} else if fi.IsDir() {
				t.Errorf("%s: resource %s is a folder", path, r)
			}
		}
		files, err := manifestFiles(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if !isExample(f) && !listed[f] {
				t.Errorf("%s: %s is not listed in resources", path, f)
			}
		}
		for _, img := range k.Images {
			if img.Name != appName {
				t.Errorf("%s: images entry %q, want %q", path, img.Name, appName)
			}
		}
	}
}

func TestNoSecretInKustomizations(t *testing.T) {
	for _, o := range allManifests(t) {
		if _, ok := o.obj.(*corev1.Secret); ok {
			t.Errorf("%v: a Secret is applied by kustomize; keep it in a *.example.yaml", o)
		}
	}
}

// podOf is the pod spec of a Candado Deployment or Knative Service, with
// where it came from.
type podOf struct {
	where string
	spec  *corev1.PodSpec
	kn    *knService
	dep   *appsv1.Deployment
}

// candadoPods returns the pods of the Deployment and Knative Service named candado.
