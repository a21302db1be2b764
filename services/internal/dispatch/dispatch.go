// Package dispatch hands live sessions to the worker fleet and keeps them
// handed: it enqueues a session's asynq transcode task on the queue of its
// hardware class, records in the ownership registry that the stream wants a
// worker (ownership.Store.Assign), and runs the failover watchdog that
// re-dispatches a session whose worker is gone.
//
// asynq alone recovers the task of a dead worker only after its 30 s lease
// expired and its recoverer's next 1-minute tick: 60-120 s of black screen.
// Workers hold a per-stream ownership lease instead (package ownership, a few
// seconds long); the watchdog polls ownership.Store.Unowned every Interval and
// enqueues a new task for a session whose owner disappeared (after Grace), with
// the TaskID job.TaskID(session)+":"+n, n counted in Redis. When asynq later
// re-delivers the dead worker's task, that worker's handler finds the stream
// owned by the new worker and does not start (fencing).
//
// Redis keys (prefix default "dionysia:"), next to the ownership keys:
//
//	{prefix}dispatch:{session_id}       hash   attempt, task_id, queue, at (unix ms), fence, payload; 48 h TTL
//	{prefix}dispatch:{session_id}:lock  string SET NX PX: one dispatcher at a time per session (several API replicas)
//
// Rules for an assignment without an owner (checked every Interval):
//
//   - never re-dispatched within MinInterval of the previous dispatch;
//   - if the stream's fencing counter moved since the last dispatch, a worker
//     took the stream and lost it: re-dispatch once it has been unowned for Grace;
//   - otherwise nobody took the last task yet: wait while it is still queued
//     (pending, scheduled or retry: a worker will get it when one is free, and
//     more copies would only pile up), else re-dispatch after FirstPickup;
//   - a session that ended or failed is unassigned instead.
//
// Every ReconcileInterval the dispatcher also restores the assignment of every
// open session that lost it (e.g. Redis was down when the session opened).
//
// The dispatcher never stops a worker: ending sessions and telling their
// workers to stop is package ingest's (it calls End to drop the assignment).
package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/fleet"
	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Defaults of Config.
const (
	DefaultMaxRetry          = 3
	DefaultReconcileInterval = 5 * time.Second
	DefaultFleetInterval     = time.Second
	recordTTL                = 48 * time.Hour
	lockTTL                  = 2 * time.Second
)

// Want is an open session that wants a worker.
type Want struct {
	StreamID  uuid.UUID
	SessionID uuid.UUID
	Policy    string // the stream's playback policy in the database
}

// Sessions is the dispatcher's view of the database.
type Sessions interface {
	// Transcode returns the payload of a session that still wants a worker
	// (open and not failed); ok is false otherwise.
	Transcode(ctx context.Context, sessionID uuid.UUID) (t job.Transcode, ok bool, err error)
	// Wanted lists every session that wants a worker.
	Wanted(ctx context.Context) ([]Want, error)
}

// Config configures a Dispatcher. The zero value means defaults.
type Config struct {
	config.Dispatch
	Prefix            string        // Redis key prefix; default job.DefaultPrefix (the workers' and ownership's)
	MaxRetry          int           // asynq retries of a task; default DefaultMaxRetry
	ReconcileInterval time.Duration // default DefaultReconcileInterval
	// ObserveFleet, when set, is given the worker fleet (fleet.Registry.List)
	// every FleetInterval: how the API records worker.up and worker.lost.
	ObserveFleet  func(ctx context.Context, workers []fleet.WorkerStatus)
	FleetInterval time.Duration // default DefaultFleetInterval
	Logger        *slog.Logger
	Registerer    prometheus.Registerer // nil: metrics are not registered
}

// Dispatcher enqueues transcode tasks and runs the failover watchdog. It is
// safe for concurrent use.
type Dispatcher struct {
	cfg      Config
	rdb      redis.UniversalClient
	client   *asynq.Client
	insp     *asynq.Inspector
	fleet    *fleet.Registry
	owners   *ownership.Store
	sessions Sessions
	log      *slog.Logger
	m        *metrics

	mu           sync.Mutex
	unownedSince map[string]time.Time // session id → when the watchdog first saw it without owner
}

