package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults used for zero fields of Options.
const (
	DefaultRetryBackoff   = 50 * time.Millisecond
	DefaultMaxBackoff     = 2 * time.Second
	DefaultRequestTimeout = 10 * time.Second
)

// maxBody bounds how much of a response is read.
const maxBody = 1 << 20

// Options configure a Client. A nil *Options or a zero field means the default.
type Options struct {
	// HTTPClient sends the requests. Default: a client without a timeout on
	// http.DefaultTransport. If its Timeout is shorter than RequestTimeout plus
	// an acquire's Wait, that request uses a copy with a long enough Timeout.
	HTTPClient *http.Client

	// AuthToken, if set, is sent as "Authorization: Bearer <AuthToken>".
	AuthToken string

	// Retry decides whether and when a failed try is retried; nil means the
	// fields below, whose zero values make Backoff's zero value: retries
	// until the context is done (see Backoff, NoRetry).
	Retry RetryStrategy

	// RetryBackoff and MaxBackoff are Backoff's Base and Max, MaxRetries
	// its Retries, when Retry is nil; a negative MaxRetries means NoRetry.
	// They predate Retry and keep working.
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	MaxRetries   int

	// RequestTimeout bounds one try (default DefaultRequestTimeout). An
	// acquire's try gets its remaining Wait on top, so the server can wait.
	RequestTimeout time.Duration
}

// Client talks to a Candado server. It is safe for concurrent use.
//
// Every call retries, with capped exponential backoff and full jitter, on a
// 503 (and a gateway's 502 or 504), on a 429 (the server did nothing: its
// cap of waiting acquires per token was reached) and on network errors,
// until it succeeds, its Options.Retry gives up or the context is done,
// waiting at least the answer's Retry-After; no other answer is retried. A
// retry is safe: an acquire carries the same owner token on every try, so the
// server answers a retried acquire with the same lease and fence.
type Client struct {
	base       string // without trailing slash
	hc         *http.Client
	token      string
	retry      RetryStrategy
	pace       Backoff // between re-issued acquires of a cut wait
	reqTimeout time.Duration
}

