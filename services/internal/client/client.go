// Package client is a Go client of the management API (/api/v1), used by the
// dionysia CLI. Every non-2xx answer is returned as a *ProblemError carrying the
// server's problem document.
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
	"strings"
	"time"

	"github.com/dionysia/dionysia/services/internal/apiv1"
)

// Client calls one API server with one API key.
type Client struct {
	base string
	key  string
	http *http.Client
}

// New returns a client of the API at baseURL (e.g. http://127.0.0.1:8080)
// authenticating with apiKey. httpClient nil means a client with a 30 s timeout.
func New(baseURL, apiKey string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), key: apiKey, http: httpClient}
}

// ProblemError is an error answer of the API.
type ProblemError struct{ apiv1.Problem }

func (e *ProblemError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Title)
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if len(e.Errors) > 1 || (len(e.Errors) == 1 && !strings.Contains(e.Detail, e.Errors[0].Field)) {
		for _, f := range e.Errors {
			fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Detail)
		}
	}
	return b.String()
}

// StatusCode returns the HTTP status of the answer.
func (e *ProblemError) StatusCode() int { return e.Status }

// do sends a request and decodes a 2xx JSON answer into out (unless nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("calling %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		p := &ProblemError{}
		if json.Unmarshal(data, &p.Problem) != nil || p.Status == 0 {
			p.Problem = apiv1.Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(data))}
		}
		return p
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding answer of %s %s: %w", method, path, err)
	}
	return nil
}

