package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestServesThePageWithItsPolicy(t *testing.T) {
	for path, want := range map[string]string{"/ui": "text/html", "/ui/app.js": "text/javascript", "/ui/app.css": "text/css"} {
		rec := httptest.NewRecorder()
		Handler{}.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), want) || rec.Body.Len() == 0 {
			t.Errorf("GET %s: %d %q, %d bytes", path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
		}
		if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("GET %s: no restrictive Content-Security-Policy", path)
		}
	}
	rec := httptest.NewRecorder()
	Handler{}.ServeHTTP(rec, httptest.NewRequest("GET", "/ui/", nil))
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "../ui" {
		t.Errorf("GET /ui/: %d Location %q, want a relative redirect to ../ui", rec.Code, rec.Header().Get("Location"))
	}
	rec = httptest.NewRecorder()
	Handler{}.ServeHTTP(rec, httptest.NewRequest("POST", "/ui", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui: %d, want 405", rec.Code)
	}
}

// Nothing is fetched from another origin, and the token never goes into a
// URL: the page's files name no absolute URL and no token query parameter.
func TestThePageFetchesNothingElsewhere(t *testing.T) {
	abs := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := files.ReadFile(path)
		if m := abs.Find(b); m != nil {
			t.Errorf("%s names %q: the page must load nothing from elsewhere", path, m)
		}
		if strings.Contains(string(b), "token=") || strings.Contains(string(b), "access_token") {
			t.Errorf("%s puts the token in a URL", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Holder labels and lock ids are anyone's text: the page's script puts
// text from the service into the page only as text, never as markup or
// code, so a label cannot run a script in an operator's browser (the
// browser test checks a label that looks like markup).
func TestTheScriptInsertsNoMarkup(t *testing.T) {
	js, err := files.ReadFile("app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('on", "srcdoc"} {
		if strings.Contains(string(js), sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
	if !strings.Contains(string(js), ".textContent") {
		t.Error("app.js sets no textContent: how does it show anything?")
	}
}
