package api

import "errors"

// Error codes of access control (see package access).
const (
	// CodeForbidden: a known identity asked for something outside its scope.
	CodeForbidden = "forbidden"
	// CodeTooManyWaiters: the identity already has its cap of waiting
	// acquires on this instance.
	CodeTooManyWaiters = "too_many_waiters"
)

// The errors of access control, here so that both mappings turn them into
// codes; package access returns them.
var (
	// ErrUnauthorized: no bearer credential, or one nobody knows (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: a known identity outside its scope (403).
	ErrForbidden = errors.New("forbidden")
	// ErrTooManyWaiters: the identity has its cap of waiting acquires (429).
	ErrTooManyWaiters = errors.New("too many acquires of this identity are waiting")
)
