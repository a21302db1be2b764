// Package platform brings the whole Dionysia platform up on loopback for the
// benchmarks, as real processes: a fresh PostgreSQL database, its own Redis,
// the API, the edge (with mediamtx), the router and CPU workers, all logging
// JSON so the benchmark can read their timestamps. It mirrors the e2e
// harness (e2e/platform.go) without depending on package testing.
package platform

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Config says where the binaries are and how to run them.
type Config struct {
	BinDir   string // holding dionysia and dionysia-worker
	Mediamtx string // the mediamtx binary
	LogDir   string // process logs
	Work     string // scratch directory (data dirs)
	// AdminDatabaseURL is a PostgreSQL URL on the "postgres" database of a
	// role allowed to create databases.
	AdminDatabaseURL string
	Workers          int // default 1
	WorkerCapacity   int // streams per worker, default 1
}

// Platform is every process of a running platform.
type Platform struct {
	cfg         Config
	DatabaseURL string
	dbName      string
	RedisURL    string
	APIURL      string
	RouterURL   string
	APIKey      string
	Env         []string

	Redis, API, Edge, Router *Proc
	Workers                  []*Proc
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start brings the platform up. Call Stop in every case, also on error.
func Start(ctx context.Context, cfg Config) (*Platform, error) {
	cfg.Workers = max(cfg.Workers, 1)
	cfg.WorkerCapacity = max(cfg.WorkerCapacity, 1)
	p := &Platform{cfg: cfg}
	if err := p.createDatabase(ctx); err != nil {
		return p, err
	}
	var err error
	if p.Redis, p.RedisURL, err = StartRedis(ctx, cfg.LogDir); err != nil {
		return p, err
	}
	ports := make([]int, 10)
	for i := range ports {
		if ports[i], err = FreePort(); err != nil {
			return p, err
		}
	}
	apiPort, routerPort, rtmp, srt, rtsp, webrtc, hook, mtxAPI, edgeAdmin := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6], ports[7], ports[8]
	p.APIURL = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	p.RouterURL = fmt.Sprintf("http://127.0.0.1:%d", routerPort)
	p.Env = []string{
		"DIONYSIA_DATABASE_URL=" + p.DatabaseURL,
		"DIONYSIA_REDIS_URL=" + p.RedisURL,
		"DIONYSIA_API_URL=" + p.APIURL,
		"DIONYSIA_EDGE_SECRET=" + randomHex(16),
		"DIONYSIA_WORKER_SECRET=" + randomHex(16),
		"DIONYSIA_PLAYBACK_KEYS=k1:" + base64.StdEncoding.EncodeToString([]byte(randomHex(32))),
		"DIONYSIA_PUBLIC_PLAYBACK_URL=" + p.RouterURL,
		"DIONYSIA_PUBLIC_INGEST_HOST=127.0.0.1",
		"DIONYSIA_PUBLIC_RTMP_PORT=" + strconv.Itoa(rtmp),
		"DIONYSIA_PUBLIC_SRT_PORT=" + strconv.Itoa(srt),
		"DIONYSIA_PUBLIC_RTSP_PORT=" + strconv.Itoa(rtsp),
		"DIONYSIA_PUBLIC_WEBRTC_PORT=" + strconv.Itoa(webrtc),
		"DIONYSIA_LOG_LEVEL=info",
		"DIONYSIA_LOG_FORMAT=json",
	}
	dionysia := filepath.Join(cfg.BinDir, "dionysia")
	if out, err := p.run(ctx, dionysia, "migrate", "up"); err != nil {
		return p, fmt.Errorf("migrating: %w\n%s", err, out)
	}
	out, err := p.run(ctx, dionysia, "api-key", "create", "--name", "bench")
	if err != nil {
		return p, fmt.Errorf("creating an API key: %w\n%s", err, out)
	}
	p.APIKey = strings.TrimSpace(string(out))
	p.Env = append(p.Env, "DIONYSIA_API_KEY="+p.APIKey)

	if p.API, err = StartProc(cfg.LogDir, "api", append(p.Env, "DIONYSIA_API_ADDR=127.0.0.1:"+strconv.Itoa(apiPort)), dionysia, "api"); err != nil {
		return p, err
	}
	if err := WaitHTTP(ctx, p.API, p.APIURL+"/readyz", 30*time.Second); err != nil {
		return p, err
	}
	p.Edge, err = StartProc(cfg.LogDir, "edge", p.Env, dionysia, "edge",
		"--id", "edge-bench", "--mediamtx", cfg.Mediamtx, "--work-dir", filepath.Join(cfg.Work, "edge"),
		"--bind", "127.0.0.1", "--advertise-host", "127.0.0.1",
		"--rtmp-port", strconv.Itoa(rtmp), "--srt-port", strconv.Itoa(srt),
		"--rtsp-port", strconv.Itoa(rtsp), "--webrtc-port", strconv.Itoa(webrtc), "--webrtc-udp-port", "-1",
		"--hook-addr", fmt.Sprintf("127.0.0.1:%d", hook),
		"--mediamtx-api-addr", fmt.Sprintf("127.0.0.1:%d", mtxAPI),
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", edgeAdmin))
	if err != nil {
		return p, err
	}
	if err := WaitHTTP(ctx, p.Edge, fmt.Sprintf("http://127.0.0.1:%d/readyz", edgeAdmin), 30*time.Second); err != nil {
		return p, err
	}
	if p.Router, err = StartProc(cfg.LogDir, "router", p.Env, dionysia, "router", "--addr", fmt.Sprintf("127.0.0.1:%d", routerPort)); err != nil {
		return p, err
	}
	if err := WaitHTTP(ctx, p.Router, p.RouterURL+"/readyz", 30*time.Second); err != nil {
		return p, err
	}
	for i := range cfg.Workers {
		port, err := FreePort()
		if err != nil {
			return p, err
		}
		id := fmt.Sprintf("worker-%d", i+1)
		w, err := StartProc(cfg.LogDir, id, p.Env, filepath.Join(cfg.BinDir, "dionysia-worker"),
			"--id", id, "--class", "cpu", "--capacity", strconv.Itoa(cfg.WorkerCapacity),
			"--origin-addr", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", filepath.Join(cfg.Work, id))
		if err != nil {
			return p, err
		}
		p.Workers = append(p.Workers, w)
		if err := WaitHTTP(ctx, w, fmt.Sprintf("http://127.0.0.1:%d/readyz", port), 60*time.Second); err != nil {
			return p, err
		}
	}
	return p, nil
}

func (p *Platform) run(ctx context.Context, bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), p.Env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return stderr.Bytes(), err
	}
	return out, nil
}

