package httpapi

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3.1 description of every route, served at
// GET /openapi.yaml. It is embedded here, under function/, because the
// OpenFaaS build copies nothing else; docs/openapi.yaml is the same file
// (the contract tests check that the two are byte-identical).
//
//go:embed openapi.yaml
var OpenAPI []byte

// OpenAPIContentType is the media type of the served description.
const OpenAPIContentType = "application/yaml"

// serveOpenAPI answers GET /openapi.yaml with the embedded description.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", OpenAPIContentType)
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(OpenAPI) // a client that hung up gets nothing more
}
