// Package config holds the configuration of `dionysia api` and of the CLI
// commands, in the style of package conf (pkg/conf) that every binary shares:
// a struct whose zero value means "all defaults" (WithDefaults fills it with
// cmp.Or), a Validate method naming the variable, the flag and the bad value,
// and RegisterFlags binding the fields to flags annotated with their
// DIONYSIA_* variable (conf.ApplyEnv applies the environment, in the CLI's
// root command). docs/configuration.md lists every variable; the cli tests
// keep it complete.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/spf13/pflag"
)

// Defaults.
const (
	DefaultDatabaseURL     = "postgres://dionysia:dionysia@127.0.0.1:5432/dionysia?sslmode=disable"
	DefaultAPIAddr         = "127.0.0.1:8080"
	DefaultIngestHost      = "127.0.0.1"
	DefaultRTMPPort        = 1935
	DefaultSRTPort         = 8890
	DefaultRTSPPort        = 8554
	DefaultWebRTCPort      = 8889
	DefaultPlaybackURL     = "http://127.0.0.1:8081"
	DefaultBodyLimit       = 1 << 20 // bytes
	DefaultShutdownTimeout = 10 * time.Second
	DefaultMaxConns        = 10
	DefaultEventRetention  = 30 * 24 * time.Hour

	DefaultDispatchInterval    = 250 * time.Millisecond
	DefaultRedispatchGrace     = 100 * time.Millisecond
	DefaultRedispatchMin       = 3 * time.Second
	DefaultDispatchFirstPickup = 3 * time.Second
	DefaultReconnectGrace      = 10 * time.Second

	DefaultWebhookTimeout       = 10 * time.Second
	DefaultWebhookRetryFor      = 24 * time.Hour
	DefaultWebhookDisableAfter  = 20 // consecutive failed deliveries
	DefaultWebhookConcurrency   = 16 // requests in flight per API process
	DefaultWebhookBackoffBase   = time.Second
	DefaultWebhookBackoffMax    = time.Hour
	DefaultWebhookRotationGrace = 24 * time.Hour
	DefaultWebhookPoll          = time.Second
)

