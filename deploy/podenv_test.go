//go:build integration

package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"handler/function/function/redistest"
)

// This file runs every workload the kustomizations in deploy/ render in the
// environment its platform gives the container: the kubelet's service links
// (unless the pod spec turns them off), the API server's variables, the
// container's env with the example Secrets' values, and Knative Serving's
// PORT and K_* variables. Candado's containers run the real binary
// (cmd/candado, built once) with exactly that environment plus PATH and
// HOME; the Redis StatefulSet's container runs its own command and arguments.

// rendered is what the kustomizations in deploy/ produce.
type rendered struct {
	objects []object
}

// renderKustomization decodes the resources kustomization.yaml in dir lists
// (a folder resource is a kustomization of its own) and applies its images.
func renderKustomization(t *testing.T, dir string) []object {
	t.Helper()
	path := filepath.Join(dir, "kustomization.yaml")
	var k kustomization
	if err := yaml.UnmarshalStrict([]byte(readText(t, path)), &k); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var objs []object
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			objs = append(objs, renderKustomization(t, p)...)
			continue
		}
		decoded, err := decodeFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, o := range decoded {
			objs = append(objs, object{file: p, obj: o})
		}
	}
	for _, o := range objs {
		for _, spec := range podSpecs(o) {
			for i := range spec.Containers {
				c := &spec.Containers[i]
				for _, img := range k.Images {
					if c.Image == img.Name {
						c.Image = img.NewName + ":" + img.NewTag
					}
				}
			}
		}
	}
	return objs
}

func renderAll(t *testing.T) rendered {
	t.Helper()
	var r rendered
	for _, dir := range manifestDirs {
		r.objects = append(r.objects, renderKustomization(t, dir)...)
	}
	return r
}

// podSpecs is the pod spec an object owns, if any.
func podSpecs(o object) []*corev1.PodSpec {
	switch v := o.obj.(type) {
	case *appsv1.Deployment:
		return []*corev1.PodSpec{&v.Spec.Template.Spec}
	case *appsv1.StatefulSet:
		return []*corev1.PodSpec{&v.Spec.Template.Spec}
	case *knService:
		return []*corev1.PodSpec{&v.Spec.Template.Spec.PodSpec}
	}
	return nil
}

// linkedService is a Service whose links the kubelet writes.
type linkedService struct {
	name, ip string
	ports    []corev1.ServicePort
}

