// Package function is Candado, a lock service on Redis: one http.Handler
// (Service) served unchanged as an OpenFaaS function (Handle), a Knative
// Function (the module root's New) and a standalone binary (cmd/candado).
// Nothing here starts a Redis: the in-process one of a local run lives in
// cmd/candado.
//
// Why the layout is what it is: OpenFaaS' golang-middleware template builds
// this folder (stack.yml's handler: ./function, with the root's go.mod and
// go.sum copied in) as the package its main.go imports as handler/function,
// and mounts its Handle. So the module is named handler/function, this
// package is the folder function/, and nothing under it may import code
// outside it. func-go builds the module root, so the root holds a second
// package named function, the Knative Functions entry, which imports this
// one as impl. Both entries are thin: everything they serve is built here.
//
// The map of the code, file by file, is docs/ARCHITECTURE.md.
package function
