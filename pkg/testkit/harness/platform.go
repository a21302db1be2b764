package harness

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/pkg/testkit/postgres"
)

// Options shape a platform. BinDir, MediaMTX, LogDir and WorkDir are required.
type Options struct {
	BinDir   string // holding dionysia and dionysia-worker
	MediaMTX string // the mediamtx binary
	LogDir   string // one log file per process
	WorkDir  string // scratch: the edge's and the workers' data directories
	// AdminDatabaseURL is a role allowed to create databases, on the
	// "postgres" database; default postgres.DefaultAdminDatabaseURL.
	AdminDatabaseURL string
	// Name tells platforms apart: the database's name prefix (dionysia_<Name>),
	// the edge's id and the API key's name. Default "harness".
	Name           string
	Workers        int           // CPU workers started by Start; default 1
	WorkerCapacity int           // streams per worker; default 1
	LeaseTTL       time.Duration // workers' ownership lease; default the worker's
	LogLevel       string        // DIONYSIA_LOG_LEVEL; default debug
	// Env is more environment for every process, after the platform's own
	// (e.g. DIONYSIA_LOG_FORMAT=json, DIONYSIA_API_RECONNECT_GRACE=3s); a
	// variable set here wins over the platform's. The platform's recordings
	// store is file://{WorkDir}/recordings unless Env names another
	// (testkit.S3Server.Env).
	Env []string
	// WorkerArgs are more flags of every worker (e.g. --source-grace 5m).
	WorkerArgs []string
	// WebRTC enables the edge's WHIP ingest (ICE on a UDP port of its own);
	// off by default, as in most tests.
	WebRTC bool
}

// Platform is every Dionysia process running on loopback, against a fresh
// database and a Redis of its own.
type Platform struct {
	opts Options

	DatabaseURL string
	RedisURL    string
	Redis       *redis.Client // on RedisURL
	APIURL      string
	RouterURL   string
	APIKey      string
	// Env is the environment every process got (it names every URL and
	// secret), for more processes of the platform (the CLI).
	Env []string

	EdgeRTMPPort int
	EdgeSRTPort  int

	API, Edge, Router, RedisProc *Proc
	Workers                      []*Worker

	db        *postgres.Database
	redisPort int
	procs     []*Proc
}

// Worker is one worker process.
type Worker struct {
	ID        string
	OriginURL string
	Proc      *Proc
}

