//go:build integration

package contract

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// specFile is the published description, docs/openapi.yaml.
const specFile = "docs/openapi.yaml"

// embeddedSpecFile is the copy the service embeds (function/ is all that
// OpenFaaS builds from).
const embeddedSpecFile = "function/httpapi/openapi.yaml"

// loadSpec reads docs/openapi.yaml and builds its model and a validator.
func loadSpec(tb testing.TB) ([]byte, *v3.Document, validator.Validator) {
	tb.Helper()
	raw, err := os.ReadFile(repoFile(tb, specFile))
	if err != nil {
		tb.Fatalf("reading %s: %v", specFile, err)
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		tb.Fatalf("%s does not parse: %v", specFile, err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		tb.Fatalf("%s does not build an OpenAPI 3 model: %v", specFile, err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		tb.Fatalf("building a validator for %s: %v", specFile, errs)
	}
	return raw, &model.Model, v
}

// describe renders validation errors one per line, with their schema errors.
func describe(errs []*liberrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  - %s: %s", e.Message, e.Reason)
		for _, s := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n      %s at %s (%s)", s.Reason, s.FieldPath, s.KeywordLocation)
		}
	}
	return b.String()
}

// The description must be a valid OpenAPI 3.1 document, or neither
// generators nor validators can use it.
func TestSpecIsValidOpenAPI31(t *testing.T) {
	_, model, v := loadSpec(t)
	if !strings.HasPrefix(model.Version, "3.1.") {
		t.Fatalf("%s declares openapi %q, want 3.1.x", specFile, model.Version)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		t.Fatalf("%s is not a valid OpenAPI 3.1 document:%s", specFile, describe(errs))
	}
}

// docs/openapi.yaml is the file users read; function/httpapi/openapi.yaml
// is the one the service embeds and serves. They must be the same bytes.
func TestPublishedSpecIsTheEmbeddedOne(t *testing.T) {
	docs, err := os.ReadFile(repoFile(t, specFile))
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := os.ReadFile(repoFile(t, embeddedSpecFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, embedded) {
		t.Fatalf("%s and %s differ; edit %s and copy it: cp %s %s",
			specFile, embeddedSpecFile, embeddedSpecFile, embeddedSpecFile, specFile)
	}
}

// operations lists every (method, path) the description declares.
func operations(model *v3.Document) map[string]*v3.Operation {
	ops := map[string]*v3.Operation{}
	for path, item := range model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			ops[strings.ToUpper(method)+" "+path] = op
		}
	}
	return ops
}

// Every route the contract (docs/API.md) lists is described, with the
// methods it takes, so no route is missing from the description.
func TestSpecDescribesEveryRoute(t *testing.T) {
	_, model, _ := loadSpec(t)
	ops := operations(model)
	want := []string{
		"GET /acquire/{id}", "POST /acquire/{id}",
		"GET /release/{id}", "POST /release/{id}",
		"GET /heartbeat/{id}", "POST /heartbeat/{id}",
		"GET /locks/{id}",
		"GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.yaml",
		"POST /",
	}
	for _, w := range want {
		if ops[w] == nil {
			t.Errorf("%s does not describe %s", specFile, w)
		}
		delete(ops, w)
	}
	for extra := range ops {
		t.Errorf("%s describes %s, which is not a route of the contract", specFile, extra)
	}
	for _, name := range []string{"NotFound", "MethodNotAllowed"} {
		if _, ok := model.Components.Responses.Get(name); !ok {
			t.Errorf("%s has no components.responses.%s", specFile, name)
		}
	}
}

// statusKey names one status of one operation, as the coverage check
// records it.
func statusKey(method, path string, status int) string {
	return fmt.Sprintf("%s %s %d", method, path, status)
}

// declaredStatuses lists every status of every operation in the
// description, and of the component responses for undeclared paths and
// methods.
func declaredStatuses(model *v3.Document) map[string]bool {
	all := map[string]bool{}
	for key, op := range operations(model) {
		method, path, _ := strings.Cut(key, " ")
		for code := range op.Responses.Codes.KeysFromOldest() {
			var n int
			if _, err := fmt.Sscanf(code, "%d", &n); err == nil {
				all[statusKey(method, path, n)] = true
			}
		}
	}
	all[statusKey("*", "NotFound", http.StatusNotFound)] = true
	all[statusKey("*", "MethodNotAllowed", http.StatusMethodNotAllowed)] = true
	return all
}
