package main

// Cold start: exec → listening, exec → first answer (for Candado, a granted
// acquire on a redis-server that is already up), binary size and RSS after
// start, against a minimal net/http hello-world built with the same flags in
// the same run.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

const helloWorld = `package main

import (
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello\n")) })
	http.ListenAndServe(":"+os.Getenv("CANDADO_PORT"), nil)
}
`

// coldstart measures n interleaved cold starts of each binary.
func coldstart(n int) error {
	return withRedis(func(dir, redisAddr string) error { return coldstarts(dir, redisAddr, n) })
}

func coldstarts(dir, redisAddr string, n int) error {
	candado := filepath.Join(dir, "candado")
	if err := buildStatic(candado, ".", "cmd/candado"); err != nil {
		return err
	}
	helloDir := filepath.Join(dir, "hello")
	if err := os.MkdirAll(helloDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(helloDir, "main.go"), []byte(helloWorld), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(helloDir, "go.mod"), []byte("module hello\n\ngo 1.24.0\n"), 0o644); err != nil {
		return err
	}
	hello := filepath.Join(dir, "hello-world")
	if err := buildStatic(hello, ".", helloDir); err != nil {
		return err
	}

	env := []string{"CANDADO_REDIS_URL=redis://" + redisAddr}
	var cs, hs []sample
	for i := 0; i < n; i++ { // interleaved, so both see the same machine
		c, err := measure(candado, env, fmt.Sprintf("/acquire/cold-%d?ttl=1s", i))
		if err != nil {
			return fmt.Errorf("candado run %d: %w", i, err)
		}
		h, err := measure(hello, nil, "/")
		if err != nil {
			return fmt.Errorf("hello-world run %d: %w", i, err)
		}
		cs, hs = append(cs, c), append(hs, h)
	}
	report := func(name, bin string, s []sample) (time.Duration, error) {
		fi, err := os.Stat(bin)
		if err != nil {
			return 0, err
		}
		listen, first, rss := stats(s)
		fmt.Printf("%-12s exec→listening p50 %-9s p90 %-9s  exec→first answer p50 %-9s p90 %-9s  binary %.1f MB  RSS %.1f MB\n",
			name, listen[0], listen[1], first[0], first[1], float64(fi.Size())/1e6, float64(rss)/1e6)
		return first[0], nil
	}
	fmt.Printf("%d runs each, binaries built with CGO_ENABLED=0 -trimpath -ldflags '-s -w'\n", n)
	c50, err := report("candado", candado, cs)
	if err != nil {
		return err
	}
	h50, err := report("hello-world", hello, hs)
	if err != nil {
		return err
	}
	_, cf, _ := stats(cs)
	_, hf, _ := stats(hs)
	fmt.Printf("ratio candado/hello-world, exec→first answer: p50 %.2f, p90 %.2f\n",
		float64(c50)/float64(h50), float64(cf[1])/float64(hf[1]))
	return nil
}

type sample struct {
	listening, firstAnswer time.Duration
	rss                    int64
}

// stats gives p50 and p90 of both times and the median RSS.
func stats(s []sample) (listen, first [2]time.Duration, rss int64) {
	var l, f []time.Duration
	var r []int64
	for _, x := range s {
		l, f, r = append(l, x.listening), append(f, x.firstAnswer), append(r, x.rss)
	}
	slices.Sort(l)
	slices.Sort(f)
	slices.Sort(r)
	p := func(d []time.Duration, q int) time.Duration { return d[(len(d)-1)*q/100].Round(10 * time.Microsecond) }
	return [2]time.Duration{p(l, 50), p(l, 90)}, [2]time.Duration{p(f, 50), p(f, 90)}, r[len(r)/2]
}

// measure starts bin and times its first accepted connection and its first
// 200 answer to path, polling as fast as a client reasonably can.
func measure(bin string, env []string, path string) (sample, error) {
	port, err := freePort()
	if err != nil {
		return sample{}, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), "CANDADO_PORT="+strconv.Itoa(port), "PORT="), env...)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var s sample
	deadline := start.Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			s.listening = time.Since(start)
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("never listened")
		}
		time.Sleep(100 * time.Microsecond)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for {
		resp, err := client.Get("http://" + addr + path)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				s.firstAnswer = time.Since(start)
				break
			}
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("no 200 answer to %s: %v", path, err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	s.rss, err = rssOf(cmd.Process.Pid)
	return s, err
}

// buildStatic builds pkg in dir (cmd/candado is a module of its own) as the
// Dockerfile does.
func buildStatic(out, pkg, dir string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
