// Package clienttest holds the tests that run the Go client, which is a
// module of its own (client/go.mod, standard library only), against real
// Candado services on a real redis-server. They live in the cmd/candado module
// because they need both the service and the client, which the root module
// must not require (a require that resolves only through a replace breaks
// Knative Functions builds).
package clienttest
