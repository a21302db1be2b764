// Command standalone serves a data directory with the worker's origin handler
// outside of a worker: the router's end-to-end tests and its benchmark start
// it as a child process (the router lives in another module and cannot import
// the origin package).
//
// With -holds=redis it serves exactly the streams whose ownership record in
// Redis names -worker-id, the way a worker serves the streams it holds, and
// enforces each stream's live playback policy (origin.Policies) with the keys
// of DIONYSIA_PLAYBACK_KEYS, as a worker does (without keys, signed streams
// are refused). With -holds=all, for benchmarks only, it serves every stream
// directory as public. It prints
// "listening on http://ADDR" on stdout once it accepts connections.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/workers/internal/origin"
	"github.com/redis/go-redis/v9"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "origin standalone:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	dataDir := flag.String("data", "", "data directory (one subdirectory per stream)")
	workerID := flag.String("worker-id", "", "worker id whose streams are served (-holds=redis)")
	holds := flag.String("holds", "redis", "which streams are served: redis (owned by -worker-id) or all")
	redisURL := flag.String("redis-url", "redis://127.0.0.1:6379/0", "Redis URL (-holds=redis)")
	prefix := flag.String("prefix", ownership.DefaultPrefix, "Redis key prefix")
	segment := flag.Duration("segment-duration", 2*time.Second, "segment duration (playlist Cache-Control)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	cfg := origin.Config{DataDir: *dataDir, SegmentDuration: *segment, WorkerID: *workerID, Logger: log}
	switch *holds {
	case "all":
		cfg.Holds = func(string) bool { return true }
		cfg.Signed = func(context.Context, string) bool { return false }
	case "redis":
		opt, err := redis.ParseURL(*redisURL)
		if err != nil {
			return fmt.Errorf("parsing redis url: %w", err)
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		store := ownership.New(rdb, ownership.Config{Prefix: *prefix, Logger: log})
		lookup := func(id string) (ownership.Owner, bool) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			o, ok, err := store.Lookup(ctx, id)
			if err != nil {
				log.Warn("looking up owner", "stream_id", id, "err", err)
				return o, false
			}
			return o, ok && o.WorkerID == *workerID
		}
		cfg.Holds = func(id string) bool { _, ok := lookup(id); return ok }
		cfg.Signed = (&origin.Policies{Lookup: store.Policy, Logger: log}).Signed
	default:
		return fmt.Errorf("unknown -holds %q", *holds)
	}
	if keys := os.Getenv("DIONYSIA_PLAYBACK_KEYS"); keys != "" {
		s, err := playback.ParseKeys(keys)
		if err != nil {
			return err
		}
		cfg.Signer = s
	}
	h, err := origin.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("listening on http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
