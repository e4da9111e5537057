// func.yaml (knative/func, specVersion 0.36.0).

package deploy_test

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

type funcYAML struct {
	SpecVersion string `json:"specVersion"`
	Name        string `json:"name"`
	Domain      string `json:"domain,omitempty"`
	Runtime     string `json:"runtime"`
	Registry    string `json:"registry,omitempty"`
	Image       string `json:"image,omitempty"`
	ImageDigest string `json:"imageDigest,omitempty"`
	Created     string `json:"created"`
	Invoke      string `json:"invoke,omitempty"`
	Build       struct {
		Git *struct {
			URL        string `json:"url,omitempty"`
			Revision   string `json:"revision,omitempty"`
			ContextDir string `json:"contextDir,omitempty"`
		} `json:"git,omitempty"`
		BuilderImages map[string]string `json:"builderImages,omitempty"`
		Buildpacks    []string          `json:"buildpacks,omitempty"`
		Builder       string            `json:"builder,omitempty"`
		BuildEnvs     []funcEnv         `json:"buildEnvs,omitempty"`
		PVCSize       string            `json:"pvcSize,omitempty"`
	} `json:"build"`
	Run struct {
		Volumes []map[string]any `json:"volumes,omitempty"`
		Envs    []funcEnv        `json:"envs,omitempty"`
	} `json:"run"`
	Deploy struct {
		Namespace          string            `json:"namespace,omitempty"`
		Remote             bool              `json:"remote,omitempty"`
		Annotations        map[string]string `json:"annotations,omitempty"`
		Options            funcOptions       `json:"options,omitempty"`
		Labels             []funcLabel       `json:"labels,omitempty"`
		HealthEndpoints    funcHealth        `json:"healthEndpoints,omitempty"`
		ServiceAccountName string            `json:"serviceAccountName,omitempty"`
		Subscriptions      []map[string]any  `json:"subscriptions,omitempty"`
	} `json:"deploy"`
}

type funcEnv struct {
	Name  *string `json:"name,omitempty"`
	Value *string `json:"value,omitempty"`
}

type funcLabel struct {
	Key   *string `json:"key,omitempty"`
	Value *string `json:"value,omitempty"`
}

type funcHealth struct {
	Liveness  string `json:"liveness,omitempty"`
	Readiness string `json:"readiness,omitempty"`
}

type funcOptions struct {
	Scale *struct {
		Min         *int64   `json:"min,omitempty"`
		Max         *int64   `json:"max,omitempty"`
		Metric      *string  `json:"metric,omitempty"`
		Target      *float64 `json:"target,omitempty"`
		Utilization *float64 `json:"utilization,omitempty"`
	} `json:"scale,omitempty"`
	Resources *struct {
		Requests *struct {
			CPU    *string `json:"cpu,omitempty"`
			Memory *string `json:"memory,omitempty"`
		} `json:"requests,omitempty"`
		Limits *struct {
			CPU         *string `json:"cpu,omitempty"`
			Memory      *string `json:"memory,omitempty"`
			Concurrency *int64  `json:"concurrency,omitempty"`
		} `json:"limits,omitempty"`
	} `json:"resources,omitempty"`
}

// funcSecretRef is knative/func's {{ secret:name:key }} syntax.
var funcSecretRef = regexp.MustCompile(`^{{\s*secret:((?:\w|['-]\w)+):([-._a-zA-Z0-9]+)\s*}}$`)

func TestFuncYAML(t *testing.T) {
	f := readStrict[funcYAML](t, "../func.yaml")
	check := func(field, got, want string) {
		if got != want {
			t.Errorf("func.yaml %s = %q, want %q", field, got, want)
		}
	}
	check("specVersion", f.SpecVersion, "0.36.0")
	check("name", f.Name, appName)
	check("runtime", f.Runtime, "go")
	check("invoke", f.Invoke, "http")
	check("build.builder", f.Build.Builder, "host")
	check("deploy.healthEndpoints.liveness", f.Deploy.HealthEndpoints.Liveness, "/health/liveness")
	check("deploy.healthEndpoints.readiness", f.Deploy.HealthEndpoints.Readiness, "/health/readiness")
	if _, err := time.Parse(time.RFC3339, f.Created); err != nil {
		t.Errorf("func.yaml created = %q: func treats a function without a creation time as not initialized: %v", f.Created, err)
	}

	// Scale: options.scale or annotations, not both (scale options erase
	// unset min/max annotations).
	scale := f.Deploy.Options.Scale
	for k := range f.Deploy.Annotations {
		if strings.HasPrefix(k, "autoscaling.knative.dev/") && scale != nil {
			t.Errorf("func.yaml sets both deploy.options.scale and the annotation %s", k)
		}
	}
	if scale == nil {
		t.Fatal("func.yaml: no deploy.options.scale")
	}
	if scale.Min == nil || *scale.Min != 0 {
		t.Errorf("func.yaml deploy.options.scale.min = %v, want 0 (scale to zero)", scale.Min)
	}
	if scale.Max == nil || *scale.Max < 1 {
		t.Errorf("func.yaml deploy.options.scale.max = %v, want a bound", scale.Max)
	}
	if scale.Metric == nil || *scale.Metric != "concurrency" {
		t.Errorf("func.yaml deploy.options.scale.metric = %v, want concurrency", scale.Metric)
	}
	if scale.Target == nil || *scale.Target < 1 {
		t.Errorf("func.yaml deploy.options.scale.target = %v, want >= 1", scale.Target)
	}
	if r := f.Deploy.Options.Resources; r == nil || r.Limits == nil || r.Limits.Concurrency == nil {
		t.Error("func.yaml: no deploy.options.resources.limits.concurrency")
	} else if scale.Target != nil && *scale.Target > float64(*r.Limits.Concurrency) {
		t.Errorf("func.yaml scale target %v exceeds the concurrency limit %d", *scale.Target, *r.Limits.Concurrency)
	}

	allowed := allowedEnv(t)
	env := map[string]string{}
	for i, e := range f.Run.Envs {
		if e.Name == nil || e.Value == nil {
			t.Errorf("func.yaml run.envs[%d]: want name and value (no whole-secret imports: their names cannot be checked)", i)
			continue
		}
		name, value := *e.Name, *e.Value
		if !allowed[name] {
			t.Errorf("func.yaml run.envs sets %s, which Candado does not read (allowed: %v)", name, sortedKeys(allowed))
		}
		if name == "PORT" {
			t.Error("func.yaml run.envs sets PORT, which Knative reserves")
		}
		if _, dup := env[name]; dup {
			t.Errorf("func.yaml run.envs sets %s twice", name)
		}
		env[name] = value
		if sk, secret := secretKeys[name]; secret {
			m := funcSecretRef.FindStringSubmatch(value)
			if m == nil || m[1] != secretName || m[2] != sk.key {
				t.Errorf("func.yaml %s = %q, want '{{ secret:%s:%s }}'", name, value, secretName, sk.key)
			}
		} else if strings.HasPrefix(value, "{{") && funcSecretRef.FindStringSubmatch(value) == nil {
			t.Errorf("func.yaml %s = %q: not a func template func accepts here", name, value)
		}
	}
	for name := range secretKeys {
		if _, ok := env[name]; !ok {
			t.Errorf("func.yaml run.envs: %s is missing", name)
		}
	}
}
