// Package webhooks measures webhook delivery: events from the outbox
// (PostgreSQL) to a local receiver through the real `dionysia api` process
// and its delivery worker, next to a plain HTTP POST loop to the same
// receiver (the ceiling: what the receiver and the loopback network take).
package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/signature"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/pkg/testkit/harness"
	"github.com/dionysia/dionysia/pkg/testkit/postgres"
	"github.com/google/uuid"
)

// Config shapes a Setup.
type Config struct {
	Dionysia string // the dionysia binary
	LogDir   string
	// Concurrency is the delivery worker's DIONYSIA_WEBHOOK_CONCURRENCY;
	// the reference loop uses as many clients.
	Concurrency int
}

// Setup is a database, a Redis, one `dionysia api` with a webhook to a
// receiver in this process.
type Setup struct {
	cfg    Config
	db     *postgres.Database
	redis  *harness.Proc
	api    *harness.Proc
	apiURL string
	key    string
	hookID string
	secret string
	rcv    *receiver
	rcvURL string
	rcvSrv *http.Server
	client *http.Client
}

// receiver verifies each request's signature and records the first arrival
// of each event id and its delay from the event's created_at.
type receiver struct {
	secret string
	mu     sync.Mutex
	hold   chan struct{} // non-nil: requests wait for it to close
	seen   map[string]time.Time
	delays []time.Duration
	bad    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	now := time.Now()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := signature.Verify(r.Header.Get(signature.Header), body, signature.DefaultTolerance, rc.secret); err != nil {
		rc.mu.Lock()
		rc.bad++
		rc.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev struct {
		ID        string    `json:"id"`
		CreatedAt time.Time `json:"created_at"`
	}
	_ = json.Unmarshal(body, &ev)
	rc.mu.Lock()
	hold := rc.hold
	if _, dup := rc.seen[ev.ID]; !dup && hold == nil {
		rc.seen[ev.ID] = now
		rc.delays = append(rc.delays, now.Sub(ev.CreatedAt))
	}
	rc.mu.Unlock()
	if hold != nil {
		<-hold
		rc.mu.Lock()
		if _, dup := rc.seen[ev.ID]; !dup {
			rc.seen[ev.ID] = time.Now()
		}
		rc.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) reset(hold chan struct{}) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seen, rc.delays, rc.hold = map[string]time.Time{}, nil, hold
}

func (rc *receiver) release() {
	rc.mu.Lock()
	h := rc.hold
	rc.hold = nil
	rc.mu.Unlock()
	if h != nil {
		close(h)
	}
}

// arrived returns how many of ids arrived and the latest arrival.
func (rc *receiver) arrived(ids []string) (int, time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n, last := 0, time.Time{}
	for _, id := range ids {
		if t, ok := rc.seen[id]; ok {
			n++
			if t.After(last) {
				last = t
			}
		}
	}
	return n, last
}

// Start brings the setup up. Call Close in every case.
func Start(ctx context.Context, cfg Config) (*Setup, error) {
	s := &Setup{cfg: cfg, client: &http.Client{Timeout: time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxIdleConns: 64}}}
	var err error
	if s.db, err = postgres.CreateDatabase(ctx, postgres.DefaultAdminDatabaseURL, "dionysia_bench_webhooks"); err != nil {
		return s, err
	}
	var redisURL string
	if s.redis, redisURL, err = harness.StartRedis(ctx, cfg.LogDir, 0); err != nil {
		return s, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return s, err
	}
	s.rcv = &receiver{seen: map[string]time.Time{}}
	s.rcvSrv = &http.Server{Handler: s.rcv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.rcvSrv.Serve(ln) }()
	s.rcvURL = "http://" + ln.Addr().String()

	port, err := testkit.FindFreePort()
	if err != nil {
		return s, err
	}
	s.apiURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	env := []string{
		"DIONYSIA_DATABASE_URL=" + s.db.URL, "DIONYSIA_DATABASE_MAX_CONNS=20", "DIONYSIA_REDIS_URL=" + redisURL,
		"DIONYSIA_API_ADDR=" + strings.TrimPrefix(s.apiURL, "http://"), "DIONYSIA_LOG_LEVEL=warn",
		"DIONYSIA_ALLOW_PRIVATE_TARGETS=true",
		"DIONYSIA_WEBHOOK_CONCURRENCY=" + strconv.Itoa(cfg.Concurrency),
		// The drain holds the first requests while the backlog is made.
		"DIONYSIA_WEBHOOK_TIMEOUT=2m",
	}
	if out, err := harness.Run(ctx, time.Minute, env, cfg.Dionysia, "migrate", "up"); err != nil {
		return s, fmt.Errorf("migrating: %w\n%s", err, out)
	}
	key, err := harness.RunStdout(ctx, time.Minute, env, cfg.Dionysia, "api-key", "create", "--name", "bench")
	if err != nil {
		return s, fmt.Errorf("creating an API key: %w", err)
	}
	s.key = strings.TrimSpace(key)
	if s.api, err = harness.StartProc(cfg.LogDir, "api-webhooks", env, cfg.Dionysia, "api"); err != nil {
		return s, err
	}
	if err := harness.WaitHTTP(ctx, s.api, s.apiURL+"/readyz", 30*time.Second); err != nil {
		return s, err
	}
	var w struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := s.call(ctx, http.MethodPost, "/api/v1/webhooks", map[string]string{"url": s.rcvURL + "/hook"}, &w); err != nil {
		return s, fmt.Errorf("creating the webhook: %w", err)
	}
	s.hookID, s.secret, s.rcv.secret = w.ID, w.Secret, w.Secret
	return s, nil
}

