package function

import (
	"time"

	"handler/function/function/lock"
	"handler/function/function/promtext"
)

// maxHold bounds the hold times observed: a fence that reads as a longer
// hold is not a clock reading (a store that lost its data, a hand-made
// key), and is left out rather than skew the histogram.
const maxHold = 48 * time.Hour

// holdBuckets span a millisecond to about four hours.
var holdBuckets = promtext.ExponentialBuckets(.001, 4, 12)

// newHoldTime registers the histogram of how long leases were held, by how
// they ended: released (by their owner, through this instance) or revoked.
// Expiries happen inside Redis, where no request sees them, and are not
// counted.
func newHoldTime(r *promtext.Registry) *promtext.Vec[promtext.Histogram] {
	return r.NewHistogramVec("candado_hold_duration_seconds",
		"How long leases were held before they ended, by outcome: released or revoked.", holdBuckets, "result")
}

// observeHold records the hold of a lease that ended now with fence: a
// fence is Redis' clock in microseconds at the grant (or just above an
// earlier fence), so now minus it is the hold, to within the clocks'
// difference.
func (m *metrics) observeHold(result string, l lock.Lease) {
	if l.Fence <= 0 {
		return
	}
	if hold := time.Since(time.UnixMicro(l.Fence)); hold >= 0 && hold < maxHold {
		m.holdTime.WithLabelValues(result).Observe(hold.Seconds())
	}
}