// New returns a Dispatcher enqueueing through rdb (the asynq database).
func New(rdb redis.UniversalClient, fl *fleet.Registry, owners *ownership.Store, sessions Sessions, cfg Config) (*Dispatcher, error) {
	cfg.Dispatch = cfg.Dispatch.WithDefaults()
	if err := cfg.Dispatch.Validate(); err != nil {
		return nil, fmt.Errorf("dispatch config: %w", err)
	}
	cfg.Prefix = cmp.Or(cfg.Prefix, job.DefaultPrefix)
	cfg.MaxRetry = cmp.Or(cfg.MaxRetry, DefaultMaxRetry)
	cfg.ReconcileInterval = cmp.Or(cfg.ReconcileInterval, DefaultReconcileInterval)
	cfg.FleetInterval = cmp.Or(cfg.FleetInterval, DefaultFleetInterval)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Dispatcher{
		cfg: cfg, rdb: rdb, client: asynq.NewClientFromRedisClient(rdb), insp: asynq.NewInspectorFromRedisClient(rdb),
		fleet: fl, owners: owners, sessions: sessions, log: log, m: m, unownedSince: map[string]time.Time{},
	}, nil
}

func (d *Dispatcher) recordKey(session string) string { return d.cfg.Prefix + "dispatch:" + session }
func (d *Dispatcher) lockKey(session string) string {
	return d.cfg.Prefix + "dispatch:" + session + ":lock"
}

// Queue returns the queue for a stream's hardware preference: gpu and cpu
// have their own queue; auto goes to the GPU queue only when an up GPU worker
// has free capacity now, else to the CPU queue (which every fleet can serve).
func (d *Dispatcher) Queue(ctx context.Context, hardware string) string {
	switch hardware {
	case job.HardwareGPU:
		return job.QueueGPU
	case job.HardwareCPU:
		return job.QueueCPU
	}
	workers, err := d.fleet.List(ctx)
	if err != nil {
		d.log.WarnContext(ctx, "listing workers for the queue choice; using the CPU queue", "err", err)
		return job.QueueCPU
	}
	for _, w := range workers {
		if w.Class == fleet.ClassGPU && w.State == fleet.StateUp && w.Load < w.Capacity {
			return job.QueueGPU
		}
	}
	return job.QueueCPU
}

// record is the last dispatch of a session.
type record struct {
	attempt int64
	taskID  string
	queue   string
	at      time.Time
	fence   int64
	payload []byte
}

func (d *Dispatcher) loadRecord(ctx context.Context, session string) (record, bool, error) {
	m, err := d.rdb.HGetAll(ctx, d.recordKey(session)).Result()
	if err != nil {
		return record{}, false, fmt.Errorf("reading dispatch record of session %s: %w", session, err)
	}
	if m["task_id"] == "" {
		return record{}, false, nil
	}
	r := record{taskID: m["task_id"], queue: m["queue"], payload: []byte(m["payload"])}
	r.attempt, _ = strconv.ParseInt(m["attempt"], 10, 64)
	r.fence, _ = strconv.ParseInt(m["fence"], 10, 64)
	ms, _ := strconv.ParseInt(m["at"], 10, 64)
	r.at = time.UnixMilli(ms)
	return r, true, nil
}

func (d *Dispatcher) fence(ctx context.Context, streamID string) (int64, error) {
	n, err := d.rdb.Get(ctx, d.owners.FenceKey(streamID)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading fence of stream %s: %w", streamID, err)
	}
	return n, nil
}

func (d *Dispatcher) lock(ctx context.Context, session string) (func(), bool, error) {
	token := uuid.NewString()
	ok, err := d.rdb.SetNX(ctx, d.lockKey(session), token, lockTTL).Result()
	if err != nil {
		return nil, false, fmt.Errorf("locking dispatch of session %s: %w", session, err)
	}
	if !ok {
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := unlockScript.Run(ctx, d.rdb, []string{d.lockKey(session)}, token).Err(); err != nil {
			d.log.Warn("unlocking dispatch", "session_id", session, "err", err)
		}
	}, true, nil
}

