package origin

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/ownership"
)

// Defaults of Policies.
const (
	DefaultPolicyTTL     = time.Second
	DefaultPolicyTimeout = 500 * time.Millisecond
)

// Policies answers Config.Signed from the stream's live playback policy in
// the ownership registry (the key the control plane writes on every change;
// see ownership.Store.Policy), cached per stream for at most TTL so that a
// change applies within about a second. It fails closed: a stream without a
// policy, or whose policy cannot be read, is signed.
type Policies struct {
	Lookup  func(ctx context.Context, streamID string) (string, error) // e.g. ownership.Store.Policy
	TTL     time.Duration                                              // default DefaultPolicyTTL
	Timeout time.Duration                                              // bound of one lookup, default DefaultPolicyTimeout
	Logger  *slog.Logger

	mu      sync.Mutex
	entries map[string]policyEntry
}

type policyEntry struct {
	signed bool
	exp    time.Time
}

// Signed reports whether streamID requires a playback token.
func (p *Policies) Signed(ctx context.Context, streamID string) bool {
	now := time.Now()
	p.mu.Lock()
	if e, ok := p.entries[streamID]; ok && now.Before(e.exp) {
		p.mu.Unlock()
		return e.signed
	}
	p.mu.Unlock()

	lctx, cancel := context.WithTimeout(ctx, cmp.Or(p.Timeout, DefaultPolicyTimeout))
	policy, err := p.Lookup(lctx, streamID)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			cmp.Or(p.Logger, slog.Default()).Warn("reading the playback policy; treating the stream as signed",
				"stream_id", streamID, "err", err)
		}
		return true // not cached: the next request tries again
	}
	signed := policy != ownership.PolicyPublic
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries == nil || len(p.entries) > 10_000 {
		p.entries = map[string]policyEntry{} // bounded: held streams are few
	}
	p.entries[streamID] = policyEntry{signed: signed, exp: now.Add(cmp.Or(p.TTL, DefaultPolicyTTL))}
	return signed
}
