// Package contract checks the running service against its published
// contract: docs/openapi.yaml (OpenAPI 3.1) and docs/API.md.
//
// It is a module of its own (go.mod beside this file) because the OpenAPI
// validator, github.com/pb33f/libopenapi-validator, needs a newer Go than the
// service's module may ask for; the service's module is brought in with a
// replace to the checkout. Its tests need a redis-server (build tag
// integration) and run from the repository's `make test`.
package contract
