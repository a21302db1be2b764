package edge

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/dionysia/dionysia/services/internal/edgeapi"
)

// hookAuthPath is where mediamtx POSTs its auth requests (authHTTPAddress).
const hookAuthPath = "/mediamtx/auth"

// mtxAuthRequest is mediamtx v1.20.1's HTTP auth body (internal/auth/manager.go).
type mtxAuthRequest struct {
	IP        string  `json:"ip"`
	User      string  `json:"user"`
	Password  string  `json:"password"`
	Token     string  `json:"token"`
	Action    string  `json:"action"`
	Path      string  `json:"path"`
	Protocol  string  `json:"protocol"`
	ID        *string `json:"id"`
	Query     string  `json:"query"`
	UserAgent string  `json:"userAgent"`
}

// decision is the edge's answer to one mediamtx auth request.
type decision struct {
	allow    bool
	reason   string
	streamID string
}

// allowance remembers which stream an accepted publisher belongs to, until
// the tracker sees it live (keyed by mediamtx connection ID).
type allowance struct {
	streamID string
	path     string
	at       time.Time
}

// hookHandler serves mediamtx's auth requests on the loopback hook listener.
func (e *Edge) hookHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+hookAuthPath, e.handleAuth)
	return mux
}

func (e *Edge) handleAuth(w http.ResponseWriter, r *http.Request) {
	if !isLoopback(r.RemoteAddr) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	var req mtxAuthRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	d := e.decide(r.Context(), req)
	if d.allow {
		w.WriteHeader(http.StatusOK)
		return
	}
	// mediamtx logs this body in its refusal line: only the reason, no key.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = io.WriteString(w, "refused: "+d.reason)
}

// decide applies the edge's rules and asks the API when they pass.
func (e *Edge) decide(ctx context.Context, req mtxAuthRequest) decision {
	switch req.Action {
	case "api":
		// mediamtx's control API: only the edge itself, from loopback, with
		// its per-run credential.
		ip := net.ParseIP(req.IP)
		ok := ip != nil && ip.IsLoopback() &&
			subtle.ConstantTimeCompare([]byte(req.User), []byte(e.mtxUser)) == 1 &&
			subtle.ConstantTimeCompare([]byte(req.Password), []byte(e.mtxPass)) == 1
		if !ok {
			e.log.Warn("mediamtx api access refused", "ip", req.IP)
			return decision{reason: edgeapi.ReasonActionNotAllowed}
		}
		return decision{allow: true}
	case edgeapi.ActionPublish:
		d := e.decidePublish(ctx, req)
		if d.allow {
			e.metrics.publish.WithLabelValues("accepted", "ok").Inc()
		} else {
			e.metrics.publish.WithLabelValues("refused", reasonLabel(d.reason)).Inc()
		}
		return d
	case edgeapi.ActionRead:
		return e.decideRead(ctx, req)
	default:
		// playback, metrics, pprof and anything new: never from the edge.
		e.log.Warn("mediamtx action refused", "action", req.Action, "reason", edgeapi.ReasonActionNotAllowed, "ip", req.IP)
		return decision{reason: edgeapi.ReasonActionNotAllowed}
	}
}

func (e *Edge) decidePublish(ctx context.Context, req mtxAuthRequest) decision {
	ar := e.apiAuthRequest(req)
	log := e.log.With("auth", ar)
	refuse := func(reason string) decision {
		log.Warn("publish refused", "reason", reason)
		return decision{reason: reason}
	}
	switch req.Protocol {
	case edgeapi.ProtocolRTMP, edgeapi.ProtocolSRT, edgeapi.ProtocolRTSP, edgeapi.ProtocolWebRTC:
	default:
		return refuse(edgeapi.ReasonActionNotAllowed)
	}
	key, ok := edgeapi.StreamKey(req.Path)
	if !ok {
		return refuse(edgeapi.ReasonBadPath)
	}
	ar.StreamKey = key
	// mediamtx refuses a second publisher itself (overridePublisher: no); the
	// edge refuses it earlier, with a reason and without bothering the API.
	if e.isLive(req.Path) {
		return refuse(edgeapi.ReasonAlreadyLive)
	}
	res, err := e.askAPI(ctx, ar)
	if err != nil {
		log.Warn("publish refused", "reason", edgeapi.ReasonAPIUnavailable, "err", err)
		return decision{reason: edgeapi.ReasonAPIUnavailable}
	}
	if !res.Allow {
		return refuse(res.Reason)
	}
	if ar.ConnID != "" {
		e.mu.Lock()
		e.allowed[ar.ConnID] = allowance{streamID: res.StreamID, path: req.Path, at: time.Now()}
		e.mu.Unlock()
	}
	log.Info("publish accepted", "stream_id", res.StreamID)
	e.nudgeTracker()
	return decision{allow: true, streamID: res.StreamID}
}

func (e *Edge) decideRead(ctx context.Context, req mtxAuthRequest) decision {
	ar := e.apiAuthRequest(req)
	log := e.log.With("auth", ar)
	key, ok := edgeapi.StreamKey(req.Path)
	if !ok {
		log.Warn("read refused", "reason", edgeapi.ReasonBadPath)
		return decision{reason: edgeapi.ReasonBadPath}
	}
	ar.StreamKey = key
	if req.User == "" && req.Password == "" {
		// RTSP and WebRTC clients first try without credentials and retry
		// with them when asked: not worth a warning.
		log.Debug("read refused", "reason", edgeapi.ReasonMissingCredential)
		return decision{reason: edgeapi.ReasonMissingCredential}
	}
	res, err := e.askAPI(ctx, ar)
	if err != nil {
		log.Warn("read refused", "reason", edgeapi.ReasonAPIUnavailable, "err", err)
		return decision{reason: edgeapi.ReasonAPIUnavailable}
	}
	if !res.Allow {
		log.Warn("read refused", "reason", res.Reason)
		return decision{reason: res.Reason}
	}
	log.Info("read accepted", "stream_id", res.StreamID)
	return decision{allow: true, streamID: res.StreamID}
}

func (e *Edge) askAPI(ctx context.Context, ar edgeapi.AuthRequest) (edgeapi.AuthResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.APITimeout)
	defer cancel()
	res, err := e.api.Auth(ctx, ar)
	if err != nil {
		return res, err
	}
	if !res.Allow && res.Reason == "" {
		res.Reason = "denied"
	}
	if res.Allow && res.StreamID == "" && ar.Action == edgeapi.ActionPublish {
		e.log.Warn("API allowed a publish without a stream ID", "auth", ar)
	}
	return res, nil
}

func (e *Edge) apiAuthRequest(req mtxAuthRequest) edgeapi.AuthRequest {
	ar := edgeapi.AuthRequest{
		EdgeID:    e.cfg.ID,
		Action:    req.Action,
		Protocol:  req.Protocol,
		Path:      req.Path,
		User:      req.User,
		Password:  req.Password,
		Query:     req.Query,
		IP:        req.IP,
		UserAgent: req.UserAgent,
	}
	if req.ID != nil {
		ar.ConnID = *req.ID
	}
	if ar.Password == "" && req.Token != "" {
		ar.Password = req.Token // mediamtx passes ?token= (RTMP/RTSP) as a token
	}
	return ar
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