// Settings of this package (the shared ones are in package conf).
var (
	VarDatabaseURL      = conf.Var{Flag: "database-url", Env: "DIONYSIA_DATABASE_URL"}
	VarDatabaseMaxConns = conf.Var{Flag: "database-max-conns", Env: "DIONYSIA_DATABASE_MAX_CONNS"}

	VarAPIAddr            = conf.Var{Flag: "addr", Env: "DIONYSIA_API_ADDR"}
	VarAPIBodyLimit       = conf.Var{Flag: "body-limit", Env: "DIONYSIA_API_BODY_LIMIT"}
	VarAPIShutdownTimeout = conf.Var{Flag: "shutdown-timeout", Env: "DIONYSIA_API_SHUTDOWN_TIMEOUT"}
	VarEventRetention     = conf.Var{Flag: "event-retention", Env: "DIONYSIA_EVENT_RETENTION"}

	VarPublicIngestHost = conf.Var{Flag: "public-ingest-host", Env: "DIONYSIA_PUBLIC_INGEST_HOST"}
	VarPublicRTMPPort   = conf.Var{Flag: "public-rtmp-port", Env: "DIONYSIA_PUBLIC_RTMP_PORT"}
	VarPublicSRTPort    = conf.Var{Flag: "public-srt-port", Env: "DIONYSIA_PUBLIC_SRT_PORT"}
	VarPublicRTSPPort   = conf.Var{Flag: "public-rtsp-port", Env: "DIONYSIA_PUBLIC_RTSP_PORT"}
	VarPublicWebRTCPort = conf.Var{Flag: "public-webrtc-port", Env: "DIONYSIA_PUBLIC_WEBRTC_PORT"}
	VarPublicPlayback   = conf.Var{Flag: "public-playback-url", Env: "DIONYSIA_PUBLIC_PLAYBACK_URL"}

	VarDispatchInterval    = conf.Var{Flag: "dispatch-interval", Env: "DIONYSIA_API_DISPATCH_INTERVAL"}
	VarRedispatchGrace     = conf.Var{Flag: "redispatch-grace", Env: "DIONYSIA_API_REDISPATCH_GRACE"}
	VarRedispatchMin       = conf.Var{Flag: "redispatch-min-interval", Env: "DIONYSIA_API_REDISPATCH_MIN_INTERVAL"}
	VarDispatchFirstPickup = conf.Var{Flag: "dispatch-first-pickup", Env: "DIONYSIA_API_DISPATCH_FIRST_PICKUP"}
	VarReconnectGrace      = conf.Var{Flag: "reconnect-grace", Env: "DIONYSIA_API_RECONNECT_GRACE"}

	VarAPIKey = conf.Var{Flag: "api-key", Env: "DIONYSIA_API_KEY"}

	// VarAllowPrivateTargets lets outbound requests the platform makes for
	// its users (webhooks; later pull sources and restream targets) reach
	// loopback, private and link-local addresses (pkg/netguard).
	VarAllowPrivateTargets = conf.Var{Flag: "allow-private-targets", Env: "DIONYSIA_ALLOW_PRIVATE_TARGETS"}

	VarWebhookTimeout       = conf.Var{Flag: "webhook-timeout", Env: "DIONYSIA_WEBHOOK_TIMEOUT"}
	VarWebhookRetryFor      = conf.Var{Flag: "webhook-retry-for", Env: "DIONYSIA_WEBHOOK_RETRY_FOR"}
	VarWebhookDisableAfter  = conf.Var{Flag: "webhook-disable-after", Env: "DIONYSIA_WEBHOOK_DISABLE_AFTER"}
	VarWebhookConcurrency   = conf.Var{Flag: "webhook-concurrency", Env: "DIONYSIA_WEBHOOK_CONCURRENCY"}
	VarWebhookBackoffBase   = conf.Var{Flag: "webhook-backoff-base", Env: "DIONYSIA_WEBHOOK_BACKOFF_BASE"}
	VarWebhookBackoffMax    = conf.Var{Flag: "webhook-backoff-max", Env: "DIONYSIA_WEBHOOK_BACKOFF_MAX"}
	VarWebhookRotationGrace = conf.Var{Flag: "webhook-rotation-grace", Env: "DIONYSIA_WEBHOOK_ROTATION_GRACE"}
	VarWebhookPoll          = conf.Var{Flag: "webhook-poll-interval", Env: "DIONYSIA_WEBHOOK_POLL_INTERVAL"}
)

// APISecrets are the environment-only settings of `dionysia api`.
var APISecrets = []conf.Var{conf.EdgeSecret, conf.WorkerSecret, conf.PlaybackKeys, conf.StorageAccessKeyID, conf.StorageSecretAccessKey}

// Database is the PostgreSQL connection.
type Database struct {
	URL      string // libpq URL; default DefaultDatabaseURL
	MaxConns int    // pool size (connections); default DefaultMaxConns
}

// WithDefaults fills unset fields.
func (c Database) WithDefaults() Database {
	c.URL = cmp.Or(c.URL, DefaultDatabaseURL)
	c.MaxConns = cmp.Or(c.MaxConns, DefaultMaxConns)
	return c
}

// Validate checks the configuration.
func (c Database) Validate() error {
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// The value is not repeated: it holds the password.
		errs = append(errs, fmt.Errorf("%s: must be a postgres:// URL", VarDatabaseURL))
	}
	errs = append(errs, conf.Range(VarDatabaseMaxConns, c.MaxConns, 1, 1000))
	return errors.Join(errs...)
}

// RegisterFlags binds the fields to flags.
func (c *Database) RegisterFlags(fs *pflag.FlagSet) {
	d := c.WithDefaults()
	f := conf.On(fs)
	f.String(&c.URL, VarDatabaseURL, d.URL, "PostgreSQL URL")
	f.Int(&c.MaxConns, VarDatabaseMaxConns, d.MaxConns, "maximum PostgreSQL connections in the pool")
}

