package ownership

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Config.
const (
	DefaultPrefix = "dionysia:"
	DefaultTTL    = 10 * time.Second
)

// Events published on the ownership channel.
const (
	EventAcquired = "acquired" // a worker took the lease (new token)
	EventReleased = "released" // the holder gave the lease up
	EventAssigned = "assigned" // the control plane wants a worker for a session
	EventEnded    = "ended"    // the session ended: no worker is wanted any more
	EventPolicy   = "policy"   // the stream's playback policy changed
)

// Playback policies (the values of the policy key; see package playback).
const (
	PolicyPublic = "public"
	PolicySigned = "signed"
)

// PolicyLinger is how long a stream's policy stays in Redis after its session
// ended: the worker keeps serving the final playlists for a few segments, and
// they must be served under the same policy.
const PolicyLinger = 5 * time.Minute

var (
	// ErrHeld is returned (wrapped in a *HeldError) by Acquire when another
	// worker holds a live lease on the stream.
	ErrHeld = errors.New("stream is owned by another worker")
	// ErrLost means the lease is no longer the current one: it expired, was
	// released, or a newer owner took it. The holder must stop writing.
	ErrLost = errors.New("stream ownership lost")
	// ErrFenced is returned by FencedDo when the write was refused because the
	// lease's token is not the current one.
	ErrFenced = errors.New("write refused: stale fencing token")
	// ErrReleased is the cancellation cause of a Hold's context after Release.
	ErrReleased = errors.New("stream ownership released")
)

// HeldError says which worker holds the stream.
type HeldError struct {
	StreamID string
	WorkerID string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("stream %s is owned by worker %s", e.StreamID, e.WorkerID)
}

// Unwrap makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Unwrap() error { return ErrHeld }

// Config configures a Store. The zero value means defaults.
type Config struct {
	Prefix        string        // key prefix, default DefaultPrefix
	TTL           time.Duration // lease lifetime without renewal, default 10 s
	RenewInterval time.Duration // how often Hold renews, default TTL/5
	Logger        *slog.Logger  // default slog.Default()
}

// Store is the Redis-backed ownership registry. It is safe for concurrent use.
type Store struct {
	rdb redis.UniversalClient
	cfg Config
	log *slog.Logger
}

// New returns a Store using rdb.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	cfg.Prefix = cmp.Or(cfg.Prefix, DefaultPrefix)
	cfg.TTL = cmp.Or(cfg.TTL, DefaultTTL)
	cfg.RenewInterval = cmp.Or(cfg.RenewInterval, cfg.TTL/5)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	return &Store{rdb: rdb, cfg: cfg, log: cfg.Logger}
}

// Config returns the effective configuration.
func (s *Store) Config() Config { return s.cfg }

// Channel is the pub/sub channel ownership changes are published on.
func (s *Store) Channel() string { return s.cfg.Prefix + "ownership" }

// OwnerKey is the Redis key of a stream's owner hash.
func (s *Store) OwnerKey(streamID string) string {
	return s.cfg.Prefix + "stream:" + streamID + ":owner"
}

// FenceKey is the Redis key of a stream's fencing counter.
func (s *Store) FenceKey(streamID string) string {
	return s.cfg.Prefix + "stream:" + streamID + ":fence"
}

// PolicyKey is the Redis key of a stream's live playback policy.
func (s *Store) PolicyKey(streamID string) string {
	return s.cfg.Prefix + "stream:" + streamID + ":policy"
}

// AssignmentKey is the Redis key of a stream's assignment hash.
func (s *Store) AssignmentKey(streamID string) string {
	return s.cfg.Prefix + "stream:" + streamID + ":assignment"
}

func (s *Store) assignmentsKey() string { return s.cfg.Prefix + "assignments" }

// Holder identifies the worker taking a lease and what routers need to know.
type Holder struct {
	WorkerID  string
	OriginURL string // base URL of the worker's origin, e.g. http://10.0.0.5:8090
}

// Lease is a held ownership. Token is the fencing token: strictly larger than
// every token handed out before for this stream.
type Lease struct {
	StreamID  string
	SessionID string
	WorkerID  string
	OriginURL string
	Token     int64
	// Nonce is drawn at random for each acquisition; with Token it
	// identifies the lease even if Redis lost its data and restarted the
	// fence counter.
	Nonce      string
	AcquiredAt time.Time
}

