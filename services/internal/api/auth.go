package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/services/internal/secret"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/labstack/echo/v5"
)

const apiKeyContextKey = "dionysia.api_key"

// APIKeyFrom returns the API key that authenticated the request.
func APIKeyFrom(c *echo.Context) (store.APIKey, bool) {
	k, ok := c.Get(apiKeyContextKey).(store.APIKey)
	return k, ok
}

// authenticate requires "Authorization: Bearer <api key>" with a valid,
// unrevoked key (401 otherwise) and lets read-scope keys make only GET and
// HEAD requests (403 otherwise).
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		req := c.Request()
		h := req.Header.Get("Authorization")
		if h == "" {
			return unauthorized("missing Authorization header; send \"Authorization: Bearer API_KEY\"")
		}
		scheme, token, ok := strings.Cut(h, " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return unauthorized("malformed Authorization header; expected \"Bearer API_KEY\"")
		}
		prefix, err := secret.ParseAPIKey(token)
		if err != nil {
			return unauthorized("malformed api key; keys look like dio_<prefix>_<secret>")
		}
		key, hash, err := s.store.APIKeyByPrefix(req.Context(), prefix)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !secret.MatchAPIKey(token, hash)) {
			return unauthorized("invalid api key")
		}
		if err != nil {
			return err
		}
		if key.Revoked() {
			return unauthorized("api key %s was revoked", key.Prefix)
		}
		if key.Scope != store.ScopeAdmin && req.Method != http.MethodGet && req.Method != http.MethodHead {
			return forbidden("api key %s has scope %q, which can only read (GET)", key.Prefix, key.Scope)
		}
		s.recordUse(req.Context(), key.ID)
		c.Set(apiKeyContextKey, key)
		return next(c)
	}
}

// requireScope refuses requests whose key lacks scope (403).
func requireScope(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			k, ok := APIKeyFrom(c)
			if !ok || k.Scope != scope {
				return forbidden("this endpoint needs an api key with scope %q", scope)
			}
			return next(c)
		}
	}
}

// recordUse updates the key's last_used_at at most once per interval per
// process (and the database skips writes within the interval across processes).
func (s *Server) recordUse(ctx context.Context, id uuid.UUID) {
	if !s.touch.due(id) {
		return
	}
	if err := s.store.TouchAPIKey(ctx, id, s.touch.interval); err != nil {
		s.log.WarnContext(ctx, "recording api key use", "key_id", id, "error", err)
	}
}

type touchThrottle struct {
	interval time.Duration
	mu       sync.Mutex
	last     map[uuid.UUID]time.Time
}

func newTouchThrottle(interval time.Duration) *touchThrottle {
	return &touchThrottle{interval: interval, last: map[uuid.UUID]time.Time{}}
}

func (t *touchThrottle) due(id uuid.UUID) bool {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.last[id]) < t.interval {
		return false
	}
	t.last[id] = now
	if len(t.last) > 10_000 { // forget old entries; keys are few in practice
		for k, v := range t.last {
			if now.Sub(v) >= t.interval {
				delete(t.last, k)
			}
		}
	}
	return true
}
