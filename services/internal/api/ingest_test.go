package api_test

import (
	"context"
	"encoding/json"
	"github.com/dionysia/dionysia/pkg/testkit"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/fleet"
	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/ingest"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

const (
	edgeSecret   = "edge-secret-for-tests-0123"
	workerSecret = "worker-secret-for-tests-0123"
	playbackKeys = "k2:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3,k1:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4"
)

// ingestBundle is the API with its ingest side configured, and a fake edge
// kick endpoint recording what the API asks it to kick.
type ingestBundle struct {
	*testBundle
	rdb    *redis.Client
	prefix string
	insp   *asynq.Inspector
	owners *ownership.Store
	stops  job.StopSignal

	kickSrv *httptest.Server
	mu      sync.Mutex
	kicks   []edgeapi.Kick
}

func setupIngest(t *testing.T) *ingestBundle {
	t.Helper()
	return setupIngestWithGrace(t, 300*time.Millisecond)
}

// setupIngestWithGrace is setupIngest with the reconnect grace.
func setupIngestWithGrace(t *testing.T, grace time.Duration) *ingestBundle {
	t.Helper()
	return setupIngestBackground(t, grace, false)
}

// setupIngestBackground is setupIngestWithGrace that also runs the
// background loops (dispatch, worker stops, asset finalizer...) when
// background is set.
func setupIngestBackground(t *testing.T, grace time.Duration, background bool) *ingestBundle {
	t.Helper()
	// asynq has no key prefix: the test gets a Redis database of its own.
	r := testkit.RedisDatabase(t)
	rdb, prefix := r.Client, r.Prefix
	b := &ingestBundle{rdb: rdb, prefix: prefix, insp: asynq.NewInspectorFromRedisClient(rdb),
		owners: ownership.New(rdb, ownership.Config{Prefix: prefix}), stops: job.StopSignal{Redis: rdb, Prefix: prefix}}
	b.testBundle = setup(t, bundleOpts{redis: rdb, redisPrefix: prefix, edgeSecret: edgeSecret, workerSecret: workerSecret,
		playbackKeys: playbackKeys, dispatch: config.Dispatch{ReconnectGrace: grace}, background: background})
	b.kickSrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !edgeapi.CheckSecret(r, edgeSecret) || r.URL.Path != edgeapi.KickPath {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		var req edgeapi.KickRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.kicks = append(b.kicks, req.Kick...)
		b.mu.Unlock()
		_ = json.NewEncoder(w).Encode(edgeapi.KickResponse{Kicked: len(req.Kick)})
	}))
	t.Cleanup(b.kickSrv.Close)
	t.Cleanup(func() { deletePrefix(rdb, prefix) })
	return b
}

// deletePrefix deletes a test's Redis keys.
func deletePrefix(rdb *redis.Client, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}

// source fetches a session's source as its worker does.
func (b *ingestBundle) source(session uuid.UUID) (job.Source, response) {
	b.t.Helper()
	r := b.do(http.MethodGet, job.SourcePath(session), workerSecret, nil)
	var src job.Source
	if r.status == http.StatusOK {
		r.decode(b.t, &src)
	}
	return src, r
}

func (b *ingestBundle) edgeInfo(id string) edgeapi.EdgeInfo {
	return edgeapi.EdgeInfo{ID: id, PublicHost: "edge-api-test-" + id, RTMPPort: 1935, SRTPort: 8890, RTSPPort: 8554,
		KickURL: b.kickSrv.URL + edgeapi.KickPath}
}

func (b *ingestBundle) kicked() []edgeapi.Kick {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]edgeapi.Kick(nil), b.kicks...)
}

func (b *ingestBundle) auth(req edgeapi.AuthRequest) edgeapi.AuthResponse {
	b.t.Helper()
	r := b.do(http.MethodPost, edgeapi.AuthPath, edgeSecret, req)
	require.Equal(b.t, http.StatusOK, r.status, string(r.body))
	var res edgeapi.AuthResponse
	r.decode(b.t, &res)
	return res
}

func publish(edgeID, key string) edgeapi.AuthRequest {
	return edgeapi.AuthRequest{EdgeID: edgeID, Action: edgeapi.ActionPublish, Protocol: edgeapi.ProtocolRTMP,
		Path: edgeapi.PathPrefix + key, StreamKey: key, IP: "192.0.2.10", ConnID: uuid.NewString()}
}

