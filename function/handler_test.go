package function

import (
	"net/http/httptest"
	"testing"
)

// A watch through OpenFaaS streams only when its Accept header starts with
// text/event-stream, as EventSource, the Go client and the page send it:
// the gateway looks at the start of the header, of-watchdog anywhere in it.
func TestStreamsThroughOpenFaaS(t *testing.T) {
	for accept, want := range map[string]bool{
		"text/event-stream":                   true,
		"text/event-stream; charset=utf-8":    true,
		"text/event-stream, */*":              true,
		"":                                    false,
		"*/*":                                 false,
		"application/json, text/event-stream": false,
		"Text/Event-Stream":                   false,
	} {
		r := httptest.NewRequest("GET", "/watch/a", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		if got := streamsThroughOpenFaaS(r); got != want {
			t.Errorf("Accept %q: streams %v, want %v", accept, got, want)
		}
	}
}