// PublicURLs are the addresses the outside world uses, from which the API
// builds a stream's ingest and playback URLs: what publishers and viewers
// are told, not where any service listens.
type PublicURLs struct {
	EdgeHost        string // host name or IP publishers reach the edges by; default DefaultIngestHost
	RTMPPort        int    // default DefaultRTMPPort
	SRTPort         int    // default DefaultSRTPort
	RTSPPort        int    // default DefaultRTSPPort
	WebRTCPort      int    // WHIP (HTTP) port; default DefaultWebRTCPort
	PlaybackBaseURL string // the router's public base URL; default DefaultPlaybackURL
}

// WithDefaults fills unset fields.
func (c PublicURLs) WithDefaults() PublicURLs {
	c.EdgeHost = cmp.Or(c.EdgeHost, DefaultIngestHost)
	c.RTMPPort = cmp.Or(c.RTMPPort, DefaultRTMPPort)
	c.SRTPort = cmp.Or(c.SRTPort, DefaultSRTPort)
	c.RTSPPort = cmp.Or(c.RTSPPort, DefaultRTSPPort)
	c.WebRTCPort = cmp.Or(c.WebRTCPort, DefaultWebRTCPort)
	c.PlaybackBaseURL = strings.TrimRight(cmp.Or(c.PlaybackBaseURL, DefaultPlaybackURL), "/")
	return c
}

// Validate checks the configuration.
func (c PublicURLs) Validate() error {
	return errors.Join(
		conf.Host(VarPublicIngestHost, c.EdgeHost),
		conf.Port(VarPublicRTMPPort, c.RTMPPort),
		conf.Port(VarPublicSRTPort, c.SRTPort),
		conf.Port(VarPublicRTSPPort, c.RTSPPort),
		conf.Port(VarPublicWebRTCPort, c.WebRTCPort),
		conf.HTTPURL(VarPublicPlayback, c.PlaybackBaseURL),
	)
}

// RegisterFlags binds the fields to flags.
func (c *PublicURLs) RegisterFlags(fs *pflag.FlagSet) {
	d := c.WithDefaults()
	f := conf.On(fs)
	f.String(&c.EdgeHost, VarPublicIngestHost, d.EdgeHost, "host name or IP publishers are told to reach the edges by")
	f.Port(&c.RTMPPort, VarPublicRTMPPort, d.RTMPPort, "RTMP port publishers are told")
	f.Port(&c.SRTPort, VarPublicSRTPort, d.SRTPort, "SRT (UDP) port publishers are told")
	f.Port(&c.RTSPPort, VarPublicRTSPPort, d.RTSPPort, "RTSP port publishers are told")
	f.Port(&c.WebRTCPort, VarPublicWebRTCPort, d.WebRTCPort, "WebRTC (WHIP, HTTP) port publishers are told")
	f.String(&c.PlaybackBaseURL, VarPublicPlayback, d.PlaybackBaseURL, "public base URL of the playback routers, which players are told")
}

// Dispatch configures how the API hands live sessions to workers and the
// failover watchdog that re-dispatches a session whose worker is gone.
type Dispatch struct {
	// Interval is how often the watchdog looks for sessions without a
	// worker; default DefaultDispatchInterval.
	Interval time.Duration
	// Grace is how long a session that had a worker stays without one before
	// it is re-dispatched; default DefaultRedispatchGrace.
	Grace time.Duration
	// MinInterval is the shortest time between two dispatches of a session;
	// default DefaultRedispatchMin.
	MinInterval time.Duration
	// FirstPickup is how long a dispatched task may wait for a worker to take
	// it (while it is not queued any more) before it is dispatched again;
	// default DefaultDispatchFirstPickup.
	FirstPickup time.Duration
	// ReconnectGrace is how long a publisher that dropped (disconnected or
	// timed out) may come back and continue the same session: the session
	// closes at once, its worker is stopped only when the grace passes
	// without a reconnect. Default DefaultReconnectGrace.
	ReconnectGrace time.Duration
}