func (b *ingestBundle) ready(edgeID string, s apiv1.Stream, sourceID string) edgeapi.Event {
	b.t.Helper()
	ev := edgeapi.Event{Type: edgeapi.EventReady, EdgeID: edgeID, BootID: "boot-1", Seq: 1, StreamID: s.ID.String(),
		Path: edgeapi.PathPrefix + s.StreamKey, SourceType: "rtmpConn", SourceID: sourceID, Protocol: edgeapi.ProtocolRTMP,
		Since: time.Now().Add(-2 * time.Second), Time: time.Now(),
		Media: &edgeapi.Media{VideoCodec: "H264", VideoProfile: "High", Width: 1920, Height: 1080, AudioCodec: "MPEG-4 Audio", AudioRate: 48000, AudioChannels: 6},
		Edge:  b.edgeInfo(edgeID)}
	r := b.do(http.MethodPost, edgeapi.EventsPath, edgeSecret, ev)
	require.Equal(b.t, http.StatusNoContent, r.status, string(r.body))
	return ev
}

func (b *ingestBundle) notReady(ev edgeapi.Event, reason string) {
	b.t.Helper()
	ev.Type, ev.Reason, ev.Seq = edgeapi.EventNotReady, reason, ev.Seq+1
	r := b.do(http.MethodPost, edgeapi.EventsPath, edgeSecret, ev)
	require.Equal(b.t, http.StatusNoContent, r.status, string(r.body))
}

func (b *ingestBundle) sync(req edgeapi.SyncRequest) edgeapi.SyncResponse {
	b.t.Helper()
	r := b.do(http.MethodPost, edgeapi.SyncPath, edgeSecret, req)
	require.Equal(b.t, http.StatusOK, r.status, string(r.body))
	var res edgeapi.SyncResponse
	r.decode(b.t, &res)
	return res
}

func (b *ingestBundle) getStream(id uuid.UUID) apiv1.Stream {
	b.t.Helper()
	r := b.do(http.MethodGet, "/api/v1/streams/"+id.String(), b.readKey, nil)
	require.Equal(b.t, http.StatusOK, r.status, string(r.body))
	var s apiv1.Stream
	r.decode(b.t, &s)
	return s
}

// tasksOf returns the pending tasks of a session in a queue.
func (b *ingestBundle) tasksOf(queue string, session uuid.UUID) []job.Transcode {
	b.t.Helper()
	tasks, err := b.insp.ListPendingTasks(queue, asynq.PageSize(1000))
	if err != nil {
		require.ErrorIs(b.t, err, asynq.ErrQueueNotFound)
		return nil
	}
	var out []job.Transcode
	for _, ti := range tasks {
		tr, err := job.Unmarshal(ti.Payload)
		if err == nil && tr.SessionID == session {
			require.Equal(b.t, job.TypeTranscode, ti.Type)
			out = append(out, tr)
		}
	}
	return out
}

func TestInternalEndpointsNeedTheirSecret(t *testing.T) {
	t.Parallel()
	b := setupIngest(t)
	paths := []string{edgeapi.AuthPath, edgeapi.EventsPath, edgeapi.SyncPath, job.SessionEventPath(uuid.New())}
	for _, p := range paths {
		for _, key := range []string{"", "wrong", b.adminKey} {
			r := b.do(http.MethodPost, p, key, map[string]any{})
			require.Equal(t, http.StatusUnauthorized, r.status, "%s with %q", p, key)
			require.Contains(t, r.problem(t).Detail, "secret")
		}
	}
	// The worker secret is not the edge's, and the other way round.
	require.Equal(t, http.StatusUnauthorized, b.do(http.MethodPost, edgeapi.AuthPath, workerSecret, map[string]any{}).status)
	require.Equal(t, http.StatusUnauthorized, b.do(http.MethodPost, job.SessionEventPath(uuid.New()), edgeSecret, map[string]any{}).status)

	// Not configured: 503.
	plain := setup(t)
	for _, p := range paths {
		r := plain.do(http.MethodPost, p, edgeSecret, map[string]any{})
		require.Equal(t, http.StatusServiceUnavailable, r.status, p)
		require.Contains(t, r.problem(t).Detail, "integration not configured")
	}
	s := plain.createStream(map[string]any{"name": "x"})
	r := plain.do(http.MethodPost, "/api/v1/streams/"+s.ID.String()+"/playback-token", plain.adminKey, nil)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Contains(t, r.problem(t).Detail, "playback signing not configured")
}

