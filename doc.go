// Package function is the Knative Functions entry of Candado: the func-go
// runtime serves Handle and calls Start, Stop, Ready and Alive. Everything
// here delegates to handler/function/function, imported as impl.
//
// Why two packages are named function: OpenFaaS' golang-middleware template
// builds only the folder function/ (with go.mod and go.sum) as the package
// handler/function, so the module has that name and the implementation lives
// there; func-go builds the module root. So the root is this thin entry, and
// function/ is the service both platforms, and cmd/candado, serve. See
// docs/ARCHITECTURE.md.
package function
