package edge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/dionysia/dionysia/services/internal/testlog"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
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

// repoRoot walks up to the directory holding go.work.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.work not found above the test directory")
		}
		dir = parent
	}
}

// mediamtxBinary is the project's pinned build (deploy/local/build-mediamtx.sh).
func mediamtxBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "bin", "mediamtx")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("bin/mediamtx missing (run deploy/local/build-mediamtx.sh): %v", err)
	}
	return p
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

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
	logs     *testlog.Buffer
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
		MediaMTXPath:       mediamtxBinary(t),
		WorkDir:            t.TempDir(),
		BindAddress:        "127.0.0.1",
		AdvertiseHost:      "127.0.0.1",
		RTMPPort:           freeTCPPort(t),
		SRTPort:            freeUDPPort(t),
		RTSPPort:           freeTCPPort(t),
		WebRTCPort:         freeTCPPort(t),
		WebRTCUDPPort:      freeUDPPort(t),
		HookAddress:        "127.0.0.1:0",
		MediaMTXAPIAddress: fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)),
		AdminAddress:       "127.0.0.1:0",
		SyncInterval:       time.Second,
		StopTimeout:        5 * time.Second,
	}
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testlog.Writer{T: t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
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
	b.waitReady(t, 15*time.Second)
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

// ffmpegProc is one ffmpeg process; killed by PID at cleanup.
type ffmpegProc struct {
	cmd  *exec.Cmd
	out  *testlog.Buffer
	done chan struct{}
	err  error
}

// sourceArgs are ffmpeg input arguments: the shared clip looped in real
// time, or generated content when the clip is absent (or when
// DIONYSIA_TEST_GENERATED_SOURCE=1, to exercise that path).
func sourceArgs(t *testing.T) []string {
	t.Helper()
	clip := filepath.Join(repoRoot(t), "..", "shared", "media", "big_buck_bunny_1080p60_10s.mp4")
	if _, err := os.Stat(clip); err == nil && os.Getenv("DIONYSIA_TEST_GENERATED_SOURCE") != "1" {
		return []string{"-re", "-stream_loop", "-1", "-i", clip, "-c", "copy"}
	}
	return []string{
		"-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "96k",
	}
}

func startFFmpeg(t *testing.T, args ...string) *ffmpegProc {
	t.Helper()
	full := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, args...)
	p := &ffmpegProc{cmd: exec.Command("ffmpeg", full...), out: &testlog.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// publishRTMP publishes the test source to live/key over RTMP.
func (b *testBundle) publishRTMP(t *testing.T, key string) *ffmpegProc {
	t.Helper()
	args := append(sourceArgs(t), "-f", "flv", b.rtmpBase+"/live/"+key)
	return startFFmpeg(t, args...)
}

// publishSRT publishes the test source to live/key over SRT.
func (b *testBundle) publishSRT(t *testing.T, key string) *ffmpegProc {
	t.Helper()
	args := append(sourceArgs(t), "-f", "mpegts", "srt://"+b.srtAddr+"?streamid=publish:live/"+key+"&pkt_size=1316")
	return startFFmpeg(t, args...)
}

// interrupt stops ffmpeg the way a user does (SIGINT: it closes cleanly).
func (p *ffmpegProc) interrupt(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	p.wait(t, 10*time.Second)
}

// wait waits for ffmpeg to exit and returns its error.
func (p *ffmpegProc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("ffmpeg still running after %s; output:\n%s", timeout, p.out.String())
		return nil
	}
}

func (p *ffmpegProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
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
