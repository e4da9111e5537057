package events

import (
	"context"
	"net/http"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding"
)

// A header named just "Ce-" names an empty extension, which the event
// refuses: a malformed event, never a panic.
func TestBinaryEmptyExtensionName(t *testing.T) {
	h := http.Header{}
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", "1")
	h.Set("Ce-Source", "/t")
	h.Set("Ce-Type", TypeAcquire)
	h["Ce-"] = []string{"x"}
	m := newHTTPMessage(h, nil)
	if enc := m.ReadEncoding(); enc != binding.EncodingBinary {
		t.Fatalf("encoding %v, want binary", enc)
	}
	if _, err := binding.ToEvent(context.Background(), m); err == nil {
		t.Fatal("an event with an empty extension name was read")
	}
}
