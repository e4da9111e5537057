package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Client calls the HTTP API and records every call in a Recorder.
type Client struct {
	HTTP *http.Client
	Rec  *Recorder
	// ID is the client's porcupine id.
	ID int
	// Base returns the base URL for the next call (so clients can be spread
	// over several service instances).
	Base func() string
	// BadAnswers counts answers that fit no rule of the contract (a 2xx
	// without success, a 400, an envelope that does not parse...).
	BadAnswers *atomic.Int64
	// LastBad describes the last bad answer.
	LastBad *atomic.Value
}

// answer is the envelope of an answer with what the checker reads of its
// data. The fields are named here rather than taken from package api so
// that the scenarios of newer parameters build before the API grows them.
type answer struct {
	Success bool   `json:"success"`
	Code    string `json:"code"`
	Data    struct {
		Fence    int64 `json:"fence"`
		WaitedMs int64 `json:"waited_ms"`
	} `json:"data"`
}

// codeLimitMismatch is the 409 code of an acquire whose limit or mode does
// not fit the leases that hold the lock.
const codeLimitMismatch = "limit_mismatch"

// Do performs one operation and records it; it returns the output and
// whether it was recorded (a call refused at connect never reached the
// service and is left out).
func (c *Client) Do(ctx context.Context, kind Kind, id, owner string, ttl, wait time.Duration) (Output, bool) {
	return c.Call(ctx, Input{Kind: kind, ID: id, Owner: owner, TTL: ttl, Wait: wait}, "")
}

// Call is Do for the operation in (its kind, id, owner, TTL, wait and, of
// an acquire, limit and mode) and, for an acquire, a holder label ("" for
// none). Limit 0 and mode "" are not sent: the service's defaults.
func (c *Client) Call(ctx context.Context, in Input, holder string) (Output, bool) {
	kind := in.Kind
	q := url.Values{"owner": {in.Owner}}
	if kind != Release {
		q.Set("ttl", strconv.FormatInt(in.TTL.Milliseconds(), 10))
	}
	if in.Wait > 0 {
		q.Set("wait", strconv.FormatInt(in.Wait.Milliseconds(), 10))
	}
	if kind == Acquire {
		if in.Limit > 0 {
			q.Set("limit", strconv.Itoa(in.Limit))
		}
		if in.Mode != "" {
			q.Set("mode", in.Mode)
		}
		if holder != "" {
			q.Set("holder", holder)
		}
	}
	u := c.Base() + "/" + kind.String() + "/" + in.ID + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		panic(err)
	}
	in.Call = c.Rec.Now()
	resp, err := c.HTTP.Do(req)
	var out Output
	switch {
	case err != nil:
		if errors.Is(err, syscall.ECONNREFUSED) {
			return Output{Result: Unknown}, false // never sent
		}
		out.Result = Unknown
	default:
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		var env answer
		jerr := json.Unmarshal(body, &env)
		fence, waited := env.Data.Fence, time.Duration(env.Data.WaitedMs)*time.Millisecond
		switch {
		case rerr != nil:
			out.Result = Unknown
		case resp.StatusCode == http.StatusOK && jerr == nil && env.Success && fence > 0:
			out = Output{Result: OK, Fence: fence, Waited: waited}
		case resp.StatusCode == http.StatusConflict && jerr == nil && !env.Success &&
			(env.Code == "held" && kind == Acquire || env.Code == "not_held" && kind != Acquire):
			out = Output{Result: Refused, Fence: fence, Waited: waited}
		case resp.StatusCode == http.StatusConflict && jerr == nil && !env.Success && env.Code == codeLimitMismatch && kind == Acquire:
			out = Output{Result: Mismatch, Fence: fence}
		case resp.StatusCode == http.StatusServiceUnavailable && jerr == nil && !env.Success && env.Code == "unavailable":
			out.Result = Unknown
		case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusConflict:
			// A request refused as bad did nothing: a bad answer here (the
			// workload sends only valid requests), but not an operation of
			// unknown outcome, which the search would have to try both ways.
			out.Result = Rejected
			c.bad(fmt.Sprintf("%s %s: %d %s", kind, in.ID, resp.StatusCode, body))
		default:
			out.Result = Unknown
			c.bad(fmt.Sprintf("%s %s: %d %s", kind, in.ID, resp.StatusCode, body))
		}
	}
	in.Ret = c.Rec.Now()
	in.Seen = in.Ret
	c.Rec.Add(c.ID, in, out)
	return out, true
}

func (c *Client) bad(what string) {
	if c.BadAnswers != nil {
		c.BadAnswers.Add(1)
		c.LastBad.Store(what)
	}
}
