package lock

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed quorum_read.lua
	quorumReadLua string
	//go:embed quorum_acquire.lua
	quorumAcquireLua string
	//go:embed quorum_undo.lua
	quorumUndoLua string

	quorumReadScript    = newLua(quorumReadLua)
	quorumAcquireScript = newLua(quorumAcquireLua)
	quorumUndoScript    = newLua(quorumUndoLua)
)

// QuorumStore keeps leases on N independent Redis masters (N odd), in the
// manner of Redlock: a lease is held when a majority of the masters granted
// it within its validity time. It survives the loss of any minority of the
// masters, and a paused master costs no request more than the per-master
// timeout: every call goes to all masters in parallel and answers as soon as
// the majority has decided.
//
// Fences. An acquire first reads the lock and the clock (TIME, µs) from a
// majority and proposes a fence above every fence it read and no lower than
// the highest clock it read; then every master that grants stores exactly
// that fence, refusing a proposal that is not above its own fence. So a
// granted fence lives on a majority for as long as the lease (and its
// tombstone), and any later majority read meets at least one of those
// masters: the next proposal is greater. Where the keys are gone (the lease
// ended, or a minority lost its data), the floor is the masters' clocks, as
// for a single Redis.
type QuorumStore struct {
	masters []*RedisStore
	opts    RedisOptions
	quorum  int

	// inflight holds, per lock, owner and master, the grant request an
	// acquire left running when the majority had answered; a release to that
	// master waits for it, so it cannot overtake the grant and leave it
	// behind for a whole TTL.
	mu       sync.Mutex
	inflight map[inflightKey]chan struct{}

	// wakes passes each release to one local waiter at a time; wakeAll
	// restores waking every waiter on every release and undo (for the
	// contention benchmark's comparison).
	wakes   wakeGates
	wakeAll atomic.Bool
}

type inflightKey struct {
	id, owner string
	master    int
}

// NewQuorumStore returns a store on the independent masters clients (an odd
// number). It does no I/O. Close closes the clients.
func NewQuorumStore(clients []redis.UniversalClient, opts RedisOptions) (*QuorumStore, error) {
	if len(clients) == 0 || len(clients)%2 == 0 {
		return nil, fmt.Errorf("%w: a quorum needs an odd number of masters, got %d", ErrInvalid, len(clients))
	}
	opts.Sharded = false
	q := &QuorumStore{quorum: len(clients)/2 + 1, inflight: map[inflightKey]chan struct{}{}}
	for _, c := range clients {
		q.masters = append(q.masters, NewRedisStore(c, opts))
	}
	q.opts = q.masters[0].opts // with the defaults filled in
	return q, nil
}

// Quorum is the number of masters that make a majority.
func (q *QuorumStore) Quorum() int { return q.quorum }

// Masters is the number of masters.
func (q *QuorumStore) Masters() int { return len(q.masters) }

// Key is the Redis key of lock id on every master.
func (q *QuorumStore) Key(id string) string { return q.masters[0].Key(id) }

// drift is the allowance for the masters' clocks running at different rates
// during a lease (Redlock's clock drift factor) plus the expiry's precision.
func drift(ttl time.Duration) time.Duration { return ttl/100 + 2*time.Millisecond }

// quorumReply is the answer every quorum script gives, {status, held,
// fence, pttl}: what the script did (1: it took effect; quorum_acquire.lua
// has more statuses), whether the lock is held now, its current (or last)
// fence and the remaining milliseconds of a held lease.
type quorumReply struct {
	status int64
	held   bool
	fence  int64
	pttl   int64
}

// decodeQuorumReply reads a {status, held, fence, pttl} answer.
func decodeQuorumReply(res []int64) (quorumReply, error) {
	if len(res) != 4 {
		return quorumReply{}, fmt.Errorf("script answered %d values, want 4", len(res))
	}
	return quorumReply{status: res[0], held: res[1] == 1, fence: res[2], pttl: res[3]}, nil
}

