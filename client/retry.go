package client

import (
	"math/rand/v2"
	"time"
)

// RetryStrategy decides whether, and after how long, a Client retries a try
// that failed in a way it may retry (a 503, a gateway's 502 or 504, a 429, a
// network error; never another 4xx). Whatever it says, a Client stops retrying
// when the call's context is done or its deadline falls before the next try.
// An implementation must be safe for concurrent use.
type RetryStrategy interface {
	// NextDelay is how long to wait before retry number n (1 for the first
	// retry after the first try). floor is the delay the server asked for
	// (Retry-After), else 0; the Client waits at least floor whatever
	// NextDelay says. ok false gives up: the call returns the last failure.
	NextDelay(n int, floor time.Duration) (delay time.Duration, ok bool)
}

// Backoff is capped exponential backoff with full jitter: the delay before
// retry n is drawn uniformly from [0, min(Base·2^(n-1), Max)], and is at
// least the server's Retry-After. The zero Backoff retries until the context
// is done, from DefaultRetryBackoff up to DefaultMaxBackoff.
type Backoff struct {
	// Base is the first retry's ceiling; 0 means DefaultRetryBackoff.
	Base time.Duration
	// Max caps the ceiling; 0 means DefaultMaxBackoff, and a Max below
	// Base means Base.
	Max time.Duration
	// Retries bounds the retries after the first try; 0 means no bound
	// but the context's.
	Retries int
}

// NextDelay implements RetryStrategy.
func (b Backoff) NextDelay(n int, floor time.Duration) (time.Duration, bool) {
	if b.Retries > 0 && n > b.Retries {
		return 0, false
	}
	base, ceil := b.Base, b.Max
	if base <= 0 {
		base = DefaultRetryBackoff
	}
	if ceil <= 0 {
		ceil = DefaultMaxBackoff
	}
	ceil = max(ceil, base)
	d := base
	for i := 1; i < n && d < ceil; i++ {
		d *= 2
	}
	d = min(d, ceil)
	return max(time.Duration(rand.Int64N(int64(d)+1)), floor), true
}

// NoRetry never retries: every call makes one try.
var NoRetry RetryStrategy = noRetry{}

type noRetry struct{}

func (noRetry) NextDelay(int, time.Duration) (time.Duration, bool) { return 0, false }

// retryOf is the strategy o asks for: Retry, else the older fields
// RetryBackoff, MaxBackoff and MaxRetries (whose negative means NoRetry).
func retryOf(o Options) RetryStrategy {
	switch {
	case o.Retry != nil:
		return o.Retry
	case o.MaxRetries < 0:
		return NoRetry
	}
	return Backoff{Base: o.RetryBackoff, Max: o.MaxBackoff, Retries: o.MaxRetries}
}

// paceOf is the backoff between the re-issued acquires of a wait the server
// cut short, which are not retries of a failure: Retry's Base and Max when it
// is a Backoff, else RetryBackoff's and MaxBackoff's, with no bound.
func paceOf(o Options) Backoff {
	if b, ok := o.Retry.(Backoff); ok {
		return Backoff{Base: b.Base, Max: b.Max}
	}
	return Backoff{Base: o.RetryBackoff, Max: o.MaxBackoff}
}