// ListOptions selects a page.
type ListOptions struct {
	Limit  int    // 0 means the server's default
	Cursor string // NextCursor of the previous page
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.Limit > 0 {
		q.Set("limit", fmt.Sprint(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	return q
}

// listAll follows next_cursor until the last page.
func listAll[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	var out []T
	opts := ListOptions{Limit: 200}
	for {
		var page apiv1.List[T]
		if err := c.do(ctx, http.MethodGet, path, opts.query(), nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Data...)
		if page.NextCursor == nil {
			return out, nil
		}
		if *page.NextCursor == opts.Cursor {
			return nil, errors.New("the server returned the same cursor twice")
		}
		opts.Cursor = *page.NextCursor
	}
}

func escape(s string) string { return url.PathEscape(s) }

// CreateStream creates a stream.
func (c *Client) CreateStream(ctx context.Context, req apiv1.StreamCreate) (apiv1.Stream, error) {
	var s apiv1.Stream
	err := c.do(ctx, http.MethodPost, "/api/v1/streams", nil, req, &s)
	return s, err
}

// ListStreams returns one page of streams.
func (c *Client) ListStreams(ctx context.Context, opts ListOptions) (apiv1.List[apiv1.Stream], error) {
	var l apiv1.List[apiv1.Stream]
	err := c.do(ctx, http.MethodGet, "/api/v1/streams", opts.query(), nil, &l)
	return l, err
}

// AllStreams returns every stream, following the pages.
func (c *Client) AllStreams(ctx context.Context) ([]apiv1.Stream, error) {
	return listAll[apiv1.Stream](ctx, c, "/api/v1/streams")
}

// GetStream returns a stream.
func (c *Client) GetStream(ctx context.Context, id string) (apiv1.Stream, error) {
	var s apiv1.Stream
	err := c.do(ctx, http.MethodGet, "/api/v1/streams/"+escape(id), nil, nil, &s)
	return s, err
}

// UpdateStream changes the fields set in req.
func (c *Client) UpdateStream(ctx context.Context, id string, req apiv1.StreamUpdate) (apiv1.Stream, error) {
	var s apiv1.Stream
	err := c.do(ctx, http.MethodPatch, "/api/v1/streams/"+escape(id), nil, req, &s)
	return s, err
}

// DeleteStream deletes a stream.
func (c *Client) DeleteStream(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/streams/"+escape(id), nil, nil, nil)
}

// RotateStreamKey gives a stream a new stream key.
func (c *Client) RotateStreamKey(ctx context.Context, id string) (apiv1.Stream, error) {
	var s apiv1.Stream
	err := c.do(ctx, http.MethodPost, "/api/v1/streams/"+escape(id)+"/stream-key", nil, nil, &s)
	return s, err
}

// AllProfiles returns every profile, following the pages.
func (c *Client) AllProfiles(ctx context.Context) ([]apiv1.Profile, error) {
	return listAll[apiv1.Profile](ctx, c, "/api/v1/profiles")
}

// GetProfile returns a profile by id or name.
func (c *Client) GetProfile(ctx context.Context, ref string) (apiv1.Profile, error) {
	var p apiv1.Profile
	err := c.do(ctx, http.MethodGet, "/api/v1/profiles/"+escape(ref), nil, nil, &p)
	return p, err
}

// CreateProfile creates a profile.
func (c *Client) CreateProfile(ctx context.Context, req apiv1.ProfileCreate) (apiv1.Profile, error) {
	var p apiv1.Profile
	err := c.do(ctx, http.MethodPost, "/api/v1/profiles", nil, req, &p)
	return p, err
}

// DeleteProfile deletes a profile by id or name.
func (c *Client) DeleteProfile(ctx context.Context, ref string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/profiles/"+escape(ref), nil, nil, nil)
}

// StreamSessions returns one page of a stream's sessions, newest first.
func (c *Client) StreamSessions(ctx context.Context, id string, opts ListOptions) (apiv1.List[apiv1.Session], error) {
	var l apiv1.List[apiv1.Session]
	err := c.do(ctx, http.MethodGet, "/api/v1/streams/"+escape(id)+"/sessions", opts.query(), nil, &l)
	return l, err
}

// DisconnectStream kicks a stream's live publisher.
func (c *Client) DisconnectStream(ctx context.Context, id string) (apiv1.Stream, error) {
	var s apiv1.Stream
	err := c.do(ctx, http.MethodPost, "/api/v1/streams/"+escape(id)+"/disconnect", nil, nil, &s)
	return s, err
}

// CreatePlaybackToken mints a signed playback token for a stream.
func (c *Client) CreatePlaybackToken(ctx context.Context, id string, req apiv1.PlaybackTokenCreate) (apiv1.PlaybackToken, error) {
	var t apiv1.PlaybackToken
	err := c.do(ctx, http.MethodPost, "/api/v1/streams/"+escape(id)+"/playback-token", nil, req, &t)
	return t, err
}

// ListWorkers returns the worker fleet.
func (c *Client) ListWorkers(ctx context.Context) ([]apiv1.Worker, error) {
	var l apiv1.List[apiv1.Worker]
	if err := c.do(ctx, http.MethodGet, "/api/v1/workers", nil, nil, &l); err != nil {
		return nil, err
	}
	return l.Data, nil
}

// EventFilter selects events; zero fields select everything.
type EventFilter struct {
	Type     string // a type or the start of one: "session." or "stream.live"
	StreamID string
}

func (f EventFilter) query(q url.Values) url.Values {
	if f.Type != "" {
		q.Set("type", f.Type)
	}
	if f.StreamID != "" {
		q.Set("stream_id", f.StreamID)
	}
	return q
}

// ListEvents returns one page of the event log, newest first.
func (c *Client) ListEvents(ctx context.Context, f EventFilter, opts ListOptions) (apiv1.List[apiv1.Event], error) {
	var l apiv1.List[apiv1.Event]
	err := c.do(ctx, http.MethodGet, "/api/v1/events", f.query(opts.query()), nil, &l)
	return l, err
}

// EventsAfter returns up to limit events recorded after the event with id
// after, oldest first: what a follower has not seen yet.
func (c *Client) EventsAfter(ctx context.Context, f EventFilter, after string, limit int) ([]apiv1.Event, error) {
	q := f.query(ListOptions{Limit: limit}.query())
	q.Set("after", after)
	var l apiv1.List[apiv1.Event]
	if err := c.do(ctx, http.MethodGet, "/api/v1/events", q, nil, &l); err != nil {
		return nil, err
	}
	return l.Data, nil
}

// GetEvent returns one event.
func (c *Client) GetEvent(ctx context.Context, id string) (apiv1.Event, error) {
	var e apiv1.Event
	err := c.do(ctx, http.MethodGet, "/api/v1/events/"+escape(id), nil, nil, &e)
	return e, err
}

// ListAssets returns one page of assets, of one stream when streamID is set.
func (c *Client) ListAssets(ctx context.Context, streamID string, opts ListOptions) (apiv1.List[apiv1.Asset], error) {
	var l apiv1.List[apiv1.Asset]
	q := opts.query()
	if streamID != "" {
		q.Set("stream_id", streamID)
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/assets", q, nil, &l)
	return l, err
}

// AllAssets returns every asset (of one stream when streamID is set),
// following the pages.
func (c *Client) AllAssets(ctx context.Context, streamID string) ([]apiv1.Asset, error) {
	var out []apiv1.Asset
	opts := ListOptions{Limit: 200}
	for {
		page, err := c.ListAssets(ctx, streamID, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Data...)
		if page.NextCursor == nil {
			return out, nil
		}
		if *page.NextCursor == opts.Cursor {
			return nil, errors.New("the server returned the same cursor twice")
		}
		opts.Cursor = *page.NextCursor
	}
}

// GetAsset returns an asset.
func (c *Client) GetAsset(ctx context.Context, id string) (apiv1.Asset, error) {
	var a apiv1.Asset
	err := c.do(ctx, http.MethodGet, "/api/v1/assets/"+escape(id), nil, nil, &a)
	return a, err
}

// DeleteAsset deletes an asset and its objects.
func (c *Client) DeleteAsset(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/assets/"+escape(id), nil, nil, nil)
}
