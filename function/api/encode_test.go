package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
)

// encodeStd is what encoding/json's Encoder writes for env.
func encodeStd(t testing.TB, env Envelope) []byte {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(env); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func checkSame(t testing.TB, env Envelope) {
	t.Helper()
	got, ok := appendEnvelope(nil, env)
	if !ok {
		t.Fatalf("appendEnvelope refused %T", env.Data)
	}
	if want := encodeStd(t, env); !bytes.Equal(got, want) {
		t.Fatalf("appendEnvelope wrote\n%s\nencoding/json writes\n%s", got, want)
	}
}

func TestAppendEnvelopeIsEncodingJSON(t *testing.T) {
	one, zero := 1, 0
	full := LeaseData{ID: "a/b", State: 1, Owner: "o<&>", Fence: 1764600000000001, TTLms: 30000, Holder: "host pid 1",
		Mode: "shared", Limit: 3, Holders: &one, Waiters: &zero, DelayLeftMs: 5,
		Leases: []LeaseInfo{{Fence: 1, TTLms: 2, Holder: "h", Mode: "shared"}, {Fence: 3, TTLms: 4, Mode: "shared"}}}
	for _, env := range []Envelope{
		{Success: true},
		{Error: "bad \"ttl\"\n", Code: CodeBadRequest, Data: IDData{ID: "x"}},
		{Success: true, Data: LeaseData{ID: "x"}},
		{Success: true, Data: full},
		{Success: true, Data: AcquireData{LeaseData: full, WaitCut: true, WaitedMs: 12}},
		{Error: "held", Code: CodeHeld, Data: AcquireData{LeaseData: LeaseData{ID: "x", State: 1, Fence: -1, TTLms: -5}}},
		{Error: "\u2028\u2029\x00\x1f\x7f\xff\xfe é 日本 \ufffd", Code: "c"},
	} {
		checkSame(t, env)
	}
	if _, ok := appendEnvelope(nil, Envelope{Data: []int{1}}); ok {
		t.Fatal("appendEnvelope took a Data it does not know")
	}
}

func FuzzAppendEnvelope(f *testing.F) {
	f.Add("x", "owner", "holder", "err <b>", int64(1), int64(30000), 1, true, uint8(0))
	f.Add("a\u2028b", "\xff", "\x00\t\n", "\"\\", int64(-1), int64(0), 0, false, uint8(3))
	f.Fuzz(func(t *testing.T, id, owner, holder, msg string, fence, ttl int64, n int, cut bool, kind uint8) {
		d := LeaseData{ID: id, State: n & 1, Owner: owner, Fence: fence, TTLms: ttl, Holder: holder, Mode: holder,
			Limit: n, DelayLeftMs: ttl / 3}
		if n%2 == 0 {
			d.Holders, d.Waiters = &n, &n
		}
		if n%3 == 0 {
			d.Leases = []LeaseInfo{{Fence: fence, TTLms: ttl, Holder: owner, Mode: msg}}
		}
		env := Envelope{Error: msg, Code: owner, Success: cut}
		switch kind % 4 {
		case 1:
			env.Data = IDData{ID: id}
		case 2:
			env.Data = d
		case 3:
			env.Data = AcquireData{LeaseData: d, WaitCut: cut, WaitedMs: fence}
		}
		checkSame(t, env)
	})
}

// BenchmarkWrite measures an acquire's answer written by Write, and by
// encoding/json for comparison.
//
//	go test -run '^$' -bench Write -benchmem ./function/api/
func BenchmarkWrite(b *testing.B) {
	one, zero := 1, 0
	env := Envelope{Success: true, Data: AcquireData{LeaseData: LeaseData{ID: "jobs/nightly", State: 1, Owner: "7f3a9c2e",
		Fence: 1764600000000001, TTLms: 30000, Holder: "host pid 1", Mode: "exclusive", Limit: 1, Holders: &one, Waiters: &zero}}}
	w := discardWriter{header: http.Header{}}
	b.Run("Write", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			Write(w, http.StatusOK, env)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_ = json.NewEncoder(w).Encode(env)
		}
	})
}

type discardWriter struct{ header http.Header }

func (d discardWriter) Header() http.Header         { return d.header }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}
