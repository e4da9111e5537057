// The variables Candado's containers set are the ones function.Config reads.

package deploy_test

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func candadoPods(t *testing.T) []podOf {
	t.Helper()
	var pods []podOf
	for _, o := range allManifests(t) {
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			if v.Name == appName {
				pods = append(pods, podOf{where: o.String(), spec: &v.Spec.Template.Spec, dep: v})
			}
		case *knService:
			if v.Name == appName {
				pods = append(pods, podOf{where: o.String(), spec: &v.Spec.Template.Spec.PodSpec, kn: v})
			}
		}
	}
	if len(pods) < 2 {
		t.Fatalf("want the Deployment and the Knative Service named %s, found %d", appName, len(pods))
	}
	return pods
}

func candadoContainer(t *testing.T, p podOf) *corev1.Container {
	t.Helper()
	for i := range p.spec.Containers {
		if p.spec.Containers[i].Name == appName {
			return &p.spec.Containers[i]
		}
	}
	t.Fatalf("%s: no container named %s", p.where, appName)
	return nil
}

func envMap(c *corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func TestManifestEnvNames(t *testing.T) {
	allowed := allowedEnv(t)
	for _, o := range allManifests(t) {
		var spec *corev1.PodSpec
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			spec = &v.Spec.Template.Spec
		case *appsv1.StatefulSet:
			spec = &v.Spec.Template.Spec
		case *knService:
			spec = &v.Spec.Template.Spec.PodSpec
		default:
			continue
		}
		for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			ok := allowed
			if c.Name != appName {
				other, known := otherContainerEnv[c.Name]
				if !known {
					t.Errorf("%v: container %q: unknown container, add its variables to otherContainerEnv", o, c.Name)
					continue
				}
				ok = map[string]bool{}
				for _, n := range other {
					ok[n] = true
				}
			}
			if len(c.EnvFrom) > 0 {
				t.Errorf("%v: container %q uses envFrom, whose names cannot be checked", o, c.Name)
			}
			seen := map[string]bool{}
			for _, e := range c.Env {
				if !ok[e.Name] {
					t.Errorf("%v: container %q sets %s, which it does not read (allowed: %v)", o, c.Name, e.Name, sortedKeys(ok))
				}
				if seen[e.Name] {
					t.Errorf("%v: container %q sets %s twice", o, c.Name, e.Name)
				}
				seen[e.Name] = true
				if c.Name != appName {
					continue
				}
				if _, isKn := o.obj.(*knService); isKn && e.Name == "PORT" {
					t.Errorf("%v: PORT is reserved by Knative", o)
				}
				if sk, secret := secretKeys[e.Name]; secret {
					ref := e.ValueFrom
					if e.Value != "" || ref == nil || ref.SecretKeyRef == nil {
						t.Errorf("%v: %s must come from the Secret %s", o, e.Name, secretName)
						continue
					}
					if ref.SecretKeyRef.Name != secretName || ref.SecretKeyRef.Key != sk.key {
						t.Errorf("%v: %s from secret %s key %s, want %s key %s", o, e.Name,
							ref.SecretKeyRef.Name, ref.SecretKeyRef.Key, secretName, sk.key)
					}
				}
			}
		}
	}
}
