package access

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMiddlewareChecksBeforeRouting(t *testing.T) {
	a, err := New(Config{TokensFile: issueFile(t)})
	if err != nil {
		t.Fatal(err)
	}
	var seen Identity
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = FromContext(r.Context())
		w.WriteHeader(http.StatusTeapot)
	})
	h := Middleware{
		Authorizer: a,
		Public:     func(p string) bool { return p == "/healthz" },
		Right: func(r *http.Request) (Verb, string, bool) {
			id, ok := strings.CutPrefix(r.URL.Path, "/acquire/")
			return Acquire, id, ok
		},
		Deny: func(w http.ResponseWriter, r *http.Request, err error) {
			switch {
			case errors.Is(err, ErrUnauthorized):
				w.WriteHeader(http.StatusUnauthorized)
			case errors.Is(err, ErrForbidden):
				w.WriteHeader(http.StatusForbidden)
			default:
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		},
	}.Wrap(next)
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", http.StatusTeapot},
		{"/acquire/team-a/x", "", http.StatusUnauthorized},
		{"/acquire/team-a/x", "nope", http.StatusUnauthorized},
		{"/acquire/team-a/x", "tok-team-a", http.StatusTeapot},
		{"/acquire/team-b/x", "tok-team-a", http.StatusForbidden},
		{"/", "tok-ops", http.StatusTeapot}, // authentication only; checked behind
	} {
		r := request(tc.token)
		r.URL.Path = tc.path
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s with %q: %d, want %d", tc.path, tc.token, w.Code, tc.want)
		}
	}
	if seen.Name != "ops" {
		t.Errorf("the handler saw identity %q, want ops", seen.Name)
	}
}
