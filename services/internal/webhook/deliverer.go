package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/netguard"
	"github.com/dionysia/dionysia/pkg/signature"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// UserAgent is the User-Agent of every webhook request.
const UserAgent = "Dionysia-Webhooks/1 (+https://github.com/dionysia/dionysia/blob/main/docs/webhooks.md)"

// leaseMargin is how much longer than the request timeout a claim lasts:
// time to record the outcome before the delivery is due again.
const leaseMargin = 5 * time.Second

// listenRetry is how long the Deliverer waits before listening again after
// the notification connection failed (it still polls meanwhile).
const listenRetry = time.Second

// maxErrorLen bounds the error text recorded for an attempt.
const maxErrorLen = 500

// Config configures a Deliverer. Its zero value means the defaults of
// config.Webhooks with private targets refused.
type Config struct {
	config.Webhooks
	// AllowPrivateTargets lets requests reach loopback, private and
	// link-local addresses (DIONYSIA_ALLOW_PRIVATE_TARGETS).
	AllowPrivateTargets bool
	Logger              *slog.Logger
	Registerer          prometheus.Registerer // nil: metrics are not registered
}

// Deliverer sends pending deliveries. Run it in every API process: they
// share the work through the database.
type Deliverer struct {
	st      *store.Store
	pool    *pgxpool.Pool
	cfg     Config
	log     *slog.Logger
	client  *http.Client
	metrics *metrics
	wake    chan struct{}
}

// New returns a Deliverer on st, listening for notifications on pool (the
// store's pool).
func New(st *store.Store, pool *pgxpool.Pool, cfg Config) (*Deliverer, error) {
	cfg.Webhooks = cfg.Webhooks.WithDefaults()
	if err := cfg.Webhooks.Validate(); err != nil {
		return nil, fmt.Errorf("webhook config: %w", err)
	}
	m, err := newMetrics(cfg.Registerer, st)
	if err != nil {
		return nil, err
	}
	guard := netguard.Guard{AllowPrivate: cfg.AllowPrivateTargets}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would connect on our behalf, past the guard
		DialContext:           guard.Dialer(net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          cfg.Concurrency * 2,
		MaxIdleConnsPerHost:   cfg.Concurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		ForceAttemptHTTP2:     true,
	}
	client := &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		// A redirect is not followed: the 3xx is the answer, and a failure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Deliverer{st: st, pool: pool, cfg: cfg, log: cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		client: client, metrics: m, wake: make(chan struct{}, 1)}, nil
}

// Wake makes the Deliverer look for due deliveries now (the LISTEN
// notification does the same).
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for the requests in flight (each
// bounded by the request timeout) and records their outcome.
func (d *Deliverer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { d.listen(ctx) })
	defer wg.Wait()

	done := make(chan struct{}, d.cfg.Concurrency)
	inFlight := 0
	tick := time.NewTicker(d.cfg.PollInterval)
	defer tick.Stop()
	for {
		if free := d.cfg.Concurrency - inFlight; free > 0 && ctx.Err() == nil {
			claims, err := d.st.ClaimDeliveries(ctx, free, d.cfg.Timeout+leaseMargin)
			if err != nil && ctx.Err() == nil {
				d.log.WarnContext(ctx, "claiming webhook deliveries", "error", err)
			}
			for _, c := range claims {
				inFlight++
				wg.Go(func() {
					d.deliver(context.WithoutCancel(ctx), c)
					done <- struct{}{}
				})
			}
			if len(claims) == free {
				continue // there may be more due
			}
		}
		if ctx.Err() != nil && inFlight == 0 {
			return nil
		}
		select {
		case <-done:
			// A finished delivery may unblock the next one of its stream.
			// Count every one finished by now, to claim them in one query.
			inFlight--
			for more := true; more; {
				select {
				case <-done:
					inFlight--
				default:
					more = false
				}
			}
		case <-d.wake:
		case <-tick.C:
		case <-ctx.Done():
			if inFlight == 0 {
				return nil
			}
			<-done
			inFlight--
		}
	}
}

// listen wakes the loop on every notification, listening again after an
// error; polling covers the gaps.
func (d *Deliverer) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := store.ListenDeliveries(ctx, d.pool, d.Wake)
		if ctx.Err() != nil {
			return
		}
		d.log.WarnContext(ctx, "listening for webhook deliveries; listening again", "error", err, "in", listenRetry)
		select {
		case <-ctx.Done():
		case <-time.After(listenRetry):
		}
	}
}

// outcome is what one request came to.
type outcome struct {
	status  *int
	err     string
	latency time.Duration
}

func (o outcome) ok() bool { return o.err == "" }