// Owner is the current owner of a stream as stored in Redis.
type Owner struct {
	WorkerID   string    `json:"worker_id"`
	OriginURL  string    `json:"origin_url"`
	SessionID  string    `json:"session_id"`
	Token      int64     `json:"token"`
	AcquiredAt time.Time `json:"acquired_at"`
}

// Assignment records that the control plane wants a worker for a session.
type Assignment struct {
	StreamID  string    `json:"stream_id"`
	SessionID string    `json:"session_id"`
	Since     time.Time `json:"since"`
}

// State is what routers need to know about a stream.
type State struct {
	Owner      *Owner      // nil: no live owner
	Assignment *Assignment // nil: no session wants a worker
	// Policy is the stream's live playback policy as the control plane last
	// wrote it; "" when Redis has none (not live, or Redis lost its data).
	Policy string
}

// Signed reports whether a token is required: for every policy but
// PolicyPublic, an unknown one included (fail closed).
func (st State) Signed() bool { return st.Policy != PolicyPublic }

// Event is the JSON published on Channel for every change.
type Event struct {
	Event     string `json:"event"`
	StreamID  string `json:"stream_id"`
	SessionID string `json:"session_id,omitempty"`
	WorkerID  string `json:"worker_id,omitempty"`
	OriginURL string `json:"origin_url,omitempty"`
	Token     int64  `json:"token,omitempty"`
	Policy    string `json:"policy,omitempty"`
}

// Acquire takes the lease on streamID for sessionID. It succeeds when nobody
// holds a live lease or when h.WorkerID already does (a re-acquisition, which
// fences the older lease out too); otherwise it returns a *HeldError.
func (s *Store) Acquire(ctx context.Context, streamID, sessionID string, h Holder) (Lease, error) {
	now := time.Now()
	nonce := rand.Text()
	res, err := acquireScript.Run(ctx, s.rdb,
		[]string{s.OwnerKey(streamID), s.FenceKey(streamID)},
		h.WorkerID, h.OriginURL, sessionID, s.cfg.TTL.Milliseconds(), now.UnixMilli(),
		s.Channel(), streamID, nonce,
	).Slice()
	if err != nil {
		return Lease{}, fmt.Errorf("acquiring stream %s: %w", streamID, err)
	}
	if len(res) != 2 {
		return Lease{}, fmt.Errorf("acquiring stream %s: unexpected reply %v", streamID, res)
	}
	if ok, _ := res[0].(int64); ok != 1 {
		by, _ := res[1].(string)
		return Lease{}, &HeldError{StreamID: streamID, WorkerID: by}
	}
	token, _ := res[1].(int64)
	return Lease{
		StreamID: streamID, SessionID: sessionID,
		WorkerID: h.WorkerID, OriginURL: h.OriginURL,
		Token: token, Nonce: nonce, AcquiredAt: now,
	}, nil
}

// Renew extends the lease by the TTL if it is still the current one, and
// returns ErrLost otherwise.
func (s *Store) Renew(ctx context.Context, l Lease) error {
	n, err := renewScript.Run(ctx, s.rdb, []string{s.OwnerKey(l.StreamID)},
		strconv.FormatInt(l.Token, 10), s.cfg.TTL.Milliseconds(), l.Nonce).Int()
	if err != nil {
		return fmt.Errorf("renewing stream %s: %w", l.StreamID, err)
	}
	if n != 1 {
		return fmt.Errorf("renewing stream %s token %d: %w", l.StreamID, l.Token, ErrLost)
	}
	return nil
}

// Release deletes the owner record if l is still the current lease, and
// publishes the change. Releasing a lost lease returns ErrLost and changes
// nothing.
func (s *Store) Release(ctx context.Context, l Lease) error {
	n, err := releaseScript.Run(ctx, s.rdb, []string{s.OwnerKey(l.StreamID)},
		strconv.FormatInt(l.Token, 10), s.Channel(), l.StreamID, l.Nonce).Int()
	if err != nil {
		return fmt.Errorf("releasing stream %s: %w", l.StreamID, err)
	}
	if n != 1 {
		return fmt.Errorf("releasing stream %s token %d: %w", l.StreamID, l.Token, ErrLost)
	}
	return nil
}