// services are the Services of the namespace once everything is applied:
// those the kustomizations render (headless and ExternalName ones get no
// links) and those Knative Serving creates for a Service's first revision.
func (r rendered) services() []linkedService {
	var out []linkedService
	add := func(name string, ports ...corev1.ServicePort) {
		out = append(out, linkedService{name: name, ports: ports})
	}
	for _, o := range r.objects {
		switch v := o.obj.(type) {
		case *corev1.Service:
			if v.Spec.ClusterIP == corev1.ClusterIPNone || v.Spec.Type == corev1.ServiceTypeExternalName {
				continue
			}
			add(v.Name, v.Spec.Ports...)
		case *knService:
			rev := v.Name + "-00001"
			add(rev, corev1.ServicePort{Name: "http", Port: 80}, corev1.ServicePort{Name: "https", Port: 443})
			add(rev+"-private", corev1.ServicePort{Name: "http", Port: 80}, corev1.ServicePort{Name: "https", Port: 443},
				corev1.ServicePort{Name: "http-metrics", Port: 9090}, corev1.ServicePort{Name: "http-profiling", Port: 9091},
				corev1.ServicePort{Name: "http-queueadm", Port: 8022})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	for i := range out {
		out[i].ip = "10.96.10." + strconv.Itoa(i+10) // never dialled
	}
	return out
}

// exampleSecrets maps Secret name and key to the value the *.example.yaml
// files give.
func exampleSecrets(t *testing.T) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, dir := range manifestDirs {
		for _, o := range manifests(t, dir, true) {
			if s, ok := o.obj.(*corev1.Secret); ok && isExample(o.file) {
				if out[s.Name] == nil {
					out[s.Name] = map[string]string{}
				}
				for k, v := range s.StringData {
					out[s.Name][k] = v
				}
				for k, v := range s.Data {
					out[s.Name][k] = string(v)
				}
			}
		}
	}
	return out
}

// links are the variables the kubelet writes for one Service.
func (s linkedService) links() map[string]string {
	p := strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
	vars := map[string]string{}
	for i, sp := range s.ports {
		proto := strings.ToLower(string(sp.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		port := strconv.Itoa(int(sp.Port))
		if i == 0 {
			vars[p+"_SERVICE_HOST"] = s.ip
			vars[p+"_SERVICE_PORT"] = port
			vars[p+"_PORT"] = proto + "://" + s.ip + ":" + port
		}
		if sp.Name != "" {
			vars[p+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(sp.Name, "-", "_"))] = port
		}
		link := p + "_PORT_" + port + "_" + strings.ToUpper(proto)
		vars[link] = proto + "://" + s.ip + ":" + port
		vars[link+"_PROTO"] = proto
		vars[link+"_PORT"] = port
		vars[link+"_ADDR"] = s.ip
	}
	return vars
}

// expand replaces $(NAME) with vars[NAME] as the kubelet does for env
// values, command and args; $$ is a literal $; unknown names stay as written.
func expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) {
			if s[i+1] == '$' {
				b.WriteByte('$')
				i++
				continue
			}
			if s[i+1] == '(' {
				if end := strings.IndexByte(s[i:], ')'); end > 0 {
					if v, ok := vars[s[i+2:i+end]]; ok {
						b.WriteString(v)
						i += end
						continue
					}
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// containerEnv is the environment the platform gives container c of pod
// spec: service links (when links is true), the API server's variables, the
// Knative Service's variables for kn, and c's env resolved against secrets.
func containerEnv(t *testing.T, where string, spec *corev1.PodSpec, c *corev1.Container, kn *knService, svcs []linkedService, secrets map[string]map[string]string, links bool) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for _, s := range svcs {
		if links {
			for k, v := range s.links() {
				vars[k] = v
			}
		}
	}
	// The API server's Service links are written even with links off.
	for k, v := range (linkedService{name: "kubernetes", ip: "10.96.0.1", ports: []corev1.ServicePort{{Name: "https", Port: 443}}}).links() {
		vars[k] = v
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			vars[e.Name] = expand(e.Value, vars)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secrets[ref.Name][ref.Key]
			if !ok {
				if ref.Optional != nil && *ref.Optional {
					continue
				}
				t.Fatalf("%s: env %s needs Secret %s key %s, which no *.example.yaml defines", where, e.Name, ref.Name, ref.Key)
			}
			vars[e.Name] = v
		default:
			t.Fatalf("%s: env %s: only value and secretKeyRef are reproduced here", where, e.Name)
		}
	}
	if kn != nil {
		vars["PORT"] = strconv.Itoa(int(firstPort(c, 8080)))
		vars["K_SERVICE"] = kn.Name
		vars["K_CONFIGURATION"] = kn.Name
		vars["K_REVISION"] = kn.Name + "-00001"
	}
	return vars
}

func firstPort(c *corev1.Container, def int32) int32 {
	if len(c.Ports) > 0 {
		return c.Ports[0].ContainerPort
	}
	return def
}

// TestPodSpecsDisableServiceLinks: every pod spec the manifests own turns
// service links off, so no Service in the namespace writes variables into
// Candado's (or Redis') environment.
func TestPodSpecsDisableServiceLinks(t *testing.T) {
	n := 0
	for _, o := range renderAll(t).objects {
		for _, spec := range podSpecs(o) {
			n++
			if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
				t.Errorf("%v: pod spec without enableServiceLinks: false", o)
			}
		}
	}
	if n < 3 {
		t.Fatalf("found %d pod specs; want the Deployment, the Knative Service and the Redis StatefulSet", n)
	}
}

// TestWorkloadsRunInTheirPodEnvironment starts the Redis StatefulSet's
// container command and every Candado container the kustomizations render,
// each with the environment its platform gives it, and takes a lock through
// each. Each runs twice: with service links as the pod spec declares them,
// and with service links on (a pod spec without the field, and what OpenFaaS
// pods get), which Candado must survive too.
func TestWorkloadsRunInTheirPodEnvironment(t *testing.T) {
	r := renderAll(t)
	svcs := r.services()
	secrets := exampleSecrets(t)
	bin := buildCandado(t)

	type workload struct {
		where string
		spec  *corev1.PodSpec
		kn    *knService
		sts   *appsv1.StatefulSet
	}
	var candado []workload
	var redisSTS *workload
	for _, o := range r.objects {
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			candado = append(candado, workload{where: o.String(), spec: &v.Spec.Template.Spec})
		case *knService:
			if v.Name != appName {
				// The dead-letter sink runs Knative's event_display, not Candado.
				c := &v.Spec.Template.Spec.Containers[0]
				logEnv(t, o.String()+" container "+c.Name, containerEnv(t, o.String(), &v.Spec.Template.Spec.PodSpec, c, v, svcs, secrets,
					v.Spec.Template.Spec.EnableServiceLinks == nil || *v.Spec.Template.Spec.EnableServiceLinks))
				continue
			}
			candado = append(candado, workload{where: o.String(), spec: &v.Spec.Template.Spec.PodSpec, kn: v})
		case *appsv1.StatefulSet:
			redisSTS = &workload{where: o.String(), spec: &v.Spec.Template.Spec, sts: v}
		}
	}
	if len(candado) < 2 || redisSTS == nil {
		t.Fatalf("want a Deployment, a Knative Service and a StatefulSet; found %d Candado workloads, StatefulSet %v", len(candado), redisSTS != nil)
	}

	// The Redis StatefulSet's container, run as its manifest says.
	rc := &redisSTS.spec.Containers[0]
	declared := redisSTS.spec.EnableServiceLinks == nil || *redisSTS.spec.EnableServiceLinks
	redisEnv := containerEnv(t, redisSTS.where, redisSTS.spec, rc, nil, svcs, secrets, declared)
	logEnv(t, redisSTS.where+" container "+rc.Name, redisEnv)
	redisAddr := startRedisContainer(t, redisSTS.where, rc, redisEnv)

	for _, w := range candado {
		c := findContainer(t, w.where, w.spec)
		for _, links := range []bool{w.spec.EnableServiceLinks == nil || *w.spec.EnableServiceLinks, true} {
			name := w.where + "/as declared"
			if links {
				name += ", service links on"
			}
			t.Run(name, func(t *testing.T) {
				vars := containerEnv(t, w.where, w.spec, c, w.kn, svcs, secrets, links)
				// The Secret's Redis URL names the in-cluster Service; point
				// it at the Redis started above, keeping its password.
				for k, v := range vars {
					if u, err := url.Parse(v); err == nil && (u.Scheme == "redis" || u.Scheme == "rediss") {
						u.Host = redisAddr
						vars[k] = u.String()
					}
				}
				port := freeTCPPort(t)
				// The container's own port (8080) on a free loopback port:
				// Knative gives PORT; for the Deployment PORT stands in for
				// the pod's network namespace.
				vars["PORT"] = strconv.Itoa(port)
				logEnv(t, name, vars)
				token := vars["CANDADO_AUTH_TOKEN"]
				proc := startProcess(t, bin, vars)
				base := "http://127.0.0.1:" + strconv.Itoa(port)
				ready := c.ReadinessProbe.HTTPGet.Path
				waitReady(t, proc, base+ready)
				lockThrough(t, proc, base, token)
			})
		}
	}
}

