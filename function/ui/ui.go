// Package ui serves Candado's operations page at /ui: one HTML page, its
// script and its style sheet, embedded in the binary. Nothing is fetched
// from elsewhere at run time, and the page holds no data of its own: it
// calls the API (the watch stream, revoke) with the bearer token the
// operator types, kept in the tab's sessionStorage only and sent in an
// Authorization header, never in a URL, so it reaches no access log.
package ui

import (
	"embed"
	"net/http"
)

//go:embed index.html app.js app.css
var files embed.FS

// The page's files, by path.
var pages = map[string]struct{ file, contentType string }{
	"/ui":         {"index.html", "text/html; charset=utf-8"},
	"/ui/":        {"index.html", "text/html; charset=utf-8"},
	"/ui/app.js":  {"app.js", "text/javascript; charset=utf-8"},
	"/ui/app.css": {"app.css", "text/css; charset=utf-8"},
}

// csp allows the page its own script, style and API calls, and nothing
// else: no inline script, no other origin, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// IsUI reports whether path is one of the page's.
func IsUI(path string) bool {
	_, ok := pages[path]
	return ok
}

// Handler serves the page's files to GET and HEAD; they need no token.
type Handler struct{}

func (Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := pages[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.URL.Path == "/ui/" {
		// The page links its files relative to /ui, so that it works under
		// a gateway's path prefix too; a relative Location keeps the prefix.
		// (http.Redirect would resolve it against the request's path.)
		w.Header().Set("Location", "../ui")
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := files.ReadFile(p.file)
	if err != nil { // cannot happen: the files are embedded
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", p.contentType)
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}
