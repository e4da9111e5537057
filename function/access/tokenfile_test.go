package access

import (
	"bytes"
	"crypto/sha256"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func tokensJSON(entries ...string) string { return `{"tokens":[` + strings.Join(entries, ",") + `]}` }

func tokenEntry(name, token, verbs string, prefixes ...string) string {
	q := make([]string, len(prefixes))
	for i, p := range prefixes {
		q[i] = `"` + p + `"`
	}
	return `{"name":"` + name + `","sha256":"` + digestHex(token) + `","prefixes":[` + strings.Join(q, ",") +
		`],"verbs":[` + verbs + `]}`
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// secretMount lays out a file the way the kubelet mounts a Secret: the
// visible name is a symlink through ..data to a timestamped directory, and an
// update writes a new directory and swaps ..data atomically.
type secretMount struct {
	t    *testing.T
	dir  string
	gen  int
	Path string
}

func newSecretMount(t *testing.T, content string) *secretMount {
	m := &secretMount{t: t, dir: t.TempDir()}
	m.Path = filepath.Join(m.dir, "tokens.json")
	m.update(content)
	if err := os.Symlink(filepath.Join("..data", "tokens.json"), m.Path); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *secretMount) update(content string) {
	m.gen++
	gen := filepath.Join(m.dir, "..2026_gen"+string(rune('0'+m.gen)))
	if err := os.Mkdir(gen, 0o755); err != nil {
		m.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gen, "tokens.json"), []byte(content), 0o600); err != nil {
		m.t.Fatal(err)
	}
	tmp := filepath.Join(m.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, "..data")); err != nil {
		m.t.Fatal(err)
	}
}

func TestTokenFileFollowsASecretMountAndKeepsTheLastGoodOne(t *testing.T) {
	m := newSecretMount(t, tokensJSON(tokenEntry("team-a", "tok-a", `"read"`, "team-a/")))
	var logs syncBuffer
	f, err := LoadTokenFile(m.Path, time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	f.now = c.now
	has := func(token string) bool {
		_, ok := f.Policy().token(sha256.Sum256([]byte(token)))
		return ok
	}
	if !has("tok-a") {
		t.Fatal("tok-a unknown after load")
	}

	// The Secret is updated: tok-a is replaced by tok-b. Inside the reload
	// interval the old policy stands; after it, the new one.
	m.update(tokensJSON(tokenEntry("team-b", "tok-b", `"read"`, "team-b/")))
	if !has("tok-a") || has("tok-b") {
		t.Fatal("file re-read before the reload interval was up")
	}
	c.add(time.Second)
	if has("tok-a") || !has("tok-b") {
		t.Fatal("the updated Secret was not picked up after the reload interval")
	}

	// A bad update keeps team-b and says why, once.
	m.update(`{"tokens":[{"name":"broken"`)
	for range 3 {
		c.add(time.Second)
		if !has("tok-b") {
			t.Fatal("a bad file replaced the last good one")
		}
	}
	if n := strings.Count(logs.String(), "not valid; keeping the last good one"); n != 1 {
		t.Errorf("bad file logged %d times, want once:\n%s", n, logs.String())
	}

	// The file vanishes for a moment: the last good policy stays.
	if err := os.Remove(m.Path); err != nil {
		t.Fatal(err)
	}
	c.add(time.Second)
	if !has("tok-b") {
		t.Fatal("a missing file dropped the last good policy")
	}

	// Fixed again: picked up.
	if err := os.Symlink(filepath.Join("..data", "tokens.json"), m.Path); err != nil {
		t.Fatal(err)
	}
	m.update(tokensJSON(tokenEntry("team-c", "tok-c", `"read"`, "")))
	c.add(time.Second)
	if !has("tok-c") || has("tok-b") {
		t.Fatal("the fixed file was not picked up")
	}
	for _, secret := range []string{"tok-a", "tok-b", "tok-c", digestHex("tok-b"), digestHex("tok-c")} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log shows %q:\n%s", secret, logs.String())
		}
	}
}

func TestTokenFileBadAtStartIsAnError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens.json")
	if _, err := LoadTokenFile(p, 0, nil); err == nil {
		t.Error("a missing tokens file was accepted at start")
	}
	if err := os.WriteFile(p, []byte(`{"tokens":[{"name":"x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokenFile(p, 0, nil); err == nil {
		t.Error("an invalid tokens file was accepted at start")
	}
}

func TestTokenFileConcurrentReads(t *testing.T) {
	m := newSecretMount(t, tokensJSON(tokenEntry("a", "tok-a", `"read"`, "")))
	f, err := LoadTokenFile(m.Path, time.Nanosecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if f.Policy() == nil {
					t.Error("nil policy")
					return
				}
			}
		}()
	}
	for i := range 20 {
		m.update(tokensJSON(tokenEntry("a", "tok-"+string(rune('a'+i)), `"read"`, "")))
	}
	wg.Wait()
}