// Start brings the platform up: database, Redis, migrations, an admin API
// key, the API, the edge, the router and opts.Workers workers, each waited
// for until it is ready. Call Stop in every case, also when Start fails.
func Start(ctx context.Context, opts Options) (*Platform, error) {
	opts.Workers = max(opts.Workers, 1)
	opts.WorkerCapacity = max(opts.WorkerCapacity, 1)
	opts.AdminDatabaseURL = cmp.Or(opts.AdminDatabaseURL, postgres.DefaultAdminDatabaseURL)
	opts.Name = cmp.Or(opts.Name, "harness")
	opts.LogLevel = cmp.Or(opts.LogLevel, "debug")
	p := &Platform{opts: opts}
	for _, req := range []struct{ name, v string }{{"BinDir", opts.BinDir}, {"MediaMTX", opts.MediaMTX}, {"LogDir", opts.LogDir}, {"WorkDir", opts.WorkDir}} {
		if req.v == "" {
			return p, fmt.Errorf("harness.Options.%s is required", req.name)
		}
	}
	var err error
	if p.db, err = postgres.CreateDatabase(ctx, opts.AdminDatabaseURL, "dionysia_"+opts.Name); err != nil {
		return p, err
	}
	p.DatabaseURL = p.db.URL
	if err := p.StartRedis(ctx); err != nil {
		return p, err
	}
	ports := make([]int, 10)
	for i := range ports {
		if ports[i], err = testkit.FindFreePort(); err != nil {
			return p, err
		}
	}
	apiPort, routerPort, rtsp, webrtc, hook, mtxAPI, edgeAdmin := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6]
	p.EdgeRTMPPort, p.EdgeSRTPort = ports[7], ports[8]
	webrtcUDP := "-1"
	if opts.WebRTC {
		webrtcUDP = strconv.Itoa(ports[9])
	}
	p.APIURL = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	p.RouterURL = fmt.Sprintf("http://127.0.0.1:%d", routerPort)
	p.Env = append([]string{
		"DIONYSIA_DATABASE_URL=" + p.DatabaseURL,
		"DIONYSIA_REDIS_URL=" + p.RedisURL,
		"DIONYSIA_API_URL=" + p.APIURL,
		"DIONYSIA_EDGE_SECRET=" + randomHex(16),
		"DIONYSIA_WORKER_SECRET=" + randomHex(16),
		"DIONYSIA_PLAYBACK_KEYS=k1:" + base64.StdEncoding.EncodeToString([]byte(randomHex(32))),
		"DIONYSIA_PUBLIC_PLAYBACK_URL=" + p.RouterURL,
		"DIONYSIA_PUBLIC_INGEST_HOST=127.0.0.1",
		"DIONYSIA_PUBLIC_RTMP_PORT=" + strconv.Itoa(p.EdgeRTMPPort),
		"DIONYSIA_PUBLIC_SRT_PORT=" + strconv.Itoa(p.EdgeSRTPort),
		"DIONYSIA_PUBLIC_RTSP_PORT=" + strconv.Itoa(rtsp),
		"DIONYSIA_PUBLIC_WEBRTC_PORT=" + strconv.Itoa(webrtc),
		"DIONYSIA_LOG_LEVEL=" + opts.LogLevel,
		"DIONYSIA_STORAGE_URL=file://" + filepath.Join(opts.WorkDir, "recordings"),
	}, opts.Env...)

	if out, err := p.CLI(ctx, "migrate", "up"); err != nil {
		return p, fmt.Errorf("migrating: %w\n%s", err, out)
	}
	key, err := RunStdout(ctx, time.Minute, p.Env, p.bin("dionysia"), "api-key", "create", "--name", opts.Name)
	if err != nil {
		return p, fmt.Errorf("creating an API key: %w", err)
	}
	p.APIKey = strings.TrimSpace(key)
	p.Env = append(p.Env, "DIONYSIA_API_KEY="+p.APIKey)

	if p.API, err = p.start(ctx, "api", p.APIURL+"/readyz", 30*time.Second,
		append(p.Env, "DIONYSIA_API_ADDR=127.0.0.1:"+strconv.Itoa(apiPort)), p.bin("dionysia"), "api"); err != nil {
		return p, err
	}
	if p.Edge, err = p.start(ctx, "edge", fmt.Sprintf("http://127.0.0.1:%d/readyz", edgeAdmin), 30*time.Second, p.Env, p.bin("dionysia"), "edge",
		"--id", "edge-"+opts.Name, "--mediamtx", opts.MediaMTX, "--work-dir", filepath.Join(opts.WorkDir, "edge"),
		"--bind", "127.0.0.1", "--advertise-host", "127.0.0.1",
		"--rtmp-port", strconv.Itoa(p.EdgeRTMPPort), "--srt-port", strconv.Itoa(p.EdgeSRTPort),
		"--rtsp-port", strconv.Itoa(rtsp), "--webrtc-port", strconv.Itoa(webrtc), "--webrtc-udp-port", webrtcUDP,
		"--hook-addr", fmt.Sprintf("127.0.0.1:%d", hook),
		"--mediamtx-api-addr", fmt.Sprintf("127.0.0.1:%d", mtxAPI),
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", edgeAdmin)); err != nil {
		return p, err
	}
	if p.Router, err = p.start(ctx, "router", p.RouterURL+"/readyz", 30*time.Second, p.Env, p.bin("dionysia"), "router",
		"--addr", fmt.Sprintf("127.0.0.1:%d", routerPort)); err != nil {
		return p, err
	}
	for i := range opts.Workers {
		if _, err := p.StartWorker(ctx, fmt.Sprintf("worker-%d", i+1), opts.LeaseTTL); err != nil {
			return p, err
		}
	}
	return p, nil
}

func (p *Platform) bin(name string) string { return filepath.Join(p.opts.BinDir, name) }

// start starts a process of the platform and waits until ready answers 200.
func (p *Platform) start(ctx context.Context, name, ready string, within time.Duration, env []string, bin string, args ...string) (*Proc, error) {
	proc, err := StartProc(p.opts.LogDir, name, env, bin, args...)
	if err != nil {
		return nil, err
	}
	p.procs = append(p.procs, proc)
	return proc, WaitHTTP(ctx, proc, ready, within)
}

