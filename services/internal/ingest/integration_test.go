package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/pkg/testkit"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/api"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/dbtest"
	"github.com/dionysia/dionysia/services/internal/edge"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testSecret   = "ingest-integration-secret-0123"
	workerSecret = "ingest-integration-worker-secret"
	// liveWithin is how long the tests wait for live → API and stop → idle:
	// a deadline for a loaded machine, not a target (the tests log the time
	// it took; the e2e suite and the benchmarks report it).
	liveWithin = 60 * time.Second
)

// bundle is a real API (PostgreSQL, Redis) and a real edge (mediamtx) wired
// together, as `dionysia api` and `dionysia edge` run them.
type bundle struct {
	t        *testing.T
	ctx      context.Context
	api      *httptest.Server
	st       *store.Store
	key      string // admin API key
	edge     *edge.Edge
	insp     *asynq.Inspector
	rdb      *redis.Client // the queue database
	prefix   string        // this test's key prefix
	stops    job.StopSignal
	rtmpBase string
	srtAddr  string
	logs     *testkit.LogBuffer
}

func setup(t *testing.T) *bundle { return setupWithGrace(t, time.Second) }

// setupWithGrace is setup with the API's reconnect grace; the dispatcher runs,
// so deferred stops are carried out.
func setupWithGrace(t *testing.T, grace time.Duration) *bundle {
	t.Helper()
	mtx := testkit.MediaMTX(t)
	testkit.FFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)

	// asynq has no key prefix: the test gets a Redis database of its own.
	r := testkit.RedisDatabase(t)
	rdb, prefix := r.Client, r.Prefix

	logger, logs := testkit.Logger(t)
	pool := dbtest.New(t)
	st := store.New(pool)
	srv, err := api.NewApp(config.API{EdgeSecret: testSecret, WorkerSecret: workerSecret, Public: config.PublicURLs{EdgeHost: "127.0.0.1"},
		Dispatch: config.Dispatch{ReconnectGrace: grace},
		// The webhook test's receiver listens on loopback.
		AllowPrivateTargets: true},
		api.Deps{Store: st, Pool: pool, Redis: rdb, RedisPrefix: prefix, Objects: fileStore(t), Registry: prometheus.NewRegistry(), Logger: logger})
	require.NoError(t, err)
	dctx, dcancel := context.WithCancel(ctx)
	ddone := make(chan struct{})
	go func() { defer close(ddone); srv.RunBackground(dctx) }()
	t.Cleanup(func() { dcancel(); <-ddone })
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	_, key, err := st.CreateAPIKey(ctx, "it", store.ScopeAdmin)
	require.NoError(t, err)

	cfg := edge.Config{
		ID: "edge-it", APIURL: hs.URL, Secret: testSecret, MediaMTXPath: mtx, WorkDir: t.TempDir(),
		BindAddress: "127.0.0.1", AdvertiseHost: "127.0.0.1",
		RTMPPort: testkit.FreePort(t), SRTPort: testkit.FreePort(t), RTSPPort: testkit.FreePort(t), WebRTCPort: testkit.FreePort(t),
		WebRTCUDPPort: -1, HookAddress: "127.0.0.1:0", MediaMTXAPIAddress: testkit.FreeAddr(t),
		AdminAddress: "127.0.0.1:0", SyncInterval: time.Second, StopTimeout: 5 * time.Second,
	}
	e, err := edge.New(cfg, logger, prometheus.NewRegistry())
	require.NoError(t, err)
	ectx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ectx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("edge did not stop within 30 s")
		}
	})
	b := &bundle{t: t, ctx: ctx, api: hs, st: st, key: key, edge: e, insp: asynq.NewInspectorFromRedisClient(rdb), rdb: rdb, prefix: prefix,
		stops: job.StopSignal{Redis: rdb, Prefix: prefix}, logs: logs,
		rtmpBase: fmt.Sprintf("rtmp://127.0.0.1:%d", cfg.RTMPPort), srtAddr: fmt.Sprintf("127.0.0.1:%d", cfg.SRTPort)}
	// Generous: on a loaded 2-core machine mediamtx can take long to start
	// and answer its first poll. The failure says what the edge reported.
	var last string
	if !assert.Eventually(t, func() bool {
		res, err := http.Get("http://" + e.AdminAddr() + "/readyz")
		if err != nil {
			last = err.Error()
			return false
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		last = fmt.Sprintf("%d %s", res.StatusCode, body)
		return res.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond) {
		t.Fatalf("edge not ready within 60 s; last /readyz: %s", last)
	}
	return b
}

// call sends an API request with the admin key and decodes a 2xx answer.
func (b *bundle) call(method, path string, body, out any) int {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		require.NoError(b.t, err)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(b.ctx, method, b.api.URL+path, rd)
	require.NoError(b.t, err)
	req.Header.Set("Authorization", "Bearer "+b.key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	if out != nil && res.StatusCode < 300 {
		require.NoError(b.t, json.Unmarshal(data, out), string(data))
	}
	return res.StatusCode
}

// source fetches a session's source from the API as its worker does.
func (b *bundle) source(session uuid.UUID) (job.Source, int) {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.ctx, http.MethodGet, b.api.URL+job.SourcePath(session), nil)
	require.NoError(b.t, err)
	req.Header.Set("Authorization", "Bearer "+workerSecret)
	res, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	var src job.Source
	if res.StatusCode == http.StatusOK {
		require.NoError(b.t, json.NewDecoder(res.Body).Decode(&src))
	} else {
		require.Equal(b.t, "application/problem+json", res.Header.Get("Content-Type"))
	}
	return src, res.StatusCode
}

func (b *bundle) stream(id uuid.UUID) apiv1.Stream {
	b.t.Helper()
	var s apiv1.Stream
	require.Equal(b.t, http.StatusOK, b.call(http.MethodGet, "/api/v1/streams/"+id.String(), nil, &s))
	return s
}

func (b *bundle) sessions(id uuid.UUID) []apiv1.Session {
	b.t.Helper()
	var l apiv1.List[apiv1.Session]
	require.Equal(b.t, http.StatusOK, b.call(http.MethodGet, "/api/v1/streams/"+id.String()+"/sessions", nil, &l))
	return l.Data
}

// waitLive waits until the stream is live with a session other than not.
func (b *bundle) waitLive(id uuid.UUID, not uuid.UUID, within time.Duration) apiv1.Stream {
	b.t.Helper()
	var s apiv1.Stream
	require.Eventually(b.t, func() bool {
		s = b.stream(id)
		return s.Status == "live" && s.Session != nil && s.Session.ID != not && s.Session.Source.Width > 0
	}, within, 50*time.Millisecond, "stream %s not live within %s", id, within)
	return s
}

func (b *bundle) waitIdle(id uuid.UUID, within time.Duration) apiv1.Session {
	b.t.Helper()
	require.Eventually(b.t, func() bool { return b.stream(id).Status == "idle" }, within, 50*time.Millisecond,
		"stream %s not idle within %s", id, within)
	return b.sessions(id)[0]
}

// tasksOf returns the pending transcode tasks of a session in the CPU queue.
// waitTasks waits for the first task of a session to be enqueued (a stream
// is live in the database just before) and returns its tasks.
func (b *bundle) waitTasks(session uuid.UUID) []job.Transcode {
	b.t.Helper()
	var tasks []job.Transcode
	require.Eventually(b.t, func() bool { tasks = b.tasksOf(session); return len(tasks) > 0 }, liveWithin, 20*time.Millisecond,
		"no task enqueued for session %s", session)
	return tasks
}

func (b *bundle) tasksOf(session uuid.UUID) []job.Transcode {
	b.t.Helper()
	tasks, err := b.insp.ListPendingTasks(job.QueueCPU, asynq.PageSize(1000))
	if err != nil {
		// The test's own Redis database has no queue until the first task.
		require.ErrorIs(b.t, err, asynq.ErrQueueNotFound)
		return nil
	}
	var out []job.Transcode
	for _, ti := range tasks {
		if tr, err := job.Unmarshal(ti.Payload); err == nil && tr.SessionID == session {
			require.Equal(b.t, job.TaskID(session), ti.ID)
			out = append(out, tr)
		}
	}
	return out
}

func (b *bundle) createStream(name string) apiv1.Stream {
	b.t.Helper()
	var s apiv1.Stream
	require.Equal(b.t, http.StatusCreated, b.call(http.MethodPost, "/api/v1/streams", map[string]any{"name": name, "hardware": "cpu"}, &s))
	return s
}

func (b *bundle) publishRTMP(key string) *testkit.FFmpegProc {
	args, _, _ := testkit.LiveSource(b.t)
	return testkit.StartFFmpeg(b.t, append(args, "-f", "flv", b.rtmpBase+"/live/"+key)...)
}

func (b *bundle) publishSRT(key string) *testkit.FFmpegProc {
	args, _, _ := testkit.LiveSource(b.t)
	return testkit.StartFFmpeg(b.t, append(args, "-f", "mpegts", "srt://"+b.srtAddr+"?streamid=publish:live/"+key+"&pkt_size=1316")...)
}

// stopRequested waits (past the 1 s reconnect grace of setup, with a deadline for a loaded machine) for
// the worker of a session to be told to stop, and returns why.
func (b *bundle) stopRequested(session uuid.UUID) string {
	b.t.Helper()
	var reason string
	require.Eventually(b.t, func() bool {
		r, ok, err := b.stops.Requested(b.ctx, session)
		reason = r
		return err == nil && ok
	}, liveWithin, 50*time.Millisecond, "no stop requested for session %s", session)
	return reason
}

// events returns a stream's events, oldest first.
func (b *bundle) events(id uuid.UUID) []apiv1.Event {
	b.t.Helper()
	var list apiv1.List[apiv1.Event]
	require.Equal(b.t, http.StatusOK, b.call(http.MethodGet, "/api/v1/events?limit=200&stream_id="+id.String(), nil, &list))
	out := make([]apiv1.Event, len(list.Data))
	for i, e := range list.Data {
		out[len(out)-1-i] = e
	}
	return out
}

// countTypes counts events by type.
func countTypes(events []apiv1.Event) map[string]int {
	out := map[string]int{}
	for _, e := range events {
		out[e.Type]++
	}
	return out
}

// A real RTMP publish and stop records stream.live and session.started, then,
// once the reconnect grace passed, session.ended and stream.idle: each once.
func TestPublishAndStopEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("real edge, mediamtx and ffmpeg publishers: skipped with -short")
	}
	b := setup(t) // 1 s reconnect grace
	s := b.createStream("events")
	pub := b.publishRTMP(s.StreamKey)
	sess := b.waitLive(s.ID, uuid.Nil, liveWithin).Session
	require.Equal(t, []string{"stream.created", "session.started", "stream.live"}, typesOf(b.events(s.ID)))

	require.NoError(t, pub.Cmd.Process.Signal(syscall.SIGINT))
	stopped := time.Now()
	_ = pub.Wait(t, time.Minute)
	require.Equal(t, edgeapi.EndPublisherDisconnected, b.stopRequested(sess.ID), "the grace passed: the worker is told")
	var events []apiv1.Event
	require.Eventually(t, func() bool {
		events = b.events(s.ID)
		return countTypes(events)["stream.idle"] > 0
	}, liveWithin, 50*time.Millisecond, "no stream.idle")
	t.Logf("session.ended and stream.idle %s after the publisher stopped", time.Since(stopped).Round(time.Millisecond))
	require.Equal(t, []string{"stream.created", "session.started", "stream.live", "stream.disconnected", "session.ended", "stream.idle"},
		typesOf(events))
	var ended apiv1.EventSession
	require.NoError(t, json.Unmarshal(events[4].Data, &ended))
	require.Equal(t, sess.ID, ended.ID)
	require.Equal(t, edgeapi.EndPublisherDisconnected, *ended.EndReason)
	for _, e := range events {
		require.NotContains(t, string(e.Data), s.StreamKey, e.Type)
	}

	// The edge's later syncs and the stop loop's passes record nothing more.
	waitSyncs(t, b, 3)
	require.Equal(t, typesOf(events), typesOf(b.events(s.ID)))
}

