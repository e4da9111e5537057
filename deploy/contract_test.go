// The contract the manifests follow: names, ports, paths, event types and
// the variables function.Config reads.

package deploy_test

import (
	"sort"
	"strings"
	"testing"
	"time"

	"handler/function/function"
	"handler/function/function/events"
)

// The service contract (docs/API.md) these manifests must follow.
const (
	appName       = "candado"
	appPort       = 8080
	livenessPath  = "/healthz"
	readinessPath = "/readyz"
	secretName    = "candado"
	brokerName    = "candado"
	// oidcAudience is the Triggers' spec.subscriber.audience: the aud of the
	// JWTs the broker sends with authentication-oidc on, which deploy/README
	// tells operators to set as CANDADO_OIDC_AUDIENCE.
	oidcAudience = "candado"
	envPrefix    = "CANDADO_"
	openfaasDir  = "/var/openfaas/secrets/"
)

var (
	manifestDirs = []string{"knative", "k8s", "redis", "eventing"}

	requestTypes = []string{events.TypeAcquire, events.TypeRelease, events.TypeHeartbeat}
	replyTypes   = []string{events.TypeAcquired, events.TypeReleased, events.TypeExtended, events.TypeRejected}

	// secretKeys maps the variables that carry secrets to their key in the
	// Secret "candado" and to their OpenFaaS secret name.
	secretKeys = map[string]struct{ key, openfaas string }{
		"CANDADO_REDIS_URL":  {"redis-url", "candado-redis-url"},
		"CANDADO_AUTH_TOKEN": {"auth-token", "candado-auth-token"},
	}

	// watchdogEnv are the of-watchdog and template variables a stack.yml
	// may set besides Candado's own.
	watchdogEnv = []string{
		"read_timeout", "write_timeout", "exec_timeout", "upstream_timeout",
		"max_inflight", "healthcheck_interval", "mode", "upstream_url",
		"buffer_http", "prefix_logs", "log_buffer_size", "ready_path",
		"jwt_auth", "jwt_auth_debug", "jwt_auth_local", "combine_output",
		"content_type", "suppress_lock", "port", "fprocess", "static_path",
	}

	// otherContainerEnv lists what containers other than Candado may set.
	otherContainerEnv = map[string][]string{
		"redis":         {"REDIS_PASSWORD"},
		"event-display": nil,
	}
)

// configVars returns the variables function.Config reads, by reflection,
// with their default values, so new fields are picked up without edits here.
func configVars(t *testing.T) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for _, v := range function.Variables() {
		if strings.HasPrefix(v.Name, envPrefix) && !strings.HasSuffix(v.Name, "_FILE") {
			vars[v.Name] = v.Default
		}
	}
	if len(vars) == 0 {
		t.Fatal("function.Config has no envconfig fields")
	}
	for _, must := range []string{"CANDADO_REDIS_URL", "CANDADO_AUTH_TOKEN", "CANDADO_MAX_WAIT"} {
		if _, ok := vars[must]; !ok {
			t.Fatalf("function.Config defines no %s (found %v)", must, sortedKeys(vars))
		}
	}
	return vars
}

// allowedEnv is every variable name Candado reads.
func allowedEnv(t *testing.T) map[string]bool {
	t.Helper()
	allowed := map[string]bool{"PORT": true}
	for name := range configVars(t) {
		allowed[name] = true
	}
	for name := range secretKeys {
		allowed[name+"_FILE"] = true
	}
	return allowed
}

// maxWait is CANDADO_MAX_WAIT as env sets it, else Config's default.
func maxWait(t *testing.T, env map[string]string) time.Duration {
	t.Helper()
	v, ok := env["CANDADO_MAX_WAIT"]
	if !ok {
		v = configVars(t)["CANDADO_MAX_WAIT"]
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("CANDADO_MAX_WAIT=%q: %v", v, err)
	}
	return d
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
