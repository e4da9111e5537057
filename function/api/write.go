package api

import (
	"encoding/json"
	"net/http"
	"sync"

	"handler/function/function/lock"
)

// StatusOf maps an envelope code to its HTTP status.
func StatusOf(code string) int {
	switch code {
	case "":
		return http.StatusOK
	case CodeHeld, CodeNotHeld, CodeLimitMismatch:
		return http.StatusConflict
	case CodeBadRequest, CodeUnsupported:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeTooManyWaiters, CodeTooManyWatchers:
		return http.StatusTooManyRequests
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusServiceUnavailable
}

// WriteResult writes the envelope of an operation on id.
func WriteResult(w http.ResponseWriter, id string, lease lock.Lease, err error) {
	env := Result(id, lease, err)
	Write(w, StatusOf(env.Code), env)
}

// Write writes env as JSON with status; a 503 and a 429 carry Retry-After.
func Write(w http.ResponseWriter, status int, env Envelope) {
	h := w.Header()
	// Canonical keys and shared values: Set would allocate both per answer.
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = noStore
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		h.Set("Retry-After", "1")
	}
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="candado"`)
	}
	w.WriteHeader(status)
	bp := bodies.Get().(*[]byte)
	defer bodies.Put(bp)
	if b, ok := appendEnvelope((*bp)[:0], env); ok {
		_, _ = w.Write(b) // a client that hung up gets nothing more
		if cap(b) <= 64<<10 {
			*bp = b
		}
		return
	}
	_ = json.NewEncoder(w).Encode(env)
}

var (
	contentTypeJSON = []string{"application/json"}
	noStore         = []string{"no-store"}
	// bodies holds the buffers answers are encoded into.
	bodies = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
)

// EchoID is the id an error answer may echo: id when it is a valid lock id,
// else "", so answers never repeat what did not parse.
func EchoID(id string) string {
	if lock.ValidateID(id) != nil {
		return ""
	}
	return id
}