func findContainer(t *testing.T, where string, spec *corev1.PodSpec) *corev1.Container {
	t.Helper()
	for i := range spec.Containers {
		if spec.Containers[i].Name == appName {
			return &spec.Containers[i]
		}
	}
	t.Fatalf("%s: no container %s", where, appName)
	return nil
}

// logEnv reports what a container's environment held, secrets masked.
func logEnv(t *testing.T, what string, vars map[string]string) {
	t.Helper()
	names := sortedKeys(vars)
	lines := make([]string, 0, len(names))
	for _, k := range names {
		v := vars[k]
		if strings.Contains(k, "TOKEN") || strings.Contains(k, "PASSWORD") {
			v = "<secret>"
		} else if u, err := url.Parse(v); err == nil && u.User != nil {
			u.User = url.UserPassword(u.User.Username(), "xxx")
			v = u.String()
		}
		lines = append(lines, k+"="+v)
	}
	t.Logf("%s: %d variables (plus PATH and HOME):\n  %s", what, len(names), strings.Join(lines, "\n  "))
}

// buildCandado builds cmd/candado once for the test.
func buildCandado(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "candado")
	cmd := exec.Command("go", "build", "-C", "../cmd/candado", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -C ../cmd/candado: %v\n%s", err, out)
	}
	return bin
}