func TestPublishAuthorization(t *testing.T) {
	t.Parallel()
	b := setupIngest(t)
	s := b.createStream(map[string]any{"name": "auth"})
	off := b.createStream(map[string]any{"name": "off", "disabled": true})

	res := b.auth(publish("edge-a", s.StreamKey))
	require.Equal(t, edgeapi.AuthResponse{Allow: true, StreamID: s.ID.String()}, res)

	for name, tc := range map[string]struct {
		req    edgeapi.AuthRequest
		reason string
	}{
		"unknown key":     {publish("edge-a", "sk_"+strings.Repeat("x", 43)), ingest.ReasonInvalidKey},
		"malformed key":   {publish("edge-a", "hello"), ingest.ReasonInvalidKey},
		"disabled stream": {publish("edge-a", off.StreamKey), ingest.ReasonDisabled},
		"playback action": {edgeapi.AuthRequest{EdgeID: "edge-a", Action: "playback", Path: "live/" + s.StreamKey}, edgeapi.ReasonActionNotAllowed},
	} {
		res := b.auth(tc.req)
		require.False(t, res.Allow, name)
		require.Equal(t, tc.reason, res.Reason, name)
	}

	// Live on edge-a: another edge is refused, edge-a itself (a reconnect
	// whose old session's end is still on its way) is not.
	b.ready("edge-a", s, "src-1")
	res = b.auth(publish("edge-b", s.StreamKey))
	require.Equal(t, edgeapi.AuthResponse{Reason: ingest.ReasonAlreadyLive}, res)
	require.True(t, b.auth(publish("edge-a", s.StreamKey)).Allow)

	// Refusals are logged with their reason, never with the key.
	logs := b.logs.String()
	require.Contains(t, logs, `"reason":"invalid_key"`)
	require.Contains(t, logs, `"reason":"already_live"`)
	require.Contains(t, logs, edgeapi.StreamRef("live/"+off.StreamKey))
	require.NotContains(t, logs, s.StreamKey)
	require.NotContains(t, logs, off.StreamKey)

	metrics := string(b.do(http.MethodGet, "/metrics", "", nil).body)
	require.Contains(t, metrics, `dionysia_ingest_publish_total{reason="already_live",result="refused"} 1`)
	require.Contains(t, metrics, `dionysia_ingest_publish_total{reason="",result="accepted"} 2`)
	require.Contains(t, metrics, `dionysia_ingest_live_streams 1`)
}

