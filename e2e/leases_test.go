//go:build integration

package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"handler/function/function/ui"
)

// fakeWatch serves the page and a watch stream whose events the test
// writes by hand, and a listing that gives the waiter counts: the page's
// rendering of semaphores, shared leases and holder labels, whatever the
// store behind a real service supports.
type fakeWatch struct {
	events chan string
	mu     sync.Mutex
	listed string            // data.locks of GET /locks
	detail map[string]string // data of GET /locks/{id}
}

func (f *fakeWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case ui.IsUI(r.URL.Path):
		ui.Handler{}.ServeHTTP(w, r)
	case r.URL.Path == "/locks":
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"error":"","code":"","success":true,"data":{"locks":%s,"cursor":""}}`, f.listed)
	case strings.HasPrefix(r.URL.Path, "/locks/"):
		f.mu.Lock()
		defer f.mu.Unlock()
		d, ok := f.detail[strings.TrimPrefix(r.URL.Path, "/locks/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"error":"","code":"","success":true,"data":%s}`, d)
	case r.URL.Path == "/watch":
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		for n := 1; ; n++ {
			select {
			case data := <-f.events:
				kind, _, _ := strings.Cut(strings.TrimPrefix(data, `{"event":"`), `"`)
				fmt.Fprintf(w, "id: fake-%d\nevent: %s\ndata: %s\n\n", n, kind, data)
				_ = rc.Flush()
			case <-r.Context().Done():
				return
			}
		}
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeWatch) list(locks string, detail map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listed, f.detail = locks, detail
}