var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Dispatch enqueues the first transcode task of a new session (TaskID
// job.TaskID(session)) and assigns the stream to it. An existing task of the
// same ID counts as success. When the enqueue fails the assignment is still
// recorded, so that the watchdog retries.
func (d *Dispatcher) Dispatch(ctx context.Context, t job.Transcode) error {
	session := t.SessionID.String()
	unlock, ok, err := d.lock(ctx, session)
	if err != nil {
		return err
	}
	if !ok {
		return nil // another dispatcher is dispatching this session right now
	}
	defer unlock()
	_, err = d.enqueue(ctx, t, 0, "first")
	if aerr := d.owners.Assign(ctx, t.StreamID.String(), session, t.PlaybackPolicy); aerr != nil {
		err = errors.Join(err, aerr)
	}
	return err
}

// enqueue writes the dispatch record and enqueues attempt n of a session.
func (d *Dispatcher) enqueue(ctx context.Context, t job.Transcode, attempt int64, kind string) (string, error) {
	session := t.SessionID.String()
	queue := d.Queue(ctx, t.Hardware)
	t.EnqueuedAt = time.Now().UTC()
	payload, err := t.Marshal()
	if err != nil {
		return "", fmt.Errorf("encoding transcode of session %s: %w", session, err)
	}
	taskID := job.TaskID(t.SessionID)
	if attempt > 0 {
		taskID += ":" + strconv.FormatInt(attempt, 10)
	}
	fence, err := d.fence(ctx, t.StreamID.String())
	if err != nil {
		return "", err
	}
	key := d.recordKey(session)
	pipe := d.rdb.TxPipeline()
	pipe.HSet(ctx, key, "attempt", attempt, "task_id", taskID, "queue", queue,
		"at", time.Now().UnixMilli(), "fence", fence, "payload", payload)
	pipe.Expire(ctx, key, recordTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return "", fmt.Errorf("writing dispatch record of session %s: %w", session, err)
	}
	_, err = d.client.EnqueueContext(ctx, asynq.NewTask(job.TypeTranscode, payload),
		asynq.TaskID(taskID), asynq.Queue(queue), asynq.Timeout(job.Timeout), asynq.MaxRetry(d.cfg.MaxRetry))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		d.log.DebugContext(ctx, "transcode task already enqueued", "session_id", session, "task_id", taskID)
		return queue, nil
	}
	if err != nil {
		d.m.errors.WithLabelValues("enqueue").Inc()
		return "", fmt.Errorf("enqueueing transcode of session %s: %w", session, err)
	}
	d.m.enqueued.WithLabelValues(queue, kind).Inc()
	d.log.InfoContext(ctx, "transcode enqueued", "stream_id", t.StreamID, "session_id", session,
		"queue", queue, "task_id", taskID, "kind", kind)
	return queue, nil
}

// End forgets a session that no longer wants a worker: it removes the
// stream's assignment (only if it is this session's) and the dispatch record.
func (d *Dispatcher) End(ctx context.Context, streamID, sessionID uuid.UUID) error {
	if _, err := d.owners.Unassign(ctx, streamID.String(), sessionID.String()); err != nil {
		return err
	}
	if err := d.rdb.Del(ctx, d.recordKey(sessionID.String())).Err(); err != nil {
		return fmt.Errorf("deleting dispatch record of session %s: %w", sessionID, err)
	}
	return nil
}

// Run runs the failover watchdog and the assignment reconciler until ctx
// ends. It returns ctx's error.
func (d *Dispatcher) Run(ctx context.Context) error {
	watch := time.NewTicker(d.cfg.Interval)
	defer watch.Stop()
	reconcile := time.NewTicker(d.cfg.ReconcileInterval)
	defer reconcile.Stop()
	observe := time.NewTicker(d.cfg.FleetInterval)
	defer observe.Stop()
	if d.cfg.ObserveFleet == nil {
		observe.Stop()
	}
	d.log.InfoContext(ctx, "dispatch watchdog running", "interval", d.cfg.Interval, "grace", d.cfg.Grace)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-watch.C:
			if d.redisLostData(ctx) {
				d.reconcile(ctx)
			}
			d.watch(ctx)
		case <-reconcile.C:
			d.reconcile(ctx)
		case <-observe.C:
			d.observeFleet(ctx)
		}
	}
}

// observeFleet hands the fleet to Config.ObserveFleet.
func (d *Dispatcher) observeFleet(ctx context.Context) {
	ws, err := d.fleet.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.m.errors.WithLabelValues("fleet").Inc()
			d.log.WarnContext(ctx, "listing the worker fleet", "err", err)
		}
		return
	}
	d.cfg.ObserveFleet(ctx, ws)
}

