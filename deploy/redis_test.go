// The Redis the manifests deploy.

package deploy_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestRedis(t *testing.T) {
	objs := manifests(t, "redis", false)
	sets := ofType[*appsv1.StatefulSet](objs)
	if len(sets) != 1 {
		t.Fatalf("redis: want one StatefulSet, found %d", len(sets))
	}
	sts := sets[0]
	if len(sts.Spec.VolumeClaimTemplates) == 0 {
		t.Error("redis: StatefulSet has no volumeClaimTemplates (no persistence)")
	}
	var c *corev1.Container
	for i := range sts.Spec.Template.Spec.Containers {
		if sts.Spec.Template.Spec.Containers[i].Name == "redis" {
			c = &sts.Spec.Template.Spec.Containers[i]
		}
	}
	if c == nil {
		t.Fatal("redis: no container named redis")
	}
	args := strings.Join(append(slices.Clone(c.Command), c.Args...), " ")
	for _, want := range []string{"--appendonly yes", "--requirepass $(REDIS_PASSWORD)", "--maxmemory-policy noeviction"} {
		if !strings.Contains(args, want) {
			t.Errorf("redis: command %q lacks %q", args, want)
		}
	}
	var pw bool
	for _, e := range c.Env {
		if e.Name == "REDIS_PASSWORD" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
			e.ValueFrom.SecretKeyRef.Name == "candado-redis" {
			pw = true
		}
	}
	if !pw {
		t.Error("redis: REDIS_PASSWORD must come from the Secret candado-redis")
	}
	var headless, plain bool
	for _, svc := range ofType[*corev1.Service](objs) {
		if !selects(svc.Spec.Selector, sts.Spec.Template.Labels) {
			t.Errorf("redis: Service %s does not select the StatefulSet's pods", svc.Name)
		}
		if svc.Spec.ClusterIP == corev1.ClusterIPNone {
			headless = headless || svc.Name == sts.Spec.ServiceName
		} else {
			plain = true
		}
	}
	if !headless {
		t.Errorf("redis: no headless Service named %q (the StatefulSet's serviceName)", sts.Spec.ServiceName)
	}
	if !plain {
		t.Error("redis: no client Service")
	}
}

// filterMatches tells whether a Trigger's exact-attribute filter could
// deliver an event of the given type. Only the type attribute is known,
// so any other attribute is assumed to match.