// WithDefaults fills unset fields.
func (c Dispatch) WithDefaults() Dispatch {
	c.Interval = cmp.Or(c.Interval, DefaultDispatchInterval)
	c.Grace = cmp.Or(c.Grace, DefaultRedispatchGrace)
	c.MinInterval = cmp.Or(c.MinInterval, DefaultRedispatchMin)
	c.FirstPickup = cmp.Or(c.FirstPickup, DefaultDispatchFirstPickup)
	c.ReconnectGrace = cmp.Or(c.ReconnectGrace, DefaultReconnectGrace)
	return c
}

// Validate checks the configuration.
func (c Dispatch) Validate() error {
	in := func(v conf.Var, d time.Duration) error { return conf.Range(v, d, time.Millisecond, time.Hour) }
	return errors.Join(
		in(VarDispatchInterval, c.Interval),
		in(VarRedispatchGrace, c.Grace),
		in(VarRedispatchMin, c.MinInterval),
		in(VarDispatchFirstPickup, c.FirstPickup),
		in(VarReconnectGrace, c.ReconnectGrace),
	)
}

// RegisterFlags binds the fields to flags.
func (c *Dispatch) RegisterFlags(fs *pflag.FlagSet) {
	d := c.WithDefaults()
	f := conf.On(fs)
	f.Duration(&c.Interval, VarDispatchInterval, d.Interval, "how often the failover watchdog looks for live sessions without a worker")
	f.Duration(&c.Grace, VarRedispatchGrace, d.Grace, "how long a session whose worker is gone waits before it is re-dispatched")
	f.Duration(&c.MinInterval, VarRedispatchMin, d.MinInterval, "shortest time between two dispatches of one session")
	f.Duration(&c.FirstPickup, VarDispatchFirstPickup, d.FirstPickup, "how long a dispatched task that left the queue may take to be picked up before it is dispatched again")
	f.Duration(&c.ReconnectGrace, VarReconnectGrace, d.ReconnectGrace, "how long a dropped publisher may reconnect and continue the same session")
}

// Webhooks configures the delivery of events to webhook endpoints
// (docs/webhooks.md).
type Webhooks struct {
	// Timeout bounds each request (connect to last byte of the answer);
	// default DefaultWebhookTimeout.
	Timeout time.Duration
	// RetryFor is how long a delivery is retried after it was queued before
	// it is marked failed; default DefaultWebhookRetryFor.
	RetryFor time.Duration
	// DisableAfter is how many deliveries in a row may fail for good before
	// the platform disables the endpoint; default DefaultWebhookDisableAfter.
	DisableAfter int
	// Concurrency is how many requests one API process has in flight;
	// default DefaultWebhookConcurrency.
	Concurrency int
	// BackoffBase and BackoffMax shape the retry delays: attempt n waits a
	// random time up to min(BackoffMax, BackoffBase·2^(n-1)) (full jitter);
	// defaults DefaultWebhookBackoffBase and DefaultWebhookBackoffMax.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// RotationGrace is how long a rotated-out secret still signs, unless the
	// rotation says otherwise; default DefaultWebhookRotationGrace.
	RotationGrace time.Duration
	// PollInterval is how often the delivery worker looks for due deliveries
	// without being notified; default DefaultWebhookPoll.
	PollInterval time.Duration
}

// WithDefaults fills unset fields.
func (c Webhooks) WithDefaults() Webhooks {
	c.Timeout = cmp.Or(c.Timeout, DefaultWebhookTimeout)
	c.RetryFor = cmp.Or(c.RetryFor, DefaultWebhookRetryFor)
	c.DisableAfter = cmp.Or(c.DisableAfter, DefaultWebhookDisableAfter)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultWebhookConcurrency)
	c.BackoffBase = cmp.Or(c.BackoffBase, DefaultWebhookBackoffBase)
	c.BackoffMax = cmp.Or(c.BackoffMax, DefaultWebhookBackoffMax)
	c.RotationGrace = cmp.Or(c.RotationGrace, DefaultWebhookRotationGrace)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultWebhookPoll)
	return c
}

