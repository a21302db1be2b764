// Package edgeapi is the contract between an ingest edge (`dionysia edge`) and
// the management API.
//
// The edge never talks to the database. It asks the API, over three internal
// HTTP endpoints authenticated with the edge↔API shared secret
// (`Authorization: Bearer <DIONYSIA_EDGE_SECRET>`, never the public API key):
//
//   - POST /internal/v1/edge/auth   (AuthRequest → AuthResponse): may this
//     publisher publish, may this worker read? Called for every publish and
//     read attempt; the answer must come fast (the edge waits at most a few
//     seconds, and mediamtx blocks its path manager meanwhile).
//   - POST /internal/v1/edge/events (Event → 204): a stream became live
//     (EventReady) or stopped (EventNotReady) on the edge. Best effort, in order,
//     retried by the edge; the API must treat them idempotently (key: EdgeID +
//     SourceID).
//   - POST /internal/v1/edge/sync   (SyncRequest → SyncResponse): every few
//     seconds, and at once after mediamtx (re)starts, the full set of streams
//     live on the edge. It is authoritative: the API ends every session it has
//     open on this edge whose SourceID is not listed, and opens sessions for
//     listed streams it does not know. Its response lists the publishers the API
//     wants disconnected (Kick); this polling path alone is enough for kicks.
//
// The API can also kick at once through the edge's admin listener:
// POST {EdgeInfo.KickURL} (KickRequest → KickResponse), with the same secret.
//
// Secrets: a Path is live/<stream_key> and contains the stream key; Password
// and Query carry credentials. Neither side may log them; the LogValue methods
// here redact them.
package edgeapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Endpoint paths, relative to the API base URL (DIONYSIA_API_URL) or, for
// KickPath, to the edge's admin address.
const (
	AuthPath   = "/internal/v1/edge/auth"
	EventsPath = "/internal/v1/edge/events"
	SyncPath   = "/internal/v1/edge/sync"
	KickPath   = "/internal/v1/edge/kick"
)

// PathPrefix is the prefix of every publishable path: publishers use
// live/<stream_key> (rtmp://EDGE:1935/live/<stream_key>,
// srt://EDGE:8890?streamid=publish:live/<stream_key>, ...).
const PathPrefix = "live/"

// Actions of an AuthRequest (mediamtx's names).
const (
	ActionPublish = "publish"
	ActionRead    = "read"
)

// Protocols of an AuthRequest and of a live stream (mediamtx's names).
const (
	ProtocolRTMP   = "rtmp"
	ProtocolSRT    = "srt"
	ProtocolRTSP   = "rtsp"
	ProtocolWebRTC = "webrtc"
)

// Event types.
const (
	EventReady    = "ready"     // the stream is live on the edge: open a session
	EventNotReady = "not_ready" // the stream is gone from the edge: close the session with Reason
)

// Reasons a publish is refused by the edge itself, before the API is asked.
// The API returns its own reasons (e.g. "invalid_key", "disabled"); keep them
// short snake_case words: they become metric label values.
const (
	ReasonBadPath           = "bad_path"           // path is not live/<stream_key>
	ReasonAlreadyLive       = "already_live"       // a publisher is already live on this key
	ReasonAPIUnavailable    = "api_unavailable"    // the API did not answer in time
	ReasonActionNotAllowed  = "action_not_allowed" // playback, api, metrics, pprof, unknown protocols
	ReasonMissingCredential = "missing_credentials"
)

// Reasons a stream ends (Event.Reason of EventNotReady).
const (
	EndPublisherDisconnected = "publisher_disconnected" // the publisher closed its connection
	EndPublisherTimeout      = "publisher_timeout"      // the edge stopped receiving data from it
	EndKicked                = "kicked"                 // disconnected on the API's request (Kick.Reason in Detail)
	EndEdgeRestarted         = "edge_restarted"         // the edge's media server died and was restarted
	EndEdgeShutdown          = "edge_shutdown"          // the edge is stopping
	EndError                 = "error"                  // any other failure (see Detail)
)