// ok reports whether the script took effect (status 1).
func (r quorumReply) ok() bool { return r.status == 1 }

// ttl is the remaining time of a held lease, else 0.
func (r quorumReply) ttl() time.Duration {
	if !r.held || r.pttl <= 0 {
		return 0
	}
	return time.Duration(r.pttl) * time.Millisecond
}

// answer is one master's decoded answer: the quorumReply every quorum script
// gives, and for quorum_read.lua the master's clock.
type answer struct {
	quorumReply
	clockUS int64 // quorum_read.lua only: the master's TIME in microseconds
}

// reply is one master's answer to one script.
type reply struct {
	i   int
	ans answer
	err error
}

// masterOp is one call to one master (i, m), bounded by ctx.
type masterOp func(ctx context.Context, i int, m *RedisStore) (answer, error)

// fanout runs op on every master in parallel, each call bounded by the
// store's timeout (and not cut short when the caller's ctx ends, so a
// release or an undo still reaches a slow master). It returns the replies
// once all masters answered, enough says the outcome is decided, or ctx
// ends. A reply that arrives after that goes to late, if set, in the
// caller's goroutine of that master.
func (q *QuorumStore) fanout(ctx context.Context, op masterOp, enough func([]reply) bool, late func(reply)) []reply {
	var (
		mu      sync.Mutex
		replies []reply
		closed  bool
		signal  = make(chan struct{}, len(q.masters))
		detach  = context.WithoutCancel(ctx)
	)
	// deliver records r, or hands it to late once fanout has returned.
	deliver := func(r reply) {
		mu.Lock()
		if closed {
			mu.Unlock()
			if late != nil {
				late(r)
			}
			return
		}
		replies = append(replies, r)
		mu.Unlock()
		signal <- struct{}{}
	}
	for i, m := range q.masters {
		go func(i int, m *RedisStore) {
			c, cancel := context.WithTimeout(detach, q.opts.Timeout)
			ans, err := op(c, i, m)
			cancel()
			deliver(reply{i: i, ans: ans, err: err})
		}(i, m)
	}
	decided := func() bool {
		mu.Lock()
		got := slices.Clone(replies)
		mu.Unlock()
		return len(got) == len(q.masters) || (enough != nil && enough(got))
	}
	for waiting := true; waiting && !decided(); {
		select {
		case <-signal:
		case <-ctx.Done():
			waiting = false
		}
	}
	mu.Lock()
	closed = true
	got := slices.Clone(replies)
	mu.Unlock()
	return got
}

// script is an op that evaluates one script answering a quorumReply.
func script(s *lua, keys []string, args ...any) masterOp {
	return func(ctx context.Context, _ int, m *RedisStore) (answer, error) {
		res, err := s.get().Run(ctx, m.rdb, keys, args...).Slice()
		if err != nil {
			return answer{}, err
		}
		// inspect.lua goes on after the four values; quorum reads those.
		if len(res) > 4 {
			res = res[:4]
		}
		ints := make([]int64, len(res))
		for i, v := range res {
			n, ok := v.(int64)
			if !ok {
				return answer{}, fmt.Errorf("script answer %d is %T, want an integer", i, v)
			}
			ints[i] = n
		}
		r, err := decodeQuorumReply(ints)
		return answer{quorumReply: r}, err
	}
}

// readMine is quorum_read.lua's status when the caller holds the lease on
// that master.
const readMine = 1

// readScript is the op of an acquire's phase 1: quorum_read.lua for owner,
// answering {mine, held, fence, pttl, time_us}.
func readScript(keys []string, owner string) masterOp {
	return func(ctx context.Context, _ int, m *RedisStore) (answer, error) {
		res, err := quorumReadScript.get().Run(ctx, m.rdb, keys, owner).Int64Slice()
		if err != nil {
			return answer{}, err
		}
		return decodeReadReply(res)
	}
}