func TestOperationsPageShowsEveryLeaseAndItsHolder(t *testing.T) {
	f := &fakeWatch{events: make(chan string, 16), listed: "[]", detail: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close) // after the browser's cleanups, which close its stream
	ctx := browser(t)

	f.events <- `{"event":"snapshot","prefix":"","locks":[` +
		`{"id":"pool/gpu","state":1,"fence":42,"ttl_ms":30000,"holder":"trainer-2 pid 77","mode":"exclusive","limit":3,"holders":2,"waiters":4,` +
		`"leases":[{"fence":41,"ttl_ms":20000,"holder":"trainer-1 pid 75","mode":"exclusive"},{"fence":42,"ttl_ms":30000,"holder":"trainer-2 pid 77","mode":"exclusive"}]},` +
		`{"id":"docs/readme","state":1,"fence":7,"ttl_ms":15000,"mode":"shared","limit":1,"holders":2,"waiters":0,` +
		`"leases":[{"fence":6,"ttl_ms":15000,"holder":"reader a","mode":"shared"},{"fence":7,"ttl_ms":15000,"mode":"shared"}]},` +
		`{"id":"jobs/solo","state":1,"fence":3,"ttl_ms":25000,"holder":"<b>not markup</b>","mode":"exclusive","limit":1,"holders":1,"waiters":0}` +
		`]}`
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui"), chromedp.WaitVisible(chromedp.ID("status"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "three locks listed", `document.querySelectorAll('#locks tbody tr').length === 3`, 5*time.Second)

	cell := func(id, cls string) string {
		return row(id) + `.querySelector('.` + cls + `')`
	}
	lines := func(id, cls string) string {
		return `[...` + cell(id, cls) + `.querySelectorAll('li')].map((li) => li.textContent).join('|')`
	}
	check := func(what, expr, want string) {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil || got != want {
			t.Errorf("%s: %q (%v), want %q", what, got, err, want)
		}
	}
	// A semaphore: each lease on its line, with its holder; the count of
	// the limit, the waiters from the snapshot.
	check("semaphore's mode", cell("pool/gpu", "mode")+`.textContent`, "semaphore")
	check("semaphore's holders", cell("pool/gpu", "holders")+`.textContent`, "2 of 3")
	check("semaphore's waiters", cell("pool/gpu", "waiters")+`.textContent`, "4")
	check("semaphore's fences", lines("pool/gpu", "fence"), "41|42")
	check("semaphore's holder labels", lines("pool/gpu", "holder"), "trainer-1 pid 75|trainer-2 pid 77")
	ttls, err := chromedp.Run(ctx, chromedp.Evaluate[string](lines("pool/gpu", "ttl")))
	if err != nil || !strings.HasSuffix(strings.Split(ttls, "|")[0], " s") || len(strings.Split(ttls, "|")) != 2 {
		t.Errorf("semaphore's TTLs %q %v: want one countdown per lease", ttls, err)
	}
	// Shared leases, one without a label.
	check("shared mode", cell("docs/readme", "mode")+`.textContent`, "shared")
	check("shared holders", cell("docs/readme", "holders")+`.textContent`, "2")
	check("shared holder labels", lines("docs/readme", "holder"), "reader a|—")
	// A label is text, never markup.
	check("a label that looks like markup", cell("jobs/solo", "holder")+`.textContent`, "<b>not markup</b>")
	check("no element made of a label", `String(`+cell("jobs/solo", "holder")+`.querySelector('b'))`, "null")
	check("a mutex's fence", cell("jobs/solo", "fence")+`.textContent`, "3")

	// One lease of the semaphore ends: the other stays, on a line of its
	// own no more.
	f.events <- `{"event":"released","id":"pool/gpu","state":0,"fence":41,"ttl_ms":0,"holder":"trainer-1 pid 75","mode":"exclusive"}`
	waitFor(t, ctx, "the released lease is dropped", cell("pool/gpu", "fence")+`.textContent === '42'`, time.Second)
	check("the lease left", cell("pool/gpu", "holder")+`.textContent`, "trainer-2 pid 77")
	check("holders after the release", cell("pool/gpu", "holders")+`.textContent`, "1 of 3")
	f.events <- `{"event":"expired","id":"pool/gpu","state":0,"fence":42,"ttl_ms":0,"holder":"trainer-2 pid 77","mode":"exclusive"}`
	waitFor(t, ctx, "the lock of no lease is dropped", row("pool/gpu")+` === null`, time.Second)

	// New locks from the stream, then their waiters: from the listing, or,
	// when its row does not count them, from the lock's own answer.
	f.list(`[{"id":"queue/new","state":1,"fence":9,"ttl_ms":9000,"holder":"w 9","mode":"exclusive","limit":2,"holders":1,"waiters":5},`+
		`{"id":"queue/other","state":1,"fence":4,"ttl_ms":9000,"mode":"exclusive","limit":1,"holders":1}]`,
		map[string]string{"queue/other": `{"id":"queue/other","state":1,"fence":4,"ttl_ms":8000,"mode":"exclusive","limit":1,"holders":1,"waiters":7,` +
			`"leases":[{"fence":4,"ttl_ms":8000,"mode":"exclusive"}]}`})
	f.events <- `{"event":"acquired","id":"queue/new","state":1,"fence":9,"ttl_ms":9000,"holder":"w 9","mode":"exclusive"}`
	f.events <- `{"event":"acquired","id":"queue/other","state":1,"fence":4,"ttl_ms":9000,"mode":"exclusive"}`
	waitFor(t, ctx, "the acquired lock is listed with its holder", row("queue/new")+` !== null && `+cell("queue/new", "holder")+`.textContent === 'w 9'`, time.Second)
	waitFor(t, ctx, "its waiters and limit come from the listing", cell("queue/new", "waiters")+`.textContent === '5' && `+
		cell("queue/new", "holders")+`.textContent === '1 of 2'`, 3*time.Second)
	waitFor(t, ctx, "waiters the listing does not count come from the lock", cell("queue/other", "waiters")+`.textContent === '7'`, 3*time.Second)
	f.events <- `{"event":"acquired","id":"queue/new","state":1,"fence":10,"ttl_ms":9000,"holder":"w 10","mode":"exclusive"}`
	waitFor(t, ctx, "a second lease joins the first", lines("queue/new", "holder")+` === 'w 9|w 10'`, time.Second)
}