// Validate checks the configuration.
func (c Webhooks) Validate() error {
	errs := []error{
		conf.Range(VarWebhookTimeout, c.Timeout, 100*time.Millisecond, 5*time.Minute),
		conf.Range(VarWebhookRetryFor, c.RetryFor, time.Second, 30*24*time.Hour),
		conf.Range(VarWebhookDisableAfter, c.DisableAfter, 1, 100000),
		conf.Range(VarWebhookConcurrency, c.Concurrency, 1, 1000),
		conf.Range(VarWebhookBackoffBase, c.BackoffBase, time.Millisecond, time.Hour),
		conf.Range(VarWebhookBackoffMax, c.BackoffMax, time.Millisecond, 24*time.Hour),
		conf.Range(VarWebhookRotationGrace, c.RotationGrace, time.Duration(0), 30*24*time.Hour),
		conf.Range(VarWebhookPoll, c.PollInterval, 10*time.Millisecond, time.Minute),
	}
	if c.BackoffMax < c.BackoffBase {
		errs = append(errs, VarWebhookBackoffMax.Invalid(c.BackoffMax, "must not be below %s (%s)", VarWebhookBackoffBase.Env, c.BackoffBase))
	}
	return errors.Join(errs...)
}

// RegisterFlags binds the fields to flags.
func (c *Webhooks) RegisterFlags(fs *pflag.FlagSet) {
	d := c.WithDefaults()
	f := conf.On(fs)
	f.Duration(&c.Timeout, VarWebhookTimeout, d.Timeout, "timeout of each webhook request")
	f.Duration(&c.RetryFor, VarWebhookRetryFor, d.RetryFor, "how long a webhook delivery is retried before it is marked failed")
	f.Int(&c.DisableAfter, VarWebhookDisableAfter, d.DisableAfter, "consecutive failed deliveries after which an endpoint is disabled")
	f.Int(&c.Concurrency, VarWebhookConcurrency, d.Concurrency, "webhook requests in flight per API process")
	f.Duration(&c.BackoffBase, VarWebhookBackoffBase, d.BackoffBase, "first retry delay bound of a webhook delivery (doubles per attempt, full jitter)")
	f.Duration(&c.BackoffMax, VarWebhookBackoffMax, d.BackoffMax, "largest retry delay of a webhook delivery")
	f.Duration(&c.RotationGrace, VarWebhookRotationGrace, d.RotationGrace, "how long a rotated-out webhook secret still signs, by default")
	f.Duration(&c.PollInterval, VarWebhookPoll, d.PollInterval, "how often the delivery worker looks for due deliveries without a notification")
}

// API configures the management API server.
type API struct {
	Addr            string        // listen address host:port; default DefaultAPIAddr
	BodyLimit       int64         // maximum request body (bytes); default DefaultBodyLimit
	ShutdownTimeout time.Duration // grace period for in-flight requests on stop; default DefaultShutdownTimeout
	Public          PublicURLs
	Dispatch        Dispatch
	Webhooks        Webhooks
	// AllowPrivateTargets lets webhooks (and later pull sources and
	// restream targets) reach loopback, private and link-local addresses;
	// default false (pkg/netguard refuses them).
	AllowPrivateTargets bool
	// EventRetention is how long events stay in the event log before the
	// background pruner deletes them; default DefaultEventRetention (30 days).
	EventRetention time.Duration

	// EdgeSecret authenticates the ingest edges on /internal/v1/edge/*
	// (DIONYSIA_EDGE_SECRET) and keys the worker read credentials; empty
	// disables those endpoints (503).
	EdgeSecret string
	// WorkerSecret authenticates the workers on /internal/v1/sessions/*
	// (DIONYSIA_WORKER_SECRET); empty disables that endpoint (503).
	WorkerSecret string
	// PlaybackKeys signs playback tokens, "kid:base64secret,..." with the
	// current key first (DIONYSIA_PLAYBACK_KEYS, the router's format); empty
	// disables the playback-token endpoint (503).
	PlaybackKeys string
}