// decodeReadReply reads quorum_read.lua's {mine, held, fence, pttl, time_us}.
func decodeReadReply(res []int64) (answer, error) {
	if len(res) != 5 {
		return answer{}, fmt.Errorf("script answered %d values, want 5", len(res))
	}
	r, err := decodeQuorumReply(res[:4])
	return answer{quorumReply: r, clockUS: res[4]}, err
}

// tally counts replies: yes the answers pred accepts, no the other
// answers, errs the calls that failed.
func tally(rs []reply, pred func(answer) bool) (yes, no, errs int) {
	for _, r := range rs {
		switch {
		case r.err != nil:
			errs++
		case pred(r.ans):
			yes++
		default:
			no++
		}
	}
	return yes, no, errs
}

// votes is, among the answers of rs that pick accepts, the fence most of
// them report (the higher on a tie) and how many report it.
func votes(rs []reply, pick func(answer) bool) (fence int64, n int) {
	count := map[int64]int{}
	for _, r := range rs {
		if r.err == nil && pick(r.ans) {
			count[r.ans.fence]++
		}
	}
	for f, c := range count {
		if c > n || c == n && f > fence {
			fence, n = f, c
		}
	}
	return fence, n
}

// settled reports whether an outcome that votes answers are for, with
// pending answers still to come, is known: it has a majority, or can no
// longer get one.
func (q *QuorumStore) settled(votes, pending int) bool {
	return votes >= q.quorum || votes+pending < q.quorum
}

// unavailable is the error of a vote that rs leave undecided: too few
// masters answered, or those that did not could tip it. It wraps the first
// failed call's error, or ctx's.
func (q *QuorumStore) unavailable(ctx context.Context, what string, rs []reply) error {
	why := fmt.Sprintf("%s: %d of %d masters answered, %d needed", what, countOK(rs), len(q.masters), q.quorum)
	if countOK(rs) >= q.quorum {
		why = fmt.Sprintf("%s: %d of %d masters answered, undecided without the others", what, countOK(rs), len(q.masters))
	}
	for _, r := range rs {
		if r.err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnavailable, why, r.err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, why, err)
	}
	return fmt.Errorf("%w: %s", ErrUnavailable, why)
}

func countOK(rs []reply) int {
	n := 0
	for _, r := range rs {
		if r.err == nil {
			n++
		}
	}
	return n
}

// holder is the lease that a majority of the answers rs report held with
// one fence: the lock's current lease. A fence held on fewer masters is a
// partial grant of an attempt that has not won (yet), never "the holder".
// The TTL is the shortest a majority reports.
func (q *QuorumStore) holder(id string, rs []reply, held func(answer) bool) (Lease, bool) {
	votes := map[int64][]time.Duration{}
	for _, r := range rs {
		if r.err == nil && held(r.ans) {
			votes[r.ans.fence] = append(votes[r.ans.fence], time.Duration(r.ans.pttl)*time.Millisecond)
		}
	}
	for fence, ttls := range votes {
		if len(ttls) >= q.quorum {
			slices.Sort(ttls)
			return Lease{ID: id, Held: true, Fence: fence, TTL: max(ttls[len(ttls)-q.quorum], 0)}, true
		}
	}
	return Lease{ID: id}, false
}

// heldNow accepts answers that report the lock held on their master.
func heldNow(a answer) bool { return a.held }

// refusal is the answer to an acquire that did not win: ErrHeld with the
// holder's lease when one owner holds a majority, else ErrContended.
func (q *QuorumStore) refusal(id string, rs []reply, other func(answer) bool) (Lease, error) {
	if l, ok := q.holder(id, rs, other); ok {
		return l, ErrHeld
	}
	return Lease{ID: id}, ErrContended
}

// quorumCan refuses what quorum mode cannot do yet: its scripts keep one
// lease per lock and no lock-delay.
func quorumCan(req AcquireRequest) error {
	if err := ValidateAcquire(req); err != nil {
		return err
	}
	switch {
	case req.limit() > 1:
		return fmt.Errorf("%w: semaphores (limit %d)", ErrModeCannot, req.Limit)
	case req.shared():
		return fmt.Errorf("%w: shared leases", ErrModeCannot)
	case req.LockDelay > 0:
		return fmt.Errorf("%w: lock_delay", ErrModeCannot)
	}
	return nil
}

