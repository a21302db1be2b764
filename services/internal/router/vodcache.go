package router

import (
	"cmp"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/google/uuid"
)

// Defaults of the VOD asset cache.
const (
	DefaultVODReadyTTL    = 30 * time.Second
	DefaultVODPendingTTL  = 2 * time.Second
	DefaultVODNegativeTTL = time.Second
	DefaultVODCacheSize   = 10_000
	// vodMaxPublicTTL bounds how long a ready asset whose stream is public
	// is cached, so that a stream switched to signed is refused on VOD
	// within seconds too (signed facts fail closed and keep the full TTL).
	vodMaxPublicTTL = 5 * time.Second
	// apiTimeout bounds one request to the API.
	apiTimeout = 5 * time.Second
	// maxPlaybackBody bounds the API's answer (an asset of 6 h with a
	// thumbnail every 10 s lists ~2200 thumbnails, ~150 kB).
	maxPlaybackBody = 4 << 20
)

// errAssetUnknown: the API answered 404 for the asset.
var errAssetUnknown = errors.New("asset unknown")

// assetLookup is an asset's facts as the cache holds them: found is false
// for an asset the API does not know.
type assetLookup struct {
	pb    job.VODPlayback
	found bool
}

type assetEntry struct {
	id  uuid.UUID
	a   assetLookup
	exp time.Time
}

type assetFlight struct {
	done chan struct{}
	a    assetLookup
	err  error
}

// assetCache caches the API's answers about assets in a bounded LRU, each
// for a lifetime that depends on the answer, and collapses concurrent
// lookups of one asset into one API request. Errors are not cached.
type assetCache struct {
	readyTTL, pendingTTL, negTTL time.Duration
	size                         int
	now                          func() time.Time
	load                         func(context.Context, uuid.UUID) (job.VODPlayback, error)

	mu      sync.Mutex
	lru     *list.List // of *assetEntry, most recently used first
	entries map[uuid.UUID]*list.Element
	flights map[uuid.UUID]*assetFlight
}

func newAssetCache(cfg Config, load func(context.Context, uuid.UUID) (job.VODPlayback, error)) *assetCache {
	return &assetCache{
		readyTTL:   cmp.Or(cfg.VODReadyTTL, DefaultVODReadyTTL),
		pendingTTL: cmp.Or(cfg.VODPendingTTL, DefaultVODPendingTTL),
		negTTL:     cmp.Or(cfg.VODNegativeTTL, DefaultVODNegativeTTL),
		size:       cmp.Or(cfg.VODCacheSize, DefaultVODCacheSize),
		now:        cfg.Now,
		load:       load,
		lru:        list.New(),
		entries:    map[uuid.UUID]*list.Element{},
		flights:    map[uuid.UUID]*assetFlight{},
	}
}

// get returns the asset's facts, from the cache when they are fresh, and
// the cache result (resultHit, resultNegative or resultMiss).
func (c *assetCache) get(ctx context.Context, id uuid.UUID) (assetLookup, string, error) {
	c.mu.Lock()
	if el, ok := c.entries[id]; ok {
		e := el.Value.(*assetEntry)
		if c.now().Before(e.exp) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			if !e.a.found {
				return e.a, resultNegative, nil
			}
			return e.a, resultHit, nil
		}
		c.lru.Remove(el)
		delete(c.entries, id)
	}
	if f, ok := c.flights[id]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.a, resultMiss, f.err
		case <-ctx.Done():
			return assetLookup{}, resultMiss, ctx.Err()
		}
	}
	f := &assetFlight{done: make(chan struct{})}
	c.flights[id] = f
	c.mu.Unlock()

	// Detached from the request, so that the viewers waiting on this
	// lookup are not failed by the first one going away; bounded.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
	pb, err := c.load(lctx, id)
	cancel()
	switch {
	case err == nil:
		f.a = assetLookup{pb: pb, found: true}
	case errors.Is(err, errAssetUnknown):
		f.a = assetLookup{}
	default:
		f.err = err
	}

	c.mu.Lock()
	delete(c.flights, id)
	if f.err == nil {
		c.insertLocked(id, f.a)
	}
	c.mu.Unlock()
	close(f.done)
	return f.a, resultMiss, f.err
}

// ttlOf is how long a may be cached.
func (c *assetCache) ttlOf(a assetLookup) time.Duration {
	switch {
	case !a.found:
		return c.negTTL
	case a.pb.Status != job.AssetReady:
		return c.pendingTTL
	case a.pb.PlaybackPolicy == playback.PolicyPublic:
		return min(c.readyTTL, vodMaxPublicTTL)
	default:
		return c.readyTTL
	}
}

func (c *assetCache) insertLocked(id uuid.UUID, a assetLookup) {
	e := &assetEntry{id: id, a: a, exp: c.now().Add(c.ttlOf(a))}
	c.entries[id] = c.lru.PushFront(e)
	for c.lru.Len() > c.size {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*assetEntry).id)
	}
}

// fetchPlayback asks the API for an asset's playback facts:
// GET {api}/internal/v1/assets/{id}/playback with the worker secret.
// A 404 is errAssetUnknown; thumbnails come back sorted by offset.
func fetchPlayback(ctx context.Context, client *http.Client, apiURL, secret string, id uuid.UUID) (job.VODPlayback, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(apiURL, "/")+job.VODPlaybackPath(id), nil)
	if err != nil {
		return job.VODPlayback{}, fmt.Errorf("building asset request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dionysia-router")
	res, err := client.Do(req)
	if err != nil {
		return job.VODPlayback{}, fmt.Errorf("asking the API for asset %s: %w", id, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxPlaybackBody+1))
	if err != nil {
		return job.VODPlayback{}, fmt.Errorf("reading the API's answer for asset %s: %w", id, err)
	}
	switch {
	case res.StatusCode == http.StatusNotFound:
		return job.VODPlayback{}, errAssetUnknown
	case res.StatusCode != http.StatusOK:
		return job.VODPlayback{}, fmt.Errorf("the API answered %s for asset %s: %s", res.Status, id, problemDetail(body))
	case len(body) > maxPlaybackBody:
		return job.VODPlayback{}, fmt.Errorf("the API's answer for asset %s is larger than %d bytes", id, maxPlaybackBody)
	}
	var pb job.VODPlayback
	if err := json.Unmarshal(body, &pb); err != nil {
		return job.VODPlayback{}, fmt.Errorf("decoding the API's answer for asset %s: %w", id, err)
	}
	if pb.AssetID != id {
		return job.VODPlayback{}, fmt.Errorf("the API answered for asset %s when asked for %s", pb.AssetID, id)
	}
	slices.SortStableFunc(pb.Thumbnails, func(a, b job.VODThumbnail) int { return cmp.Compare(a.OffsetS, b.OffsetS) })
	return pb, nil
}

// problemDetail returns the detail of a problem+json body, or a short
// excerpt of any other body, for logs.
func problemDetail(body []byte) string {
	var p struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) == nil && p.Detail != "" {
		return p.Detail
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