// waitSyncs waits for n more syncs of the edge with the API.
func waitSyncs(t *testing.T, b *bundle, n int) {
	t.Helper()
	count := func() int { return strings.Count(b.logs.String(), "path="+edgeapi.SyncPath) }
	start := count()
	require.Eventually(t, func() bool { return count() >= start+n }, liveWithin, 50*time.Millisecond, "the edge stopped syncing")
}

func typesOf(events []apiv1.Event) []string {
	out := []string{}
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

func TestIngestLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("real edge, mediamtx and ffmpeg publishers: skipped with -short")
	}
	b := setup(t)
	_, wantW, wantH := testkit.LiveSource(t)
	s := b.createStream("it")

	// RTMP with a valid key: live with the source's size and codec within 5 s,
	// exactly one transcode task for the session.
	start := time.Now()
	pub := b.publishRTMP(s.StreamKey)
	live := b.waitLive(s.ID, uuid.Nil, liveWithin)
	t.Logf("RTMP live in the API after %s", time.Since(start).Round(time.Millisecond))
	sess := live.Session
	require.Equal(t, "rtmp", sess.Protocol)
	require.Equal(t, "H264", sess.Source.VideoCodec)
	require.Equal(t, wantW, sess.Source.Width)
	require.Equal(t, wantH, sess.Source.Height)
	require.Equal(t, "edge-it", sess.EdgeID)
	require.Len(t, b.waitTasks(sess.ID), 1)
	src, status := b.source(sess.ID)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, b.rtmpBase+"/live/"+s.StreamKey, src.URL, "the worker pulls from this edge")
	require.Equal(t, "worker", src.User)

	// A second publisher on the live key is refused by the edge.
	second := b.publishRTMP(s.StreamKey)
	require.Error(t, second.Wait(t, time.Minute))
	require.Equal(t, sess.ID, b.stream(s.ID).Session.ID)

	// The publisher stops: idle within 5 s, the session ended with its reason,
	// the worker told to stop.
	require.NoError(t, pub.Cmd.Process.Signal(syscall.SIGINT))
	stopped := time.Now()
	_ = pub.Wait(t, time.Minute)
	ended := b.waitIdle(s.ID, liveWithin)
	t.Logf("idle in the API %s after the publisher stopped", time.Since(stopped).Round(time.Millisecond))
	require.Equal(t, sess.ID, ended.ID)
	require.Equal(t, "ended", ended.Status)
	require.Equal(t, edgeapi.EndPublisherDisconnected, *ended.EndReason)
	require.Equal(t, edgeapi.EndPublisherDisconnected, b.stopRequested(sess.ID), "stopped once the 1 s reconnect grace passed")

	// A wrong key is refused by the edge and nothing is enqueued.
	wrong := b.publishRTMP("sk_" + strings.Repeat("0", 43))
	require.Error(t, wrong.Wait(t, time.Minute))
	require.Len(t, b.sessions(s.ID), 1)
	require.Contains(t, b.logs.String(), `reason=invalid_key`)

	// Republish over SRT: a new session and a new task.
	pub = b.publishSRT(s.StreamKey)
	live = b.waitLive(s.ID, sess.ID, liveWithin)
	srtSess := live.Session
	require.Equal(t, "srt", srtSess.Protocol)
	require.Equal(t, wantW, srtSess.Source.Width)
	require.Len(t, b.waitTasks(srtSess.ID), 1)

	// Disconnect kicks the publisher.
	require.Equal(t, http.StatusAccepted, b.call(http.MethodPost, "/api/v1/streams/"+s.ID.String()+"/disconnect", nil, nil))
	require.Error(t, pub.Wait(t, time.Minute), "ffmpeg should lose its connection")
	ended = b.waitIdle(s.ID, liveWithin)
	require.Equal(t, edgeapi.EndKicked, *ended.EndReason)
	require.Equal(t, "disconnect", *ended.EndDetail)

	// Rotating the key kicks the live publisher, and the old key is refused.
	pub = b.publishRTMP(s.StreamKey)
	live = b.waitLive(s.ID, srtSess.ID, liveWithin)
	var rotated apiv1.Stream
	require.Equal(t, http.StatusOK, b.call(http.MethodPost, "/api/v1/streams/"+s.ID.String()+"/stream-key", nil, &rotated))
	require.Error(t, pub.Wait(t, time.Minute))
	ended = b.waitIdle(s.ID, liveWithin)
	require.Equal(t, live.Session.ID, ended.ID)
	require.Equal(t, edgeapi.EndKicked, *ended.EndReason)
	require.Equal(t, "key_rotated", *ended.EndDetail)
	old := b.publishRTMP(s.StreamKey)
	require.Error(t, old.Wait(t, time.Minute), "the old key is refused")
	require.Equal(t, "idle", b.stream(s.ID).Status)

	// mediamtx killed: restarted, the session ended, a republish is live again.
	pub = b.publishRTMP(rotated.StreamKey)
	live = b.waitLive(s.ID, ended.ID, liveWithin)
	child := b.edge.ChildState()
	require.True(t, child.Running)
	require.NoError(t, syscall.Kill(child.PID, syscall.SIGKILL))
	ended = b.waitIdle(s.ID, liveWithin)
	require.Equal(t, live.Session.ID, ended.ID)
	require.Equal(t, edgeapi.EndEdgeRestarted, *ended.EndReason)
	require.Equal(t, edgeapi.EndEdgeRestarted, b.stopRequested(live.Session.ID))
	_ = pub.Wait(t, time.Minute)
	require.Eventually(t, func() bool {
		st := b.edge.ChildState()
		return st.Running && st.Generation > child.Generation
	}, 20*time.Second, 50*time.Millisecond)
	b.publishRTMP(rotated.StreamKey)
	again := b.waitLive(s.ID, live.Session.ID, 20*time.Second)
	require.Len(t, b.waitTasks(again.Session.ID), 1)
	require.Len(t, b.sessions(s.ID), 5, "rtmp (stopped), srt (disconnected), rtmp (key rotated), rtmp (mediamtx killed), rtmp (after the restart)")
	require.NotContains(t, b.logs.String(), s.StreamKey)
	require.NotContains(t, b.logs.String(), rotated.StreamKey)
}

