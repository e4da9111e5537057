// Package promtext keeps counters and histograms and writes them in the
// Prometheus text exposition format (version 0.0.4).
//
// It exists for cold starts: the official client's package initialisers and
// dependencies cost about 1 ms of start-up and 10 MB of binary, while Candado
// needs only labelled counters and histograms, whose text format is small and
// stable.
package promtext

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Registry holds metric families in the order they were added.
type Registry struct {
	mu       sync.Mutex
	families []family
	start    time.Time
}

type family interface {
	write(w *bufio.Writer)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{start: time.Now()} }

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Value is the current count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Histogram counts observations into cumulative buckets.
type Histogram struct {
	upper  []float64
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Uint64   // float64 bits
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.upper, v)
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Vec is a family of series of one metric, told apart by label values.
type Vec[T any] struct {
	name, help, kind string
	labels           []string
	newSeries        func() *T
	write1           func(w *bufio.Writer, name, labels string, s *T)
	mu               sync.RWMutex
	series           map[string]*T
}

// WithLabelValues returns the series for values, one per label, creating it
// on first use.
func (v *Vec[T]) WithLabelValues(values ...string) *T {
	key := strings.Join(values, "\xff")
	v.mu.RLock()
	s, ok := v.series[key]
	v.mu.RUnlock()
	if ok {
		return s
	}
	if len(values) != len(v.labels) {
		panic(fmt.Sprintf("promtext: %s takes %d label values, got %d", v.name, len(v.labels), len(values)))
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok = v.series[key]; !ok {
		s = v.newSeries()
		v.series[key] = s
	}
	return s
}

func (v *Vec[T]) write(w *bufio.Writer) {
	v.mu.RLock()
	keys := make([]string, 0, len(v.series))
	for k := range v.series {
		keys = append(keys, k)
	}
	v.mu.RUnlock()
	slices.Sort(keys)
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", v.name, escapeHelp(v.help), v.name, v.kind)
	for _, k := range keys {
		v.mu.RLock()
		s := v.series[k]
		v.mu.RUnlock()
		var labels []string
		if len(v.labels) > 0 {
			for i, val := range strings.Split(k, "\xff") {
				labels = append(labels, v.labels[i]+`="`+escapeLabel(val)+`"`)
			}
		}
		v.write1(w, v.name, strings.Join(labels, ","), s)
	}
}

// NewCounterVec adds a counter family with the given label names.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *Vec[Counter] {
	v := &Vec[Counter]{name: name, help: help, kind: "counter", labels: labels, series: map[string]*Counter{},
		newSeries: func() *Counter { return new(Counter) },
		write1: func(w *bufio.Writer, name, labels string, c *Counter) {
			fmt.Fprintf(w, "%s%s %d\n", name, braces(labels), c.Value())
		}}
	r.add(v)
	return v
}

// NewCounter adds a counter without labels.
func (r *Registry) NewCounter(name, help string) *Counter {
	return r.NewCounterVec(name, help).WithLabelValues()
}

// NewHistogramVec adds a histogram family with the given bucket upper
// bounds (ascending) and label names.
func (r *Registry) NewHistogramVec(name, help string, buckets []float64, labels ...string) *Vec[Histogram] {
	if !slices.IsSorted(buckets) {
		panic("promtext: buckets of " + name + " are not ascending")
	}
	upper := slices.Clone(buckets)
	v := &Vec[Histogram]{name: name, help: help, kind: "histogram", labels: labels, series: map[string]*Histogram{},
		newSeries: func() *Histogram {
			return &Histogram{upper: upper, counts: make([]atomic.Uint64, len(upper)+1)}
		},
		write1: writeHistogram}
	r.add(v)
	return v
}

// NewHistogram adds a histogram without labels.
func (r *Registry) NewHistogram(name, help string, buckets []float64) *Histogram {
	return r.NewHistogramVec(name, help, buckets).WithLabelValues()
}

func writeHistogram(w *bufio.Writer, name, labels string, h *Histogram) {
	sep := ""
	if labels != "" {
		sep = ","
	}
	var cum uint64
	for i, le := range h.upper {
		cum += h.counts[i].Load()
		fmt.Fprintf(w, "%s_bucket{%s%sle=\"%s\"} %d\n", name, labels, sep, formatFloat(le), cum)
	}
	cum += h.counts[len(h.upper)].Load()
	fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, cum)
	fmt.Fprintf(w, "%s_sum%s %s\n", name, braces(labels), formatFloat(math.Float64frombits(h.sum.Load())))
	fmt.Fprintf(w, "%s_count%s %d\n", name, braces(labels), cum)
}

func (r *Registry) add(f family) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.families = append(r.families, f)
}

// WriteTo writes every family, then a few process gauges, in text format.
func (r *Registry) WriteTo(out io.Writer) (int64, error) {
	cw := &countingWriter{w: out}
	w := bufio.NewWriter(cw)
	r.mu.Lock()
	families := slices.Clone(r.families)
	r.mu.Unlock()
	for _, f := range families {
		f.write(w)
	}
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", name, help, name, name, formatFloat(v))
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gauge("go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	gauge("go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects.", float64(ms.HeapAlloc))
	gauge("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.", float64(r.start.UnixNano())/1e9)
	if rss, ok := residentBytes(); ok {
		gauge("process_resident_memory_bytes", "Resident memory size in bytes.", float64(rss))
	}
	err := w.Flush()
	return cw.n, err
}

// ServeHTTP answers a scrape.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = r.WriteTo(w) // a scraper that hung up gets nothing more
}

// residentBytes reads the process's RSS from /proc (Linux only).
func residentBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize()), err == nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func braces(labels string) string {
	if labels == "" {
		return ""
	}
	return "{" + labels + "}"
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }

// ExponentialBuckets returns n upper bounds starting at start, each factor
// times the one before.
func ExponentialBuckets(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}
