package router

import (
	"context"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/ownership"
)

// maxPublicTTL bounds how long a state whose policy is public is cached,
// whatever CacheTTL says: a stream switched to signed must be refused within
// 2 s even if its invalidation event was lost. Signed and unknown policies
// fail closed and may be cached for the full TTL.
const maxPublicTTL = time.Second

// Cache bounds: past softLimit entries expired ones are swept on insert;
// past hardLimit everything is dropped (a flood of random stream ids must
// not grow memory without bound).
const (
	softLimit = 10_000
	hardLimit = 100_000
)

type cacheEntry struct {
	st  ownership.State
	exp time.Time
}

type flight struct {
	done chan struct{}
	st   ownership.State
	err  error
}

// stateCache caches stream states for a short time, collapses concurrent
// lookups of one stream into one Redis round trip, and never stores a result
// that was read before an invalidation.
type stateCache struct {
	ttl, negTTL time.Duration
	load        func(context.Context, string) (ownership.State, error)

	mu      sync.Mutex
	gen     uint64
	entries map[string]cacheEntry
	flights map[string]*flight
}

func newStateCache(ttl, negTTL time.Duration, load func(context.Context, string) (ownership.State, error)) *stateCache {
	return &stateCache{ttl: ttl, negTTL: negTTL, load: load,
		entries: map[string]cacheEntry{}, flights: map[string]*flight{}}
}

// Cache results reported by get.
const (
	resultHit      = "hit"
	resultNegative = "negative"
	resultMiss     = "miss"
)

func (c *stateCache) get(ctx context.Context, id string) (ownership.State, string, error) {
	c.mu.Lock()
	if e, ok := c.entries[id]; ok && time.Now().Before(e.exp) {
		c.mu.Unlock()
		if e.st.Owner == nil {
			return e.st, resultNegative, nil
		}
		return e.st, resultHit, nil
	}
	if f, ok := c.flights[id]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.st, resultMiss, f.err
		case <-ctx.Done():
			return ownership.State{}, resultMiss, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	c.flights[id] = f
	gen := c.gen
	c.mu.Unlock()

	// The load runs detached from this request so that waiters are not
	// failed by the first requester going away; it is bounded by a timeout.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	f.st, f.err = c.load(lctx, id)
	cancel()

	c.mu.Lock()
	delete(c.flights, id)
	if f.err == nil && c.gen == gen {
		c.insertLocked(id, cacheEntry{st: f.st, exp: time.Now().Add(c.ttlOf(f.st))})
	}
	c.mu.Unlock()
	close(f.done)
	return f.st, resultMiss, f.err
}

// ttlOf is how long st may be cached.
func (c *stateCache) ttlOf(st ownership.State) time.Duration {
	ttl := c.ttl
	if st.Owner == nil {
		ttl = c.negTTL
	}
	if !st.Signed() {
		ttl = min(ttl, maxPublicTTL)
	}
	return ttl
}

func (c *stateCache) insertLocked(id string, e cacheEntry) {
	if len(c.entries) >= softLimit {
		now := time.Now()
		for k, v := range c.entries {
			if now.After(v.exp) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= hardLimit {
			clear(c.entries)
		}
	}
	c.entries[id] = e
}

// invalidate drops one stream's entry.
func (c *stateCache) invalidate(id string) {
	c.mu.Lock()
	c.gen++
	delete(c.entries, id)
	c.mu.Unlock()
}

// reset drops everything (events may have been missed).
func (c *stateCache) reset() {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}

// fresh reads the state from Redis, bypassing the cache and any lookup in
// flight, and caches the result.
func (c *stateCache) fresh(ctx context.Context, id string) (ownership.State, error) {
	c.mu.Lock()
	c.gen++
	delete(c.entries, id)
	gen := c.gen
	c.mu.Unlock()
	st, err := c.load(ctx, id)
	if err != nil {
		return st, err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.insertLocked(id, cacheEntry{st: st, exp: time.Now().Add(c.ttlOf(st))})
	}
	c.mu.Unlock()
	return st, nil
}