// maxAttempts bounds how often an acquire proposes a fresh fence after a
// master refused one as stale (a concurrent attempt got there first).
const maxAttempts = 3

// Acquire takes the lease once on a majority; it ignores req.Wait (see
// Locker), so its waiters are not queued in order, and it keeps no holder
// label. Semaphores, shared leases and lock-delays it refuses with
// ErrModeCannot.
func (q *QuorumStore) Acquire(ctx context.Context, req AcquireRequest) (l Lease, err error) {
	if err := quorumCan(req); err != nil {
		return Lease{ID: req.ID}, err
	}
	q.wakes.begin(req.ID)
	defer func() { q.wakes.end(req.ID, err == nil) }()
	for attempt := 0; attempt < maxAttempts; attempt++ {
		var stale bool
		l, stale, err = q.acquire(ctx, req)
		if !stale || ctx.Err() != nil {
			break
		}
	}
	return l, err
}

// The answers of quorum_acquire.lua (phase 2), its first value.
const (
	grantStale      = -1 // free here, but the master saw a later proposal
	grantHeld       = 0  // held by another owner
	grantNew        = 1  // granted: this attempt wrote the lease
	grantKept       = 2  // the caller's lease with the proposed fence, extended
	grantOtherFence = 3  // the caller's lease with another fence, left alone
)

// acquire is one attempt: read a majority (phase 1), propose a fence, grant
// it on a majority (phase 2). stale reports that a refused proposal, not
// another holder, kept it from a majority, so a fresh proposal may succeed.
func (q *QuorumStore) acquire(ctx context.Context, req AcquireRequest) (Lease, bool, error) {
	reads := q.readLock(ctx, req)
	p, l, err := q.propose(ctx, req, reads)
	if err != nil {
		return l, false, err
	}
	return q.grant(ctx, req, p)
}

// mine: quorum_read.lua found the caller's lease on that master.
func (a answer) mine() bool { return a.status == readMine }

// heldByOther: quorum_read.lua found another owner's lease on that master.
func (a answer) heldByOther() bool { return a.held && a.status != readMine }

// free: no lease on that master.
func (a answer) free() bool { return !a.held }

// granted: quorum_acquire.lua granted the proposal (wrote or extended it).
func (a answer) granted() bool { return a.status == grantNew || a.status == grantKept }

// refusedHeld: quorum_acquire.lua refused, another owner holds the lock there.
func (a answer) refusedHeld() bool { return a.status == grantHeld }

// refusedStale: quorum_acquire.lua refused a proposal below that master's
// fence (it saw a later attempt).
func (a answer) refusedStale() bool { return a.status == grantStale }

// readLock is phase 1: the fences and clocks of a majority, and of every
// master that may decide whether the caller or another owner holds the
// lease.
func (q *QuorumStore) readLock(ctx context.Context, req AcquireRequest) []reply {
	n, need := len(q.masters), q.quorum
	return q.fanout(ctx, readScript([]string{q.Key(req.ID)}, req.Owner),
		func(rs []reply) bool {
			pending := n - len(rs)
			_, m := votes(rs, answer.mine)
			_, o := votes(rs, answer.heldByOther)
			return countOK(rs) >= need && q.settled(m, pending) && q.settled(o, pending)
		}, nil)
}

// proposal is the fence an attempt asks the masters to grant.
type proposal struct {
	fence int64
	// reacquire: a majority already holds the caller's lease with this
	// fence, so the attempt re-proposes it (extending the lease where it is
	// held, granting it where the lock is free) and never undoes what it
	// wrote, which is the caller's live lease.
	reacquire bool
}

