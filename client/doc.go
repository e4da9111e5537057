// Package client is a Go client for Candado, the HTTP lock service whose
// contract is docs/API.md in Candado's repository: leases with an owner
// token, a TTL and a fence that strictly increases per lock id.
//
// Usage:
//
//	c, err := client.New("http://candado.default.svc", &client.Options{AuthToken: token})
//	if err != nil { return err }
//	lease, err := c.Acquire(ctx, "orders/42", &client.AcquireOptions{
//		TTL: 30 * time.Second, Wait: 5 * time.Second, AutoHeartbeat: true})
//	if errors.Is(err, client.ErrHeld) { return nil } // someone else has it
//	if err != nil { return err }
//	defer lease.Release(context.WithoutCancel(ctx))
//	err = store.Write(ctx, lease.Fence(), data) // the store rejects stale fences
//	select { case <-lease.Done(): return lease.Err(); default: return err }
//
// Guarantees:
//
//   - Every call is retried with capped exponential backoff and full jitter on
//     503 and 429 (honouring Retry-After as a floor) and on network errors,
//     until the context is done or Options.Retry (a RetryStrategy: Backoff,
//     NoRetry or one's own) gives up; other 4xx answers are never retried.
//     Acquire mints the owner token before the first try, so a retried
//     acquire yields one lease.
//   - Server refusals are *APIError values wrapping a sentinel (ErrHeld,
//     ErrNotHeld, ErrLimitMismatch, ErrUnavailable, ErrUnauthorized,
//     ErrForbidden, ErrBadRequest, ErrUnsupported, ErrTooManyRequests): use
//     errors.Is for the kind and errors.As for status, code, message and the
//     lock's state.
//   - Beyond a mutex: AcquireOptions.Limit makes a semaphore (N holders,
//     each with its own fence), Shared takes a shared lease (many readers,
//     or one exclusive writer), Holder labels the lease for whoever inspects
//     the lock (leader election: Inspect says who leads), and LockDelay
//     keeps the lock from everyone for a while after its lease expired.
//   - Acquire's Wait holds on any server: when the server cuts a wait short
//     (its CANDADO_MAX_WAIT, or its platform's request deadline) and says
//     wait_cut, Acquire asks again, with the same owner, for the rest.
//   - A Lease's Done channel closes as soon as the lease is known lost: a
//     heartbeat refused with not_held, or TTL elapsed since the last confirmed
//     acquire or heartbeat was sent (for an acquire that waited, plus the
//     server's waited_ms: the lease counts from its grant). Done is advisory;
//     a holder that pauses can still act late, so protected resources must
//     check Lease.Fence.
package client