// AuthRequest asks whether a client may publish or read a path. It is
// mediamtx's HTTP auth request, plus the edge's ID and the parsed key.
type AuthRequest struct {
	EdgeID    string `json:"edge_id"`
	Action    string `json:"action"`     // ActionPublish or ActionRead
	Protocol  string `json:"protocol"`   // ProtocolRTMP, ProtocolSRT, ProtocolRTSP, ProtocolWebRTC
	Path      string `json:"path"`       // live/<stream_key>; secret
	StreamKey string `json:"stream_key"` // Path without PathPrefix; secret
	User      string `json:"user"`       // reader credential user (workers); usually empty for publishers
	Password  string `json:"password"`   // secret
	Query     string `json:"query"`      // raw query of the client URL; may carry credentials; secret
	IP        string `json:"ip"`         // client IP
	ConnID    string `json:"conn_id"`    // mediamtx connection/session ID; equals Event.SourceID once live
	UserAgent string `json:"user_agent"`
}

// LogValue implements slog.LogValuer: no key, password or query.
func (r AuthRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("edge_id", r.EdgeID),
		slog.String("action", r.Action),
		slog.String("protocol", r.Protocol),
		slog.String("stream_ref", StreamRef(r.Path)),
		slog.String("user", r.User),
		slog.String("ip", r.IP),
		slog.String("conn_id", r.ConnID),
	)
}

// AuthResponse is the API's decision. The API answers HTTP 200 with it for
// both outcomes; any other status means "no decision" and the edge refuses with
// ReasonAPIUnavailable.
type AuthResponse struct {
	Allow    bool   `json:"allow"`
	Reason   string `json:"reason,omitempty"`    // why not (snake_case, no secrets); ignored when Allow
	StreamID string `json:"stream_id,omitempty"` // the stream's ID when allowed; the edge echoes it in events and sync
}

// EdgeInfo says how to reach an edge. Workers read a live stream from
// PublicHost (see SourceURL); the API calls KickURL for immediate kicks.
type EdgeInfo struct {
	ID         string `json:"id"`
	PublicHost string `json:"public_host"` // host name or IP workers and publishers use
	RTMPPort   int    `json:"rtmp_port"`
	SRTPort    int    `json:"srt_port"`
	RTSPPort   int    `json:"rtsp_port"`
	WebRTCPort int    `json:"webrtc_port"`
	KickURL    string `json:"kick_url,omitempty"` // POST KickRequest here (Bearer secret); empty if not reachable
}

// SourceURL is the URL a worker reads streamKey from, without credentials, for
// protocol ProtocolRTMP (rtmp://host:port/live/KEY), ProtocolSRT
// (srt://host:port?streamid=read:live/KEY) or ProtocolRTSP
// (rtsp://host:port/live/KEY). The worker adds its credential: RTMP
// ?user=U&pass=P, SRT streamid=read:live/KEY:U:P, RTSP rtsp://U:P@host/... .
// It returns "" for other protocols.
func (e EdgeInfo) SourceURL(protocol, streamKey string) string {
	host := e.PublicHost
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]" // IPv6 literal
	}
	switch protocol {
	case ProtocolRTMP:
		return "rtmp://" + host + ":" + strconv.Itoa(e.RTMPPort) + "/" + PathPrefix + streamKey
	case ProtocolSRT:
		return "srt://" + host + ":" + strconv.Itoa(e.SRTPort) + "?streamid=read:" + PathPrefix + streamKey
	case ProtocolRTSP:
		return "rtsp://" + host + ":" + strconv.Itoa(e.RTSPPort) + "/" + PathPrefix + streamKey
	}
	return ""
}

// Media describes what a publisher sends, as far as the edge knows it. Zero
// fields are unknown (mediamtx does not report the frame rate: FPS stays 0).
type Media struct {
	VideoCodec    string   `json:"video_codec,omitempty"` // H264, H265, AV1, VP9, ...
	VideoProfile  string   `json:"video_profile,omitempty"`
	VideoLevel    string   `json:"video_level,omitempty"`
	Width         int      `json:"width,omitempty"`
	Height        int      `json:"height,omitempty"`
	FPS           float64  `json:"fps,omitempty"`
	AudioCodec    string   `json:"audio_codec,omitempty"` // "MPEG-4 Audio" (AAC), Opus, ...
	AudioRate     int      `json:"audio_sample_rate,omitempty"`
	AudioChannels int      `json:"audio_channels,omitempty"`
	BitrateKbps   int      `json:"bitrate_kbps,omitempty"` // ingest bitrate over the last seconds
	Tracks        []string `json:"tracks,omitempty"`       // every track's codec, in order
}