// propose classifies phase 1's reads and picks the fence to grant: the
// caller's own when it is the holder again, else one above every fence read
// and no lower than the highest clock read. It refuses when another owner
// holds a majority (ErrHeld with its lease) or may (ErrContended), when
// partial grants leave no majority free, and when the caller's lease is on
// some of the masters that answered and those that did not could make it a
// majority: then the caller may be the holder or may not (a lease that ended
// everywhere else); a new fence would break "a re-acquire keeps the fence"
// and its old fence could be below a lease granted since, so the answer is
// ErrUnavailable, and nothing is written.
func (q *QuorumStore) propose(ctx context.Context, req AcquireRequest, reads []reply) (proposal, Lease, error) {
	n, need := len(q.masters), q.quorum
	none := Lease{ID: req.ID}
	if countOK(reads) < need {
		return proposal{}, none, q.unavailable(ctx, "acquire", reads)
	}
	silent := n - countOK(reads)
	mineFence, mineVotes := votes(reads, answer.mine)
	_, otherVotes := votes(reads, answer.heldByOther)
	free, _, _ := tally(reads, answer.free)
	if l, ok := q.holder(req.ID, reads, answer.heldByOther); ok {
		return proposal{}, l, ErrHeld
	}
	switch {
	case mineVotes >= need: // the holder again: keep its fence
		return proposal{fence: mineFence, reacquire: true}, none, nil
	case mineVotes+silent >= need:
		return proposal{}, none, fmt.Errorf("%w: acquire: the caller's lease is on %d of %d masters and %d did not answer: "+
			"whether it still holds the lock is undecided", ErrUnavailable, mineVotes, n, silent)
	case otherVotes+silent >= need:
		return proposal{}, none, fmt.Errorf("%w: another owner's lease is on %d of %d masters and %d did not answer",
			ErrContended, otherVotes, n, silent)
	case free+silent < need: // partial grants on too many masters: no fresh grant can win
		return proposal{}, none, ErrContended
	}
	var maxFence, maxClock int64
	for _, r := range reads {
		if r.err == nil {
			maxFence, maxClock = max(maxFence, r.ans.fence), max(maxClock, r.ans.clockUS)
		}
	}
	return proposal{fence: max(maxFence+1, maxClock)}, none, nil
}

// grant is phase 2: grant p on a majority within the validity time. A
// grant that answers too late to count is undone when the attempt failed.
func (q *QuorumStore) grant(ctx context.Context, req AcquireRequest, p proposal) (Lease, bool, error) {
	n, need := len(q.masters), q.quorum
	written := func(r reply) bool { return r.err == nil && r.ans.status == grantNew }
	decided := make(chan struct{})
	var failed bool // written before decided is closed
	start := time.Now()
	op := script(quorumAcquireScript, []string{q.Key(req.ID)}, req.Owner, ms(req.TTL), strconv.FormatInt(p.fence, 10))
	grants := q.fanout(ctx,
		func(ctx context.Context, i int, m *RedisStore) (answer, error) {
			defer q.track(req.ID, req.Owner, i)()
			return op(ctx, i, m)
		},
		func(rs []reply) bool {
			// Done once granted, or once a grant is impossible and whether
			// another owner holds a majority (409, not 503) is known.
			yes, _, _ := tally(rs, answer.granted)
			pending := n - len(rs)
			if yes+pending >= need {
				return yes >= need
			}
			_, o := votes(rs, answer.refusedHeld)
			return q.settled(o, pending)
		},
		func(r reply) {
			<-decided
			if failed && !p.reacquire && written(r) {
				q.undo(context.Background(), req.ID, req.Owner, p.fence, []int{r.i}, true)
			}
		})
	validity := req.TTL - time.Since(start) - drift(req.TTL)
	yes, _, _ := tally(grants, answer.granted)
	if yes >= need && validity > 0 {
		close(decided)
		return Lease{ID: req.ID, Held: true, Owner: req.Owner, Fence: p.fence, TTL: validity}, false, nil
	}
	failed = true
	close(decided)
	// Undo only what this attempt wrote. A re-acquire by the holder wrote
	// its own lease with its own fence: undoing that could end the live lease.
	if !p.reacquire {
		var undo []int
		for _, r := range grants {
			if written(r) {
				undo = append(undo, r.i)
			}
		}
		// An attempt that never had a majority was never anyone's holder:
		// undoing it wakes nobody (its competitors retry by themselves).
		// One that had it too late, or a grant undone late, may have been
		// seen as the holder by a waiter, who must not sleep out its TTL.
		q.undo(ctx, req.ID, req.Owner, p.fence, undo, yes >= need || q.wakeAll.Load())
	}
	return q.grantFailure(ctx, req, grants, yes)
}

