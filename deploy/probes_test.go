// Probes, ports, security contexts, the Service and the PodDisruptionBudget.

package deploy_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func resolvePort(c *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return -1
}

func checkProbe(t *testing.T, where, kind string, c *corev1.Container, p *corev1.Probe, path string, knative bool) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: %s probe must be an HTTP GET of %s", where, kind, path)
		return
	}
	if p.HTTPGet.Path != path {
		t.Errorf("%s: %s probe path %q, want %q", where, kind, p.HTTPGet.Path, path)
	}
	port := p.HTTPGet.Port
	if knative && port.Type == intstr.Int && port.IntVal == 0 {
		return // Knative fills in the serving port
	}
	if got := resolvePort(c, port); got != appPort {
		t.Errorf("%s: %s probe port %s resolves to %d, want %d", where, kind, port.String(), got, appPort)
	}
}

func TestProbesPortsAndSecurity(t *testing.T) {
	for _, p := range candadoPods(t) {
		c := candadoContainer(t, p)
		if len(c.Ports) != 1 || c.Ports[0].ContainerPort != appPort {
			t.Errorf("%s: container ports %v, want exactly %d", p.where, c.Ports, appPort)
		}
		checkProbe(t, p.where, "readiness", c, c.ReadinessProbe, readinessPath, p.kn != nil)
		checkProbe(t, p.where, "liveness", c, c.LivenessProbe, livenessPath, p.kn != nil)
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: want cpu and memory requests and a memory limit", p.where)
		}
		sc := c.SecurityContext
		podNonRoot := p.spec.SecurityContext != nil && p.spec.SecurityContext.RunAsNonRoot != nil && *p.spec.SecurityContext.RunAsNonRoot
		switch {
		case sc == nil:
			t.Errorf("%s: no container securityContext", p.where)
		default:
			if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
				t.Errorf("%s: runAsNonRoot not set", p.where)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem not set", p.where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation must be false", p.where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s: capabilities must drop ALL", p.where)
			}
		}
		env := envMap(c)
		wait := maxWait(t, env)

		switch {
		case p.kn != nil:
			rs := p.kn.Spec.Template.Spec
			ann := p.kn.Spec.Template.Annotations
			if ann["autoscaling.knative.dev/min-scale"] != "0" {
				t.Errorf("%s: min-scale %q, want \"0\"", p.where, ann["autoscaling.knative.dev/min-scale"])
			}
			for _, a := range []string{"max-scale", "target"} {
				if _, err := strconv.Atoi(ann["autoscaling.knative.dev/"+a]); err != nil {
					t.Errorf("%s: annotation autoscaling.knative.dev/%s must be an integer: %v", p.where, a, err)
				}
			}
			if rs.ContainerConcurrency == nil || *rs.ContainerConcurrency < 1 {
				t.Errorf("%s: containerConcurrency must be set (matched to the Redis pool)", p.where)
			} else if target, err := strconv.Atoi(ann["autoscaling.knative.dev/target"]); err == nil && int64(target) > *rs.ContainerConcurrency {
				t.Errorf("%s: target %d exceeds containerConcurrency %d", p.where, target, *rs.ContainerConcurrency)
			}
			if rs.TimeoutSeconds == nil || time.Duration(*rs.TimeoutSeconds)*time.Second <= wait {
				t.Errorf("%s: timeoutSeconds must exceed CANDADO_MAX_WAIT %s", p.where, wait)
			}
			if p.spec.SecurityContext != nil {
				t.Errorf("%s: a pod securityContext needs a Knative feature flag; set it on the container", p.where)
			}
		case p.dep != nil:
			if p.dep.Spec.Replicas == nil || *p.dep.Spec.Replicas < 2 {
				t.Errorf("%s: want 2 or more replicas", p.where)
			}
			if g := p.spec.TerminationGracePeriodSeconds; g == nil || *g < 15 {
				t.Errorf("%s: terminationGracePeriodSeconds must be at least 15 (shutdown takes up to 10s)", p.where)
			} else if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil &&
				*g < c.Lifecycle.PreStop.Sleep.Seconds+15 {
				t.Errorf("%s: terminationGracePeriodSeconds %d leaves under 15s after the preStop sleep", p.where, *g)
			}
			if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Exec != nil {
				t.Errorf("%s: preStop exec cannot run in a distroless image", p.where)
			}
			checkServiceAndPDB(t, p.dep, c)
		}
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func checkServiceAndPDB(t *testing.T, dep *appsv1.Deployment, c *corev1.Container) {
	t.Helper()
	objs := manifests(t, "k8s", false)
	podLabels := dep.Spec.Template.Labels
	if dep.Spec.Selector == nil || !selects(dep.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("Deployment %s: selector does not match its pod labels", dep.Name)
	}
	var svcs int
	for _, svc := range ofType[*corev1.Service](objs) {
		if svc.Name != appName {
			continue
		}
		svcs++
		if !selects(svc.Spec.Selector, podLabels) {
			t.Errorf("Service %s: selector %v does not select the Deployment's pods %v", svc.Name, svc.Spec.Selector, podLabels)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || resolvePort(c, svc.Spec.Ports[0].TargetPort) != appPort {
			t.Errorf("Service %s: ports %v, want 80 -> %d", svc.Name, svc.Spec.Ports, appPort)
		}
	}
	if svcs != 1 {
		t.Errorf("k8s: want one Service %s, found %d", appName, svcs)
	}
	var pdbs int
	for _, pdb := range ofType[*policyv1.PodDisruptionBudget](objs) {
		pdbs++
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.String() != "1" {
			t.Errorf("PodDisruptionBudget %s: minAvailable %v, want 1", pdb.Name, pdb.Spec.MinAvailable)
		}
		if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, podLabels) {
			t.Errorf("PodDisruptionBudget %s: does not select the Deployment's pods", pdb.Name)
		}
	}
	if pdbs != 1 {
		t.Errorf("k8s: want one PodDisruptionBudget, found %d", pdbs)
	}
}
