// Package drive holds the benchmark's drivers (one per system measured, all
// behind one interface) and the load runners that time them and check that
// what they granted was a lock: no two owners at once, fences that rise.
package drive

import (
	"context"
	"errors"
	"time"
)

// ErrHeld is a refused acquire: another owner holds the lock (after the wait).
var ErrHeld = errors.New("held by another owner")

// LeaseTTL is the lease length every driver asks for, where it has one.
const LeaseTTL = 10 * time.Second

// Driver takes and gives back named locks on one system. Every method is
// safe for concurrent use by many clients (each with its own owner).
type Driver interface {
	// Name says what is measured, for the tables.
	Name() string
	// Acquire takes lock id for owner, waiting up to wait for a held lock
	// (0: try once). It returns the lease's fence (0 where the system has
	// none), or ErrHeld.
	Acquire(ctx context.Context, id, owner string, wait time.Duration) (int64, error)
	// Release gives back owner's lease on id; an error if it was not held.
	Release(ctx context.Context, id, owner string) error
	// Close frees the driver's connections.
	Close() error
}
