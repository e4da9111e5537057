package lock

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Bounds of a listing page.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
	// listScanCount is the COUNT hint of each SCAN, and listScanCalls the
	// most SCAN calls one page makes: a page costs Redis at most
	// listScanCalls*listScanCount key visits however many keys it holds.
	listScanCount = 500
	listScanCalls = 8
)

// ListRequest asks for the held locks whose ids start with Prefix.
type ListRequest struct {
	// Prefix is a prefix of lock ids; "" lists every lock.
	Prefix string
	// Limit is the most locks a page holds: 1-MaxListLimit, 0 for
	// DefaultListLimit.
	Limit int
	// Cursor is the previous page's Cursor; "" starts a listing.
	Cursor string
}

// ListPage is one page of a listing.
type ListPage struct {
	// Locks are held leases, owners blank, in no promised order.
	Locks []Lease
	// Cursor asks for the next page; "" when this was the last. A page may
	// hold fewer than Limit locks, none even, and still not be the last.
	Cursor string
}

// Lister lists held locks, a bounded amount of backend work per page. Like
// Redis' SCAN it promises that a lock held during the whole listing appears
// in it; one taken or ended meanwhile may or may not, and a lock may appear
// on two pages.
type Lister interface {
	List(ctx context.Context, req ListRequest) (ListPage, error)
}

// ValidateList checks req and applies the default limit.
func ValidateList(req ListRequest) (ListRequest, error) {
	if len(req.Prefix) > MaxIDLen {
		return req, fmt.Errorf("%w: prefix must be at most %d bytes", ErrInvalid, MaxIDLen)
	}
	for i := 0; i < len(req.Prefix); i++ {
		if !idByte(req.Prefix[i]) {
			return req, fmt.Errorf("%w: prefix may hold only ASCII letters, digits and -_.:@/, got %q", ErrInvalid, req.Prefix[i])
		}
	}
	switch {
	case req.Limit == 0:
		req.Limit = DefaultListLimit
	case req.Limit < 0 || req.Limit > MaxListLimit:
		return req, fmt.Errorf("%w: limit must be 1-%d, got %d", ErrInvalid, MaxListLimit, req.Limit)
	}
	return req, nil
}

// listCursor is what a page's opaque cursor holds: the node being scanned
// (Cluster only), Redis' SCAN cursor on it, and the ids a SCAN batch found
// beyond the page's limit, which the next page reads first.
type listCursor struct {
	Node    string   `json:"n,omitempty"`
	Scan    uint64   `json:"c"`
	Pending []string `json:"q,omitempty"`
	// Done says every node was scanned: only Pending is left.
	Done   bool   `json:"d,omitempty"`
	Prefix string `json:"p"`
}

func (c listCursor) encode() string {
	b, _ := json.Marshal(c) // a struct of strings and a number always encodes
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, prefix string) (listCursor, error) {
	var c listCursor
	if s == "" {
		return listCursor{Prefix: prefix}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		return c, fmt.Errorf("%w: cursor is not one this service issued", ErrInvalid)
	}
	if c.Prefix != prefix {
		return c, fmt.Errorf("%w: cursor belongs to a listing of another prefix", ErrInvalid)
	}
	return c, nil
}