type process struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startProcess runs bin with args and exactly vars plus PATH and HOME.
func startProcess(t *testing.T, bin string, vars map[string]string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, k := range sortedKeys(vars) {
		p.cmd.Env = append(p.cmd.Env, k+"="+vars[k])
	}
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	return p
}

func waitReady(t *testing.T, p *process, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("exited before it was ready (%s); output:\n%s", p.cmd.ProcessState, p.out.String())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%s %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 20s (%s); output:\n%s", url, last, p.out.String())
}

// lockThrough acquires a lock over HTTP with the bearer token, expects it
// granted, and releases it.
func lockThrough(t *testing.T, p *process, base, token string) {
	t.Helper()
	call := func(path string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v; output:\n%s", path, err, p.out.String())
		}
		defer resp.Body.Close()
		var env map[string]any
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatalf("POST %s: %s %s is not JSON", path, resp.Status, body)
		}
		return resp.StatusCode, env
	}
	id := fmt.Sprintf("podenv-%d", time.Now().UnixNano())
	code, env := call("/acquire/" + id + "?ttl=10s")
	data, _ := env["data"].(map[string]any)
	owner, _ := data["owner"].(string)
	if code != http.StatusOK || env["success"] != true || owner == "" {
		t.Fatalf("acquire: %d %v; output:\n%s", code, env, p.out.String())
	}
	if code, env := call("/release/" + id + "?owner=" + url.QueryEscape(owner)); code != http.StatusOK {
		t.Fatalf("release: %d %v", code, env)
	}
}

// startRedisContainer runs the Redis container's command and arguments,
// expanded against its environment as the kubelet does, with --port moved to
// a free loopback port and --dir to a temporary folder. It returns the
// address, once Redis answers PING after AUTH with the container's password.
func startRedisContainer(t *testing.T, where string, c *corev1.Container, vars map[string]string) string {
	t.Helper()
	bin, err := redistest.Binary()
	if err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	argv := append(append([]string(nil), c.Command...), c.Args...)
	if len(argv) == 0 || filepath.Base(argv[0]) != "redis-server" {
		t.Fatalf("%s: container %s runs %q, not redis-server", where, c.Name, argv)
	}
	port := freeTCPPort(t)
	var args []string
	var password string
	for i := 1; i < len(argv); i++ {
		a := expand(argv[i], vars)
		if i+1 < len(argv) {
			next := expand(argv[i+1], vars)
			switch a {
			case "--port":
				args = append(args, a, strconv.Itoa(port))
				i++
				continue
			case "--dir":
				args = append(args, a, t.TempDir())
				i++
				continue
			case "--requirepass":
				password = next
			}
		}
		if strings.Contains(a, "$(") {
			t.Fatalf("%s: argument %q refers to a variable the container does not define", where, a)
		}
		args = append(args, a)
	}
	args = append(args, "--bind", "127.0.0.1")
	p := startProcess(t, bin, vars, args...)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := redisPing(addr, password); err == nil {
			return addr
		} else if time.Now().After(deadline) {
			t.Fatalf("%s: redis-server %s: %v; output:\n%s", where, strings.Join(args, " "), err, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func redisPing(addr, password string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	cmd := "PING\r\n"
	if password != "" {
		cmd = fmt.Sprintf("AUTH %s\r\nPING\r\n", password)
	}
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return err
	}
	rd := bufio.NewReader(conn)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return err
		}
		switch line = strings.TrimSpace(line); {
		case line == "+PONG":
			return nil
		case strings.HasPrefix(line, "-"):
			return fmt.Errorf("redis: %s", line)
		}
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