// watch is one pass of the watchdog.
func (d *Dispatcher) watch(ctx context.Context) {
	as, err := d.owners.Unowned(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.m.errors.WithLabelValues("watch").Inc()
			d.log.WarnContext(ctx, "listing unowned streams", "err", err)
		}
		return
	}
	now := time.Now()
	seen := make(map[string]time.Time, len(as))
	d.mu.Lock()
	for _, a := range as {
		first, ok := d.unownedSince[a.SessionID]
		if !ok {
			first = now
		}
		seen[a.SessionID] = first
	}
	d.unownedSince = seen
	d.mu.Unlock()
	for _, a := range as {
		if err := d.consider(ctx, a, seen[a.SessionID], now); err != nil && ctx.Err() == nil {
			d.m.errors.WithLabelValues("redispatch").Inc()
			d.log.WarnContext(ctx, "re-dispatching session", "stream_id", a.StreamID, "session_id", a.SessionID, "err", err)
		}
	}
}

// consider re-dispatches an unowned assignment when the rules say so.
func (d *Dispatcher) consider(ctx context.Context, a ownership.Assignment, unownedSince, now time.Time) error {
	rec, ok, err := d.loadRecord(ctx, a.SessionID)
	if err != nil {
		return err
	}
	if ok {
		if now.Sub(rec.at) < d.cfg.MinInterval {
			return nil
		}
		fence, err := d.fence(ctx, a.StreamID)
		if err != nil {
			return err
		}
		if fence > rec.fence {
			// A worker took the stream after the last dispatch and lost it.
			if now.Sub(unownedSince) < d.cfg.Grace {
				return nil
			}
		} else {
			if now.Sub(rec.at) < d.cfg.FirstPickup {
				return nil
			}
			if queued, err := d.queued(rec); err != nil || queued {
				return err
			}
		}
	} else if now.Sub(a.Since) < d.cfg.FirstPickup {
		return nil // the first dispatch may still be on its way
	}

	unlock, locked, err := d.lock(ctx, a.SessionID)
	if err != nil || !locked {
		return err
	}
	defer unlock()
	// Another replica may have dispatched while we looked.
	if again, ok2, err := d.loadRecord(ctx, a.SessionID); err != nil {
		return err
	} else if ok2 && (!ok || !again.at.Equal(rec.at)) {
		return nil
	}

	sessionID, err := uuid.Parse(a.SessionID)
	if err != nil {
		return fmt.Errorf("assignment of stream %s: bad session id: %w", a.StreamID, err)
	}
	streamID, err := uuid.Parse(a.StreamID)
	if err != nil {
		return fmt.Errorf("assignment of stream %q: bad stream id: %w", a.StreamID, err)
	}
	t, wanted, err := d.sessions.Transcode(ctx, sessionID)
	if err != nil {
		return err
	}
	if !wanted {
		d.log.InfoContext(ctx, "dropping the assignment of a session that ended", "stream_id", a.StreamID, "session_id", a.SessionID)
		return d.End(ctx, streamID, sessionID)
	}
	if ok && len(rec.payload) > 0 {
		// Keep the snapshot the session started with (profile, outputs).
		if snap, err := job.Unmarshal(rec.payload); err == nil {
			t = snap
		}
	}
	attempt, err := d.rdb.HIncrBy(ctx, d.recordKey(a.SessionID), "attempts", 1).Result()
	if err != nil {
		return fmt.Errorf("counting dispatches of session %s: %w", a.SessionID, err)
	}
	if _, err := d.enqueue(ctx, t, attempt, "redispatch"); err != nil {
		return err
	}
	d.m.redispatched.Inc()
	d.log.WarnContext(ctx, "session re-dispatched: its worker is gone", "stream_id", a.StreamID, "session_id", a.SessionID,
		"attempt", attempt, "unowned_for", now.Sub(unownedSince).Round(time.Millisecond))
	return nil
}

// queued reports whether the last dispatched task still waits in its queue
// for a worker.
func (d *Dispatcher) queued(rec record) (bool, error) {
	info, err := d.insp.GetTaskInfo(rec.queue, rec.taskID)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspecting task %s: %w", rec.taskID, err)
	}
	switch info.State {
	case asynq.TaskStatePending, asynq.TaskStateScheduled, asynq.TaskStateRetry, asynq.TaskStateAggregating:
		return true, nil
	}
	return false, nil
}

