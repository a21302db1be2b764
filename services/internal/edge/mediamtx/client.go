package mediamtx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrNotFound is returned by Kick when mediamtx no longer has the connection.
var ErrNotFound = errors.New("not found in mediamtx")

// Client talks to mediamtx's control API (/v3) with the edge's per-run
// credential (see Config: the control API is authorized by the edge itself).
type Client struct {
	BaseURL  string // http://127.0.0.1:9997
	User     string
	Password string
	HTTP     *http.Client // nil means http.DefaultClient; bound calls with ctx
}

// Path is one entry of /v3/paths/list (the fields the edge uses).
type Path struct {
	Name          string     `json:"name"`
	Available     bool       `json:"available"`
	AvailableTime *time.Time `json:"availableTime"`
	Source        *Source    `json:"source"`
	Tracks        []Track    `json:"tracks2"`
	InboundBytes  uint64     `json:"inboundBytes"`
}

// Source is a path's source: its type (rtmpConn, srtConn, rtspSession,
// rtspsSession, rtmpsConn, webRTCSession, ...) and connection ID.
type Source struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Track is one track of a path.
type Track struct {
	Codec string     `json:"codec"`
	Props TrackProps `json:"codecProps"`
}

// TrackProps are the codec properties mediamtx reports; which ones are set
// depends on the codec.
type TrackProps struct {
	Width        int  `json:"width"`
	Height       int  `json:"height"`
	Profile      any  `json:"profile"` // string for H264/H265, number for AV1/VP9
	Level        any  `json:"level"`
	SampleRate   int  `json:"sampleRate"`
	ChannelCount int  `json:"channelCount"`
	MULaw        bool `json:"muLaw"`
}

// ProfileString returns the profile as text ("" when absent).
func (p TrackProps) ProfileString() string { return anyString(p.Profile) }

// LevelString returns the level as text ("" when absent).
func (p TrackProps) LevelString() string { return anyString(p.Level) }

func anyString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return fmt.Sprintf("%g", v)
	default:
		return fmt.Sprint(v)
	}
}

// Protocol maps a source type to its protocol name (rtmp, srt, rtsp,
// webrtc), "" when unknown.
func Protocol(sourceType string) string {
	switch sourceType {
	case "rtmpConn", "rtmpsConn":
		return "rtmp"
	case "srtConn":
		return "srt"
	case "rtspSession", "rtspsSession":
		return "rtsp"
	case "webRTCSession":
		return "webrtc"
	}
	return ""
}

// kickEndpoint maps a source type to its kick endpoint.
func kickEndpoint(sourceType string) string {
	switch sourceType {
	case "rtmpConn":
		return "/v3/rtmpconns/kick/"
	case "rtmpsConn":
		return "/v3/rtmpsconns/kick/"
	case "srtConn":
		return "/v3/srtconns/kick/"
	case "rtspSession":
		return "/v3/rtspsessions/kick/"
	case "rtspsSession":
		return "/v3/rtspssessions/kick/"
	case "webRTCSession":
		return "/v3/webrtcsessions/kick/"
	}
	return ""
}

// Paths lists every path mediamtx has.
func (c *Client) Paths(ctx context.Context) ([]Path, error) {
	var list struct {
		Items []Path `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/v3/paths/list?itemsPerPage=100000", &list); err != nil {
		return nil, fmt.Errorf("listing mediamtx paths: %w", err)
	}
	return list.Items, nil
}

// Kick disconnects the publisher with this source type and ID.
func (c *Client) Kick(ctx context.Context, sourceType, id string) error {
	ep := kickEndpoint(sourceType)
	if ep == "" {
		return fmt.Errorf("kicking %s %s: source type cannot be kicked", sourceType, id)
	}
	if err := c.do(ctx, http.MethodPost, ep+url.PathEscape(id), nil); err != nil {
		return fmt.Errorf("kicking %s %s: %w", sourceType, id, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.SetBasicAuth(c.User, c.Password)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading response: %w", err)
	}
	if res.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("status %d: %s", res.StatusCode, strings.TrimSpace(string(body)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding response: %w", err)
	}
	return nil
}
