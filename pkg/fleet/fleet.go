// Package fleet is the worker registry: every worker announces itself in
// Redis with a heartbeat, and the API and CLI list the fleet with each
// worker's state.
//
// Keys (prefix default "dionysia:"):
//
//	{prefix}worker:{id}   hash  the worker's fields, PX TTL = 3 heartbeats: exists while the worker is alive
//	{prefix}workers       zset  worker ids scored by last heartbeat (unix ms)
//	{prefix}workers:info  hash  worker id → last Worker JSON, kept after the worker is gone (for GoneRetention)
//
// A worker's State is derived from the remaining TTL of its live key, not
// from wall clocks, so clock skew between hosts cannot misreport it: up while
// its last heartbeat is younger than two intervals, lagging while the key
// still lives, gone afterwards (listed for GoneRetention, then pruned).
package fleet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Config.
const (
	DefaultPrefix        = "dionysia:"
	DefaultInterval      = 2 * time.Second
	DefaultGoneRetention = 10 * time.Minute
)

// Hardware classes.
const (
	ClassGPU = "gpu"
	ClassCPU = "cpu"
)

// State of a worker as seen by List.
type State string

// States.
const (
	StateUp      State = "up"      // heartbeat younger than two intervals
	StateLagging State = "lagging" // heartbeat late, but its key has not expired
	StateGone    State = "gone"    // key expired or deregistered
)

// Worker is what a worker announces about itself.
type Worker struct {
	ID        string    `json:"id"`
	Host      string    `json:"host"`
	OriginURL string    `json:"origin_url"`
	Class     string    `json:"class"`    // ClassGPU or ClassCPU
	Capacity  int       `json:"capacity"` // jobs it accepts at once
	Load      int       `json:"load"`     // jobs running now
	Version   string    `json:"version"`
	Encoders  []string  `json:"encoders"` // encoders found by probing, e.g. x264enc, nvh264enc
	StartedAt time.Time `json:"started_at"`
	LastSeen  time.Time `json:"last_seen"` // set by Heartbeat
}

// WorkerStatus is a Worker with its derived state.
type WorkerStatus struct {
	Worker
	State State `json:"state"`
}

// Config configures a Registry. The zero value means defaults.
type Config struct {
	Prefix        string        // key prefix, default DefaultPrefix
	Interval      time.Duration // heartbeat interval, default 2 s
	TTL           time.Duration // lifetime of a worker's live key, default 3 × Interval
	GoneRetention time.Duration // how long gone workers stay listed, default 10 min
	Logger        *slog.Logger  // default slog.Default()
}

// Registry reads and writes the fleet in Redis. It is safe for concurrent use.
type Registry struct {
	rdb redis.UniversalClient
	cfg Config
	log *slog.Logger
}

// ErrInvalidWorker is returned by Heartbeat for a worker without an ID.
var ErrInvalidWorker = errors.New("invalid worker")

// New returns a Registry.
func New(rdb redis.UniversalClient, cfg Config) *Registry {
	cfg.Prefix = cmp.Or(cfg.Prefix, DefaultPrefix)
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	cfg.TTL = cmp.Or(cfg.TTL, 3*cfg.Interval)
	cfg.GoneRetention = cmp.Or(cfg.GoneRetention, DefaultGoneRetention)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	return &Registry{rdb: rdb, cfg: cfg, log: cfg.Logger}
}

func (r *Registry) liveKey(id string) string { return r.cfg.Prefix + "worker:" + id }
func (r *Registry) indexKey() string         { return r.cfg.Prefix + "workers" }
func (r *Registry) infoKey() string          { return r.cfg.Prefix + "workers:info" }

// Heartbeat records w as alive now.
func (r *Registry) Heartbeat(ctx context.Context, w Worker) error {
	if w.ID == "" {
		return fmt.Errorf("%w: id is required", ErrInvalidWorker)
	}
	w.LastSeen = time.Now()
	js, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encoding worker %s: %w", w.ID, err)
	}
	encoders, _ := json.Marshal(w.Encoders)
	key := r.liveKey(w.ID)
	pipe := r.rdb.TxPipeline()
	pipe.Del(ctx, key)
	pipe.HSet(ctx, key,
		"id", w.ID, "host", w.Host, "origin_url", w.OriginURL, "class", w.Class,
		"capacity", w.Capacity, "load", w.Load, "version", w.Version, "encoders", string(encoders),
		"started_at", w.StartedAt.UnixMilli(), "last_seen", w.LastSeen.UnixMilli(),
		"interval_ms", r.cfg.Interval.Milliseconds(), "ttl_ms", r.cfg.TTL.Milliseconds(),
	)
	pipe.PExpire(ctx, key, r.cfg.TTL)
	pipe.ZAdd(ctx, r.indexKey(), redis.Z{Score: float64(w.LastSeen.UnixMilli()), Member: w.ID})
	pipe.HSet(ctx, r.infoKey(), w.ID, js)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("heartbeat of worker %s: %w", w.ID, err)
	}
	return nil
}

