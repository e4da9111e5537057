package function

import (
	"context"
	"time"

	"handler/function/function/api"
	"handler/function/function/lock"
)

// unusableLocks answers every lock call with why the service cannot serve.
type unusableLocks struct{ err *api.Unusable }

func (u unusableLocks) Acquire(_ context.Context, req lock.AcquireRequest) (lock.Lease, error) {
	return lock.Lease{ID: req.ID}, u.err
}

func (u unusableLocks) Release(_ context.Context, id, _ string) (lock.Lease, error) {
	return lock.Lease{ID: id}, u.err
}

func (u unusableLocks) Heartbeat(_ context.Context, id, _ string, _ time.Duration) (lock.Lease, error) {
	return lock.Lease{ID: id}, u.err
}

func (u unusableLocks) Inspect(_ context.Context, id string) (lock.Lease, error) {
	return lock.Lease{ID: id}, u.err
}
