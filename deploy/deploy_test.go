package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"handler/function/function"
)

// The service contract (docs/API.md) these manifests must follow.
const (
	appName       = "candado"
	appPort       = 8080
	livenessPath  = "/healthz"
	readinessPath = "/readyz"
	secretName    = "candado"
	brokerName    = "candado"
	envPrefix     = "CANDADO_"
	openfaasDir   = "/var/openfaas/secrets/"
)

var (
	manifestDirs = []string{"knative", "k8s", "redis", "eventing"}

	requestTypes = []string{
		"dev.candado.lock.acquire",
		"dev.candado.lock.release",
		"dev.candado.lock.heartbeat",
	}
	replyTypes = []string{
		"dev.candado.lock.acquired",
		"dev.candado.lock.released",
		"dev.candado.lock.extended",
		"dev.candado.lock.rejected",
		"dev.candado.lock.expired",
	}

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

// ---- Knative mirror types (serving.knative.dev/v1, eventing.knative.dev/v1) ----

// knService mirrors serving.knative.dev/v1 Service.
type knService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              knServiceSpec `json:"spec"`
}

type knServiceSpec struct {
	Template knRevisionTemplate `json:"template"`
	Traffic  []knTrafficTarget  `json:"traffic,omitempty"`
}

type knRevisionTemplate struct {
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              knRevisionSpec `json:"spec"`
}

// knRevisionSpec mirrors Knative's RevisionSpec: a PodSpec plus its own fields.
type knRevisionSpec struct {
	corev1.PodSpec              `json:",inline"`
	ContainerConcurrency        *int64 `json:"containerConcurrency,omitempty"`
	TimeoutSeconds              *int64 `json:"timeoutSeconds,omitempty"`
	ResponseStartTimeoutSeconds *int64 `json:"responseStartTimeoutSeconds,omitempty"`
	IdleTimeoutSeconds          *int64 `json:"idleTimeoutSeconds,omitempty"`
}

type knTrafficTarget struct {
	Tag               string `json:"tag,omitempty"`
	RevisionName      string `json:"revisionName,omitempty"`
	ConfigurationName string `json:"configurationName,omitempty"`
	LatestRevision    *bool  `json:"latestRevision,omitempty"`
	Percent           *int64 `json:"percent,omitempty"`
}

// knBroker mirrors eventing.knative.dev/v1 Broker.
type knBroker struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Config   *knReference    `json:"config,omitempty"`
		Delivery *knDeliverySpec `json:"delivery,omitempty"`
	} `json:"spec"`
}

// knTrigger mirrors eventing.knative.dev/v1 Trigger.
type knTrigger struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Broker string `json:"broker"`
		Filter *struct {
			Attributes map[string]string `json:"attributes,omitempty"`
		} `json:"filter,omitempty"`
		// Filters are the CESQL/dialect filters; the test refuses them.
		Filters    []map[string]any `json:"filters,omitempty"`
		Subscriber knDestination    `json:"subscriber"`
		Delivery   *knDeliverySpec  `json:"delivery,omitempty"`
	} `json:"spec"`
}

type knReference struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

type knDestination struct {
	Ref      *knReference `json:"ref,omitempty"`
	URI      string       `json:"uri,omitempty"`
	CACerts  *string      `json:"CACerts,omitempty"`
	Audience *string      `json:"audience,omitempty"`
}

type knDeliverySpec struct {
	DeadLetterSink *knDestination `json:"deadLetterSink,omitempty"`
	Retry          *int32         `json:"retry,omitempty"`
	Timeout        *string        `json:"timeout,omitempty"`
	BackoffPolicy  *string        `json:"backoffPolicy,omitempty"`
	BackoffDelay   *string        `json:"backoffDelay,omitempty"`
	RetryAfterMax  *string        `json:"retryAfterMax,omitempty"`
}

// kustomization mirrors the part of kustomize.config.k8s.io/v1beta1 used here.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

// ---- func.yaml (knative/func, specVersion 0.36.0) ----

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

// ---- stack.yml (openfaas/faas-cli) ----

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

// ---- loading ----

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

// ---- configuration derived from function.Config ----

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

// ---- tests ----

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

