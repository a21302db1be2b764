// Package routing measures the playback router: the same HLS/DASH files
// fetched straight from the worker's origin, through the router (the real
// `dionysia router` process, proxy mode, owner looked up in Redis), and from
// Debian's nginx serving the same directory, under the same closed-loop load.
package routing

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/dionysia/dionysia/bench/internal/measure"
	"github.com/dionysia/dionysia/bench/internal/platform"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
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
type Result struct {
	Name      string
	Requests  int
	Bytes     int64
	Elapsed   time.Duration
	Latencies []time.Duration // sorted
}

// PerSecond is requests per second.
func (r Result) PerSecond() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// MBPerSecond is payload megabytes per second.
func (r Result) MBPerSecond() float64 { return float64(r.Bytes) / r.Elapsed.Seconds() / 1e6 }

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
	streamDir := filepath.Join(dataDir, s.Stream)
	if err := makeMedia(ctx, streamDir); err != nil {
		return s, err
	}
	if err := filepath.WalkDir(streamDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(streamDir, p)
		s.Files = append(s.Files, filepath.ToSlash(rel))
		return err
	}); err != nil {
		return s, err
	}
	slices.Sort(s.Files)

	// Origin.
	originURL, stopOrigin, err := startOrigin(ctx, cfg.Origin, dataDir)
	if err != nil {
		return s, err
	}
	s.stop = append(s.stop, stopOrigin)
	s.Targets = append(s.Targets, Target{"direct (origin)", originURL})

	// Redis, ownership, router.
	redisProc, redisURL, err := platform.StartRedis(ctx, cfg.LogDir)
	if err != nil {
		return s, err
	}
	s.stop = append(s.stop, func() { redisProc.Stop(5 * time.Second) })
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
	port, err := platform.FreePort()
	if err != nil {
		return s, err
	}
	routerURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	router, err := platform.StartProc(cfg.LogDir, "bench-router", []string{
		"DIONYSIA_REDIS_URL=" + redisURL, "DIONYSIA_PLAYBACK_KEYS=k1:" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"DIONYSIA_LOG_LEVEL=warn",
	}, cfg.Dionysia, "router", "--addr", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return s, err
	}
	s.stop = append(s.stop, func() { router.Stop(5 * time.Second) })
	if err := platform.WaitHTTP(ctx, router, routerURL+"/readyz", 30*time.Second); err != nil {
		return s, err
	}
	s.Targets = append(s.Targets, Target{"router", routerURL})

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
// on target for d.
func (s *Setup) Load(ctx context.Context, t Target, concurrency int, d time.Duration) (Result, error) {
	urls := make([]string, len(s.Files))
	for i, f := range s.Files {
		urls[i] = t.Base + playback.URLPath(s.Stream, "", f)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: concurrency * 2, MaxIdleConnsPerHost: concurrency * 2, DisableCompression: true,
	}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	res := Result{Name: t.Name}
	var errs int
	start := time.Now()
	var wg sync.WaitGroup
	for c := range concurrency {
		wg.Go(func() {
			var lat []time.Duration
			var n int64
			var e int
			buf := make([]byte, 32<<10)
			for i := c; ctx.Err() == nil; i++ {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, urls[i%len(urls)], nil)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						e++
					}
					continue
				}
				w, err := io.CopyBuffer(io.Discard, resp.Body, buf)
				resp.Body.Close()
				if ctx.Err() != nil {
					break
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					e++
					continue
				}
				lat = append(lat, time.Since(t0))
				n += w
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			res.Bytes += n
			errs += e
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Requests = len(res.Latencies)
	slices.Sort(res.Latencies)
	if errs > 0 {
		return res, fmt.Errorf("%s: %d failed requests", t.Name, errs)
	}
	return res, nil
}

// P returns a latency percentile.
func (r Result) P(p float64) time.Duration { return measure.Percentile(r.Latencies, p) }

func startOrigin(ctx context.Context, bin, dataDir string) (string, func(), error) {
	cmd := exec.CommandContext(ctx, bin, "-data", dataDir, "-holds", "all", "-worker-id", "bench")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting the origin: %w", err)
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("reading the origin's address: %w", err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		stop()
		return "", nil, fmt.Errorf("unexpected origin output %q", line)
	}
	return url, stop, nil
}

// startNginx runs nginx in the foreground with a generated configuration
// serving dataDir under /live/ (the playback URL layout), with as many
// worker processes as cores, sendfile and keep-alive.
func startNginx(ctx context.Context, cfg Config, dataDir string) (string, func(), error) {
	dir := filepath.Join(cfg.Work, "nginx")
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return "", nil, err
	}
	port, err := platform.FreePort()
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
	proc, err := platform.StartProc(cfg.LogDir, "nginx", nil, cfg.Nginx, "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", confPath)
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

// makeMedia writes the same tree as the router's own benchmark
// (services/internal/router/routertest): a 6 s, two-rendition fMP4 HLS
// presentation with separate audio, and a DASH one in dash/.
func makeMedia(ctx context.Context, dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "dash"), 0o755); err != nil {
		return err
	}
	src := []string{"-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "6"}
	enc := []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60",
		"-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k"}
	hls := append(append(append([]string{}, src...), "-map", "0:v", "-map", "0:v", "-map", "1:a"), enc...)
	hls = append(hls, "-b:v:0", "400k", "-s:v:1", "160x90", "-b:v:1", "200k",
		"-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
		"-hls_fmp4_init_filename", "init.mp4", "-master_pl_name", "index.m3u8",
		"-var_stream_map", "v:0,agroup:aud,name:720p v:1,agroup:aud,name:360p a:0,agroup:aud,name:audio",
		"-hls_segment_filename", "%v/%d.m4s", "%v/index.m3u8")
	dash := append(append(append([]string{}, src...), "-map", "0:v", "-map", "1:a"), enc...)
	dash = append(dash, "-f", "dash", "-seg_duration", "2", "-use_template", "1", "-use_timeline", "0",
		"-init_seg_name", "init-$RepresentationID$.mp4", "-media_seg_name", "$RepresentationID$-$Number$.m4s", "manifest.mpd")
	for _, c := range []struct {
		dir  string
		args []string
	}{{dir, hls}, {filepath.Join(dir, "dash"), dash}} {
		cmd := exec.CommandContext(ctx, "ffmpeg", c.args...)
		cmd.Dir = c.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("generating media with ffmpeg: %w\n%s", err, out)
		}
	}
	return nil
}
