// Package access decides who may do what on Candado: it authenticates a
// request's bearer credential (the instance-wide CANDADO_AUTH_TOKEN, a scoped
// token from a tokens file, or a Knative Eventing OIDC token) into an
// Identity, and checks that identity's verbs and lock-name prefixes.
//
// The one entry point is Authorizer.Authorize (or Authenticate once and then
// Identity.Check for each event of a CloudEvents batch). Its errors are the
// sentinels ErrUnauthorized (no credential, or one nobody knows: 401),
// ErrForbidden (a known identity outside its scope: 403) and ErrUnavailable
// (the OIDC issuer cannot be reached to check a token: 503, retried).
//
// Secrets never leave the package: tokens are kept as SHA-256 digests,
// compared in constant time, and logs and metrics name an identity by its
// entry name or subject, never by its credential.
//
// The package also holds what binds lock owners to identities (owner.go) and
// the per-identity cap on waiting acquires (waiters.go).
package access
