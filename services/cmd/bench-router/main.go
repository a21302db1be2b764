// Command bench-router measures what the playback router adds: it starts the
// worker's origin (standalone) and a router on loopback, registers the origin
// as the owner of one stream in Redis, and drives both with the same
// concurrent load, first straight at the origin and then through the router,
// printing requests/s and p50/p99 latency side by side. It asserts nothing:
// it is a measurement, not a test. See bench/router/README.md.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/services/internal/router"
	"github.com/dionysia/dionysia/services/internal/router/routertest"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-router:", err)
		os.Exit(1)
	}
}

type result struct {
	name      string
	requests  int
	errors    int
	bytes     int64
	elapsed   time.Duration
	latencies []time.Duration
}

func (r result) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(len(r.latencies)-1, int(float64(len(r.latencies))*p))]
}

func run() error {
	concurrency := flag.Int("c", 8, "concurrent clients")
	duration := flag.Duration("d", 5*time.Second, "load duration per target")
	warmup := flag.Duration("warmup", time.Second, "warm-up per target (not measured)")
	redisURL := flag.String("redis-url", "redis://127.0.0.1:6379/5", "Redis URL")
	originBin := flag.String("origin-bin", "", "prebuilt origin standalone (default: go build it)")
	flag.Parse()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tmp, err := os.MkdirTemp("", "bench-router-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	if *originBin == "" {
		*originBin = filepath.Join(tmp, "origin")
		if err := routertest.BuildOrigin(ctx, *originBin); err != nil {
			return err
		}
	}
	stream := uuid.NewString()
	dataDir := filepath.Join(tmp, "data")
	if err := routertest.MakeMedia(ctx, filepath.Join(dataDir, stream)); err != nil {
		return err
	}
	files, err := mediaFiles(filepath.Join(dataDir, stream))
	if err != nil {
		return err
	}

	originURL, stopOrigin, err := startOrigin(ctx, *originBin, dataDir)
	if err != nil {
		return err
	}
	defer stopOrigin()

	opt, err := redis.ParseURL(*redisURL)
	if err != nil {
		return fmt.Errorf("parsing redis url: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	prefix := "bench:router:" + uuid.NewString()[:8] + ":"
	defer func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	}()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store := ownership.New(rdb, ownership.Config{Prefix: prefix, Logger: log})
	session := uuid.NewString()
	if err := store.Assign(ctx, stream, session, playback.PolicyPublic); err != nil {
		return fmt.Errorf("assigning the stream: %w", err)
	}
	hold, err := store.Hold(ctx, stream, session, ownership.Holder{WorkerID: "bench", OriginURL: originURL})
	if err != nil {
		return err
	}
	defer func() { _ = hold.Release(context.Background()) }()

	rt, err := router.New(router.Config{Redis: rdb, Prefix: prefix, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	rctx, rcancel := context.WithCancel(ctx)
	routerDone := make(chan error, 1)
	go func() { routerDone <- rt.ServeListener(rctx, ln) }()
	defer func() { rcancel(); <-routerDone }()
	routerURL := "http://" + ln.Addr().String()

	fmt.Printf("files: %d (playlists and fMP4 segments of a 320x180 HLS+DASH tree), clients: %d, %s per target, GOMAXPROCS-bound loopback\n\n",
		len(files), *concurrency, *duration)
	var results []result
	for _, target := range []struct{ name, base string }{{"direct", originURL}, {"router", routerURL}} {
		urls := make([]string, len(files))
		for i, f := range files {
			urls[i] = target.base + playback.URLPath(stream, "", f)
		}
		_ = load(ctx, target.name, urls, *concurrency, *warmup)
		r := load(ctx, target.name, urls, *concurrency, *duration)
		if r.errors > 0 {
			return fmt.Errorf("%s: %d failed requests", target.name, r.errors)
		}
		results = append(results, r)
	}
	printTable(results)
	return nil
}

func mediaFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	slices.Sort(files)
	return files, err
}

func startOrigin(ctx context.Context, bin, dataDir string) (string, func(), error) {
	cmd := exec.CommandContext(ctx, bin, "-data", dataDir, "-holds", "all", "-worker-id", "bench")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting origin: %w", err)
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("reading origin address: %w", err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		stop()
		return "", nil, fmt.Errorf("unexpected origin output %q", line)
	}
	return url, stop, nil
}

// load runs concurrency clients, each cycling through urls, for d.
func load(ctx context.Context, name string, urls []string, concurrency int, d time.Duration) result {
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: concurrency * 2, MaxIdleConnsPerHost: concurrency * 2, DisableCompression: true,
		},
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	res := result{name: name}
	start := time.Now()
	var wg sync.WaitGroup
	for c := range concurrency {
		wg.Go(func() {
			var lat []time.Duration
			var n, errs int
			var bytes int64
			buf := make([]byte, 32<<10)
			for i := c; ctx.Err() == nil; i++ {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, urls[i%len(urls)], nil)
				r, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs++
					}
					continue
				}
				w, err := io.CopyBuffer(io.Discard, r.Body, buf)
				r.Body.Close()
				if ctx.Err() != nil {
					break
				}
				if err != nil || r.StatusCode != http.StatusOK {
					errs++
					continue
				}
				lat = append(lat, time.Since(t0))
				bytes += w
				n++
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			res.requests += n
			res.errors += errs
			res.bytes += bytes
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.latencies)
	return res
}

func printTable(rs []result) {
	fmt.Printf("%-8s %10s %10s %10s %10s %10s\n", "target", "requests", "req/s", "MB/s", "p50", "p99")
	for _, r := range rs {
		secs := r.elapsed.Seconds()
		fmt.Printf("%-8s %10d %10.0f %10.1f %10s %10s\n", r.name, r.requests, float64(r.requests)/secs,
			float64(r.bytes)/secs/1e6, r.pct(0.50).Round(time.Microsecond), r.pct(0.99).Round(time.Microsecond))
	}
	if len(rs) == 2 {
		d, v := rs[0], rs[1]
		fmt.Printf("\nrouter/direct: throughput %.2fx, p50 %.2fx (+%s), p99 %.2fx (+%s)\n",
			(float64(v.requests)/v.elapsed.Seconds())/(float64(d.requests)/d.elapsed.Seconds()),
			float64(v.pct(.5))/float64(d.pct(.5)), (v.pct(.5) - d.pct(.5)).Round(time.Microsecond),
			float64(v.pct(.99))/float64(d.pct(.99)), (v.pct(.99) - d.pct(.99)).Round(time.Microsecond))
	}
}
