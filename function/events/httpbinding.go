package events

// The CloudEvents HTTP protocol binding for what this package reads and
// writes, on the SDK's binding, format and spec packages. The SDK's
// protocol/http package does the same but also brings its client, and with
// it zap and a logger built at package init, which every cold start of the
// function waited for.

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/types"
)

// headerPrefix starts the header of every context attribute but
// datacontenttype (Content-Type), and of every extension, in binary mode.
const headerPrefix = "Ce-"

// attributeHeader is the header that carries context attribute name.
func attributeHeader(name string) string {
	if name == "datacontenttype" {
		return "Content-Type"
	}
	return textproto.CanonicalMIMEHeaderKey(headerPrefix + name)
}

// extensionHeader is the header that carries extension name: the prefix,
// then the name with its first letter in upper case.
func extensionHeader(name string) string {
	if name == "" {
		return headerPrefix
	}
	return headerPrefix + string(unicode.ToUpper(rune(name[0]))) + name[1:]
}

// extensionName is the extension a header other than an attribute's names.
func extensionName(header string) string {
	rest := header[len(headerPrefix):]
	if rest == "" {
		return ""
	}
	return string(unicode.ToLower(rune(rest[0]))) + rest[1:]
}

// headerVersions are the spec versions with attributes named by their
// canonical headers, built on first use.
var headerVersions = sync.OnceValue(func() *spec.Versions {
	return spec.WithPrefixMatchExact(attributeHeader, headerPrefix)
})

// httpMessage is a CloudEvent, or a batch, as an HTTP request carried it:
// structured or batch when Content-Type names an event format, else binary
// when the Ce-Specversion header names a known version.
type httpMessage struct {
	header  http.Header
	body    []byte
	format  format.Format // structured or batch
	version spec.Version  // binary
}

var (
	_ binding.MessageReader         = (*httpMessage)(nil)
	_ binding.MessageMetadataReader = (*httpMessage)(nil) // binding.Write asks for it in binary mode
)

func newHTTPMessage(header http.Header, body []byte) *httpMessage {
	m := &httpMessage{header: header, body: body, format: format.Lookup(header.Get("Content-Type"))}
	if m.format == nil {
		vs := headerVersions()
		m.version = vs.Version(header.Get(vs.PrefixedSpecVersionName()))
	}
	return m
}

func (m *httpMessage) ReadEncoding() binding.Encoding {
	switch {
	case m.version != nil:
		return binding.EncodingBinary
	case m.format == format.JSONBatch:
		return binding.EncodingBatch
	case m.format != nil:
		return binding.EncodingStructured
	}
	return binding.EncodingUnknown
}

func (m *httpMessage) ReadStructured(ctx context.Context, w binding.StructuredWriter) error {
	if m.format == nil {
		return binding.ErrNotStructured
	}
	return w.SetStructuredEvent(ctx, m.format, bytes.NewReader(m.body))
}

// ReadBinary hands w every attribute header, every other Ce- header as an
// extension (with the first value of each), then the body as the data.
func (m *httpMessage) ReadBinary(ctx context.Context, w binding.BinaryWriter) error {
	if m.version == nil {
		return binding.ErrNotBinary
	}
	for k, v := range m.header {
		var err error
		if attr := m.version.Attribute(k); attr != nil {
			err = w.SetAttribute(attr, v[0])
		} else if strings.HasPrefix(k, headerPrefix) {
			err = w.SetExtension(extensionName(k), v[0])
		}
		if err != nil {
			return err
		}
	}
	return w.SetData(bytes.NewReader(m.body))
}

// GetAttribute returns the attribute of kind k in a binary-mode message,
// and the first value of its header, or nil when the header is absent.
func (m *httpMessage) GetAttribute(k spec.Kind) (spec.Attribute, any) {
	if m.version == nil {
		return nil, nil
	}
	attr := m.version.AttributeFromKind(k)
	if attr == nil {
		return nil, nil
	}
	if v := m.header[attributeHeader(attr.Name())]; v != nil {
		return attr, v[0]
	}
	return attr, nil
}