// List pages through the held locks under req.Prefix with SCAN MATCH on
// the key pattern <key prefix>{<id prefix>*}: the braces around an id are
// the Cluster hash tag, and an id never holds a brace, so the pattern
// matches exactly the lock keys of ids under the prefix. A Cluster is
// scanned one master after another, in the order of their addresses; the
// cursor says which.
func (s *RedisStore) List(ctx context.Context, req ListRequest) (ListPage, error) {
	req, err := ValidateList(req)
	if err != nil {
		return ListPage{}, err
	}
	cur, err := decodeCursor(req.Cursor, req.Prefix)
	if err != nil {
		return ListPage{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 4*s.opts.Timeout)
	defer cancel()
	scanners, err := s.scanners(ctx)
	if err != nil {
		return ListPage{}, fmt.Errorf("%w: listing: %w", ErrUnavailable, err)
	}
	node := 0
	if cur.Done {
		node = len(scanners)
	} else if cur.Node != "" {
		// The node of the cursor, or the next one in order if it left.
		node, _ = slices.BinarySearchFunc(scanners, cur.Node, func(n scanner, addr string) int { return strings.Compare(n.addr, addr) })
	}
	match := globEscape(s.opts.Prefix) + "{" + globEscape(req.Prefix) + "*}"
	var page ListPage
	// take adds the held leases among keys to the page; those past the
	// limit wait in the cursor for the next page.
	take := func(keys []string) error {
		held, err := s.inspectKeys(ctx, keys)
		if err != nil {
			return fmt.Errorf("%w: listing: %w", ErrUnavailable, err)
		}
		slices.SortFunc(held, func(a, b Lease) int { return strings.Compare(a.ID, b.ID) })
		for _, l := range held {
			if len(page.Locks) < req.Limit {
				page.Locks = append(page.Locks, l)
			} else {
				cur.Pending = append(cur.Pending, l.ID)
			}
		}
		return nil
	}
	pending := cur.Pending
	cur.Pending = nil
	if len(pending) > MaxListLimit {
		return ListPage{}, fmt.Errorf("%w: cursor is not one this service issued", ErrInvalid)
	}
	keys := make([]string, 0, len(pending))
	for _, id := range pending {
		if ValidateID(id) != nil || !strings.HasPrefix(id, req.Prefix) {
			return ListPage{}, fmt.Errorf("%w: cursor is not one this service issued", ErrInvalid)
		}
		keys = append(keys, s.Key(id))
	}
	if err := take(keys); err != nil {
		return ListPage{}, err
	}
	for calls := 0; calls < listScanCalls && node < len(scanners) && len(cur.Pending) == 0 && len(page.Locks) < req.Limit; calls++ {
		// COUNT is the room left, so a batch rarely overflows the page,
		// and an overflow is a few ids carried in the cursor.
		count := int64(min(listScanCount, max(10, req.Limit-len(page.Locks))))
		keys, next, err := scanners[node].rdb.Scan(ctx, cur.Scan, match, count).Result()
		if err != nil {
			return ListPage{}, fmt.Errorf("%w: listing: %w", ErrUnavailable, err)
		}
		if err := take(keys); err != nil {
			return ListPage{}, err
		}
		cur.Scan = next
		if next == 0 {
			node++
		}
	}
	if node < len(scanners) || len(cur.Pending) > 0 {
		if node < len(scanners) {
			cur.Node = scanners[node].addr
		} else {
			cur.Done = true
		}
		page.Cursor = cur.encode()
	}
	return page, nil
}

// scanner is one Redis to SCAN: the only one, or a Cluster master.
type scanner struct {
	addr string
	rdb  redis.Cmdable
}

// scanners are the Redis servers that hold lock keys, ordered by address.
func (s *RedisStore) scanners(ctx context.Context) ([]scanner, error) {
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return []scanner{{addr: "", rdb: s.rdb}}, nil
	}
	var (
		list []scanner
		mu   sync.Mutex // ForEachMaster calls on every master at once
	)
	err := cc.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		list = append(list, scanner{addr: c.Options().Addr, rdb: c})
		return nil
	})
	slices.SortFunc(list, func(a, b scanner) int { return strings.Compare(a.addr, b.addr) })
	return list, err
}

// multiOwner is the owner field of a lock of several leases (see
// acquire.lua): longer than any owner may be.
var multiOwner = strings.Repeat("#", MaxOwnerLen+1)

// inspectKeys reads the lock keys keys in one pipeline and returns the held
// leases among them, owners blank. In a Cluster each read goes to its slot's
// master. A lock of several leases is read again whole by Inspect.
func (s *RedisStore) inspectKeys(ctx context.Context, keys []string) ([]Lease, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	type read struct {
		hm      *redis.SliceCmd
		pttl    *redis.DurationCmd
		waiters *redis.IntCmd
	}
	reads := make([]read, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			// The queue's places (a lapsed one counts until the next try
			// sweeps it, QueueHold at most); same slot as k.
			reads[i] = read{p.HMGet(ctx, k, "owner", "fence", "holder"), p.PTTL(ctx, k), p.ZCard(ctx, k+queueSuffix)}
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, err
	}
	var held []Lease
	for i, k := range keys {
		vals, err1 := reads[i].hm.Result()
		ttl, err2 := reads[i].pttl.Result()
		if err1 != nil || err2 != nil || len(vals) != 3 {
			continue // gone between SCAN and the read
		}
		id := strings.TrimSuffix(strings.TrimPrefix(k, s.opts.Prefix+"{"), "}")
		owner, _ := vals[0].(string)
		if owner == multiOwner {
			l, err := s.Inspect(ctx, id)
			if err != nil {
				return nil, err
			}
			if l.Held {
				held = append(held, l)
			}
			continue
		}
		if owner == "" || ttl <= 0 {
			continue // a tombstone, or expired meanwhile
		}
		f, _ := vals[1].(string)
		fence, _ := strconv.ParseInt(f, 10, 64)
		holder, _ := vals[2].(string)
		ttl = ttl.Round(time.Millisecond)
		waiters, _ := reads[i].waiters.Result()
		held = append(held, Lease{ID: id, Held: true, Fence: fence, TTL: ttl, Holder: holder, Mode: Exclusive, Limit: 1, Holders: 1,
			Waiters: int(waiters), Leases: []LeaseInfo{{Fence: fence, TTL: ttl, Holder: holder, Mode: Exclusive}}})
	}
	return held, nil
}