// grantFailure is the answer of a phase 2 that did not win (yes masters
// granted): too late, held by another owner, or stale (a fresh proposal may
// win).
func (q *QuorumStore) grantFailure(ctx context.Context, req AcquireRequest, grants []reply, yes int) (Lease, bool, error) {
	n, need := len(q.masters), q.quorum
	heldByOther, _, _ := tally(grants, answer.refusedHeld)
	staleN, _, _ := tally(grants, answer.refusedStale)
	switch {
	case yes >= need:
		return Lease{ID: req.ID}, false, fmt.Errorf("%w: acquire: the majority answered after the lease's validity (%s) ran out", ErrUnavailable, req.TTL)
	case heldByOther > 0 && (staleN == 0 || heldByOther > n-need):
		l, err := q.refusal(req.ID, grants, answer.refusedHeld)
		return l, false, err
	case staleN > 0:
		l, err := q.refusal(req.ID, grants, answer.refusedHeld)
		return l, true, err
	}
	return Lease{ID: req.ID}, false, q.unavailable(ctx, "acquire", grants)
}

// track records a grant request to master i in flight; call the func it
// returns when it has answered.
func (q *QuorumStore) track(id, owner string, i int) func() {
	k := inflightKey{id, owner, i}
	done := make(chan struct{})
	q.mu.Lock()
	q.inflight[k] = done
	q.mu.Unlock()
	return func() {
		q.mu.Lock()
		if q.inflight[k] == done {
			delete(q.inflight, k)
		}
		q.mu.Unlock()
		close(done)
	}
}

// awaitGrant waits, at most until ctx ends, for owner's grant request to
// master i that may still be in flight.
func (q *QuorumStore) awaitGrant(ctx context.Context, id, owner string, i int) {
	q.mu.Lock()
	done := q.inflight[inflightKey{id, owner, i}]
	q.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
}

// undo ends the grants that owner's failed attempt with fence made on the
// masters idx. Only those grants: the undo may arrive after the owner's next
// attempt was granted with another fence, and must leave that one alone.
// publish wakes the lock's waiters, as a release does.
func (q *QuorumStore) undo(ctx context.Context, id, owner string, fence int64, idx []int, publish bool) {
	if len(idx) == 0 {
		return
	}
	m0 := q.masters[0]
	pub := "0"
	if publish {
		pub = "1"
	}
	op := script(quorumUndoScript, []string{m0.Key(id), m0.channel(id)},
		owner, strconv.FormatInt(fence, 10), ms(q.opts.Tombstone), m0.publishCmd(), pub)
	var wg sync.WaitGroup
	for _, i := range idx {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.opts.Timeout)
			defer cancel()
			_, _ = op(c, i, q.masters[i])
		}(i)
	}
	wg.Wait()
}