// send POSTs the claimed event, signed.
func (d *Deliverer) send(ctx context.Context, c store.Claim) outcome {
	body, err := json.Marshal(apiv1.WebhookPayload{ID: c.Event.ID, Type: c.Event.Type, CreatedAt: c.Event.CreatedAt,
		StreamID: c.Event.StreamID, Data: c.Event.Data})
	if err != nil {
		return outcome{err: "encoding the event: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, strings.NewReader(string(body)))
	if err != nil {
		return outcome{err: "building the request: " + describe(err)}
	}
	now := time.Now()
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", UserAgent)
	h.Set(signature.EventIDHeader, c.Event.ID.String())
	h.Set(signature.EventTypeHeader, c.Event.Type)
	h.Set(signature.Header, signature.Sign(now, body, c.SigningSecrets(now)...))
	resp, err := d.client.Do(req)
	latency := time.Since(now)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return outcome{err: fmt.Sprintf("no answer within %s", d.cfg.Timeout), latency: latency}
		}
		return outcome{err: describe(err), latency: latency}
	}
	// Drain a little of the answer so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	code := resp.StatusCode
	o := outcome{status: &code, latency: latency}
	switch {
	case code >= 200 && code < 300:
	case code >= 300 && code < 400:
		o.err = fmt.Sprintf("HTTP %d: redirects are not followed (Location: %s)", code, resp.Header.Get("Location"))
	default:
		o.err = "HTTP " + strconv.Itoa(code)
	}
	return o
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// describe is an error's text without the URL (which may carry a token of
// the receiver's) that net/http puts in front of it.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > maxErrorLen {
		s = s[:maxErrorLen]
	}
	return s
}

// Backoff returns the delay before attempt n+1 after n failed attempts:
// "equal jitter" on an exponential bound, a random time between half of
// and the whole of min(max, base·2^(n-1)). The jitter spreads the retries of
// many deliveries; keeping the lower half makes each delay at least as long
// as the one before (until the cap), so a struggling receiver gets more and
// more room.
func Backoff(n int, base, max time.Duration) time.Duration {
	bound := base
	for i := 1; i < n && bound < max; i++ {
		bound *= 2
	}
	bound = min(bound, max)
	half := bound / 2
	return half + rand.N(bound-half+1)
}

// deliver sends one claimed delivery and records the attempt.
func (d *Deliverer) deliver(ctx context.Context, c store.Claim) {
	attemptedAt := time.Now()
	o := d.send(ctx, c)
	d.metrics.duration.Observe(o.latency.Seconds())

	r := store.AttemptResult{AttemptedAt: attemptedAt, StatusCode: o.status, Latency: o.latency, Error: o.err}
	result := "delivered"
	switch {
	case o.ok():
		r.Status, r.NextAttemptAt = store.DeliveryDelivered, time.Now()
	default:
		next := time.Now().Add(Backoff(c.Attempts+1, d.cfg.BackoffBase, d.cfg.BackoffMax))
		if next.Before(c.QueuedAt.Add(d.cfg.RetryFor)) {
			r.Status, r.NextAttemptAt, result = store.DeliveryPending, next, "retried"
		} else {
			r.Status, r.NextAttemptAt, result = store.DeliveryFailed, time.Now(), "failed"
		}
	}
	err := d.st.InTx(ctx, func(tx *store.Store) error {
		failures, err := tx.RecordAttempt(ctx, c, r)
		if err != nil || r.Status != store.DeliveryFailed || failures < d.cfg.DisableAfter {
			return err
		}
		return d.disable(ctx, tx, c, failures)
	})
	switch {
	case errors.Is(err, store.ErrClaimLost):
		d.log.InfoContext(ctx, "webhook delivery claimed again before its attempt was recorded", "delivery_id", c.ID)
		return
	case err != nil:
		// The claim runs out and the delivery is tried again.
		d.log.ErrorContext(ctx, "recording a webhook attempt", "delivery_id", c.ID, "error", err)
		return
	}
	d.metrics.deliveries.WithLabelValues(result).Inc()
	if result != "delivered" {
		d.log.InfoContext(ctx, "webhook attempt failed", "webhook_id", c.WebhookID, "delivery_id", c.ID,
			"event_type", c.Event.Type, "attempt", c.Attempts+1, "error", o.err, "result", result,
			"next_attempt_at", r.NextAttemptAt)
	}
}

// disable disables an endpoint whose deliveries failed failures times in a
// row and records a webhook.disabled event, in the attempt's transaction.
func (d *Deliverer) disable(ctx context.Context, tx *store.Store, c store.Claim, failures int) error {
	reason := fmt.Sprintf("%d consecutive deliveries failed (the last: event %s, %s)", failures, c.Event.ID, c.Event.Type)
	w, err := tx.DisableWebhook(ctx, c.WebhookID, reason)
	if errors.Is(err, store.ErrNotFound) {
		return nil // disabled (or deleted) meanwhile
	}
	if err != nil {
		return err
	}
	if _, err := tx.AppendEvent(ctx, store.NewEvent{Type: event.WebhookDisabled, Data: Doc(w)}); err != nil {
		return err
	}
	d.metrics.disabled.Inc()
	d.log.WarnContext(ctx, "webhook endpoint disabled", "webhook_id", w.ID, "reason", reason)
	return nil
}