// A publisher that drops and reconnects within the grace window continues the
// same session: the stream turns idle at once, comes back live with the same
// session id, no second task is enqueued and its worker is never told to stop.
func TestPublisherReconnectResumesTheSession(t *testing.T) {
	if testing.Short() {
		t.Skip("real edge, mediamtx and ffmpeg publishers: skipped with -short")
	}
	// A grace long enough for a loaded machine to see the drop and the
	// reconnect.
	b := setupWithGrace(t, time.Minute)
	s := b.createStream("reconnect")

	pub := b.publishRTMP(s.StreamKey)
	live := b.waitLive(s.ID, uuid.Nil, liveWithin)
	sess := live.Session
	require.Len(t, b.waitTasks(sess.ID), 1)

	require.NoError(t, pub.Cmd.Process.Signal(syscall.SIGINT))
	_ = pub.Wait(t, time.Minute)
	ended := b.waitIdle(s.ID, liveWithin)
	require.Equal(t, sess.ID, ended.ID)
	require.Equal(t, edgeapi.EndPublisherDisconnected, *ended.EndReason)

	// Meanwhile its worker, asking where to pull from, is told to wait.
	_, status := b.source(sess.ID)
	require.Equal(t, http.StatusServiceUnavailable, status, "within the grace the session may resume")

	dropped := time.Now()
	pub = b.publishRTMP(s.StreamKey)
	t.Cleanup(func() { _ = pub.Cmd.Process.Kill() })
	require.Eventually(t, func() bool {
		st := b.stream(s.ID)
		return st.Status == "live" && st.Session != nil
	}, liveWithin, 50*time.Millisecond)
	t.Logf("live again %s after the drop", time.Since(dropped).Round(time.Millisecond))
	back := b.stream(s.ID).Session
	require.Equal(t, sess.ID, back.ID, "the same session continues")
	require.Equal(t, "live", back.Status)
	require.Nil(t, back.EndReason)
	require.Len(t, b.sessions(s.ID), 1, "no new session")
	require.Len(t, b.tasksOf(sess.ID), 1, "no second task: the worker that waits for its source carries on")
	src, status := b.source(sess.ID)
	require.Equal(t, http.StatusOK, status, "resumed: the worker's next run pulls again")
	require.Equal(t, b.rtmpBase+"/live/"+s.StreamKey, src.URL)
	_, stopped, err := b.stops.Requested(b.ctx, sess.ID)
	require.NoError(t, err)
	require.False(t, stopped, "the worker is not told to stop")
	require.Equal(t, []string{"stream.created", "session.started", "stream.live", "stream.disconnected", "session.resumed", "stream.live"},
		typesOf(b.events(s.ID)), "no session.ended")
}