func TestReadyOpensOneSessionAndOneTask(t *testing.T) {
	t.Parallel()
	b := setupIngest(t)
	s := b.createStream(map[string]any{"name": "live", "hardware": "cpu", "profile": "1080p", "outputs": []string{"hls"}})

	ev := b.ready("edge-a", s, "src-1")
	b.ready("edge-a", s, "src-1") // a retried event
	got := b.getStream(s.ID)
	require.Equal(t, "live", got.Status)
	require.NotNil(t, got.Session)
	sess := got.Session
	require.Equal(t, "live", sess.Status)
	require.Equal(t, "edge-a", sess.EdgeID)
	require.Equal(t, "rtmp", sess.Protocol)
	require.Equal(t, apiv1.Source{VideoCodec: "H264", VideoProfile: "High", Width: 1920, Height: 1080,
		AudioCodec: "MPEG-4 Audio", AudioChannels: 6, AudioSampleRate: 48000}, sess.Source)
	require.WithinDuration(t, ev.Since, sess.StartedAt, time.Millisecond)
	require.Nil(t, sess.WorkerID)

	r := b.do(http.MethodGet, "/api/v1/streams/"+s.ID.String()+"/sessions", b.readKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	var list apiv1.List[apiv1.Session]
	r.decode(t, &list)
	require.Len(t, list.Data, 1, "a repeated ready opens no second session")

	// Exactly one task, in the CPU queue, with what a worker needs.
	tasks := b.tasksOf(job.QueueCPU, sess.ID)
	require.Len(t, tasks, 1)
	tr := tasks[0]
	info, err := b.insp.GetTaskInfo(job.QueueCPU, job.TaskID(sess.ID))
	require.NoError(t, err)
	require.Equal(t, job.Timeout, info.Timeout)
	require.Equal(t, s.ID, tr.StreamID)
	require.Equal(t, "1080p", tr.ProfileName)
	require.Len(t, tr.Ladder.Renditions, 4)
	require.Equal(t, []string{"hls"}, tr.Outputs)
	require.Equal(t, 2.0, tr.SegmentDuration)
	require.Equal(t, "public", tr.PlaybackPolicy)
	require.Empty(t, b.tasksOf(job.QueueGPU, sess.ID))

	st, err := b.owners.State(context.Background(), s.ID.String())
	require.NoError(t, err)
	require.NotNil(t, st.Assignment)
	require.Equal(t, sess.ID.String(), st.Assignment.SessionID)

	// The task carries no credential: the worker fetches where to pull from,
	// with its worker secret (and only with it).
	info, err = b.insp.GetTaskInfo(job.QueueCPU, job.TaskID(sess.ID))
	require.NoError(t, err)
	require.NotContains(t, string(info.Payload), s.StreamKey)
	src, r := b.source(sess.ID)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	require.Equal(t, "rtmp://edge-api-test-edge-a:1935/live/"+s.StreamKey, src.URL)
	require.Equal(t, ingest.WorkerUser, src.User)
	require.NotContains(t, string(info.Payload), src.Password)
	for _, secret := range []string{"", edgeSecret, b.adminKey} {
		require.Equal(t, http.StatusUnauthorized, b.do(http.MethodGet, job.SourcePath(sess.ID), secret, nil).status)
	}
	unknown := uuid.New()
	_, r = b.source(unknown)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Contains(t, r.problem(t).Detail, unknown.String())

	// The worker reads with the credential it fetched, and only with it.
	read := edgeapi.AuthRequest{EdgeID: "edge-a", Action: edgeapi.ActionRead, Protocol: "rtmp", Path: "live/" + s.StreamKey,
		StreamKey: s.StreamKey, User: src.User, Password: src.Password}
	require.Equal(t, edgeapi.AuthResponse{Allow: true, StreamID: s.ID.String()}, b.auth(read))
	bad := read
	bad.Password = ingest.WorkerPassword(edgeSecret, s.ID, uuid.New())
	require.Equal(t, ingest.ReasonInvalidCredentials, b.auth(bad).Reason)
	bad.User, bad.Password = "", ""
	require.False(t, b.auth(bad).Allow)

	// The publisher leaves: session ended with its reason, stream idle at
	// once; its worker is told to stop when the reconnect grace (300 ms here)
	// passes without the publisher coming back.
	b.notReady(ev, edgeapi.EndPublisherDisconnected)
	b.notReady(ev, edgeapi.EndPublisherDisconnected) // retried: harmless
	got = b.getStream(s.ID)
	require.Equal(t, "idle", got.Status)
	require.Nil(t, got.Session)
	_, stopped, err := b.stops.Requested(context.Background(), sess.ID)
	require.NoError(t, err)
	require.False(t, stopped, "not before the reconnect grace")
	_, r = b.source(sess.ID)
	if r.status == http.StatusServiceUnavailable { // within the 300 ms grace: the worker waits
		require.Equal(t, "1", r.header.Get("Retry-After"))
		require.Contains(t, r.problem(t).Detail, "may resume")
	} else {
		require.Equal(t, http.StatusConflict, r.status, string(r.body))
	}
	dctx, dcancel := context.WithCancel(context.Background())
	ddone := make(chan struct{})
	go func() { defer close(ddone); b.srv.RunBackground(dctx) }()
	t.Cleanup(func() { dcancel(); <-ddone })
	var reason string
	require.Eventually(t, func() bool {
		reason, stopped, err = b.stops.Requested(context.Background(), sess.ID)
		return err == nil && stopped
	}, 30*time.Second, 20*time.Millisecond, "the worker is told to stop once the grace passed")
	require.Equal(t, edgeapi.EndPublisherDisconnected, reason)
	st, err = b.owners.State(context.Background(), s.ID.String())
	require.NoError(t, err)
	require.Nil(t, st.Assignment)
	r = b.do(http.MethodGet, "/api/v1/streams/"+s.ID.String()+"/sessions", b.readKey, nil)
	list = apiv1.List[apiv1.Session]{}
	r.decode(t, &list)
	require.Equal(t, "ended", list.Data[0].Status)
	require.Equal(t, edgeapi.EndPublisherDisconnected, *list.Data[0].EndReason)
	require.NotNil(t, list.Data[0].EndedAt)
	require.Equal(t, ingest.ReasonNotLive, b.auth(read).Reason, "an ended session's credential is dead")
	_, r = b.source(sess.ID)
	require.Equal(t, http.StatusConflict, r.status, "the grace passed: the session is over")
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	require.Contains(t, r.problem(t).Detail, "publisher_disconnected")

	// Republishing opens a new session with a new task.
	b.ready("edge-a", s, "src-2")
	again := b.getStream(s.ID)
	require.NotEqual(t, sess.ID, again.Session.ID)
	require.Len(t, b.tasksOf(job.QueueCPU, again.Session.ID), 1)

	metrics := string(b.do(http.MethodGet, "/metrics", "", nil).body)
	require.Contains(t, metrics, `dionysia_dispatch_jobs_enqueued_total{kind="first",queue="transcode-cpu"} 2`)
	require.Contains(t, metrics, `dionysia_ingest_sessions_ended_total{reason="publisher_disconnected"} 1`)
	require.NotContains(t, b.logs.String(), s.StreamKey)
	require.NotContains(t, b.logs.String(), src.Password)
}

// The playback policy's source of truth is the database; its live view, which
// routers and origins read, is in Redis: written with the assignment, updated
// by PATCH at once, and repaired by the dispatcher when they differ.
func TestPolicyChangeReachesLivePlayback(t *testing.T) {
	t.Parallel()
	b := setupIngest(t)
	ctx := context.Background()
	s := b.createStream(map[string]any{"name": "policy"})
	idle := b.createStream(map[string]any{"name": "idle"})
	b.ready("edge-p", s, "src-1")
	policy := func(id uuid.UUID) string {
		st, err := b.owners.State(ctx, id.String())
		require.NoError(t, err)
		return st.Policy
	}
	require.Equal(t, playback.PolicyPublic, policy(s.ID))

	patch := func(id uuid.UUID, p string) {
		t.Helper()
		r := b.do(http.MethodPatch, "/api/v1/streams/"+id.String(), b.adminKey, map[string]any{"playback_policy": p})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
	}
	patch(s.ID, playback.PolicySigned)
	require.Equal(t, playback.PolicySigned, policy(s.ID), "applied to the live view by the PATCH itself")
	patch(s.ID, playback.PolicyPublic)
	require.Equal(t, playback.PolicyPublic, policy(s.ID))
	patch(idle.ID, playback.PolicySigned)
	n, err := b.rdb.Exists(ctx, b.owners.PolicyKey(idle.ID.String())).Result()
	require.NoError(t, err)
	require.Zero(t, n, "a stream that is not live leaves nothing in Redis")

	// Drift (a lost write, a lost key) is repaired from the database.
	patch(s.ID, playback.PolicySigned)
	require.NoError(t, b.rdb.Set(ctx, b.owners.PolicyKey(s.ID.String()), playback.PolicyPublic, 0).Err())
	dctx, dcancel := context.WithCancel(ctx)
	ddone := make(chan struct{})
	go func() { defer close(ddone); b.srv.RunBackground(dctx) }()
	t.Cleanup(func() { dcancel(); <-ddone })
	require.Eventually(t, func() bool { return policy(s.ID) == playback.PolicySigned }, 20*time.Second, 50*time.Millisecond)
	require.NoError(t, b.rdb.Del(ctx, b.owners.PolicyKey(s.ID.String())).Err())
	require.Eventually(t, func() bool { return policy(s.ID) == playback.PolicySigned }, 20*time.Second, 50*time.Millisecond)
}

func TestAutoHardwarePicksAFreeGPU(t *testing.T) {
	t.Parallel()
	b := setupIngest(t)
	s := b.createStream(map[string]any{"name": "auto"})
	b.ready("edge-a", s, "src-1")
	sess := b.getStream(s.ID).Session
	require.Len(t, b.tasksOf(job.QueueCPU, sess.ID), 1, "no GPU worker: the CPU queue")

	reg := fleet.New(b.rdb, fleet.Config{Prefix: b.prefix})
	require.NoError(t, reg.Heartbeat(context.Background(), fleet.Worker{ID: "gpu-1", Class: fleet.ClassGPU, Capacity: 4, Load: 1}))
	s2 := b.createStream(map[string]any{"name": "auto2"})
	b.ready("edge-a", s2, "src-2")
	sess2 := b.getStream(s2.ID).Session
	require.Len(t, b.tasksOf(job.QueueGPU, sess2.ID), 1, "an up GPU worker with room: the GPU queue")
}

func TestSyncReconciles(t *testing.T) {
	t.Parallel()
	b := setupIngest(t)
	gone := b.createStream(map[string]any{"name": "gone"})
	missed := b.createStream(map[string]any{"name": "missed"})
	kept := b.createStream(map[string]any{"name": "kept"})
	b.ready("edge-s", gone, "src-gone")
	b.ready("edge-s", kept, "src-kept")
	goneSess := b.getStream(gone.ID).Session

	live := func(s apiv1.Stream, src string, kbps int) edgeapi.LiveStream {
		return edgeapi.LiveStream{StreamID: s.ID.String(), Path: "live/" + s.StreamKey, SourceType: "rtmpConn", SourceID: src,
			Protocol: "rtmp", Since: time.Now(), Media: edgeapi.Media{VideoCodec: "H264", Width: 1280, Height: 720, BitrateKbps: kbps}}
	}
	res := b.sync(edgeapi.SyncRequest{EdgeID: "edge-s", BootID: "boot-1", Ready: true, Time: time.Now(), Edge: b.edgeInfo("edge-s"),
		Live: []edgeapi.LiveStream{live(missed, "src-missed", 0), live(kept, "src-kept", 5400)}})
	require.Empty(t, res.Kick)

	// Not listed: ended as lost, the worker told to stop.
	g := b.getStream(gone.ID)
	require.Equal(t, "idle", g.Status)
	r := b.do(http.MethodGet, "/api/v1/streams/"+gone.ID.String()+"/sessions", b.readKey, nil)
	var list apiv1.List[apiv1.Session]
	r.decode(t, &list)
	require.Equal(t, ingest.EndEdgeLost, *list.Data[0].EndReason)
	_, stopped, err := b.stops.Requested(context.Background(), goneSess.ID)
	require.NoError(t, err)
	require.True(t, stopped)

	// Listed but unknown (a missed ready): opened and dispatched.
	m := b.getStream(missed.ID)
	require.Equal(t, "live", m.Status)
	require.Equal(t, 1280, m.Session.Source.Width)
	require.Len(t, b.tasksOf(job.QueueCPU, m.Session.ID), 1)

	// Known: its bitrate is updated.
	k := b.getStream(kept.ID)
	require.Equal(t, 5400, k.Session.Source.BitrateKbps)
	require.Equal(t, 1280, k.Session.Source.Width, "the sync's media updates the session")
	require.Equal(t, "High", k.Session.Source.VideoProfile, "what the sync does not report is kept")

	// Disabled, rotated and disconnected streams are kicked: at once through
	// the edge's kick URL, and in every sync answer until they are gone.
	r = b.do(http.MethodPatch, "/api/v1/streams/"+kept.ID.String(), b.adminKey, map[string]any{"disabled": true})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r = b.do(http.MethodPost, "/api/v1/streams/"+missed.ID.String()+"/stream-key", b.adminKey, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.ElementsMatch(t, []edgeapi.Kick{{SourceID: "src-kept", Reason: ingest.KickDisabled}, {SourceID: "src-missed", Reason: ingest.KickKeyRotated}}, b.kicked())
	req := edgeapi.SyncRequest{EdgeID: "edge-s", BootID: "boot-1", Ready: true, Time: time.Now(), Edge: b.edgeInfo("edge-s"),
		Live: []edgeapi.LiveStream{live(missed, "src-missed", 0), live(kept, "src-kept", 5400)}}
	require.ElementsMatch(t, []edgeapi.Kick{{SourceID: "src-kept", Reason: ingest.KickDisabled}, {SourceID: "src-missed", Reason: ingest.KickKeyRotated}}, b.sync(req).Kick)

	// The old key is refused from now on.
	require.Equal(t, ingest.ReasonInvalidKey, b.auth(publish("edge-s", missed.StreamKey)).Reason)

	// An unknown publisher on a key that no longer exists is kicked, not opened.
	ghost := live(apiv1.Stream{ID: uuid.New(), StreamKey: "sk_" + strings.Repeat("g", 43)}, "src-ghost", 0)
	res = b.sync(edgeapi.SyncRequest{EdgeID: "edge-s", Ready: true, Edge: b.edgeInfo("edge-s"), Live: []edgeapi.LiveStream{ghost}})
	require.Contains(t, res.Kick, edgeapi.Kick{SourceID: "src-ghost", Reason: ingest.KickUnknownStream})
	require.Equal(t, "idle", b.getStream(kept.ID).Status, "that sync did not list kept: ended")
}

func TestDisconnect(t *testing.T) {
	t.Parallel()
	b := setupIngest(t)
	s := b.createStream(map[string]any{"name": "d"})
	r := b.do(http.MethodPost, "/api/v1/streams/"+s.ID.String()+"/disconnect", b.adminKey, nil)
	require.Equal(t, http.StatusConflict, r.status)
	require.Contains(t, r.problem(t).Detail, "not live")
	require.Equal(t, http.StatusForbidden, b.do(http.MethodPost, "/api/v1/streams/"+s.ID.String()+"/disconnect", b.readKey, nil).status)

	ev := b.ready("edge-d", s, "src-1")
	r = b.do(http.MethodPost, "/api/v1/streams/"+s.ID.String()+"/disconnect", b.adminKey, nil)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	var got apiv1.Stream
	r.decode(t, &got)
	require.Equal(t, ingest.KickDisconnect, *got.Session.KickReason)
	require.Equal(t, []edgeapi.Kick{{SourceID: "src-1", Reason: ingest.KickDisconnect}}, b.kicked())
	res := b.sync(edgeapi.SyncRequest{EdgeID: "edge-d", Ready: true, Edge: b.edgeInfo("edge-d"),
		Live: []edgeapi.LiveStream{{StreamID: s.ID.String(), Path: "live/" + s.StreamKey, SourceID: "src-1", Protocol: "rtmp"}}})
	require.Equal(t, []edgeapi.Kick{{SourceID: "src-1", Reason: ingest.KickDisconnect}}, res.Kick)

	ev.Detail = ingest.KickDisconnect
	b.notReady(ev, edgeapi.EndKicked)
	r = b.do(http.MethodGet, "/api/v1/streams/"+s.ID.String()+"/sessions", b.readKey, nil)
	var list apiv1.List[apiv1.Session]
	r.decode(t, &list)
	require.Equal(t, edgeapi.EndKicked, *list.Data[0].EndReason)
	require.Equal(t, ingest.KickDisconnect, *list.Data[0].EndDetail)
}

func TestWorkerEvents(t *testing.T) {
	t.Parallel()
	b := setupIngest(t)
	s := b.createStream(map[string]any{"name": "w"})
	b.ready("edge-w", s, "src-1")
	sess := b.getStream(s.ID).Session
	post := func(ev job.SessionEvent) response {
		return b.do(http.MethodPost, job.SessionEventPath(sess.ID), workerSecret, ev)
	}
	require.Equal(t, http.StatusNoContent, post(job.SessionEvent{SessionID: sess.ID, WorkerID: "w-1", Type: job.EventStarted}).status)
	got := b.getStream(s.ID).Session
	require.Equal(t, "w-1", *got.WorkerID)
	require.Equal(t, "live", got.Status)

	require.Equal(t, http.StatusNoContent, post(job.SessionEvent{WorkerID: "w-1", Type: job.EventRestarted, Reason: "decoder error"}).status)
	require.Equal(t, "decoder error", *b.getStream(s.ID).Session.LastError)

	require.Equal(t, http.StatusNoContent, post(job.SessionEvent{WorkerID: "w-1", Type: job.EventFailed, Reason: "gave up"}).status)
	got = b.getStream(s.ID).Session
	require.Equal(t, "failed", got.Status)
	require.Equal(t, "gave up", *got.LastError)
	require.Equal(t, "live", b.getStream(s.ID).Status, "ingest is still live")
	st, err := b.owners.State(context.Background(), s.ID.String())
	require.NoError(t, err)
	require.Nil(t, st.Assignment, "a failed session is not handed around")

	require.Equal(t, http.StatusNoContent, post(job.SessionEvent{WorkerID: "w-1", Type: job.EventFinished}).status)

	r := post(job.SessionEvent{WorkerID: "w-1", Type: "exploded"})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	r = post(job.SessionEvent{SessionID: uuid.New(), WorkerID: "w-1", Type: job.EventStarted})
	require.Equal(t, http.StatusBadRequest, r.status)
	unknown := uuid.New()
	r = b.do(http.MethodPost, job.SessionEventPath(unknown), workerSecret, job.SessionEvent{WorkerID: "w", Type: job.EventStarted})
	require.Equal(t, http.StatusNotFound, r.status)
	require.Contains(t, r.problem(t).Detail, unknown.String())
}

func TestWorkersList(t *testing.T) {
	t.Parallel()
	b := setupIngest(t)
	r := b.do(http.MethodGet, "/api/v1/workers", b.readKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	var list apiv1.List[apiv1.Worker]
	r.decode(t, &list)
	require.Empty(t, list.Data)

	reg := fleet.New(b.rdb, fleet.Config{Prefix: b.prefix, Interval: time.Second})
	started := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	require.NoError(t, reg.Heartbeat(context.Background(), fleet.Worker{ID: "cpu-1", Host: "host-a", OriginURL: "http://10.0.0.5:8090",
		Class: fleet.ClassCPU, Capacity: 2, Load: 1, Version: "v1.2.3", Encoders: []string{"x264enc"}, StartedAt: started}))
	require.NoError(t, reg.Heartbeat(context.Background(), fleet.Worker{ID: "cpu-2", Class: fleet.ClassCPU, Capacity: 2}))
	require.NoError(t, reg.Deregister(context.Background(), "cpu-2"))

	r = b.do(http.MethodGet, "/api/v1/workers", b.readKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	list = apiv1.List[apiv1.Worker]{}
	r.decode(t, &list)
	require.Len(t, list.Data, 2)
	w := list.Data[0]
	require.Equal(t, "cpu-1", w.ID)
	require.Equal(t, "host-a", w.Host)
	require.Equal(t, "up", w.State)
	require.Equal(t, 1, w.Load)
	require.Equal(t, 2, w.Capacity)
	require.Equal(t, []string{"x264enc"}, w.Encoders)
	require.Equal(t, "v1.2.3", w.Version)
	require.True(t, started.Equal(w.StartedAt))
	require.WithinDuration(t, time.Now(), w.LastSeen, time.Minute, "a recent heartbeat, not a stale one")
	require.Equal(t, "gone", list.Data[1].State)
}

// requireExpiry checks that a token minted between before and after with a
// lifetime of ttl expires ttl after it was minted (to the second: tokens carry
// whole seconds).
func requireExpiry(t *testing.T, before, after time.Time, ttl time.Duration, got time.Time) {
	t.Helper()
	lo, hi := before.Add(ttl).Truncate(time.Second), after.Add(ttl+time.Second)
	require.False(t, got.Before(lo) || got.After(hi), "expiry %s outside [%s, %s]", got, lo, hi)
}

func TestPlaybackToken(t *testing.T) {
	t.Parallel()
	b := setupIngest(t)
	s := b.createStream(map[string]any{"name": "p", "playback_policy": "signed"})
	signer, err := playback.ParseKeys(playbackKeys)
	require.NoError(t, err)

	before := time.Now()
	r := b.do(http.MethodPost, "/api/v1/streams/"+s.ID.String()+"/playback-token", b.adminKey, map[string]any{"ttl_seconds": 600, "ip": "203.0.113.9"})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var tok apiv1.PlaybackToken
	r.decode(t, &tok)
	requireExpiry(t, before, time.Now(), 10*time.Minute, tok.ExpiresAt)
	require.NoError(t, signer.Verify(tok.Token, s.ID.String(), "203.0.113.9", time.Now()))
	require.ErrorIs(t, signer.Verify(tok.Token, s.ID.String(), "203.0.113.10", time.Now()), playback.ErrWrongIP)
	require.ErrorIs(t, signer.Verify(tok.Token, s.ID.String(), "203.0.113.9", time.Now().Add(11*time.Minute)), playback.ErrExpired)
	require.Equal(t, "https://play.example.com/live/"+s.ID.String()+"/t/"+tok.Token+"/index.m3u8", tok.HLS)
	require.Equal(t, "https://play.example.com/live/"+s.ID.String()+"/t/"+tok.Token+"/manifest.mpd", tok.DASH)
	p, err := playback.ParsePath(strings.TrimPrefix(tok.HLS, "https://play.example.com"))
	require.NoError(t, err)
	require.Equal(t, tok.Token, p.Token)
	require.True(t, strings.HasPrefix(tok.Token, "k2."), "signed with the first (current) key")

	// No body: the default lifetime, no IP binding. A read key may not mint.
	before = time.Now()
	r = b.do(http.MethodPost, "/api/v1/streams/"+s.ID.String()+"/playback-token", b.adminKey, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	tok = apiv1.PlaybackToken{}
	r.decode(t, &tok)
	requireExpiry(t, before, time.Now(), time.Hour, tok.ExpiresAt)
	require.NoError(t, signer.Verify(tok.Token, s.ID.String(), "", time.Now()))
	require.Equal(t, http.StatusForbidden, b.do(http.MethodPost, "/api/v1/streams/"+s.ID.String()+"/playback-token", b.readKey, nil).status)

	r = b.do(http.MethodPost, "/api/v1/streams/"+s.ID.String()+"/playback-token", b.adminKey, map[string]any{"ttl_seconds": 5, "ip": "nope"})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.ElementsMatch(t, []string{"ttl_seconds", "ip"}, fieldsOf(r.problem(t)))
	r = b.do(http.MethodPost, "/api/v1/streams/"+uuid.NewString()+"/playback-token", b.adminKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	require.NotContains(t, b.logs.String(), tok.Token)
}

// The stop that a publisher's drop leaves due after the reconnect grace is
// kept with the session in PostgreSQL: Redis losing all its data meanwhile
// does not lose it. Once the worker was told, the session cannot be resumed:
// the publisher coming back gets a new session.
func TestDeferredWorkerStopSurvivesRedisDataLoss(t *testing.T) {
	t.Parallel()
	b := setupIngest(t)
	s := b.createStream(map[string]any{"name": "grace"})
	ev := b.ready("edge-a", s, "conn-grace-1")
	first := b.getStream(s.ID).Session
	require.NotNil(t, first)
	b.notReady(ev, edgeapi.EndPublisherDisconnected)
	deletePrefix(b.rdb, b.prefix) // a Redis restart without persistence

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.srv.RunBackground(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var reason string
	require.Eventually(t, func() bool {
		r, ok, err := b.stops.Requested(context.Background(), first.ID)
		reason = r
		return err == nil && ok
	}, 30*time.Second, 20*time.Millisecond, "the worker is told to stop once the grace passed")
	require.Equal(t, edgeapi.EndPublisherDisconnected, reason)

	b.ready("edge-a", s, "conn-grace-2")
	again := b.getStream(s.ID).Session
	require.NotNil(t, again)
	require.NotEqual(t, first.ID, again.ID, "a session whose worker was stopped is not resumed")
}
