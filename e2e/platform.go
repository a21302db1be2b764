package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Options shape a platform.
type Options struct {
	Workers  int           // number of CPU workers; default 1
	LeaseTTL time.Duration // workers' ownership lease; default the worker's
}

// Platform is every Dionysia process running on loopback, against a fresh
// database and a flushed Redis database.
type Platform struct {
	t       testing.TB
	Root    string
	Bin     string // directory holding dionysia and dionysia-worker
	LogDir  string
	BaseEnv []string

	DatabaseURL string
	RedisURL    string
	Redis       *redis.Client

	APIURL    string
	RouterURL string
	APIKey    string

	EdgeRTMPPort int
	EdgeSRTPort  int

	API, Edge, Router, RedisProc *Proc
	redisPort                    int
	Workers                      []*Worker
}

// Worker is one worker process.
type Worker struct {
	ID        string
	OriginURL string
	Proc      *Proc
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binaries builds dionysia and dionysia-worker once per test process (the Go
// build cache makes it fast after `just build`, which builds with the same
// flags).
func Binaries(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	buildOnce.Do(func() {
		buildDir = filepath.Join(root, ".dev", "e2e", "bin")
		if err := os.MkdirAll(buildDir, 0o755); err != nil {
			buildErr = err
			return
		}
		if out, err := RunErr(15*time.Minute, []string{"CGO_ENABLED=0"}, "go", "-C", root, "build", "-trimpath", "-o", filepath.Join(buildDir, "dionysia"), "./services/cmd/dionysia"); err != nil {
			buildErr = fmt.Errorf("building dionysia: %v\n%s", err, out)
			return
		}
		if out, err := RunErr(15*time.Minute, nil, "go", "-C", root, "build", "-trimpath", "-o", filepath.Join(buildDir, "dionysia-worker"), "./workers/cmd/dionysia-worker"); err != nil {
			buildErr = fmt.Errorf("building dionysia-worker: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start brings the platform up. Everything is stopped and removed at cleanup.
func Start(t testing.TB, opts Options) *Platform {
	t.Helper()
	if opts.Workers == 0 {
		opts.Workers = 1
	}
	root := RepoRoot(t)
	mediamtx := filepath.Join(root, "bin", "mediamtx")
	if _, err := os.Stat(mediamtx); err != nil {
		t.Fatalf("bin/mediamtx is missing: run deploy/local/build-mediamtx.sh (or just setup): %v", err)
	}
	p := &Platform{t: t, Root: root, Bin: Binaries(t)}
	p.LogDir = os.Getenv("E2E_LOG_DIR")
	if p.LogDir == "" {
		p.LogDir = t.TempDir()
	} else {
		p.LogDir = filepath.Join(p.LogDir, strings.ReplaceAll(t.Name(), "/", "_"))
		_ = os.MkdirAll(p.LogDir, 0o755)
	}
	t.Logf("process logs in %s", p.LogDir)

	p.DatabaseURL = createDatabase(t)
	p.StartRedis(t)
	apiPort, routerPort := FreePort(t), FreePort(t)
	p.EdgeRTMPPort, p.EdgeSRTPort = FreePort(t), FreePort(t)
	rtspPort, webrtcPort := FreePort(t), FreePort(t)
	p.APIURL = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	p.RouterURL = fmt.Sprintf("http://127.0.0.1:%d", routerPort)
	playbackKey := base64.StdEncoding.EncodeToString([]byte(randomHex(32)))
	p.BaseEnv = []string{
		"DIONYSIA_DATABASE_URL=" + p.DatabaseURL,
		"DIONYSIA_REDIS_URL=" + p.RedisURL,
		"DIONYSIA_API_URL=" + p.APIURL,
		"DIONYSIA_EDGE_SECRET=" + randomHex(16),
		"DIONYSIA_WORKER_SECRET=" + randomHex(16),
		"DIONYSIA_PLAYBACK_KEYS=k1:" + playbackKey,
		"DIONYSIA_PUBLIC_PLAYBACK_URL=" + p.RouterURL,
		"DIONYSIA_PUBLIC_INGEST_HOST=127.0.0.1",
		"DIONYSIA_PUBLIC_RTMP_PORT=" + strconv.Itoa(p.EdgeRTMPPort),
		"DIONYSIA_PUBLIC_SRT_PORT=" + strconv.Itoa(p.EdgeSRTPort),
		"DIONYSIA_PUBLIC_RTSP_PORT=" + strconv.Itoa(rtspPort),
		"DIONYSIA_PUBLIC_WEBRTC_PORT=" + strconv.Itoa(webrtcPort),
		"DIONYSIA_LOG_LEVEL=debug",
		// A short reconnect grace keeps the suite quick: playlists end 3 s
		// after a publisher leaves for good.
		"DIONYSIA_API_RECONNECT_GRACE=3s",
	}
	dionysia := filepath.Join(p.Bin, "dionysia")
	Run(t, time.Minute, p.BaseEnv, dionysia, "migrate", "up")
	p.APIKey = strings.TrimSpace(RunStdout(t, time.Minute, p.BaseEnv, dionysia, "api-key", "create", "--name", "e2e"))
	p.BaseEnv = append(p.BaseEnv, "DIONYSIA_API_KEY="+p.APIKey)

	p.API = StartProc(t, p.LogDir, "api", append(p.BaseEnv, "DIONYSIA_API_ADDR=127.0.0.1:"+strconv.Itoa(apiPort)), dionysia, "api")
	WaitHTTP(t, p.API, p.APIURL+"/readyz", 30*time.Second)

	edgeAdmin := FreePort(t)
	p.Edge = StartProc(t, p.LogDir, "edge", p.BaseEnv, dionysia, "edge",
		"--id", "edge-e2e", "--mediamtx", mediamtx, "--work-dir", t.TempDir(),
		"--bind", "127.0.0.1", "--advertise-host", "127.0.0.1",
		"--rtmp-port", strconv.Itoa(p.EdgeRTMPPort), "--srt-port", strconv.Itoa(p.EdgeSRTPort),
		"--rtsp-port", strconv.Itoa(rtspPort), "--webrtc-port", strconv.Itoa(webrtcPort), "--webrtc-udp-port", "-1",
		"--hook-addr", fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		"--mediamtx-api-addr", fmt.Sprintf("127.0.0.1:%d", FreePort(t)),
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", edgeAdmin))
	WaitHTTP(t, p.Edge, fmt.Sprintf("http://127.0.0.1:%d/readyz", edgeAdmin), 30*time.Second)

	p.Router = StartProc(t, p.LogDir, "router", p.BaseEnv, dionysia, "router", "--addr", fmt.Sprintf("127.0.0.1:%d", routerPort))
	WaitHTTP(t, p.Router, p.RouterURL+"/readyz", 30*time.Second)

	for i := range opts.Workers {
		p.StartWorker(t, fmt.Sprintf("worker-%d", i+1), opts.LeaseTTL)
	}
	return p
}

// StartRedis starts the platform's own Redis (no persistence, like a Redis
// that lost its data) on a free port, so tests may restart it.
func (p *Platform) StartRedis(t testing.TB) {
	t.Helper()
	if p.redisPort == 0 {
		p.redisPort = FreePort(t)
		p.RedisURL = fmt.Sprintf("redis://127.0.0.1:%d/0", p.redisPort)
		ropt, err := redis.ParseURL(p.RedisURL)
		if err != nil {
			t.Fatal(err)
		}
		p.Redis = redis.NewClient(ropt)
		t.Cleanup(func() { _ = p.Redis.Close() })
	}
	// Platform processes belong to the test that started the platform, not
	// to a subtest that restarts them.
	p.RedisProc = StartProc(p.t, p.LogDir, "redis", nil, "redis-server", "--bind", "127.0.0.1",
		"--port", strconv.Itoa(p.redisPort), "--save", "", "--appendonly", "no")
	Eventually(t, 10*time.Second, 50*time.Millisecond, "redis to answer", func() bool {
		return p.Redis.Ping(context.Background()).Err() == nil
	})
}

// RestartRedis stops Redis (losing everything it held) and starts it again.
func (p *Platform) RestartRedis(t testing.TB) {
	t.Helper()
	p.RedisProc.Stop(5 * time.Second)
	p.StartRedis(t)
}

// StartWorker starts one more CPU worker and waits until it serves.
func (p *Platform) StartWorker(t testing.TB, id string, leaseTTL time.Duration) *Worker {
	t.Helper()
	port := FreePort(t)
	w := &Worker{ID: id, OriginURL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	// A source grace far above the suite's reconnect grace: a session's
	// playlists end only because the API told its worker to stop, never
	// because the worker gave up waiting for the publisher.
	args := []string{"--id", id, "--class", "cpu", "--capacity", "1", "--source-grace", "5m",
		"--origin-addr", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", filepath.Join(p.t.TempDir(), id)}
	if leaseTTL > 0 {
		args = append(args, "--lease-ttl", leaseTTL.String())
	}
	w.Proc = StartProc(p.t, p.LogDir, id, p.BaseEnv, filepath.Join(p.Bin, "dionysia-worker"), args...)
	WaitHTTP(t, w.Proc, w.OriginURL+"/readyz", 60*time.Second)
	p.Workers = append(p.Workers, w)
	return w
}

// CLI runs the dionysia CLI against the platform and returns its output.
func (p *Platform) CLI(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, time.Minute, p.BaseEnv, filepath.Join(p.Bin, "dionysia"), args...)
}

// APIRequest calls the management API with the platform's key and decodes a
// JSON answer into out (when non-nil). It returns the status code.
func (p *Platform) APIRequest(t testing.TB, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, p.APIURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+p.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// createDatabase creates a fresh database for one platform and drops it at
// cleanup.
func createDatabase(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("E2E_DATABASE_ADMIN_URL")
	if admin == "" {
		admin = "postgres://dionysia:dionysia@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL (run deploy/local/setup.sh services): %v", err)
	}
	defer conn.Close(context.Background())
	name := "dionysia_e2e_" + randomHex(4)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return strings.Replace(admin, "/postgres?", "/"+name+"?", 1)
}