// GetExtension returns the first value of extension name's header, or nil.
func (m *httpMessage) GetExtension(name string) any {
	if v := m.header[extensionHeader(name)]; v != nil {
		return v[0]
	}
	return nil
}

// headerWriter sets a binary-mode event's attributes and extensions as
// headers; each value is rendered by types.Format.
type headerWriter struct{ header http.Header }

func (h headerWriter) SetAttribute(attr spec.Attribute, value any) error {
	name := attributeHeader(attr.Name())
	if value == nil {
		delete(h.header, name)
		return nil
	}
	s, err := types.Format(value)
	if err != nil {
		return err
	}
	h.header[name] = append(h.header[name], s)
	return nil
}

func (h headerWriter) SetExtension(name string, value any) error {
	key := extensionHeader(name)
	if value == nil {
		delete(h.header, key)
		return nil
	}
	s, err := types.Format(value)
	if err != nil {
		return err
	}
	h.header[key] = []string{s}
	return nil
}

// bodyLen is the length of a body whose length is known before it is read,
// or -1.
func bodyLen(r io.Reader) int {
	switch v := r.(type) {
	case *bytes.Buffer:
		return v.Len()
	case *bytes.Reader:
		return v.Len()
	case *strings.Reader:
		return v.Len()
	}
	return -1
}

// responseWriter writes an event as the answer to an HTTP request, in the
// mode binding.Write chooses, with the given status.
type responseWriter struct {
	headerWriter
	rw     http.ResponseWriter
	status int
	body   io.Reader
}

func writeResponse(ctx context.Context, m binding.Message, status int, rw http.ResponseWriter) error {
	w := &responseWriter{headerWriter: headerWriter{rw.Header()}, rw: rw, status: status}
	_, err := binding.Write(ctx, m, w, w)
	return err
}

func (w *responseWriter) SetStructuredEvent(_ context.Context, f format.Format, event io.Reader) error {
	w.rw.Header().Set("Content-Type", f.MediaType())
	w.body = event
	return w.End(nil)
}

func (w *responseWriter) Start(context.Context) error { return nil }

func (w *responseWriter) SetData(r io.Reader) error {
	w.body = r
	return nil
}

// End sends the status, the headers and the body.
func (w *responseWriter) End(context.Context) error {
	if w.body == nil {
		w.rw.WriteHeader(w.status)
		return nil
	}
	if n := bodyLen(w.body); n >= 0 {
		w.rw.Header().Set("Content-Length", strconv.Itoa(n))
	}
	w.rw.WriteHeader(w.status)
	_, err := io.Copy(w.rw, w.body)
	return err
}

// requestWriter puts an event into an HTTP request, in the mode
// binding.Write chooses.
type requestWriter struct {
	headerWriter
	req *http.Request
}

func writeRequest(ctx context.Context, m binding.Message, req *http.Request) error {
	w := &requestWriter{headerWriter: headerWriter{req.Header}, req: req}
	_, err := binding.Write(ctx, m, w, w)
	return err
}

func (w *requestWriter) SetStructuredEvent(_ context.Context, f format.Format, event io.Reader) error {
	w.req.Header.Set("Content-Type", f.MediaType())
	w.setBody(event)
	return nil
}

func (w *requestWriter) Start(context.Context) error { return nil }
func (w *requestWriter) End(context.Context) error   { return nil }

func (w *requestWriter) SetData(r io.Reader) error {
	w.setBody(r)
	return nil
}

// setBody makes r the request's body; a body read from memory also sets
// the length and GetBody, so a redirect can send it again.
func (w *requestWriter) setBody(r io.Reader) {
	if r == nil {
		w.req.Body = nil
		return
	}
	n := bodyLen(r)
	if n < 0 {
		rc, ok := r.(io.ReadCloser)
		if !ok {
			rc = io.NopCloser(r)
		}
		w.req.Body = rc
		return
	}
	if n == 0 {
		w.req.Body, w.req.ContentLength = http.NoBody, 0
		w.req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return
	}
	b, err := io.ReadAll(r)
	if err != nil { // memory readers do not fail
		b = nil
	}
	w.req.ContentLength = int64(len(b))
	w.req.Body = io.NopCloser(bytes.NewReader(b))
	w.req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}