// Release gives the lease back on every master (each publishes a wake-up).
// It succeeds when a majority released the owner's lease, and is ErrNotHeld
// when a majority did not have it (a key on a minority is a late grant that
// outlived an expired lease, not a live lease); anything in between is
// undecided, ErrUnavailable. It answers as soon as the outcome is known;
// the masters that have not answered yet still get the release.
func (q *QuorumStore) Release(ctx context.Context, id, owner string) (Lease, error) {
	m0 := q.masters[0]
	released := answer.ok
	release := script(releaseScript, []string{m0.Key(id), m0.channel(id)}, owner, ms(q.opts.Tombstone), m0.publishCmd())
	rs := q.fanout(ctx,
		func(ctx context.Context, i int, m *RedisStore) (answer, error) {
			q.awaitGrant(ctx, id, owner, i)
			return release(ctx, i, m)
		},
		func(rs []reply) bool { return q.decided(rs, released) }, nil)
	switch yes, no, _ := tally(rs, released); {
	case yes >= q.quorum:
	case no >= q.quorum:
		l, _ := q.holder(id, rs, heldNow)
		return l, ErrNotHeld
	default: // the silent masters decide
		return Lease{ID: id}, q.unavailable(ctx, "release", rs)
	}
	l := Lease{ID: id, Owner: owner}
	for _, r := range rs {
		if r.err == nil && released(r.ans) {
			l.Fence = max(l.Fence, r.ans.fence)
		}
	}
	return l, nil
}

// Heartbeat extends owner's live lease to ttl from now on every master; it
// succeeds when a majority extended it within the validity time, and is
// ErrNotHeld when a majority refused (a wrong owner, or a lease that ended);
// anything in between is undecided, ErrUnavailable.
func (q *QuorumStore) Heartbeat(ctx context.Context, id, owner string, ttl time.Duration) (Lease, error) {
	extended := answer.ok
	start := time.Now()
	rs := q.fanout(ctx, script(heartbeatScript, []string{q.Key(id)}, owner, ms(ttl)),
		func(rs []reply) bool { return q.decided(rs, extended) }, nil)
	validity := ttl - time.Since(start) - drift(ttl)
	yes, no, _ := tally(rs, extended)
	switch {
	case yes >= q.quorum && validity > 0:
		fence, _ := votes(rs, extended)
		return Lease{ID: id, Held: true, Owner: owner, Fence: fence, TTL: validity}, nil
	case yes >= q.quorum:
		return Lease{ID: id}, fmt.Errorf("%w: heartbeat: the majority answered after the lease's validity (%s) ran out", ErrUnavailable, ttl)
	case no >= q.quorum:
		l, _ := q.holder(id, rs, heldNow)
		return l, ErrNotHeld
	}
	return Lease{ID: id}, q.unavailable(ctx, "heartbeat", rs)
}

// decided reports whether the answers rs settle a yes-or-no vote: a majority
// of the answers pred accepts, a majority of the others, or neither possible
// whatever the masters that have not answered say. Failed calls are neither.
func (q *QuorumStore) decided(rs []reply, pred func(answer) bool) bool {
	yes, no, _ := tally(rs, pred)
	pending := len(q.masters) - len(rs)
	return yes >= q.quorum || no >= q.quorum || (yes+pending < q.quorum && no+pending < q.quorum)
}

// Inspect reports the lock as the majority sees it: held when a majority
// holds one lease (one fence), with the TTL until fewer than a majority do;
// free when a majority has no lease. A lock split between partial grants is
// neither, ErrContended, and one whose silent masters could make either
// true is undecided, ErrUnavailable.
func (q *QuorumStore) Inspect(ctx context.Context, id string) (Lease, error) {
	n, need := len(q.masters), q.quorum
	held := heldNow
	free := func(a answer) bool { return !a.held }
	rs := q.fanout(ctx, script(inspectScript, []string{q.Key(id)}),
		func(rs []reply) bool {
			pending := n - len(rs)
			_, h := votes(rs, held)
			f, _, _ := tally(rs, free)
			return h >= need || f >= need || (h+pending < need && f+pending < need)
		}, nil)
	if countOK(rs) < need {
		return Lease{ID: id}, q.unavailable(ctx, "inspect", rs)
	}
	if l, ok := q.holder(id, rs, held); ok {
		return l, nil
	}
	_, h := votes(rs, held)
	f, _, _ := tally(rs, free)
	silent := n - countOK(rs)
	switch {
	case f >= need:
		l := Lease{ID: id}
		for _, r := range rs {
			if r.err == nil {
				l.Fence = max(l.Fence, r.ans.fence)
			}
		}
		return l, nil
	case h+silent >= need || f+silent >= need:
		return Lease{ID: id}, q.unavailable(ctx, "inspect", rs)
	}
	return Lease{ID: id}, ErrContended
}

