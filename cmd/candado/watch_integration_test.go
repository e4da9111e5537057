//go:build integration

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"handler/function/function/redistest"
)

// candado watch prints one JSON line per event, owners never included;
// candado status --prefix prints the held locks under a prefix.
func TestCLIWatchAndStatusPrefix(t *testing.T) {
	rs := redistest.Start(t)
	s := startServer(t, candadoBin(t), "CANDADO_REDIS_URL="+rs.URL())
	env := cliEnv(s.base)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, candadoBin(t), "watch", "--prefix", "cli/")
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	lines := make(chan map[string]any, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("watch printed %q: not JSON", sc.Text())
				continue
			}
			lines <- m
		}
		close(lines)
	}()
	next := func(want string) map[string]any {
		t.Helper()
		select {
		case m := <-lines:
			if m["event"] != want {
				t.Fatalf("watch printed %v, want a %s event", m, want)
			}
			if _, ok := m["owner"]; ok {
				t.Fatalf("watch printed an owner: %v", m)
			}
			return m
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s line within 10s", want)
		}
		return nil
	}
	next("snapshot")
	acq := runCLI(t, env, "acquire", "--ttl", "1m", "cli/a").wantCode(t, 0, "acquire").json(t)
	if m := next("acquired"); m["id"] != "cli/a" || int64(m["fence"].(float64)) != acq.Fence {
		t.Fatalf("acquired line %v, want cli/a with fence %d", m, acq.Fence)
	}
	runCLI(t, env, "acquire", "--ttl", "1m", "cli/b").wantCode(t, 0, "acquire")
	next("acquired")
	runCLI(t, env, "acquire", "--ttl", "1m", "other/c").wantCode(t, 0, "acquire")

	st := runCLI(t, env, "status", "--prefix", "cli/").wantCode(t, 0, "status --prefix")
	got := strings.Split(strings.TrimSpace(st.stdout), "\n")
	if len(got) != 2 || strings.Contains(st.stdout, "owner") || strings.Contains(st.stdout, "other/c") {
		t.Fatalf("status --prefix cli/ printed %q: want cli/a and cli/b, one line each, no owner", st.stdout)
	}
	runCLI(t, env, "release", "--owner", *acq.Owner, "cli/a").wantCode(t, 0, "release")
	if m := next("released"); m["id"] != "cli/a" {
		t.Fatalf("released line %v", m)
	}
}