// While a stream is live, no Redis value holds its stream key (the publish
// credential) or its worker's read password: not the transcode task (asynq's
// keys of the queue), not the dispatch record, not the ownership and stop
// keys. The task carries references; the worker fetches the source from the
// API.
func TestNoStreamKeyInRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("real edge, mediamtx and ffmpeg publishers: skipped with -short")
	}
	b := setup(t)
	s := b.createStream("no-key-in-redis")
	b.publishRTMP(s.StreamKey)
	live := b.waitLive(s.ID, uuid.Nil, liveWithin)
	sess := live.Session.ID
	require.Len(t, b.waitTasks(sess), 1, "the task waits in the queue")
	require.Eventually(t, func() bool {
		n, err := b.rdb.Exists(b.ctx, b.prefix+"dispatch:"+sess.String()).Result()
		return err == nil && n == 1
	}, liveWithin, 50*time.Millisecond, "the dispatch record exists")
	src, status := b.source(sess)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, src.URL, s.StreamKey, "what a worker gets from the API holds the key")
	secrets := map[string]string{"stream key": s.StreamKey, "read password": src.Password}

	var keys []string
	for _, pattern := range []string{b.prefix + "*", "asynq:*"} {
		iter := b.rdb.Scan(b.ctx, 0, pattern, 1000).Iterator()
		for iter.Next(b.ctx) {
			keys = append(keys, iter.Val())
		}
		require.NoError(t, iter.Err())
	}
	taskKey := "asynq:{" + job.QueueCPU + "}:t:" + job.TaskID(sess)
	require.Contains(t, keys, taskKey, "the scan covers the task")
	sawSession := false
	for _, k := range keys {
		vals := []string{k}
		typ, err := b.rdb.Type(b.ctx, k).Result()
		require.NoError(t, err)
		switch typ {
		case "string":
			v, err := b.rdb.Get(b.ctx, k).Result()
			if !errors.Is(err, redis.Nil) {
				require.NoError(t, err, k)
			}
			vals = append(vals, v)
		case "hash":
			m, err := b.rdb.HGetAll(b.ctx, k).Result()
			require.NoError(t, err, k)
			for f, v := range m {
				vals = append(vals, f, v)
			}
		case "list":
			l, err := b.rdb.LRange(b.ctx, k, 0, -1).Result()
			require.NoError(t, err, k)
			vals = append(vals, l...)
		case "set":
			m, err := b.rdb.SMembers(b.ctx, k).Result()
			require.NoError(t, err, k)
			vals = append(vals, m...)
		case "zset":
			m, err := b.rdb.ZRange(b.ctx, k, 0, -1).Result()
			require.NoError(t, err, k)
			vals = append(vals, m...)
		case "none":
			continue // expired meanwhile
		default:
			t.Fatalf("key %s has type %s, which this test does not read", k, typ)
		}
		if dump, err := b.rdb.Dump(b.ctx, k).Result(); err == nil {
			vals = append(vals, dump)
		}
		for _, v := range vals {
			for what, secret := range secrets {
				require.NotContains(t, v, secret, "the %s is in Redis key %s (%s)", what, k, typ)
			}
			sawSession = sawSession || strings.Contains(v, sess.String())
		}
	}
	require.True(t, sawSession, "the scan saw the session's task and records")
	t.Logf("scanned %d keys: no stream key, no read password", len(keys))
}

// fileStore is a file object store in a temporary directory.
func fileStore(t testing.TB) storage.Store {
	t.Helper()
	st, err := storage.Open(context.Background(), "file://"+t.TempDir(), storage.Options{})
	require.NoError(t, err)
	return st
}
