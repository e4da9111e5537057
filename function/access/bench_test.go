package access

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// BenchmarkAuthorizeToken is the cost of a scoped token's check against a
// tokens file of 100 entries (every entry is compared, in constant time).
func BenchmarkAuthorizeToken(b *testing.B) {
	entries := make([]string, 100)
	for i := range entries {
		entries[i] = tokenEntry(fmt.Sprintf("team-%d", i), fmt.Sprintf("tok-%d", i), `"acquire","read"`, fmt.Sprintf("team-%d/", i))
	}
	p := filepath.Join(b.TempDir(), "tokens.json")
	if err := os.WriteFile(p, []byte("{\"tokens\":["+strings.Join(entries, ",")+"]}"), 0o600); err != nil {
		b.Fatal(err)
	}
	a, err := New(Config{TokensFile: p})
	if err != nil {
		b.Fatal(err)
	}
	r := request("tok-57")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authorize(r, Acquire, "team-57/x"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthorizeOIDC is the cost of verifying a Knative Eventing JWT
// (RS256, 2048-bit key) with the issuer's keys cached.
func BenchmarkAuthorizeOIDC(b *testing.B) {
	is := newTestIssuer(b)
	a, err := New(Config{OIDC: &OIDCConfig{Issuer: is.URL, Audience: testAudience, TokenFile: filepath.Join(b.TempDir(), "none")}})
	if err != nil {
		b.Fatal(err)
	}
	tok := sign(b, jose.RS256, rsaKey1, "rsa1", testClaims(is.URL, a.oidc.now()))
	r := bearer(tok)
	if _, err := a.Authorize(r, Acquire, "jobs/1"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authorize(r, Acquire, "jobs/1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthorizeOIDCUncached is the same check with the signature
// verified every time, as for the first use of each token.
func BenchmarkAuthorizeOIDCUncached(b *testing.B) {
	is := newTestIssuer(b)
	a, err := New(Config{OIDC: &OIDCConfig{Issuer: is.URL, Audience: testAudience, TokenFile: filepath.Join(b.TempDir(), "none")}})
	if err != nil {
		b.Fatal(err)
	}
	r := bearer(sign(b, jose.RS256, rsaKey1, "rsa1", testClaims(is.URL, a.oidc.now())))
	b.ReportAllocs()
	for b.Loop() {
		a.oidc.cacheMu.Lock()
		clear(a.oidc.cache)
		a.oidc.cacheMu.Unlock()
		if _, err := a.Authorize(r, Acquire, "jobs/1"); err != nil {
			b.Fatal(err)
		}
	}
}
