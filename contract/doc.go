// Package contract checks the service against its published contract,
// docs/openapi.yaml (OpenAPI 3.1) and docs/API.md: a real server on a real
// redis-server answers every route and status of the description, and each
// request and answer is validated against it (tag integration, needs
// redis-server); the docs name every configuration variable, link only to
// files that exist and never outside the repository (no tag).
//
// It is a module of its own (go.mod beside this file) because the OpenAPI
// validator, github.com/pb33f/libopenapi-validator, needs a newer Go than the
// service's module may ask for; the service's module is brought in with a
// replace to the checkout. `make contract`, part of `make test`, runs it.
package contract
