package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"handler/function/bench/internal/proc"
)

// bareMain is the bare Go HTTP server of the cold-start table: it answers
// every route with a fixed 200.
const bareMain = `package main

import (
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{\"error\":\"\",\"code\":\"\",\"success\":true,\"data\":{\"id\":\"x\",\"state\":1}}\n"))
	})
	http.ListenAndServe("127.0.0.1:"+os.Getenv("CANDADO_PORT"), nil)
}
`

// openfaasMain is an OpenFaaS golang-middleware style main: the template's
// server settings with function.Handle on "/".
const openfaasMain = `package main

import (
	"net/http"
	"os"
	"time"

	"handler/function/function"
)

func main() {
	s := &http.Server{
		Addr:           "127.0.0.1:" + os.Getenv("CANDADO_PORT"),
		ReadTimeout:    10 * time.Second,
		WriteTimeout:   10 * time.Second,
		MaxHeaderBytes: 1 << 20,
	}
	http.HandleFunc("/", function.Handle)
	s.ListenAndServe()
}
`

// knativeMain is a Knative Functions (func-go) style main: it listens
// first, then calls New and Start while serving, as the runtime does, and
// sends every request to Handle.
const knativeMain = `package main

import (
	"context"
	"net"
	"net/http"
	"os"

	f "handler/function"
)

func main() {
	fn := f.New()
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("CANDADO_PORT"))
	if err != nil {
		os.Exit(1)
	}
	go func() {
		if err := fn.Start(context.Background(), map[string]string{}); err != nil {
			os.Exit(2)
		}
	}()
	http.Serve(ln, http.HandlerFunc(fn.Handle))
}
`

// scaffold writes main into a new module under dir that requires
// handler/function from root by a replace, with root's requirements and
// go.sum (as the platforms' builds do), and builds it; with root "" it
// requires nothing.
func (e *env) scaffold(name, main, root string) (string, error) {
	src := filepath.Join(e.dir, "src-"+name)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	gomod := "module " + name + "\n\ngo 1.24.0\n"
	if root != "" {
		mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
		if err != nil {
			return "", err
		}
		_, rest, _ := strings.Cut(string(mod), "\n")
		gomod = "module " + name + "\n" + rest + "\nrequire handler/function v0.0.0-00010101000000-000000000000\n\nreplace handler/function => " + root + "\n"
		sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(src, "go.sum"), sum, 0o644); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(gomod), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(main), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(e.dir, name)
	return out, proc.Build(out, ".", src)
}

// coldstart prints exec → first granted acquire for cmd/candado and the
// OpenFaaS and Knative style builds against a bare Go HTTP server, all built
// with the same flags, interleaved.
func coldstart(ctx context.Context, e *env) error {
	type build struct {
		name, bin string
		times     []time.Duration
		listen    []time.Duration
	}
	builds := []*build{{name: "cmd/candado", bin: e.bins["candado"]}}
	if bin, ok := e.bins["compare"]; ok {
		builds = append(builds, &build{name: "cmd/candado@" + e.o.compare, bin: bin})
	}
	type scaffolded struct{ name, label, main, root string }
	mains := []scaffolded{
		{"openfaas", "OpenFaaS style (function.Handle)", openfaasMain, e.o.root},
		{"knative", "Knative style (New, Start, Handle)", knativeMain, e.o.root},
	}
	if e.compareSrc != "" {
		// The platform builds of -compare's revision too, each beside its own.
		mains = []scaffolded{mains[0],
			{"openfaas-compare", "OpenFaaS style@" + e.o.compare, openfaasMain, e.compareSrc},
			mains[1],
			{"knative-compare", "Knative style@" + e.o.compare, knativeMain, e.compareSrc}}
	}
	mains = append(mains, scaffolded{"bare", "bare Go HTTP server", bareMain, ""})
	for _, s := range mains {
		bin, err := e.scaffold(s.name, s.main, s.root)
		if err != nil {
			return err
		}
		builds = append(builds, &build{name: s.label, bin: bin})
	}
	env := []string{"CANDADO_REDIS_URL=redis://" + e.redis.Addr}
	for run := range e.o.coldRuns {
		for _, b := range rotated(builds, run) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			l, d, err := firstGrant(b.bin, env, fmt.Sprintf("/acquire/cold-%d?ttl=1000&owner=cold", run))
			if err != nil {
				return fmt.Errorf("%s run %d: %w", b.name, run, err)
			}
			b.times, b.listen = append(b.times, d), append(b.listen, l)
		}
	}
	fmt.Printf("## Cold start: exec → first granted acquire (200), %d interleaved runs each, CGO_ENABLED=0 -trimpath -ldflags '-s -w', Redis already up\n\n", e.o.coldRuns)
	fmt.Println("| build | p50 | p90 | p50 / bare | p90 / bare | exec → listening p50 | binary |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	bare := builds[len(builds)-1]
	bp50, bp90 := pct(bare.times, 50), pct(bare.times, 90)
	for _, b := range builds {
		fi, err := os.Stat(b.bin)
		if err != nil {
			return err
		}
		p50, p90 := pct(b.times, 50), pct(b.times, 90)
		fmt.Printf("| %s | %s | %s | %.2f× | %.2f× | %s | %.1f MB |\n", b.name, ms(p50), ms(p90),
			float64(p50)/float64(bp50), float64(p90)/float64(bp90), ms(pct(b.listen, 50)), float64(fi.Size())/1e6)
	}
	return nil
}

func pct(xs []time.Duration, p int) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

// firstGrant starts bin and times exec → the first 200 answer to path,
// polling as fast as a client reasonably can.
func firstGrant(bin string, env []string, path string) (listening, granted time.Duration, err error) {
	port, err := proc.FreePort()
	if err != nil {
		return 0, 0, err
	}
	p := strconv.Itoa(port)
	addr := "127.0.0.1:" + p
	start := time.Now()
	pr, err := proc.Start(bin, append([]string{"CANDADO_PORT=" + p, "PORT=" + p}, env...))
	if err != nil {
		return 0, 0, err
	}
	defer pr.Stop()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: (&net.Dialer{Timeout: 100 * time.Millisecond}).DialContext}}
	deadline := start.Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			listening = time.Since(start)
			conn.Close()
			break
		}
		if pr.Exited() || time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("never listened: %v", err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	for {
		resp, err := client.Get("http://" + addr + path)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return listening, time.Since(start), nil
			}
		}
		if pr.Exited() {
			return 0, 0, fmt.Errorf("exited before answering")
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("no 200 to %s within 10s: %v", path, err)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
