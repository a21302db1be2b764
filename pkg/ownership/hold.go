package ownership

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Hold is a lease kept alive in the background. Its Context is cancelled
// (with cause ErrLost) the moment the lease is lost, or when a renewal could
// not be confirmed early enough to be sure the lease has not expired; run all
// work for the stream under that context so it stops without output.
type Hold struct {
	store  *Store
	lease  Lease
	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// Hold acquires streamID for sessionID and keeps renewing the lease every
// Config.RenewInterval until Release or until ctx ends. It fails like Acquire
// (a *HeldError when another worker owns the stream).
func (s *Store) Hold(ctx context.Context, streamID, sessionID string, h Holder) (*Hold, error) {
	started := time.Now()
	lease, err := s.Acquire(ctx, streamID, sessionID, h)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithCancelCause(ctx)
	hd := &Hold{
		store: s, lease: lease, ctx: hctx, cancel: cancel,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go hd.renewLoop(started)
	return hd, nil
}

// Context is cancelled when the lease is lost, released, or the parent
// context ends. context.Cause tells which (ErrLost, ErrReleased).
func (h *Hold) Context() context.Context { return h.ctx }

// Lease returns the held lease (for FencedDo).
func (h *Hold) Lease() Lease { return h.lease }

// Err returns nil while the lease is held, and the reason it is not otherwise.
func (h *Hold) Err() error { return context.Cause(h.ctx) }

func (h *Hold) renewLoop(lastOK time.Time) {
	defer close(h.done)
	cfg := h.store.cfg
	t := time.NewTicker(cfg.RenewInterval)
	defer t.Stop()
	// Stop one renew interval before the lease could have expired in Redis,
	// so that no other worker can be granted the stream while this one still
	// believes it owns it.
	deadline := cfg.TTL - cfg.RenewInterval
	for {
		select {
		case <-h.stop:
			return
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		rctx, cancel := context.WithTimeout(h.ctx, cfg.RenewInterval)
		err := h.store.Renew(rctx, h.lease)
		cancel()
		switch {
		case err == nil:
			lastOK = start
		case errors.Is(err, ErrLost):
			h.store.log.Warn("stream ownership lost", "stream_id", h.lease.StreamID, "token", h.lease.Token)
			h.cancel(err)
			return
		case h.ctx.Err() != nil:
			return
		default:
			h.store.log.Warn("renewing stream ownership", "stream_id", h.lease.StreamID, "err", err)
			if time.Since(lastOK) >= deadline {
				h.cancel(fmt.Errorf("lease unconfirmed for %s: %w", time.Since(lastOK).Round(time.Millisecond), ErrLost))
				return
			}
		}
	}
}

// Release stops renewing, deletes the owner record if the lease is still the
// current one, and cancels Context with cause ErrReleased. It is safe to call
// more than once; only the first call does anything. Releasing a lease that
// was already lost is not an error.
func (h *Hold) Release(ctx context.Context) error {
	var err error
	h.once.Do(func() {
		close(h.stop)
		<-h.done
		lost := h.ctx.Err() != nil && errors.Is(context.Cause(h.ctx), ErrLost)
		h.cancel(ErrReleased)
		if lost {
			return
		}
		if rerr := h.store.Release(ctx, h.lease); rerr != nil && !errors.Is(rerr, ErrLost) {
			err = rerr
		}
	})
	return err
}