// Procs returns every process the platform started, oldest first.
func (p *Platform) Procs() []*Proc { return p.procs }

// StartRedis starts the platform's own Redis (no persistence: a restart
// loses everything, like a Redis that lost its data), on the same port each
// time.
func (p *Platform) StartRedis(ctx context.Context) error {
	if p.redisPort == 0 {
		port, err := testkit.FindFreePort()
		if err != nil {
			return err
		}
		p.redisPort = port
	}
	proc, url, err := StartRedis(ctx, p.opts.LogDir, p.redisPort)
	if proc != nil {
		p.procs = append(p.procs, proc)
	}
	if err != nil {
		return err
	}
	p.RedisProc, p.RedisURL = proc, url
	if p.Redis == nil {
		opt, err := redis.ParseURL(url)
		if err != nil {
			return err
		}
		p.Redis = redis.NewClient(opt)
	}
	return nil
}

// StartRedis starts a Redis without persistence on port of 127.0.0.1 (0: a
// free one), logging to logDir/redis.log, and waits up to 10 s until it
// answers. It returns the process (to stop; also on error) and its URL.
func StartRedis(ctx context.Context, logDir string, port int) (*Proc, string, error) {
	if port == 0 {
		var err error
		if port, err = testkit.FindFreePort(); err != nil {
			return nil, "", err
		}
	}
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	proc, err := StartProc(logDir, "redis", nil, "redis-server", "--bind", "127.0.0.1",
		"--port", strconv.Itoa(port), "--save", "", "--appendonly", "no")
	if err != nil {
		return nil, "", err
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return proc, "", err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(ctx).Err() != nil {
		if proc.Exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return proc, "", fmt.Errorf("redis did not answer on %s within 10 s:\n%s", url, Tail(proc.LogPath, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return proc, url, nil
}

// RestartRedis stops Redis (losing everything it held) and starts it again.
func (p *Platform) RestartRedis(ctx context.Context) error {
	p.RedisProc.Stop(5 * time.Second)
	return p.StartRedis(ctx)
}

// StartWorker starts one more CPU worker and waits until its origin is ready.
// leaseTTL 0 keeps the worker's default ownership lease.
func (p *Platform) StartWorker(ctx context.Context, id string, leaseTTL time.Duration) (*Worker, error) {
	port, err := testkit.FindFreePort()
	if err != nil {
		return nil, err
	}
	w := &Worker{ID: id, OriginURL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	args := []string{"--id", id, "--class", "cpu", "--capacity", strconv.Itoa(p.opts.WorkerCapacity),
		"--origin-addr", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", filepath.Join(p.opts.WorkDir, id)}
	if leaseTTL > 0 {
		args = append(args, "--lease-ttl", leaseTTL.String())
	}
	args = append(args, p.opts.WorkerArgs...)
	w.Proc, err = p.start(ctx, id, w.OriginURL+"/readyz", 60*time.Second, p.Env, p.bin("dionysia-worker"), args...)
	if w.Proc != nil {
		p.Workers = append(p.Workers, w)
	}
	return w, err
}

// CLI runs the dionysia CLI against the platform and returns its combined output.
func (p *Platform) CLI(ctx context.Context, args ...string) (string, error) {
	return Run(ctx, time.Minute, p.Env, p.bin("dionysia"), args...)
}

// Request calls the management API with the platform's key. A 2xx JSON
// answer is decoded into out (when not nil); it returns the status code.
func (p *Platform) Request(ctx context.Context, client *http.Client, method, path, body string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.APIURL+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+p.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if out != nil && len(b) > 0 && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decoding %s: %w", method, path, b, err)
		}
	}
	return resp.StatusCode, nil
}

// Stop stops every process (workers first, then the others newest first),
// closes the Redis client and drops the database.
func (p *Platform) Stop() error {
	for i := len(p.Workers) - 1; i >= 0; i-- {
		p.Workers[i].Proc.Stop(10 * time.Second)
	}
	for i := len(p.procs) - 1; i >= 0; i-- {
		p.procs[i].Stop(5 * time.Second)
	}
	var errs []error
	if p.Redis != nil {
		errs = append(errs, p.Redis.Close())
	}
	if p.db != nil {
		errs = append(errs, p.db.Drop(context.Background()))
	}
	return errors.Join(errs...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
