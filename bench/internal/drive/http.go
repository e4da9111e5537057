package drive

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// HTTP drives a server with the contract's routes: Candado, the seed-like
// baseline or the floor. Each client keeps its own keep-alive connection.
type HTTP struct {
	name   string
	base   string
	client *http.Client
}

// NewHTTP returns a driver for the server at base (http://host:port).
func NewHTTP(name, base string, conns int) *HTTP {
	t := &http.Transport{MaxIdleConns: 2 * conns, MaxIdleConnsPerHost: 2 * conns, IdleConnTimeout: time.Minute}
	return &HTTP{name: name, base: base, client: &http.Client{Transport: t}}
}

func (h *HTTP) Name() string { return h.name }

type envelope struct {
	Success bool   `json:"success"`
	Code    string `json:"code"`
	Error   string `json:"error"`
	Data    struct {
		Fence int64 `json:"fence"`
	} `json:"data"`
}

func (h *HTTP) call(ctx context.Context, path string) (int, envelope, error) {
	var e envelope
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+path, nil)
	if err != nil {
		return 0, e, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, e, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, e, err
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return resp.StatusCode, e, fmt.Errorf("%s: %d with a body that is not the envelope: %w", path, resp.StatusCode, err)
	}
	return resp.StatusCode, e, nil
}

func (h *HTTP) Acquire(ctx context.Context, id, owner string, wait time.Duration) (int64, error) {
	path := "/acquire/" + id + "?ttl=" + strconv.FormatInt(LeaseTTL.Milliseconds(), 10) + "&owner=" + url.QueryEscape(owner)
	if wait > 0 {
		path += "&wait=" + strconv.FormatInt(wait.Milliseconds(), 10)
	}
	status, e, err := h.call(ctx, path)
	switch {
	case err != nil:
		return 0, err
	case status == http.StatusOK && e.Success:
		return e.Data.Fence, nil
	case status == http.StatusConflict && e.Code == "held":
		return 0, ErrHeld
	}
	return 0, fmt.Errorf("acquire %s: %d %s %s", id, status, e.Code, e.Error)
}

func (h *HTTP) Release(ctx context.Context, id, owner string) error {
	status, e, err := h.call(ctx, "/release/"+id+"?owner="+url.QueryEscape(owner))
	if err != nil {
		return err
	}
	if status != http.StatusOK || !e.Success {
		return fmt.Errorf("release %s: %d %s %s", id, status, e.Code, e.Error)
	}
	return nil
}

func (h *HTTP) Close() error {
	h.client.CloseIdleConnections()
	return nil
}
