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
//     503 (honouring Retry-After as a floor) and on network errors, until the
//     context is done; 4xx answers are never retried. Acquire mints the owner
//     token before the first try, so a retried acquire yields one lease.
//   - Server refusals are *APIError values wrapping a sentinel (ErrHeld,
//     ErrNotHeld, ErrUnavailable, ErrUnauthorized, ErrBadRequest): use
//     errors.Is for the kind and errors.As for status, code and message.
//   - A Lease's Done channel closes as soon as the lease is known lost: a
//     heartbeat refused with not_held, or TTL elapsed since the last confirmed
//     acquire or heartbeat was sent. Done is advisory; a holder that pauses can
//     still act late, so protected resources must check Lease.Fence.
package client