// CheckToken returns nil if l is the current lease, ErrLost otherwise. It is
// a point-in-time answer: use FencedDo to make a write conditional.
func (s *Store) CheckToken(ctx context.Context, l Lease) error {
	cur, err := s.rdb.HMGet(ctx, s.OwnerKey(l.StreamID), "token", "nonce").Result()
	if err != nil {
		return fmt.Errorf("checking stream %s token: %w", l.StreamID, err)
	}
	tok, _ := cur[0].(string)
	nonce, _ := cur[1].(string)
	if tok != strconv.FormatInt(l.Token, 10) || nonce != l.Nonce {
		return fmt.Errorf("checking stream %s token %d (current %q): %w", l.StreamID, l.Token, tok, ErrLost)
	}
	return nil
}

// FencedDo runs one Redis write command on key ("command key args...") only if
// l is still the current lease, atomically. A stale owner's write is refused
// with ErrFenced and has no effect. It returns the command's reply.
//
// Example: FencedDo(ctx, l, "HSET", progressKey, "last_segment", 42).
func (s *Store) FencedDo(ctx context.Context, l Lease, command, key string, args ...any) (any, error) {
	argv := append([]any{strconv.FormatInt(l.Token, 10), l.Nonce, command}, args...)
	res, err := fencedScript.Run(ctx, s.rdb, []string{s.OwnerKey(l.StreamID), key}, argv...).Slice()
	if err != nil {
		return nil, fmt.Errorf("fenced %s %s: %w", command, key, err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("fenced %s %s: unexpected empty reply", command, key)
	}
	if ok, _ := res[0].(int64); ok != 1 {
		return nil, fmt.Errorf("fenced %s %s token %d: %w", command, key, l.Token, ErrFenced)
	}
	if len(res) < 2 {
		return nil, nil
	}
	return res[1], nil
}

// Lookup returns the live owner of streamID, if any.
func (s *Store) Lookup(ctx context.Context, streamID string) (Owner, bool, error) {
	m, err := s.rdb.HGetAll(ctx, s.OwnerKey(streamID)).Result()
	if err != nil {
		return Owner{}, false, fmt.Errorf("looking up owner of stream %s: %w", streamID, err)
	}
	o, ok := parseOwner(m)
	return o, ok, nil
}

// State returns the owner, the assignment and the policy of streamID in one
// round trip.
func (s *Store) State(ctx context.Context, streamID string) (State, error) {
	pipe := s.rdb.Pipeline()
	oc := pipe.HGetAll(ctx, s.OwnerKey(streamID))
	ac := pipe.HGetAll(ctx, s.AssignmentKey(streamID))
	pc := pipe.Get(ctx, s.PolicyKey(streamID))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return State{}, fmt.Errorf("reading state of stream %s: %w", streamID, err)
	}
	st := State{Policy: pc.Val()}
	if o, ok := parseOwner(oc.Val()); ok {
		st.Owner = &o
	}
	if a, ok := parseAssignment(streamID, ac.Val()); ok {
		st.Assignment = &a
	}
	return st, nil
}

