package promtext

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestScrapeParses checks the output with Prometheus' own text parser.
func TestScrapeParses(t *testing.T) {
	r := NewRegistry()
	reqs := r.NewCounterVec("x_requests_total", "Requests.\nBy route.", "route", "code")
	lat := r.NewHistogramVec("x_latency_seconds", "Latency.", []float64{0.1, 1, 10}, "route")
	plain := r.NewCounter("x_plain_total", "No labels.")
	h := r.NewHistogram("x_wait_seconds", "Waits.", ExponentialBuckets(0.001, 10, 3))

	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				reqs.WithLabelValues("acquire", "200").Inc()
				lat.WithLabelValues("acquire").Observe(0.5)
			}
		}()
	}
	wg.Wait()
	reqs.WithLabelValues(`we"ird\`+"\n", "503").Inc()
	lat.WithLabelValues("acquire").Observe(0.1) // on a bound: counts in le="0.1"
	lat.WithLabelValues("acquire").Observe(99)
	plain.Inc()
	h.Observe(0.05)

	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("Content-Type %q", ct)
	}
	text := rec.Body.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus' parser refuses the output: %v\n%s", err, text)
	}
	var got float64
	for _, m := range fams["x_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["route"] == "acquire" && labels["code"] == "200" {
			got = m.GetCounter().GetValue()
		}
		if labels["code"] == "503" && labels["route"] != `we"ird\`+"\n" {
			t.Fatalf("escaped label came back as %q", labels["route"])
		}
	}
	if got != 800 {
		t.Fatalf("counter = %v, want 800", got)
	}
	hist := fams["x_latency_seconds"].GetMetric()[0].GetHistogram()
	if hist.GetSampleCount() != 802 || hist.GetSampleSum() != 800*0.5+0.1+99 {
		t.Fatalf("histogram count %d sum %v", hist.GetSampleCount(), hist.GetSampleSum())
	}
	want := []uint64{1, 801, 801, 802} // cumulative: le=0.1, 1, 10, +Inf
	for i, b := range hist.GetBucket() {
		if b.GetCumulativeCount() != want[i] {
			t.Fatalf("bucket le=%v = %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want[i])
		}
	}
	if fams["x_plain_total"].GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Fatal("plain counter")
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "x_wait_seconds"} {
		if fams[name] == nil {
			t.Fatalf("no %s", name)
		}
	}
}

func TestWrongLabelCountPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	NewRegistry().NewCounterVec("x", "x", "a").WithLabelValues("1", "2")
}
