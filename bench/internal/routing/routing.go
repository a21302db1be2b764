// Package routing measures the playback router: the same HLS/DASH files
// fetched straight from the worker's origin, through the router (the real
// `dionysia router` process, proxy mode, owner looked up in Redis; once with
// its origin shield as deployed and once with the shield off), and from
// Debian's nginx serving the same directory, under the same closed-loop load.
package routing

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/pkg/testkit/harness"
)

// Config says what to run.
type Config struct {
	Dionysia string // the dionysia binary (router)
	Origin   string // the origin standalone binary
	Nginx    string // the nginx binary; empty: no nginx column
	Work     string
	LogDir   string
}

// Target is one way of fetching the files.
type Target struct {
	Name string
	Base string
}

// Result is one target's load.
type Result = harness.LoadResult

// Setup is a running origin, router and nginx over one stream's files.
type Setup struct {
	Stream  string
	Files   []string
	Targets []Target
	stop    []func()
}

// Close stops everything Start started.
func (s *Setup) Close() {
	for i := len(s.stop) - 1; i >= 0; i-- {
		s.stop[i]()
	}
}

// Start generates the files and starts the three servers.
func Start(ctx context.Context, cfg Config) (*Setup, error) {
	s := &Setup{Stream: uuid.NewString()}
	dataDir := filepath.Join(cfg.Work, "data")
	var err error
	if s.Files, err = harness.MakeMedia(ctx, filepath.Join(dataDir, s.Stream)); err != nil {
		return s, err
	}

	// Origin.
	origin, err := harness.StartOrigin(ctx, cfg.Origin, nil, nil, "-data", dataDir, "-holds", "all", "-worker-id", "bench")
	if err != nil {
		return s, err
	}
	s.stop = append(s.stop, origin.Stop)
	originURL := origin.URL
	s.Targets = append(s.Targets, Target{"direct (origin)", originURL})

	// Redis, ownership, router.
	redisProc, redisURL, err := harness.StartRedis(ctx, cfg.LogDir, 0)
	if redisProc != nil {
		s.stop = append(s.stop, func() { redisProc.Stop(5 * time.Second) })
	}
	if err != nil {
		return s, err
	}
	opt, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(opt)
	s.stop = append(s.stop, func() { _ = rdb.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := ownership.New(rdb, ownership.Config{Logger: log})
	session := uuid.NewString()
	if err := store.Assign(ctx, s.Stream, session, playback.PolicyPublic); err != nil {
		return s, fmt.Errorf("assigning the stream: %w", err)
	}
	hold, err := store.Hold(ctx, s.Stream, session, ownership.Holder{WorkerID: "bench", OriginURL: originURL})
	if err != nil {
		return s, fmt.Errorf("holding the stream: %w", err)
	}
	s.stop = append(s.stop, func() { _ = hold.Release(context.Background()) })
	// The router as deployed (origin shield on, its default size), and the
	// same router with the shield off: the proxy alone.
	for _, r := range []struct{ name, proc, cacheSize string }{
		{"router", "bench-router", ""}, {"router (no shield)", "bench-router-noshield", "0"},
	} {
		env := []string{
			"DIONYSIA_REDIS_URL=" + redisURL, "DIONYSIA_PLAYBACK_KEYS=k1:" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
			"DIONYSIA_LOG_LEVEL=warn",
		}
		if r.cacheSize != "" {
			env = append(env, "DIONYSIA_ROUTER_CACHE_SIZE="+r.cacheSize)
		}
		port, err := testkit.FindFreePort()
		if err != nil {
			return s, err
		}
		routerURL := fmt.Sprintf("http://127.0.0.1:%d", port)
		router, err := harness.StartProc(cfg.LogDir, r.proc, env, cfg.Dionysia, "router", "--addr", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return s, err
		}
		s.stop = append(s.stop, func() { router.Stop(5 * time.Second) })
		if err := harness.WaitHTTP(ctx, router, routerURL+"/readyz", 30*time.Second); err != nil {
			return s, err
		}
		s.Targets = append(s.Targets, Target{r.name, routerURL})
	}

	if cfg.Nginx != "" {
		nginxURL, stopNginx, err := startNginx(ctx, cfg, dataDir)
		if err != nil {
			return s, err
		}
		s.stop = append(s.stop, stopNginx)
		s.Targets = append(s.Targets, Target{"nginx", nginxURL})
	}
	// Every target must serve every file, byte for byte the same size.
	client := &http.Client{Timeout: 10 * time.Second}
	for _, f := range s.Files {
		var sizes []int
		for _, t := range s.Targets {
			resp, err := client.Get(t.Base + playback.URLPath(s.Stream, "", f))
			if err != nil {
				return s, fmt.Errorf("%s: %w", t.Name, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return s, fmt.Errorf("%s: %s: %s", t.Name, f, resp.Status)
			}
			sizes = append(sizes, len(b))
		}
		for _, n := range sizes[1:] {
			if n != sizes[0] {
				return s, fmt.Errorf("%s: targets serve different sizes %v", f, sizes)
			}
		}
	}
	return s, nil
}

// Load runs concurrency clients cycling through every file of the stream
// on target for d (harness.Load).
func (s *Setup) Load(ctx context.Context, t Target, concurrency int, d time.Duration) (Result, error) {
	urls := make([]string, len(s.Files))
	for i, f := range s.Files {
		urls[i] = t.Base + playback.URLPath(s.Stream, "", f)
	}
	res := harness.Load(ctx, t.Name, urls, concurrency, d)
	if res.Errors > 0 {
		return res, fmt.Errorf("%s: %d failed requests", t.Name, res.Errors)
	}
	return res, nil
}

// startNginx runs nginx in the foreground with a generated configuration
// serving dataDir under /live/ (the playback URL layout), with as many
// worker processes as cores, sendfile and keep-alive.
func startNginx(ctx context.Context, cfg Config, dataDir string) (string, func(), error) {
	dir := filepath.Join(cfg.Work, "nginx")
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return "", nil, err
	}
	port, err := testkit.FindFreePort()
	if err != nil {
		return "", nil, err
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // the files sit in a private temporary directory
	}
	conf := fmt.Sprintf(`%sdaemon off;
worker_processes auto;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path %[2]s/tmp/body;
  proxy_temp_path %[2]s/tmp/proxy;
  fastcgi_temp_path %[2]s/tmp/fastcgi;
  uwsgi_temp_path %[2]s/tmp/uwsgi;
  scgi_temp_path %[2]s/tmp/scgi;
  types {
    application/vnd.apple.mpegurl m3u8;
    application/dash+xml mpd;
    video/mp4 mp4;
    video/iso.segment m4s;
  }
  server {
    listen 127.0.0.1:%[3]d;
    location /live/ { alias %[4]s/; }
  }
}
`, user, dir, port, dataDir)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return "", nil, err
	}
	proc, err := harness.StartProc(cfg.LogDir, "nginx", nil, cfg.Nginx, "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", confPath)
	if err != nil {
		return "", nil, err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	stop := func() { proc.Stop(5 * time.Second) }
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/")
		if err == nil {
			resp.Body.Close()
			return url, stop, nil
		}
		if proc.Exited() || time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return "", nil, fmt.Errorf("nginx did not start: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