// Policy returns the live playback policy of streamID: "" when Redis has
// none. Callers treat anything but PolicyPublic, and any error, as signed.
func (s *Store) Policy(ctx context.Context, streamID string) (string, error) {
	p, err := s.rdb.Get(ctx, s.PolicyKey(streamID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the playback policy of stream %s: %w", streamID, err)
	}
	return p, nil
}

// SetPolicy applies a changed playback policy to a stream that is live (or
// just ended), and publishes the change so that routers drop their cached
// state at once. It reports whether the stream had a policy in Redis (false:
// not live; its next assignment writes the policy).
func (s *Store) SetPolicy(ctx context.Context, streamID, policy string) (bool, error) {
	return s.setPolicy(ctx, streamID, policy, "0")
}

// RestorePolicy writes the policy of a stream that wants a worker even if
// Redis lost it (the control plane's reconciler), and publishes the change.
func (s *Store) RestorePolicy(ctx context.Context, streamID, policy string) error {
	_, err := s.setPolicy(ctx, streamID, policy, "1")
	return err
}

func (s *Store) setPolicy(ctx context.Context, streamID, policy, force string) (bool, error) {
	n, err := setPolicyScript.Run(ctx, s.rdb, []string{s.PolicyKey(streamID)}, policy, s.Channel(), streamID, force).Int()
	if err != nil {
		return false, fmt.Errorf("setting the playback policy of stream %s: %w", streamID, err)
	}
	return n == 1, nil
}

// Assign records that sessionID of streamID wants a worker (the control plane
// calls it when it enqueues the session's transcode), with the stream's
// playback policy. It replaces any older assignment of the stream.
func (s *Store) Assign(ctx context.Context, streamID, sessionID, policy string) error {
	err := assignScript.Run(ctx, s.rdb, []string{s.AssignmentKey(streamID), s.assignmentsKey(), s.PolicyKey(streamID)},
		sessionID, time.Now().UnixMilli(), policy, s.Channel(), streamID).Err()
	if err != nil {
		return fmt.Errorf("assigning stream %s session %s: %w", streamID, sessionID, err)
	}
	return nil
}

// Unassign removes the assignment of streamID when the session ends. With a
// non-empty sessionID only that session's assignment is removed (a newer
// session's is kept). It reports whether an assignment was removed.
func (s *Store) Unassign(ctx context.Context, streamID, sessionID string) (bool, error) {
	n, err := unassignScript.Run(ctx, s.rdb, []string{s.AssignmentKey(streamID), s.assignmentsKey(), s.PolicyKey(streamID)},
		sessionID, s.Channel(), streamID, PolicyLinger.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("unassigning stream %s: %w", streamID, err)
	}
	return n == 1, nil
}

// Unowned lists the assignments whose stream has no live owner: sessions that
// want a worker and have none (not started yet, or their worker died). The
// failover watchdog uses it together with Assignment.Since.
func (s *Store) Unowned(ctx context.Context) ([]Assignment, error) {
	ids, err := s.rdb.ZRange(ctx, s.assignmentsKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("listing assignments: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	exists := make([]*redis.IntCmd, len(ids))
	assigns := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		exists[i] = pipe.Exists(ctx, s.OwnerKey(id))
		assigns[i] = pipe.HGetAll(ctx, s.AssignmentKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("reading assignments: %w", err)
	}
	var out []Assignment
	for i, id := range ids {
		a, ok := parseAssignment(id, assigns[i].Val())
		if !ok {
			// The hash is gone but the index entry stayed: drop it.
			s.rdb.ZRem(ctx, s.assignmentsKey(), id)
			continue
		}
		if exists[i].Val() == 0 {
			out = append(out, a)
		}
	}
	return out, nil
}

func parseOwner(m map[string]string) (Owner, bool) {
	if m["worker_id"] == "" || m["token"] == "" {
		return Owner{}, false
	}
	tok, err := strconv.ParseInt(m["token"], 10, 64)
	if err != nil {
		return Owner{}, false
	}
	ms, _ := strconv.ParseInt(m["acquired_at"], 10, 64)
	return Owner{
		WorkerID:   m["worker_id"],
		OriginURL:  m["origin_url"],
		SessionID:  m["session_id"],
		Token:      tok,
		AcquiredAt: time.UnixMilli(ms),
	}, true
}

func parseAssignment(streamID string, m map[string]string) (Assignment, bool) {
	if m["session_id"] == "" {
		return Assignment{}, false
	}
	ms, _ := strconv.ParseInt(m["since"], 10, 64)
	return Assignment{StreamID: streamID, SessionID: m["session_id"], Since: time.UnixMilli(ms)}, true
}

// Watch subscribes to the ownership channel and calls onEvent for every
// change until ctx is done. onReset is called whenever events may have been
// missed (on every (re)subscription and after a connection error): callers
// caching ownership must drop their cache then. Watch reconnects by itself
// after Redis restarts and returns only ctx's error.
func (s *Store) Watch(ctx context.Context, onEvent func(Event), onReset func()) error {
	backoff := 100 * time.Millisecond
	for {
		err := s.watchOnce(ctx, onEvent, onReset)
		onReset()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("ownership subscription interrupted, resubscribing", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (s *Store) watchOnce(ctx context.Context, onEvent func(Event), onReset func()) error {
	ps := s.rdb.Subscribe(ctx, s.Channel())
	defer ps.Close()
	// Receive does not return on cancellation alone (only on a deadline):
	// closing the subscription unblocks it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return fmt.Errorf("receiving ownership events: %w", err)
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			onReset()
		case *redis.Message:
			var ev Event
			if err := json.Unmarshal([]byte(m.Payload), &ev); err != nil {
				s.log.Warn("ignoring malformed ownership event", "err", err)
				continue
			}
			onEvent(ev)
		}
	}
}