// New returns a Client for the server at baseURL (http or https, optionally
// with a path prefix, e.g. "http://candado.default.svc"). opts may be nil.
func New(baseURL string, opts *Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("candado: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("candado: base URL %q: want http(s)://host[/prefix]", baseURL)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	c := &Client{
		base:       strings.TrimRight(u.String(), "/"),
		hc:         o.HTTPClient,
		token:      o.AuthToken,
		retry:      retryOf(o),
		pace:       paceOf(o),
		reqTimeout: o.RequestTimeout,
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.reqTimeout <= 0 {
		c.reqTimeout = DefaultRequestTimeout
	}
	return c, nil
}

// Status is the data part of the server's envelope: the state of one lock.
type Status struct {
	ID    string
	Held  bool          // state 1: some owner holds the lease
	Owner string        // set only in answers to the owner (acquire, heartbeat, release)
	Fence int64         // fence of the current lease, or the last one known for a free lock
	TTL   time.Duration // remaining lease time (0 when free)

	// Holder is the public label of the lease: the caller's own in answers
	// to its owner, else the lease that blocks or holds ("" if it has none).
	Holder string
	// Mode is ModeExclusive or ModeShared while the lock is held, "" when free.
	Mode string
	// Limit is the lock's limit while it is held: 1 for a mutex or a lock of
	// shared leases, N for a semaphore; 0 when free.
	Limit int
	// Holders is how many leases hold the lock now; Waiters how many
	// acquires wait in its queue.
	Holders, Waiters int
	// DelayLeft is what is left of a lock-delay: after a lease with a
	// LockDelay expired, nobody is granted the lock until it ends.
	DelayLeft time.Duration
	// Leases are the live leases, without owners: Inspect fills it, and so
	// do refusals of a semaphore or of a lock of shared leases.
	Leases []LeaseInfo

	// Of an answer to an acquire: how long the server waited before the try
	// that answered, and whether it waited less than asked (wait_cut).
	waited  time.Duration
	waitCut bool
}

// LeaseInfo is one live lease of a lock as anyone may see it.
type LeaseInfo struct {
	Fence  int64
	TTL    time.Duration // remaining
	Holder string        // its public label, "" if it has none
	Mode   string        // ModeExclusive or ModeShared
}

// The modes of a lease, as Status.Mode and LeaseInfo.Mode show them.
const (
	ModeExclusive = "exclusive"
	ModeShared    = "shared"
)

// Inspect returns the state of lock id (GET /locks/{id}); it never carries the owner.
func (c *Client) Inspect(ctx context.Context, id string) (Status, error) {
	st, _, err := c.do(ctx, &call{method: http.MethodGet, route: "locks", id: id})
	return st, err
}

// Release gives lease id back on behalf of owner and returns the server's data.
// It fails with ErrNotHeld if owner does not hold it, except when an earlier
// try's outcome was unknown (lost response, 503): then the lease is gone
// either way and Release returns nil.
func (c *Client) Release(ctx context.Context, id, owner string) (Status, error) {
	if err := checkOwner(owner, true); err != nil {
		return Status{}, err
	}
	st, _, err := c.do(ctx, &call{
		method: http.MethodPost, route: "release", id: id, release: true,
		body: func() any { return params{Owner: owner} },
	})
	return st, err
}

// Heartbeat extends lease id of owner to ttl from now (ttl 0: the server's
// default) and returns the server's data. It fails with ErrNotHeld if owner
// does not hold the lease; an expired lease is never revived.
func (c *Client) Heartbeat(ctx context.Context, id, owner string, ttl time.Duration) (Status, error) {
	st, _, err := c.heartbeat(ctx, id, owner, ttl, nil)
	return st, err
}

func (c *Client) heartbeat(ctx context.Context, id, owner string, ttl time.Duration, onFail func(error)) (Status, time.Time, error) {
	if err := checkOwner(owner, true); err != nil {
		return Status{}, time.Time{}, err
	}
	if ttl < 0 {
		return Status{}, time.Time{}, fmt.Errorf("%w: negative ttl", ErrBadRequest)
	}
	return c.do(ctx, &call{
		method: http.MethodPost, route: "heartbeat", id: id,
		body:   func() any { return params{Owner: owner, TTL: millis(ttl)} },
		onFail: onFail,
	})
}

// params is the JSON body of acquire, release and heartbeat; ttl, wait and
// lock_delay are whole milliseconds. Unset fields are left out: the server
// refuses a field an operation does not take.
type params struct {
	Owner     string `json:"owner,omitempty"`
	TTL       int64  `json:"ttl,omitempty"`
	Wait      int64  `json:"wait,omitempty"`
	Holder    string `json:"holder,omitempty"`
	Limit     int    `json:"limit,omitempty"`
	Mode      string `json:"mode,omitempty"`
	LockDelay int64  `json:"lock_delay,omitempty"`
}

// millis rounds d up to whole milliseconds, so a lease is never shorter than asked.
func millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// call is one logical request, possibly sent several times.
type call struct {
	method, route, id string
	body              func() any           // JSON body of one try; nil: none
	extra             func() time.Duration // added to the try's timeout
	release           bool                 // not_held after an unknown outcome is success
	onFail            func(error)          // called with every retryable failure
}

// do sends cl, retrying as documented on Client. It returns the decoded data
// and the moment the successful try was sent.
func (c *Client) do(ctx context.Context, cl *call) (Status, time.Time, error) {
	path, err := escapeID(cl.id)
	if err != nil {
		return Status{}, time.Time{}, err
	}
	u := c.base + "/" + cl.route + "/" + path
	var lastErr error
	for attempt := 0; ; attempt++ {
		st, sent, retry, err := c.try(ctx, cl, u)
		if err == nil {
			return st, sent, nil
		}
		if cl.release && lastErr != nil && errors.Is(err, ErrNotHeld) {
			// An earlier try may have released it already.
			return Status{ID: cl.id}, sent, nil
		}
		if !retry {
			return Status{}, sent, err
		}
		if ctx.Err() != nil {
			if ae := (*APIError)(nil); errors.As(err, &ae) {
				lastErr = err // a real answer, not the cancellation
			}
			return Status{}, sent, giveUp(lastErr, ctx.Err(), cl, path)
		}
		lastErr = err
		if cl.onFail != nil {
			cl.onFail(err)
		}
		var floor time.Duration
		var ae *APIError
		if errors.As(err, &ae) {
			floor = ae.RetryAfter
		}
		delay, again := c.retry.NextDelay(attempt+1, floor)
		if !again {
			return Status{}, sent, err
		}
		delay = max(delay, floor)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= delay {
			return Status{}, sent, giveUp(lastErr, context.DeadlineExceeded, cl, path)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return Status{}, sent, giveUp(lastErr, ctx.Err(), cl, path)
		case <-t.C:
		}
	}
}

func giveUp(last, ctxErr error, cl *call, path string) error {
	if last == nil {
		return fmt.Errorf("candado: %s /%s/%s: %w", cl.method, cl.route, path, ctxErr)
	}
	return fmt.Errorf("%w (gave up: %w)", last, ctxErr)
}

// try sends cl once. retry says whether the failure may be retried.
func (c *Client) try(ctx context.Context, cl *call, u string) (st Status, sent time.Time, retry bool, err error) {
	timeout := c.reqTimeout
	if cl.extra != nil {
		timeout += cl.extra()
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var body []byte
	if cl.body != nil {
		if body, err = json.Marshal(cl.body()); err != nil {
			return st, sent, false, err
		}
	}
	req, err := http.NewRequestWithContext(tctx, cl.method, u, bytes.NewReader(body))
	if err != nil {
		return st, sent, false, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Body, req.GetBody, req.ContentLength = nil, nil, 0
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := c.hc
	if hc.Timeout > 0 && hc.Timeout < timeout {
		cp := *hc
		cp.Timeout = timeout
		hc = &cp
	}

	sent = time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return st, sent, true, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return st, sent, true, fmt.Errorf("%w: %s %s: reading response: %w", ErrUnavailable, cl.method, req.URL.Path, err)
	}
	st, err = decodeEnvelope(resp.StatusCode, resp.Header, data)
	retry = err != nil && retryable(resp.StatusCode)

	return st, sent, retry, err
}

// retryable reports whether an answer of this status may be retried: the
// backend or a gateway failed, or (429) the server refused to do anything yet.
func retryable(status int) bool {
	switch status {
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return true
	}
	return false
}

// envelope is the JSON shape of every answer of the server.
type envelope struct {
	Error   string      `json:"error"`
	Code    string      `json:"code"`
	Success bool        `json:"success"`
	Data    *wireStatus `json:"data"`
}

type wireStatus struct {
	ID          string      `json:"id"`
	State       int         `json:"state"`
	Owner       string      `json:"owner"`
	Fence       int64       `json:"fence"`
	TTLms       int64       `json:"ttl_ms"`
	WaitedMs    int64       `json:"waited_ms"`
	WaitCut     bool        `json:"wait_cut"`
	Holder      string      `json:"holder"`
	Mode        string      `json:"mode"`
	Limit       int         `json:"limit"`
	Holders     int         `json:"holders"`
	Waiters     int         `json:"waiters"`
	DelayLeftMs int64       `json:"delay_left_ms"`
	Leases      []wireLease `json:"leases"`
}

type wireLease struct {
	Fence  int64  `json:"fence"`
	TTLms  int64  `json:"ttl_ms"`
	Holder string `json:"holder"`
	Mode   string `json:"mode"`
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func (w *wireStatus) status() Status {
	if w == nil {
		return Status{}
	}
	st := Status{ID: w.ID, Held: w.State == 1, Owner: w.Owner, Fence: w.Fence, TTL: ms(w.TTLms),
		Holder: w.Holder, Mode: w.Mode, Limit: w.Limit, Holders: w.Holders, Waiters: w.Waiters,
		DelayLeft: ms(max(w.DelayLeftMs, 0)),
		waited:    ms(max(w.WaitedMs, 0)), waitCut: w.WaitCut}
	if len(w.Leases) > 0 {
		st.Leases = make([]LeaseInfo, len(w.Leases))
		for i, l := range w.Leases {
			st.Leases[i] = LeaseInfo{Fence: l.Fence, TTL: ms(l.TTLms), Holder: l.Holder, Mode: l.Mode}
		}
	}
	return st
}

// decodeEnvelope turns an HTTP answer into its data, or into an *APIError
// (any non-2xx status, or success false). It is the one place that knows the
// envelope.
func decodeEnvelope(status int, h http.Header, body []byte) (Status, error) {
	var env envelope
	jerr := json.Unmarshal(body, &env)
	ok := status >= 200 && status < 300
	if ok && jerr != nil {
		return Status{}, fmt.Errorf("candado: undecodable %d answer: %w", status, jerr)
	}
	if ok && env.Success {
		return env.Data.status(), nil
	}
	ae := &APIError{Status: status, Code: env.Code, Message: env.Error, RetryAfter: parseRetryAfter(h.Get("Retry-After"))}
	if jerr != nil { // not our envelope, e.g. a proxy's page
		ae.Code = ""
		ae.Message = strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
	if env.Data != nil {
		st := env.Data.status()
		ae.Lock = &st
	}
	return Status{}, ae
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// escapeID checks id against the contract (1–255 bytes of letters, digits and
// -_.:@/, no empty, "." or ".." segment) and escapes each '/'-separated segment.
func escapeID(id string) (string, error) {
	if len(id) == 0 || len(id) > 255 {
		return "", fmt.Errorf("%w: lock id must be 1-255 bytes", ErrBadRequest)
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("-_.:@/", b) >= 0) {
			return "", fmt.Errorf("%w: lock id %q: byte %q not allowed", ErrBadRequest, id, b)
		}
	}
	segs := strings.Split(id, "/")
	for i, s := range segs {
		if s == "" || s == "." || s == ".." {
			return "", fmt.Errorf("%w: lock id %q: empty, . or .. segment", ErrBadRequest, id)
		}
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/"), nil
}

// checkHolder checks a holder label against the contract: at most
// MaxHolderLen bytes of printable ASCII.
func checkHolder(h string) error {
	if len(h) > MaxHolderLen {
		return fmt.Errorf("%w: holder longer than %d bytes", ErrBadRequest, MaxHolderLen)
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: holder %q: byte %#x is not printable ASCII", ErrBadRequest, h, c)
		}
	}
	return nil
}

func checkOwner(owner string, required bool) error {
	if owner == "" && required {
		return fmt.Errorf("%w: owner required", ErrBadRequest)
	}
	if len(owner) > 128 {
		return fmt.Errorf("%w: owner longer than 128 bytes", ErrBadRequest)
	}
	return nil
}
