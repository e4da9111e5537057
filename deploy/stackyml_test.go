// stack.yml (openfaas/faas-cli).

package deploy_test

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

type stackYAML struct {
	Version  any `json:"version"`
	Provider struct {
		Name    string `json:"name"`
		Gateway string `json:"gateway,omitempty"`
		Network string `json:"network,omitempty"`
	} `json:"provider"`
	Functions     map[string]stackFunction `json:"functions"`
	Configuration struct {
		Templates []struct {
			Name   string `json:"name"`
			Source string `json:"source,omitempty"`
			Path   string `json:"path,omitempty"`
		} `json:"templates,omitempty"`
		Copy []string `json:"copy,omitempty"`
	} `json:"configuration"`
}

type stackFunction struct {
	Lang                   string            `json:"lang"`
	Handler                string            `json:"handler"`
	Image                  string            `json:"image"`
	RegistryAuth           string            `json:"registry_auth,omitempty"`
	FProcess               string            `json:"fprocess,omitempty"`
	Environment            map[string]string `json:"environment,omitempty"`
	Secrets                []string          `json:"secrets,omitempty"`
	SkipBuild              bool              `json:"skip_build,omitempty"`
	Constraints            []string          `json:"constraints,omitempty"`
	EnvironmentFile        []string          `json:"environment_file,omitempty"`
	Labels                 map[string]string `json:"labels,omitempty"`
	Annotations            map[string]string `json:"annotations,omitempty"`
	Limits                 *stackResources   `json:"limits,omitempty"`
	Requests               *stackResources   `json:"requests,omitempty"`
	ReadOnlyRootFilesystem bool              `json:"readonly_root_filesystem,omitempty"`
	BuildOptions           []string          `json:"build_options,omitempty"`
	BuildArgs              map[string]string `json:"build_args,omitempty"`
	Namespace              string            `json:"namespace,omitempty"`
}

type stackResources struct {
	Memory string `json:"memory,omitempty"`
	CPU    string `json:"cpu,omitempty"`
}

func TestStackYML(t *testing.T) {
	s := readStrict[stackYAML](t, "../stack.yml")
	if v := fmt.Sprint(s.Version); v != "1" && v != "1.0" {
		t.Errorf("stack.yml version = %v, want 1.0", s.Version)
	}
	if s.Provider.Name != "openfaas" {
		t.Errorf("stack.yml provider.name = %q, want openfaas", s.Provider.Name)
	}
	if s.Provider.Gateway == "" {
		t.Error("stack.yml provider.gateway is empty")
	}
	for _, p := range []string{"./go.mod", "./go.sum"} {
		if !slices.Contains(s.Configuration.Copy, p) {
			t.Errorf("stack.yml configuration.copy = %v, lacks %s", s.Configuration.Copy, p)
		}
	}
	fn, ok := s.Functions[appName]
	if !ok {
		t.Fatalf("stack.yml: no function %s (have %v)", appName, sortedKeys(s.Functions))
	}
	if fn.Lang != "golang-middleware" {
		t.Errorf("stack.yml lang = %q, want golang-middleware", fn.Lang)
	}
	if fn.Handler != "./function" {
		t.Errorf("stack.yml handler = %q, want ./function", fn.Handler)
	}
	if fn.Image == "" {
		t.Error("stack.yml image is empty")
	}
	for name, sk := range secretKeys {
		if !slices.Contains(fn.Secrets, sk.openfaas) {
			t.Errorf("stack.yml secrets = %v, lacks %s (for %s)", fn.Secrets, sk.openfaas, name)
		}
		if v, set := fn.Environment[name]; set {
			t.Errorf("stack.yml sets %s=%q in plain text; use the secret %s", name, v, sk.openfaas)
		}
		if v, set := fn.Environment[name+"_FILE"]; set && v != openfaasDir+sk.openfaas {
			t.Errorf("stack.yml %s_FILE = %q, want %s", name, v, openfaasDir+sk.openfaas)
		}
	}

	allowed := allowedEnv(t)
	for _, w := range watchdogEnv {
		allowed[w] = true
	}
	for name := range fn.Environment {
		if !allowed[name] {
			t.Errorf("stack.yml environment sets %s, which neither Candado nor of-watchdog reads", name)
		}
	}

	// A waiting acquire lasts up to CANDADO_MAX_WAIT: the watchdog must not cut it.
	wait := maxWait(t, fn.Environment)
	for _, name := range []string{"read_timeout", "write_timeout", "exec_timeout"} {
		v, set := fn.Environment[name]
		if !set {
			t.Errorf("stack.yml: %s unset (the template server's default is 10s, the watchdog's 30s: below CANDADO_MAX_WAIT %s)", name, wait)
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Errorf("stack.yml %s = %q: %v", name, v, err)
		} else if d <= wait {
			t.Errorf("stack.yml %s = %s, want more than CANDADO_MAX_WAIT %s", name, d, wait)
		}
	}
	// of-watchdog's max_inflight limiter counts a request done only when its
	// handling returns; a watch stream whose caller leaves early makes the
	// reverse proxy abort, so its slot is never given back (see
	// platform_sse_test.go, checkWatchersLeaving).
	if v, set := fn.Environment["max_inflight"]; set {
		t.Errorf("stack.yml sets max_inflight=%q: every watcher that leaves before its stream ends would keep one of the watchdog's slots for good", v)
	}
	for _, l := range []string{"com.openfaas.scale.min", "com.openfaas.scale.max", "com.openfaas.scale.zero"} {
		if _, ok := fn.Labels[l]; !ok {
			t.Errorf("stack.yml: label %s unset", l)
		}
	}
	if fn.Limits == nil || fn.Requests == nil {
		t.Error("stack.yml: limits and requests must be set")
	}
}

// resolvePort resolves a probe's or Service's port against the container.
