package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"handler/function/function/api"
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

// envelope is api.Envelope with its data read as a lease (the outer Data
// field wins over the embedded one in encoding/json).
type envelope struct {
	api.Envelope
	Data api.LeaseData `json:"data"`
}

// Do performs one operation and records it; it returns the output and
// whether it was recorded (a call refused at connect never reached the
// service and is left out).
func (c *Client) Do(ctx context.Context, kind Kind, id, owner string, ttl, wait time.Duration) (Output, bool) {
	q := url.Values{"owner": {owner}}
	if kind != Release {
		q.Set("ttl", strconv.FormatInt(ttl.Milliseconds(), 10))
	}
	if wait > 0 {
		q.Set("wait", strconv.FormatInt(wait.Milliseconds(), 10))
	}
	u := c.Base() + "/" + kind.String() + "/" + id + "?" + q.Encode()
	in := Input{Kind: kind, ID: id, Owner: owner, TTL: ttl}
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
		var env envelope
		jerr := json.Unmarshal(body, &env)
		switch {
		case rerr != nil:
			out.Result = Unknown
		case resp.StatusCode == http.StatusOK && jerr == nil && env.Success && env.Data.Fence > 0:
			out = Output{Result: OK, Fence: env.Data.Fence}
		case resp.StatusCode == http.StatusConflict && jerr == nil && !env.Success &&
			(env.Code == "held" && kind == Acquire || env.Code == "not_held" && kind != Acquire):
			out = Output{Result: Refused, Fence: env.Data.Fence}
		case resp.StatusCode == http.StatusServiceUnavailable && jerr == nil && !env.Success && env.Code == "unavailable":
			out.Result = Unknown
		default:
			out.Result = Unknown
			c.bad(fmt.Sprintf("%s %s: %d %s", kind, id, resp.StatusCode, body))
		}
	}
	in.Ret = c.Rec.Now()
	c.Rec.Add(c.ID, in, out)
	return out, true
}

func (c *Client) bad(what string) {
	if c.BadAnswers != nil {
		c.BadAnswers.Add(1)
		c.LastBad.Store(what)
	}
}