// redisLostData reports whether Redis lost its data since the last check (a
// restart without persistence, a failover to an empty replica): a sentinel key
// the dispatcher keeps is gone. The first check after start says yes too, so
// the first reconcile runs at once.
func (d *Dispatcher) redisLostData(ctx context.Context) bool {
	created, err := d.rdb.SetNX(ctx, d.cfg.Prefix+"dispatch:epoch", time.Now().UnixMilli(), 0).Result()
	if err != nil {
		return false
	}
	if created {
		d.log.InfoContext(ctx, "no dispatch state in Redis (first start, or Redis lost its data): reconciling live sessions now")
	}
	return created
}

// reconcile restores the assignment of every session that wants a worker and
// lost it.
func (d *Dispatcher) reconcile(ctx context.Context) {
	wants, err := d.sessions.Wanted(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.m.errors.WithLabelValues("reconcile").Inc()
			d.log.WarnContext(ctx, "listing sessions that want a worker", "err", err)
		}
		return
	}
	for _, w := range wants {
		st, err := d.owners.State(ctx, w.StreamID.String())
		if err != nil {
			d.log.WarnContext(ctx, "reading stream ownership", "stream_id", w.StreamID, "err", err)
			continue
		}
		if st.Assignment != nil && st.Assignment.SessionID == w.SessionID.String() {
			d.repairPolicy(ctx, w, st.Policy)
			continue
		}
		t, ok, err := d.sessions.Transcode(ctx, w.SessionID)
		if err != nil || !ok {
			continue
		}
		if err := d.owners.Assign(ctx, w.StreamID.String(), w.SessionID.String(), t.PlaybackPolicy); err != nil {
			d.log.WarnContext(ctx, "restoring assignment", "stream_id", w.StreamID, "session_id", w.SessionID, "err", err)
			continue
		}
		d.log.WarnContext(ctx, "restored the lost assignment of a live session", "stream_id", w.StreamID, "session_id", w.SessionID)
		if err := d.redispatchLost(ctx, t); err != nil {
			d.m.errors.WithLabelValues("reconcile").Inc()
			d.log.WarnContext(ctx, "re-dispatching a restored session", "stream_id", w.StreamID, "session_id", w.SessionID, "err", err)
		}
	}
}

// repairPolicy puts the stream's playback policy from the database back into
// Redis when they differ (a PATCH whose Redis write failed, or raced with the
// session's dispatch; the policy key lost): routers and origins read Redis.
func (d *Dispatcher) repairPolicy(ctx context.Context, w Want, live string) {
	if w.Policy == "" || w.Policy == live {
		return
	}
	if err := d.owners.RestorePolicy(ctx, w.StreamID.String(), w.Policy); err != nil {
		d.log.WarnContext(ctx, "restoring the playback policy of a live stream", "stream_id", w.StreamID, "err", err)
		return
	}
	d.log.WarnContext(ctx, "restored the playback policy of a live stream", "stream_id", w.StreamID,
		"policy", w.Policy, "was", live)
}

// redispatchLost enqueues a task for a restored session at once when Redis has
// no dispatch record of it either: then no task of it is queued anywhere, and
// waiting for a first pickup would only delay the stream.
func (d *Dispatcher) redispatchLost(ctx context.Context, t job.Transcode) error {
	session := t.SessionID.String()
	if _, ok, err := d.loadRecord(ctx, session); err != nil || ok {
		return err
	}
	unlock, locked, err := d.lock(ctx, session)
	if err != nil || !locked {
		return err
	}
	defer unlock()
	attempt, err := d.rdb.HIncrBy(ctx, d.recordKey(session), "attempts", 1).Result()
	if err != nil {
		return fmt.Errorf("counting dispatches of session %s: %w", session, err)
	}
	if _, err := d.enqueue(ctx, t, attempt, "restore"); err != nil {
		return err
	}
	d.m.redispatched.Inc()
	return nil
}

type metrics struct {
	enqueued     *prometheus.CounterVec
	redispatched prometheus.Counter
	errors       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_dispatch_jobs_enqueued_total",
			Help: "Transcode tasks enqueued, by queue and kind (first: a session went live; redispatch: failover).",
		}, []string{"queue", "kind"}),
		redispatched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dionysia_dispatch_redispatch_total",
			Help: "Sessions re-dispatched by the failover watchdog because their worker was gone.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_dispatch_errors_total",
			Help: "Dispatch failures by operation (enqueue, watch, redispatch, reconcile).",
		}, []string{"op"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.enqueued, m.redispatched, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering dispatch metrics: %w", err)
		}
	}
	return m, nil
}