// LoadSecrets reads the secret fields from the environment (lookup is
// os.LookupEnv in production). Secrets are never flags: command lines are
// visible to every local user.
func (c *API) LoadSecrets(lookup func(string) (string, bool)) {
	c.EdgeSecret = conf.Secret(lookup, conf.EdgeSecret)
	c.WorkerSecret = conf.Secret(lookup, conf.WorkerSecret)
	c.PlaybackKeys = conf.Secret(lookup, conf.PlaybackKeys)
}

// String describes the configuration without its secrets.
func (c API) String() string {
	return fmt.Sprintf("api addr=%s edge_secret=%s worker_secret=%s playback_keys=%s",
		c.Addr, conf.Redacted(c.EdgeSecret), conf.Redacted(c.WorkerSecret), conf.Redacted(c.PlaybackKeys))
}

// WithDefaults fills unset fields.
func (c API) WithDefaults() API {
	c.Addr = cmp.Or(c.Addr, DefaultAPIAddr)
	c.BodyLimit = cmp.Or(c.BodyLimit, DefaultBodyLimit)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.EventRetention = cmp.Or(c.EventRetention, DefaultEventRetention)
	c.Public = c.Public.WithDefaults()
	c.Dispatch = c.Dispatch.WithDefaults()
	c.Webhooks = c.Webhooks.WithDefaults()
	return c
}

// Validate checks the configuration.
func (c API) Validate() error {
	errs := []error{
		conf.HostPort(VarAPIAddr, c.Addr),
		conf.Range(VarAPIBodyLimit, c.BodyLimit, 1<<10, 64<<20),
		conf.Positive(VarAPIShutdownTimeout, c.ShutdownTimeout),
		conf.Range(VarEventRetention, c.EventRetention, time.Minute, 10*365*24*time.Hour),
		c.Public.Validate(),
		c.Dispatch.Validate(),
		c.Webhooks.Validate(),
	}
	if c.PlaybackKeys != "" {
		if _, err := playback.ParseKeys(c.PlaybackKeys); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", conf.PlaybackKeys, err))
		}
	}
	return errors.Join(errs...)
}

// RegisterFlags binds the fields to flags.
func (c *API) RegisterFlags(fs *pflag.FlagSet) {
	d := c.WithDefaults()
	f := conf.On(fs)
	f.String(&c.Addr, VarAPIAddr, d.Addr, "address the API listens on (host:port)")
	f.Int64(&c.BodyLimit, VarAPIBodyLimit, d.BodyLimit, "maximum request body size in bytes")
	f.Duration(&c.ShutdownTimeout, VarAPIShutdownTimeout, d.ShutdownTimeout, "grace period for in-flight requests on stop")
	f.Duration(&c.EventRetention, VarEventRetention, d.EventRetention, "how long events stay in the event log before they are pruned")
	c.Public.RegisterFlags(fs)
	c.Dispatch.RegisterFlags(fs)
	c.Webhooks.RegisterFlags(fs)
	f.Bool(&c.AllowPrivateTargets, VarAllowPrivateTargets, false, "let webhooks reach loopback, private and link-local addresses (on-prem receivers, development)")
}

// Client configures the CLI's connection to the API.
type Client struct {
	APIURL string // base URL of the API; default conf.DefaultAPIURL
	APIKey string // bearer key (dio_...); required by commands that call the API
}

// WithDefaults fills unset fields.
func (c Client) WithDefaults() Client {
	c.APIURL = strings.TrimRight(cmp.Or(c.APIURL, conf.DefaultAPIURL), "/")
	return c
}

// Validate checks the configuration.
func (c Client) Validate() error {
	if err := conf.HTTPURL(conf.APIURL, c.APIURL); err != nil {
		return err
	}
	if c.APIKey == "" {
		return errors.New("api key: required (--api-key or DIONYSIA_API_KEY); create one with `dionysia api-key create`")
	}
	return nil
}

// RegisterFlags binds the fields to flags.
func (c *Client) RegisterFlags(fs *pflag.FlagSet) {
	f := conf.On(fs)
	f.String(&c.APIURL, conf.APIURL, c.WithDefaults().APIURL, "base URL of the management API")
	f.String(&c.APIKey, VarAPIKey, "", "API key (prefer the environment variable: flags show in ps)")
}
