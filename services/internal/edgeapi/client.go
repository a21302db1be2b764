package edgeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrRejected wraps a 4xx answer: the request itself was refused (bad secret,
// malformed body) and sending it again will not help.
var ErrRejected = errors.New("request rejected by the API")

// maxResponseSize bounds what the client reads from an answer.
const maxResponseSize = 1 << 20

// Client calls the API's internal edge endpoints (or, for Kick, an edge's
// admin endpoint). The zero value is not usable: set BaseURL and Secret.
type Client struct {
	BaseURL string       // e.g. http://127.0.0.1:8080; no trailing slash needed
	Secret  string       // the edge↔API shared secret
	HTTP    *http.Client // nil means http.DefaultClient; set timeouts through ctx
}

// Auth asks the API for a publish or read decision.
func (c *Client) Auth(ctx context.Context, req AuthRequest) (AuthResponse, error) {
	var res AuthResponse
	if err := c.post(ctx, AuthPath, req, &res); err != nil {
		return AuthResponse{}, fmt.Errorf("asking the API for auth: %w", err)
	}
	return res, nil
}

// Event reports a lifecycle event.
func (c *Client) Event(ctx context.Context, ev Event) error {
	if err := c.post(ctx, EventsPath, ev, nil); err != nil {
		return fmt.Errorf("sending %s event: %w", ev.Type, err)
	}
	return nil
}

// Sync sends the live set and returns the API's kick requests.
func (c *Client) Sync(ctx context.Context, req SyncRequest) (SyncResponse, error) {
	var res SyncResponse
	if err := c.post(ctx, SyncPath, req, &res); err != nil {
		return SyncResponse{}, fmt.Errorf("syncing live streams: %w", err)
	}
	return res, nil
}

// Kick asks an edge to disconnect publishers now. kickURL is the edge's
// EdgeInfo.KickURL (absolute; BaseURL is not used).
func (c *Client) Kick(ctx context.Context, kickURL string, req KickRequest) (KickResponse, error) {
	var res KickResponse
	if err := c.do(ctx, kickURL, req, &res); err != nil {
		return KickResponse{}, fmt.Errorf("kicking publishers: %w", err)
	}
	return res, nil
}

func (c *Client) post(ctx context.Context, path string, body, out any) error {
	return c.do(ctx, strings.TrimRight(c.BaseURL, "/")+path, body, out)
}

func (c *Client) do(ctx context.Context, url string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encoding request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Secret)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponseSize))
	if err != nil {
		return fmt.Errorf("reading response: %w", err)
	}
	switch {
	case res.StatusCode >= 400 && res.StatusCode < 500:
		return fmt.Errorf("%w: status %d: %s", ErrRejected, res.StatusCode, snippet(data))
	case res.StatusCode < 200 || res.StatusCode > 299:
		return fmt.Errorf("status %d: %s", res.StatusCode, snippet(data))
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding response: %w", err)
	}
	return nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
