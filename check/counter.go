package check

import "sync"

// Counter is a fenced resource: one counter per lock id that remembers the
// highest fence it has seen on any access and refuses an access with a lower
// one. A holder reads with its fence, works, and writes read+1 with the same
// fence; the write is accepted only if no higher fence touched the counter
// in between. So with fences that are unique per lease and increase, every
// accepted increment is exactly one, even when holders pause past their TTL.
type Counter struct {
	mu       sync.Mutex
	values   map[string]int64
	fences   map[string]int64
	accepted map[string]int64
	stale    int64
}

// NewCounter returns an empty counter set.
func NewCounter() *Counter {
	return &Counter{values: map[string]int64{}, fences: map[string]int64{}, accepted: map[string]int64{}}
}

// Read returns the counter of id if fence is not below the highest seen.
func (c *Counter) Read(id string, fence int64) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fence < c.fences[id] {
		c.stale++
		return 0, false
	}
	c.fences[id] = fence
	return c.values[id], true
}

// Write sets the counter of id if fence is not below the highest seen.
func (c *Counter) Write(id string, fence, v int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fence < c.fences[id] {
		c.stale++
		return false
	}
	c.fences[id] = fence
	c.values[id] = v
	c.accepted[id]++
	return true
}

// CounterReport sums a Counter up.
type CounterReport struct {
	// Accepted is the number of accepted increments, Total the sum of the
	// final counters: equal when no increment was lost or doubled.
	Accepted, Total int64
	// Stale counts refused reads and writes (holders whose lease had ended).
	Stale int64
	// Mismatched counts lock ids whose counter differs from its accepted
	// increments.
	Mismatched int
}

// Report sums the counters up.
func (c *Counter) Report() CounterReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := CounterReport{Stale: c.stale}
	for id, n := range c.accepted {
		r.Accepted += n
		r.Total += c.values[id]
		if n != c.values[id] {
			r.Mismatched++
		}
	}
	return r
}
