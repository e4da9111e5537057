package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"handler/function/function/api"
)

// Each request gets exactly one answer: one status and one JSON envelope.
func TestMetricsRouteAnswersOnce(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "x_total 1\n") })
	for _, tc := range []struct {
		name    string
		h       *Handler
		method  string
		status  int
		code    string
		metrics bool
	}{
		{"POST", &Handler{Metrics: metrics}, http.MethodPost, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed, false},
		{"GET", &Handler{Metrics: metrics}, http.MethodGet, http.StatusOK, "", true},
		{"no metrics", &Handler{}, http.MethodGet, http.StatusNotFound, api.CodeNotFound, false},
		{"no metrics, POST", &Handler{}, http.MethodPost, http.StatusNotFound, api.CodeNotFound, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, httptest.NewRequest(tc.method, "/metrics", nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d; body %q", rec.Code, tc.status, rec.Body)
			}
			if tc.metrics {
				if rec.Body.String() != "x_total 1\n" {
					t.Fatalf("body %q", rec.Body)
				}
				return
			}
			dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
			var env api.Envelope
			if err := dec.Decode(&env); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if env.Code != tc.code || env.Success {
				t.Errorf("envelope %+v, want code %q", env, tc.code)
			}
			if dec.More() {
				t.Errorf("more than one answer in the body: %q", rec.Body)
			}
		})
	}
}
