package edge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/dionysia/dionysia/pkg/testkit"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/services/internal/edge"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
)

const (
	testSecret     = "edge-test-secret"
	workerUser     = "worker-1"
	workerPassword = "worker-pass"
)

// fakeAPI plays the API side of the edgeapi contract: it knows some stream
// keys and one worker credential, and records everything the edge sends.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	keys   map[string]string // stream key → stream ID
	auths  []edgeapi.AuthRequest
	events []edgeapi.Event
	syncs  []edgeapi.SyncRequest
	kick   []edgeapi.Kick // returned by the next sync, then cleared
	badReq int            // requests without the right secret
}

func newFakeAPI(t *testing.T, keys map[string]string) *fakeAPI {
	t.Helper()
	a := &fakeAPI{t: t, keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+edgeapi.AuthPath, func(w http.ResponseWriter, r *http.Request) {
		var req edgeapi.AuthRequest
		if !a.decode(w, r, &req) {
			return
		}
		a.mu.Lock()
		a.auths = append(a.auths, req)
		streamID, known := a.keys[req.StreamKey]
		a.mu.Unlock()
		var res edgeapi.AuthResponse
		switch {
		case !known:
			res = edgeapi.AuthResponse{Reason: "invalid_key"}
		case req.Action == edgeapi.ActionPublish:
			res = edgeapi.AuthResponse{Allow: true, StreamID: streamID}
		case req.Action == edgeapi.ActionRead && req.User == workerUser && req.Password == workerPassword:
			res = edgeapi.AuthResponse{Allow: true, StreamID: streamID}
		default:
			res = edgeapi.AuthResponse{Reason: "invalid_credentials"}
		}
		writeJSON(w, res)
	})
	mux.HandleFunc("POST "+edgeapi.EventsPath, func(w http.ResponseWriter, r *http.Request) {
		var ev edgeapi.Event
		if !a.decode(w, r, &ev) {
			return
		}
		a.mu.Lock()
		a.events = append(a.events, ev)
		a.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+edgeapi.SyncPath, func(w http.ResponseWriter, r *http.Request) {
		var req edgeapi.SyncRequest
		if !a.decode(w, r, &req) {
			return
		}
		a.mu.Lock()
		a.syncs = append(a.syncs, req)
		res := edgeapi.SyncResponse{Kick: a.kick}
		a.kick = nil
		a.mu.Unlock()
		writeJSON(w, res)
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeAPI) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if !edgeapi.CheckSecret(r, testSecret) {
		a.mu.Lock()
		a.badReq++
		a.mu.Unlock()
		http.Error(w, "bad secret", http.StatusUnauthorized)
		return false
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (a *fakeAPI) setKick(k ...edgeapi.Kick) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.kick = k
}

func (a *fakeAPI) authCalls() []edgeapi.AuthRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]edgeapi.AuthRequest(nil), a.auths...)
}

func (a *fakeAPI) allEvents() []edgeapi.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]edgeapi.Event(nil), a.events...)
}

// waitEvent waits for an event matching match.
func (a *fakeAPI) waitEvent(t *testing.T, timeout time.Duration, match func(edgeapi.Event) bool) edgeapi.Event {
	t.Helper()
	var found edgeapi.Event
	require.Eventually(t, func() bool {
		for _, ev := range a.allEvents() {
			if match(ev) {
				found = ev
				return true
			}
		}
		return false
	}, timeout, 50*time.Millisecond, "no matching event; got %+v", a.allEvents())
	return found
}

// waitSync waits for a sync sent after `after` that matches match.
func (a *fakeAPI) waitSync(t *testing.T, timeout time.Duration, after time.Time, match func(edgeapi.SyncRequest) bool) edgeapi.SyncRequest {
	t.Helper()
	var found edgeapi.SyncRequest
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, s := range a.syncs {
			if s.Time.After(after) && match(s) {
				found = s
				return true
			}
		}
		return false
	}, timeout, 50*time.Millisecond, "no matching sync")
	return found
}

// testBundle is one running edge (with its real mediamtx) and its fake API.
type testBundle struct {
	api      *fakeAPI
	edge     *edge.Edge
	reg      *prometheus.Registry
	cfg      edge.Config
	logs     *testkit.LogBuffer
	stop     func()
	rtmpBase string // rtmp://127.0.0.1:PORT
	srtAddr  string // 127.0.0.1:PORT
}

// setup starts an edge knowing the given stream keys (key → stream ID).
func setup(t *testing.T, keys map[string]string) *testBundle {
	t.Helper()
	api := newFakeAPI(t, keys)
	cfg := edge.Config{
		ID:                 "edge-test",
		APIURL:             api.srv.URL,
		Secret:             testSecret,
		MediaMTXPath:       testkit.MediaMTX(t),
		WorkDir:            t.TempDir(),
		BindAddress:        "127.0.0.1",
		AdvertiseHost:      "127.0.0.1",
		RTMPPort:           testkit.FreePort(t),
		SRTPort:            testkit.FreePort(t),
		RTSPPort:           testkit.FreePort(t),
		WebRTCPort:         testkit.FreePort(t),
		WebRTCUDPPort:      testkit.FreePort(t),
		HookAddress:        "127.0.0.1:0",
		MediaMTXAPIAddress: testkit.FreeAddr(t),
		AdminAddress:       "127.0.0.1:0",
		SyncInterval:       time.Second,
		StopTimeout:        5 * time.Second,
	}
	logger, logs := testkit.Logger(t)
	reg := prometheus.NewRegistry()
	e, err := edge.New(cfg, logger, reg)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-runErr:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Error("edge did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)

	b := &testBundle{
		api: api, edge: e, reg: reg, cfg: cfg, logs: logs, stop: stop,
		rtmpBase: fmt.Sprintf("rtmp://127.0.0.1:%d", cfg.RTMPPort),
		srtAddr:  fmt.Sprintf("127.0.0.1:%d", cfg.SRTPort),
	}
	b.waitReady(t, liveWithin)
	return b
}

func (b *testBundle) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		res, err := http.Get("http://" + b.edge.AdminAddr() + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, timeout, 100*time.Millisecond, "edge not ready")
}

func (b *testBundle) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			ok := true
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					ok = false
				}
			}
			if !ok {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// publishRTMP publishes the test source to live/key over RTMP.
func (b *testBundle) publishRTMP(t *testing.T, key string) *testkit.FFmpegProc {
	t.Helper()
	args := append(liveSource(t), "-f", "flv", b.rtmpBase+"/live/"+key)
	return testkit.StartFFmpeg(t, args...)
}

// publishSRT publishes the test source to live/key over SRT.
func (b *testBundle) publishSRT(t *testing.T, key string) *testkit.FFmpegProc {
	t.Helper()
	args := append(liveSource(t), "-f", "mpegts", "srt://"+b.srtAddr+"?streamid=publish:live/"+key+"&pkt_size=1316")
	return testkit.StartFFmpeg(t, args...)
}

func isReady(key string) func(edgeapi.Event) bool {
	return func(ev edgeapi.Event) bool {
		return ev.Type == edgeapi.EventReady && ev.Path == edgeapi.PathPrefix+key
	}
}

func isEnd(sourceID string) func(edgeapi.Event) bool {
	return func(ev edgeapi.Event) bool {
		return ev.Type == edgeapi.EventNotReady && ev.SourceID == sourceID
	}
}

// liveSource is the kit's real-time publisher input, without its size.
func liveSource(t *testing.T) []string {
	t.Helper()
	args, _, _ := testkit.LiveSource(t)
	return args
}