// Ping succeeds when a majority of the masters answer.
func (q *QuorumStore) Ping(ctx context.Context) error {
	n, need := len(q.masters), q.quorum
	rs := q.fanout(ctx, func(ctx context.Context, _ int, m *RedisStore) (answer, error) {
		return answer{}, m.rdb.Ping(ctx).Err()
	}, func(rs []reply) bool {
		ok := countOK(rs)
		return ok >= need || len(rs)-ok > n-need
	}, nil)
	if countOK(rs) < need {
		return q.unavailable(ctx, "ping", rs)
	}
	return nil
}

// Subscribe subscribes to id's releases on every master and merges their
// wake-ups. It returns once a majority confirmed: a release reaches a
// majority too, so at least one of them wakes a waiter. Masters that
// confirm later join; masters that fail are left out of this wait. Each
// release wakes one of the process's waiters on id (see wakeGates).
func (q *QuorumStore) Subscribe(ctx context.Context, id string) (<-chan struct{}, func(), error) {
	subCtx, cancel := context.WithCancel(ctx)
	wake := make(chan struct{}, 1)
	q.wakes.join(id, wake)
	done := make(chan struct{})
	results := make(chan error, len(q.masters))
	var wg sync.WaitGroup
	for _, m := range q.masters {
		wg.Add(1)
		go func(m *RedisStore) {
			defer wg.Done()
			q.relay(subCtx, m, id, wake, done, results)
		}(m)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			close(done)
			wg.Wait()
			q.wakes.leave(id, wake)
		})
	}
	if err := q.awaitConfirmations(ctx, results); err != nil {
		stop()
		return nil, nil, err
	}
	return wake, stop, nil
}

// relay subscribes to id's releases on master m, sends the outcome to
// results, and passes each release on (to one waiter through the wake
// gates, or to wake) until done closes.
func (q *QuorumStore) relay(ctx context.Context, m *RedisStore, id string, wake chan struct{}, done <-chan struct{}, results chan<- error) {
	w, stop, err := m.Subscribe(ctx, id)
	results <- err
	if err != nil {
		return
	}
	defer stop()
	for {
		select {
		case <-w:
			if !q.wakeAll.Load() {
				q.wakes.released(id)
				continue
			}
			select {
			case wake <- struct{}{}:
			default: // a wake-up is already pending
			}
		case <-done:
			return
		}
	}
}

// awaitConfirmations waits until a majority of the masters confirmed their
// subscription (results). It fails, ErrUnavailable, once too many failed
// for a majority, after the store's timeout, or when ctx ends.
func (q *QuorumStore) awaitConfirmations(ctx context.Context, results <-chan error) error {
	n, need := len(q.masters), q.quorum
	timer := time.NewTimer(q.opts.Timeout)
	defer timer.Stop()
	var ok, failed int
	var firstErr error
	for ok < need {
		select {
		case err := <-results:
			if err == nil {
				ok++
				continue
			}
			failed++
			if firstErr == nil {
				firstErr = err
			}
			if failed > n-need {
				if errors.Is(firstErr, ErrUnavailable) {
					return firstErr
				}
				return fmt.Errorf("%w: subscribe: %w", ErrUnavailable, firstErr)
			}
		case <-timer.C:
			return fmt.Errorf("%w: subscribe: %d of %d masters confirmed within %s, %d needed", ErrUnavailable, ok, n, q.opts.Timeout, need)
		case <-ctx.Done():
			return fmt.Errorf("%w: subscribe: %w", ErrUnavailable, ctx.Err())
		}
	}
	return nil
}

// Close ends every waiter's subscriptions and closes the masters' clients.
func (q *QuorumStore) Close() error {
	var errs []error
	for _, m := range q.masters {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}
