package function

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
)

// knativeCall sends one request to f.Handle, as the func-go runtime does.
func knativeCall(t *testing.T, f *Function, path string) (int, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	f.Handle(w, httptest.NewRequest(http.MethodGet, path, nil))
	var env map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, w.Body)
	}
	return w.Code, env
}

// clearEnv unsets every CANDADO_ variable for the test.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "CANDADO_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// TestKnativeEntryNeverRunsAnInProcessRedis: without a Redis URL, or with an
// empty one, the Knative entry starts, is not ready, and answers 503 naming
// the variable.
func TestKnativeEntryNeverRunsAnInProcessRedis(t *testing.T) {
	for _, tc := range []struct {
		set  bool
		want string
	}{{false, "CANDADO_REDIS_URL is not set"}, {true, "CANDADO_REDIS_URL is empty"}} {
		clearEnv(t)
		if tc.set {
			t.Setenv("CANDADO_REDIS_URL", "")
		}
		f := New()
		if err := f.Start(t.Context(), nil); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if ok, err := f.Ready(t.Context()); ok || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("Ready = %v, %v; want false and %q", ok, err, tc.want)
		}
		if code, env := knativeCall(t, f, "/acquire/x"); code != 503 || env["code"] != "unavailable" || !strings.Contains(env["error"].(string), tc.want) {
			t.Fatalf("acquire = %d %v", code, env)
		}
		if err := f.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKnativeEntryCutsWaitsForFuncGo: func-go cuts answers at 30s, so a wait
// over 25s is cut, and the answer says so.
func TestKnativeEntryCutsWaitsForFuncGo(t *testing.T) {
	clearEnv(t)
	m := miniredis.RunT(t)
	t.Setenv("CANDADO_REDIS_URL", "redis://"+m.Addr())
	t.Setenv("CANDADO_MAX_WAIT", "60s")
	f := New()
	if err := f.Start(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	defer f.Stop(t.Context())
	if ok, err := f.Ready(t.Context()); !ok {
		t.Fatalf("Ready = %v, %v", ok, err)
	}
	for wait, cut := range map[string]bool{"45s": true, "25s": false} {
		code, env := knativeCall(t, f, "/acquire/free-"+wait+"?wait="+wait)
		data, _ := env["data"].(map[string]any)
		if code != 200 || data["wait_cut"] != cut {
			t.Fatalf("wait=%s: %d %v, want 200 with wait_cut %v", wait, code, env, cut)
		}
	}
}