// Stop stops every process (workers first) and drops the database.
func (p *Platform) Stop() {
	for i := len(p.Workers) - 1; i >= 0; i-- {
		p.Workers[i].Stop(10 * time.Second)
	}
	for _, proc := range []*Proc{p.Router, p.Edge, p.API, p.Redis} {
		if proc != nil {
			proc.Stop(5 * time.Second)
		}
	}
	if p.dbName != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, p.cfg.AdminDatabaseURL); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+p.dbName+" WITH (FORCE)")
			_ = c.Close(ctx)
		}
	}
}

func (p *Platform) createDatabase(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.cfg.AdminDatabaseURL)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL (run deploy/local/setup.sh services): %w", err)
	}
	defer conn.Close(context.Background())
	name := "dionysia_bench_" + randomHex(4)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("creating database: %w", err)
	}
	p.dbName = name
	p.DatabaseURL = strings.Replace(p.cfg.AdminDatabaseURL, "/postgres?", "/"+name+"?", 1)
	return nil
}

// StartRedis starts a private Redis without persistence on a free port.
func StartRedis(ctx context.Context, logDir string) (*Proc, string, error) {
	port, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	proc, err := StartProc(logDir, "redis", nil, "redis-server", "--bind", "127.0.0.1",
		"--port", strconv.Itoa(port), "--save", "", "--appendonly", "no")
	if err != nil {
		return nil, "", err
	}
	opt, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	for range 100 {
		if rdb.Ping(ctx).Err() == nil {
			return proc, url, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	proc.Stop(time.Second)
	return nil, "", errors.New("redis did not answer within 5 s")
}

// Request calls the management API with the platform's key; it decodes a
// JSON answer into out when non-nil and returns the status code.
func (p *Platform) Request(ctx context.Context, client *http.Client, method, path, body string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.APIURL+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+p.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(b) > 0 && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// LogEvent is one JSON log line of a platform process.
type LogEvent struct {
	Time   time.Time
	Msg    string
	Fields map[string]any
}

// ReadLog parses a process's JSON log; lines that are not JSON are skipped.
func ReadLog(path string) ([]LogEvent, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []LogEvent
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		ts, _ := m["time"].(string)
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		msg, _ := m["msg"].(string)
		out = append(out, LogEvent{Time: t, Msg: msg, Fields: m})
	}
	return out, nil
}

// Find returns the value of key anywhere in the event's fields (groups
// included) as a string.
func (e LogEvent) Find(key string) string {
	var walk func(m map[string]any) string
	walk = func(m map[string]any) string {
		if v, ok := m[key]; ok {
			if s, ok := v.(string); ok {
				return s
			}
		}
		for _, v := range m {
			if sub, ok := v.(map[string]any); ok {
				if s := walk(sub); s != "" {
					return s
				}
			}
		}
		return ""
	}
	return walk(e.Fields)
}