// Event reports that a stream became live on the edge or stopped.
type Event struct {
	Type       string    `json:"type"` // EventReady or EventNotReady
	EdgeID     string    `json:"edge_id"`
	BootID     string    `json:"boot_id"`             // changes every time the edge process starts
	Seq        int64     `json:"seq"`                 // increases by one per event within a BootID
	StreamID   string    `json:"stream_id,omitempty"` // from the AuthResponse that let this publisher in
	Path       string    `json:"path"`                // live/<stream_key>; secret
	SourceType string    `json:"source_type"`         // mediamtx source type: rtmpConn, srtConn, rtspSession, webRTCSession
	SourceID   string    `json:"source_id"`           // mediamtx connection ID of the publisher (= AuthRequest.ConnID)
	Protocol   string    `json:"protocol"`            // ProtocolRTMP, ...
	Reason     string    `json:"reason,omitempty"`    // EventNotReady only: End* constant
	Detail     string    `json:"detail,omitempty"`    // EventNotReady only: free text (mediamtx close reason, kick reason); no secrets
	Since      time.Time `json:"since"`               // when the stream became live
	Time       time.Time `json:"time"`                // when the edge observed this event
	Media      *Media    `json:"media,omitempty"`     // EventReady, and the last known media for EventNotReady
	Edge       EdgeInfo  `json:"edge"`
}

// LogValue implements slog.LogValuer: no path.
func (e Event) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("type", e.Type),
		slog.String("stream_id", e.StreamID),
		slog.String("stream_ref", StreamRef(e.Path)),
		slog.String("source_id", e.SourceID),
		slog.String("protocol", e.Protocol),
		slog.String("reason", e.Reason),
		slog.Int64("seq", e.Seq),
	)
}

// LiveStream is one stream live on the edge, in a SyncRequest.
type LiveStream struct {
	StreamID     string    `json:"stream_id,omitempty"`
	Path         string    `json:"path"` // secret
	SourceType   string    `json:"source_type"`
	SourceID     string    `json:"source_id"`
	Protocol     string    `json:"protocol"`
	Since        time.Time `json:"since"`
	InboundBytes uint64    `json:"inbound_bytes"`
	Media        Media     `json:"media"`
}

// SyncRequest is the edge's full, authoritative live set.
type SyncRequest struct {
	EdgeID string       `json:"edge_id"`
	BootID string       `json:"boot_id"`
	Seq    int64        `json:"seq"`   // Seq of the last event sent before this sync (0: none yet)
	Ready  bool         `json:"ready"` // the media server is up and answering
	Time   time.Time    `json:"time"`  // when Live was observed
	Live   []LiveStream `json:"live"`  // never null
	Edge   EdgeInfo     `json:"edge"`
}

// SyncResponse carries the API's kick requests.
type SyncResponse struct {
	Kick []Kick `json:"kick,omitempty"`
}

// Kick asks the edge to disconnect a live publisher. The edge matches, in this
// order of preference: SourceID (exact publisher connection: use it whenever
// known, a republish gets a new SourceID and is never hit by a stale kick),
// else StreamID, else Path. Kicking something not live is a no-op.
type Kick struct {
	SourceID string `json:"source_id,omitempty"`
	StreamID string `json:"stream_id,omitempty"`
	Path     string `json:"path,omitempty"`   // secret
	Reason   string `json:"reason,omitempty"` // e.g. "disconnect", "stream_disabled", "key_rotated", "stream_deleted"; echoed in Event.Detail
}

// KickRequest is the body of POST KickPath on the edge.
type KickRequest struct {
	Kick []Kick `json:"kick"`
}

// KickResponse says how many publishers were disconnected.
type KickResponse struct {
	Kicked int `json:"kicked"`
}

// StreamRef is a short, stable, non-reversible reference to a path, for logs
// and metric labels when no stream ID is known: "ref-" and 12 hex digits of its
// SHA-256.
func StreamRef(path string) string {
	if path == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(path))
	return "ref-" + hex.EncodeToString(sum[:6])
}

// CheckSecret reports whether r carries `Authorization: Bearer <secret>`, in
// constant time. An empty secret never matches.
func CheckSecret(r *http.Request, secret string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || secret == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(secret)) == 1
}

// StreamKey returns the key of a live/<stream_key> path, and false for any
// other path: an empty key, a nested path or characters outside
// [A-Za-z0-9_-]. The API must mint keys from that alphabet (at most 256 bytes).
func StreamKey(path string) (string, bool) {
	key, ok := strings.CutPrefix(path, PathPrefix)
	if !ok || key == "" || len(key) > 256 {
		return "", false
	}
	for _, c := range key {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return "", false
		}
	}
	return key, true
}
