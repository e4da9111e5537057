// Package clienttest holds the tests that run the Go client, which is a
// module of its own (client/go.mod, standard library only), against real
// Candado services on a real redis-server. They live in the root module
// because they need the service, which the client module must not require.
package clienttest