// Run heartbeats every Interval with the worker returned by snapshot (called
// each time, so Load stays current) until ctx ends, then deregisters the
// worker. Failed heartbeats are logged and retried at the next tick.
func (r *Registry) Run(ctx context.Context, snapshot func() Worker) error {
	w := snapshot()
	if err := r.Heartbeat(ctx, w); err != nil {
		if errors.Is(err, ErrInvalidWorker) {
			return err
		}
		r.log.Warn("worker heartbeat", "worker_id", w.ID, "err", err)
	}
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			if err := r.Deregister(dctx, w.ID); err != nil {
				r.log.Warn("deregistering worker", "worker_id", w.ID, "err", err)
			}
			return ctx.Err()
		case <-t.C:
		}
		w = snapshot()
		if err := r.Heartbeat(ctx, w); err != nil && ctx.Err() == nil {
			r.log.Warn("worker heartbeat", "worker_id", w.ID, "err", err)
		}
	}
}

// Deregister removes the worker's live key: it is listed as gone from now on
// (until GoneRetention passes).
func (r *Registry) Deregister(ctx context.Context, id string) error {
	if err := r.rdb.Del(ctx, r.liveKey(id)).Err(); err != nil {
		return fmt.Errorf("deregistering worker %s: %w", id, err)
	}
	return nil
}

// List returns every worker seen within GoneRetention, ordered by ID, with
// its state. Workers gone for longer are pruned.
func (r *Registry) List(ctx context.Context) ([]WorkerStatus, error) {
	cutoff := time.Now().Add(-r.cfg.GoneRetention).UnixMilli()
	old, err := r.rdb.ZRangeByScore(ctx, r.indexKey(), &redis.ZRangeBy{Min: "-inf", Max: "(" + strconv.FormatInt(cutoff, 10)}).Result()
	if err != nil {
		return nil, fmt.Errorf("listing workers: %w", err)
	}
	if len(old) > 0 {
		pipe := r.rdb.TxPipeline()
		pipe.ZRem(ctx, r.indexKey(), toAny(old)...)
		pipe.HDel(ctx, r.infoKey(), old...)
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("pruning gone workers: %w", err)
		}
	}
	ids, err := r.rdb.ZRange(ctx, r.indexKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("listing workers: %w", err)
	}
	if len(ids) == 0 {
		return []WorkerStatus{}, nil
	}
	pipe := r.rdb.Pipeline()
	info := pipe.HMGet(ctx, r.infoKey(), ids...)
	pttls := make([]*redis.DurationCmd, len(ids))
	live := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		pttls[i] = pipe.PTTL(ctx, r.liveKey(id))
		live[i] = pipe.HMGet(ctx, r.liveKey(id), "interval_ms", "ttl_ms")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("reading workers: %w", err)
	}
	out := make([]WorkerStatus, 0, len(ids))
	for i, raw := range info.Val() {
		s, ok := raw.(string)
		if !ok {
			continue
		}
		var w Worker
		if err := json.Unmarshal([]byte(s), &w); err != nil {
			r.log.Warn("skipping unreadable worker record", "worker_id", ids[i], "err", err)
			continue
		}
		out = append(out, WorkerStatus{Worker: w, State: state(pttls[i].Val(), live[i].Val())})
	}
	slices.SortFunc(out, func(a, b WorkerStatus) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// state derives a worker's state from its live key: remaining lifetime pttl
// (negative when the key is gone) and the interval/TTL the worker used.
func state(pttl time.Duration, fields []any) State {
	if pttl <= 0 || len(fields) != 2 {
		return StateGone
	}
	interval, _ := strconv.ParseInt(fmt.Sprint(fields[0]), 10, 64)
	ttl, _ := strconv.ParseInt(fmt.Sprint(fields[1]), 10, 64)
	if interval <= 0 || ttl <= 0 {
		return StateLagging
	}
	age := time.Duration(ttl)*time.Millisecond - pttl
	if age < 2*time.Duration(interval)*time.Millisecond {
		return StateUp
	}
	return StateLagging
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