func TestFuncYAML(t *testing.T) {
	data, err := os.ReadFile("../func.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f funcYAML
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		t.Fatalf("func.yaml: %v", err)
	}
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

func TestStackYML(t *testing.T) {
	data, err := os.ReadFile("../stack.yml")
	if err != nil {
		t.Fatal(err)
	}
	var s stackYAML
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		t.Fatalf("stack.yml: %v", err)
	}
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
			t.Errorf("stack.yml: %s unset (the watchdog default is 10s, below CANDADO_MAX_WAIT %s)", name, wait)
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Errorf("stack.yml %s = %q: %v", name, v, err)
		} else if d <= wait {
			t.Errorf("stack.yml %s = %s, want more than CANDADO_MAX_WAIT %s", name, d, wait)
		}
	}
	if v := fn.Environment["max_inflight"]; v == "" {
		t.Error("stack.yml: max_inflight unset")
	} else if n, err := strconv.Atoi(v); err != nil || n < 1 {
		t.Errorf("stack.yml max_inflight = %q, want a positive integer", v)
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
func filterMatches(attrs map[string]string, eventType string) bool {
	v, ok := attrs["type"]
	return !ok || v == "" || v == eventType
}

func TestEventing(t *testing.T) {
	objs := manifests(t, "eventing", false)
	brokers := map[string]bool{}
	for _, b := range ofType[*knBroker](objs) {
		brokers[b.Name] = true
	}
	if !brokers[brokerName] {
		t.Errorf("eventing: no Broker %s", brokerName)
	}
	sinks := map[string]bool{}
	for _, s := range ofType[*knService](objs) {
		sinks["serving.knative.dev/v1/Service/"+s.Name] = true
	}
	for _, s := range ofType[*corev1.Service](objs) {
		sinks["v1/Service/"+s.Name] = true
	}

	byType := map[string]int{}
	for _, tr := range ofType[*knTrigger](objs) {
		where := "Trigger " + tr.Name
		if tr.Spec.Broker != brokerName {
			t.Errorf("%s: broker %q, want %q", where, tr.Spec.Broker, brokerName)
		}
		if len(tr.Spec.Filters) > 0 {
			t.Errorf("%s: uses spec.filters; filter on exact attributes only", where)
		}
		var attrs map[string]string
		if tr.Spec.Filter != nil {
			attrs = tr.Spec.Filter.Attributes
		}
		if len(attrs) != 1 || !slices.Contains(requestTypes, attrs["type"]) {
			t.Errorf("%s: filter %v, want exactly type equal to one of %v", where, attrs, requestTypes)
		}
		byType[attrs["type"]]++
		for _, reply := range replyTypes {
			if filterMatches(attrs, reply) {
				t.Errorf("%s: filter %v matches the reply type %s, which would loop back", where, attrs, reply)
			}
		}
		ref := tr.Spec.Subscriber.Ref
		if ref == nil || ref.APIVersion != "serving.knative.dev/v1" || ref.Kind != "Service" || ref.Name != appName {
			t.Errorf("%s: subscriber %+v, want the Knative Service %s", where, ref, appName)
		}
		d := tr.Spec.Delivery
		if d == nil {
			t.Errorf("%s: no delivery policy", where)
			continue
		}
		if d.Retry == nil || *d.Retry != 3 {
			t.Errorf("%s: delivery.retry %v, want 3", where, d.Retry)
		}
		if d.BackoffPolicy == nil || *d.BackoffPolicy != "exponential" {
			t.Errorf("%s: delivery.backoffPolicy %v, want exponential", where, d.BackoffPolicy)
		}
		if d.BackoffDelay == nil || *d.BackoffDelay != "PT0.2S" {
			t.Errorf("%s: delivery.backoffDelay %v, want PT0.2S", where, d.BackoffDelay)
		}
		if dls := d.DeadLetterSink; dls == nil || dls.Ref == nil {
			t.Errorf("%s: no deadLetterSink", where)
		} else if key := dls.Ref.APIVersion + "/" + dls.Ref.Kind + "/" + dls.Ref.Name; !sinks[key] {
			t.Errorf("%s: deadLetterSink %s is not defined in deploy/eventing", where, key)
		}
	}
	for _, rt := range requestTypes {
		if byType[rt] != 1 {
			t.Errorf("eventing: want one Trigger for %s, found %d", rt, byType[rt])
		}
	}
	// The filter check itself must catch a catch-all and a loop.
	if !filterMatches(nil, replyTypes[0]) || !filterMatches(map[string]string{"type": replyTypes[1]}, replyTypes[1]) {
		t.Error("filterMatches misses a loop")
	}
}

// ---- Dockerfile ----

// dockerInstructions returns the Dockerfile's instructions with
// continuation lines joined and comments dropped.
func dockerInstructions(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// shellWords splits a command line as sh would for simple quoting.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				w.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case strings.ContainsRune("&|;$`<>", r):
			return nil, fmt.Errorf("unsupported shell syntax %q in %q", r, s)
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

var envAssign = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func TestDockerfile(t *testing.T) {
	ins := dockerInstructions(t)
	var froms []string
	var user, expose, entry string
	for _, in := range ins {
		op, rest, _ := strings.Cut(in, " ")
		switch strings.ToUpper(op) {
		case "FROM":
			froms = append(froms, strings.Fields(rest)[0])
		case "USER":
			user = strings.TrimSpace(rest)
		case "EXPOSE":
			expose = strings.TrimSpace(rest)
		case "ENTRYPOINT":
			entry = strings.TrimSpace(rest)
		}
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "golang:") {
		t.Errorf("Dockerfile: want a golang builder stage and a final stage, FROM %v", froms)
	} else {
		goMod, err := os.ReadFile("../go.mod")
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindSubmatch(goMod)
		b := regexp.MustCompile(`^golang:(\d+)\.(\d+)`).FindStringSubmatch(froms[0])
		if m == nil || b == nil {
			t.Errorf("Dockerfile: cannot compare builder %s with go.mod's go line", froms[0])
		} else if bv, mv := atoi(b[1])*1000+atoi(b[2]), atoi(string(m[1]))*1000+atoi(string(m[2])); bv < mv {
			t.Errorf("Dockerfile: builder %s is older than go.mod's go %s.%s", froms[0], m[1], m[2])
		}
	}
	if len(froms) > 0 && froms[len(froms)-1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("Dockerfile: final stage %s, want gcr.io/distroless/static-debian12:nonroot", froms[len(froms)-1])
	}
	if user != "nonroot" && user != "65532" && user != "65532:65532" {
		t.Errorf("Dockerfile: USER %q, want nonroot", user)
	}
	if expose != strconv.Itoa(appPort) {
		t.Errorf("Dockerfile: EXPOSE %q, want %d", expose, appPort)
	}
	if entry != `["/candado"]` {
		t.Errorf("Dockerfile: ENTRYPOINT %s, want [\"/candado\"]", entry)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// dockerGoBuild finds the Dockerfile's `go build` and returns its
// environment assignments, its arguments after `go build` without -o,
// and the -o target.
func dockerGoBuild(t *testing.T) (env, args []string, out string) {
	t.Helper()
	for _, in := range dockerInstructions(t) {
		op, rest, _ := strings.Cut(in, " ")
		if !strings.EqualFold(op, "RUN") || !strings.Contains(rest, "go build") {
			continue
		}
		words, err := shellWords(rest)
		if err != nil {
			t.Fatalf("Dockerfile: %v", err)
		}
		i := 0
		for ; i < len(words) && envAssign.MatchString(words[i]); i++ {
			env = append(env, words[i])
		}
		if len(words) < i+2 || words[i] != "go" || words[i+1] != "build" {
			t.Fatalf("Dockerfile: want RUN [VAR=value ...] go build ..., got %q", rest)
		}
		for j := i + 2; j < len(words); j++ {
			if words[j] == "-o" && j+1 < len(words) {
				out = words[j+1]
				j++
				continue
			}
			args = append(args, words[j])
		}
		return env, args, out
	}
	t.Fatal("Dockerfile: no RUN ... go build")
	return nil, nil, ""
}

func TestDockerBuildIsStatic(t *testing.T) {
	env, args, out := dockerGoBuild(t)
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("Dockerfile: go build runs without CGO_ENABLED=0 (env %v)", env)
	}
	if !slices.Contains(args, "-trimpath") {
		t.Errorf("Dockerfile: go build lacks -trimpath: %v", args)
	}
	if i := slices.Index(args, "-ldflags"); i < 0 || i+1 >= len(args) || args[i+1] != "-s -w" {
		t.Errorf("Dockerfile: go build lacks -ldflags \"-s -w\": %v", args)
	}
	if out != "/candado" {
		t.Errorf("Dockerfile: go build -o %q, want /candado (the ENTRYPOINT)", out)
	}
	if len(args) == 0 {
		t.Fatal("Dockerfile: go build names no package")
	}
	// cmd/candado is a module of its own: built with -C (go wants it first).
	var chdir []string
	if len(args) >= 2 && args[0] == "-C" {
		chdir, args = args[:2], args[2:]
	}
	pkg := args[len(args)-1]
	if len(chdir) == 0 || chdir[1] != "cmd/candado" || pkg != "." {
		t.Fatalf("Dockerfile: builds %v %s, want -C cmd/candado .", chdir, pkg)
	}
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short mode")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(chdir[len(chdir)-1]), filepath.FromSlash(pkg))); err != nil {
		t.Skipf("%s does not exist yet: %v", pkg, err)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}

	bin := filepath.Join(t.TempDir(), "candado")
	cmdArgs := append(append(append([]string{"build"}, chdir...), "-o", bin), args...)
	cmd := exec.Command(goCmd, cmdArgs...)
	cmd.Dir = root
	// The image is linux; the Docker build context has no .git (.dockerignore).
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -buildvcs=false"))
	cmd.Env = append(cmd.Env, env...)
	if outb, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", env, strings.Join(cmdArgs, " "), err, outb)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			t.Error("binary has a PT_INTERP header: it needs a dynamic loader, which distroless/static lacks")
		case elf.PT_DYNAMIC:
			t.Error("binary has a PT_DYNAMIC header: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		t.Errorf("binary imports shared libraries %v", libs)
	}
	if syms, err := f.ImportedSymbols(); err == nil && len(syms) > 0 {
		t.Errorf("binary imports %d dynamic symbols, e.g. %v", len(syms), syms[0])
	}
	if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
		t.Error("binary has .dynamic or .interp sections")
	}
	// -s drops the symbol table, -w the DWARF data.
	if f.Section(".symtab") != nil {
		t.Error("binary keeps .symtab: -ldflags -s was not applied")
	}
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("binary keeps DWARF section %s: -ldflags -w was not applied", s.Name)
			break
		}
	}
	// -trimpath: no file system paths of this machine in the binary.
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(root+string(filepath.Separator))) {
		t.Errorf("binary contains the source path %s: -trimpath was not applied", root)
	}
}