func (s *Setup) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.apiURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// produce records one webhook.test event through the API and returns its id.
func (s *Setup) produce(ctx context.Context) (string, error) {
	var sent struct {
		EventID string `json:"event_id"`
	}
	err := s.call(ctx, http.MethodPost, "/api/v1/webhooks/"+s.hookID+"/test", nil, &sent)
	return sent.EventID, err
}

// produceFor has producers clients record events for d (or until n
// events, when n > 0), back to back, or at rate events per second in all
// when rate > 0, and returns their ids.
func (s *Setup) produceFor(ctx context.Context, producers int, d time.Duration, n int, rate float64) ([]string, error) {
	var (
		mu   sync.Mutex
		ids  []string
		errs []error
	)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var tokens chan struct{}
	if rate > 0 {
		tokens = make(chan struct{})
		go func() {
			start := time.Now()
			for i := 0; ; i++ {
				due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(due)):
				}
				select {
				case <-ctx.Done():
					return
				case tokens <- struct{}{}:
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for range producers {
		wg.Go(func() {
			for ctx.Err() == nil {
				mu.Lock()
				done := n > 0 && len(ids) >= n
				mu.Unlock()
				if done {
					return
				}
				if tokens != nil {
					select {
					case <-ctx.Done():
						return
					case <-tokens:
					}
				}
				id, err := s.produce(ctx)
				mu.Lock()
				if err != nil && ctx.Err() == nil {
					errs = append(errs, err)
				} else if err == nil {
					ids = append(ids, id)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return ids, fmt.Errorf("%d event(s) not recorded, e.g. %w", len(errs), errs[0])
	}
	return ids, nil
}

// waitArrived waits up to timeout until every id arrived and returns the
// latest arrival.
func (s *Setup) waitArrived(ctx context.Context, ids []string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, last := s.rcv.arrived(ids)
		if n == len(ids) {
			return last, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return last, fmt.Errorf("%d of %d events arrived within %s (see %s)", n, len(ids), timeout,
				filepath.Join(s.cfg.LogDir, "api-webhooks.log"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Sustained is a run in which events are recorded and delivered at once.
type Sustained struct {
	Events  int
	Elapsed time.Duration   // from the first event recorded to the last one's arrival
	Delays  []time.Duration // commit (created_at) → arrival, sorted
}

// PerSecond is events delivered per second.
func (r Sustained) PerSecond() float64 { return float64(r.Events) / r.Elapsed.Seconds() }

// P returns the delay at percentile p (0..1), nearest rank.
func (r Sustained) P(p float64) time.Duration {
	return harness.LoadResult{Latencies: r.Delays}.P(p)
}

// RunSustained has producers API clients record webhook.test events at
// rate per second for d while the delivery worker sends them, and waits for
// the last one.
func (s *Setup) RunSustained(ctx context.Context, producers int, rate float64, d time.Duration) (Sustained, error) {
	s.rcv.reset(nil)
	start := time.Now()
	ids, err := s.produceFor(ctx, producers, d, 0, rate)
	if err != nil {
		return Sustained{}, err
	}
	last, err := s.waitArrived(ctx, ids, 2*time.Minute)
	if err != nil {
		return Sustained{}, err
	}
	s.rcv.mu.Lock()
	delays := slices.Clone(s.rcv.delays)
	s.rcv.mu.Unlock()
	slices.Sort(delays)
	return Sustained{Events: len(ids), Elapsed: last.Sub(start), Delays: delays}, nil
}

// Drain is a run that delivers a backlog.
type Drain struct {
	Events  int
	Elapsed time.Duration // from the receiver's release to the last arrival
}

// PerSecond is events delivered per second.
func (r Drain) PerSecond() float64 { return float64(r.Events) / r.Elapsed.Seconds() }

// RunDrain holds the receiver's answers while n events are recorded (the
// worker's first requests wait, the rest stay pending in the outbox), then
// releases it and times the delivery of the whole backlog.
func (s *Setup) RunDrain(ctx context.Context, producers, n int) (Drain, error) {
	s.rcv.reset(make(chan struct{}))
	defer s.rcv.release()
	ids, err := s.produceFor(ctx, producers, 90*time.Second, n, 0)
	if err != nil {
		return Drain{}, err
	}
	start := time.Now()
	s.rcv.release()
	last, err := s.waitArrived(ctx, ids, 2*time.Minute)
	if err != nil {
		return Drain{}, err
	}
	return Drain{Events: len(ids), Elapsed: last.Sub(start)}, nil
}

// RunReference is the ceiling: a Go client POSTing signed payloads of the
// same shape to the same receiver with the delivery worker's concurrency,
// back to back for d. Its latency is the request's round trip.
func (s *Setup) RunReference(ctx context.Context, d time.Duration) harness.LoadResult {
	s.rcv.reset(nil)
	client := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: s.cfg.Concurrency, MaxIdleConns: s.cfg.Concurrency}}
	data, _ := json.Marshal(map[string]any{"webhook": map[string]any{"id": s.hookID, "url": s.rcvURL + "/hook", "enabled": true}})
	return harness.RunLoad(ctx, s.cfg.Concurrency, d, func(ctx context.Context, _, _ int) (int64, error) {
		id := uuid.Must(uuid.NewV7())
		body, _ := json.Marshal(map[string]any{"id": id, "type": "webhook.test", "created_at": time.Now(), "stream_id": nil,
			"data": json.RawMessage(data)})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.rcvURL+"/ref", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		now := time.Now()
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(signature.EventIDHeader, id.String())
		req.Header.Set(signature.EventTypeHeader, "webhook.test")
		req.Header.Set(signature.Header, signature.Sign(now, body, s.secret))
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return 0, &harness.StatusError{URL: req.URL.String(), Status: resp.Status}
		}
		return int64(len(body)), nil
	})
}

// Close stops everything and drops the database.
func (s *Setup) Close() {
	if s.rcv != nil {
		s.rcv.release()
	}
	if s.api != nil {
		s.api.Stop(10 * time.Second)
	}
	if s.rcvSrv != nil {
		_ = s.rcvSrv.Close()
	}
	if s.redis != nil {
		s.redis.Stop(5 * time.Second)
	}
	if s.db != nil {
		if err := s.db.Drop(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "dropping the benchmark database:", err)
		}
	}
}
