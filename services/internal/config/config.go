// Package config holds the configuration of Dionysia's control-plane services.
//
// Each service has a struct whose zero value means "all defaults" (WithDefaults
// fills it with cmp.Or) and a Validate method. Values come from command-line
// flags and DIONYSIA_* environment variables, the flag winning: RegisterFlags
// binds a struct's fields to flags, each annotated with its variable, and
// ApplyEnv copies the variables into the flags the command line left unset.
// docs/configuration.md lists every variable; a test keeps it complete.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/spf13/pflag"
)

// Defaults.
const (
	DefaultDatabaseURL     = "postgres://dionysia:dionysia@127.0.0.1:5432/dionysia?sslmode=disable"
	DefaultRedisURL        = "redis://127.0.0.1:6379/0"
	DefaultAPIAddr         = "127.0.0.1:8080"
	DefaultAPIURL          = "http://127.0.0.1:8080"
	DefaultEdgePublicHost  = "127.0.0.1"
	DefaultRTMPPort        = 1935
	DefaultSRTPort         = 8890
	DefaultRTSPPort        = 8554
	DefaultWebRTCPort      = 8889
	DefaultPlaybackBaseURL = "http://127.0.0.1:8081"
	DefaultBodyLimit       = 1 << 20 // bytes
	DefaultShutdownTimeout = 10 * time.Second
	DefaultMaxConns        = 10

	DefaultDispatchInterval    = 250 * time.Millisecond
	DefaultRedispatchGrace     = 100 * time.Millisecond
	DefaultRedispatchMin       = 3 * time.Second
	DefaultDispatchFirstPickup = 3 * time.Second
	DefaultReconnectGrace      = 10 * time.Second
)

// Environment variables that hold secrets. They are read from the environment
// only (LoadSecrets), never from flags, and never logged.
const (
	EnvEdgeSecret   = "DIONYSIA_EDGE_SECRET"
	EnvWorkerSecret = "DIONYSIA_WORKER_SECRET"
	EnvPlaybackKeys = "DIONYSIA_PLAYBACK_KEYS"
)

// envAnnotation is the pflag annotation naming a flag's environment variable.
const envAnnotation = "dionysia_env"

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
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("database url: must be a postgres:// URL")
	}
	if c.MaxConns < 1 || c.MaxConns > 1000 {
		return fmt.Errorf("database max conns: must be 1-1000, got %d", c.MaxConns)
	}
	return nil
}

// RegisterFlags binds the fields to flags.
func (c *Database) RegisterFlags(fs *pflag.FlagSet) {
	d := c.WithDefaults()
	fs.StringVar(&c.URL, "database-url", d.URL, "PostgreSQL URL")
	annotate(fs, "database-url", "DIONYSIA_DATABASE_URL")
	fs.IntVar(&c.MaxConns, "database-max-conns", d.MaxConns, "maximum PostgreSQL connections in the pool")
	annotate(fs, "database-max-conns", "DIONYSIA_DATABASE_MAX_CONNS")
}

// Redis is the Redis connection.
type Redis struct {
	URL string // redis:// URL; default DefaultRedisURL
}

// WithDefaults fills unset fields.
func (c Redis) WithDefaults() Redis {
	c.URL = cmp.Or(c.URL, DefaultRedisURL)
	return c
}

// Validate checks the configuration.
func (c Redis) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
		return fmt.Errorf("redis url: must be a redis://, rediss:// or unix:// URL")
	}
	return nil
}

// RegisterFlags binds the fields to flags.
func (c *Redis) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.URL, "redis-url", c.WithDefaults().URL, "Redis URL")
	annotate(fs, "redis-url", "DIONYSIA_REDIS_URL")
}

// PublicURLs are the addresses the outside world uses, from which the API
// builds a stream's ingest and playback URLs.
type PublicURLs struct {
	EdgeHost        string // host name or IP of the ingest edge; default DefaultEdgePublicHost
	RTMPPort        int    // default DefaultRTMPPort
	SRTPort         int    // default DefaultSRTPort
	RTSPPort        int    // default DefaultRTSPPort
	WebRTCPort      int    // WHIP (HTTP) port; default DefaultWebRTCPort
	PlaybackBaseURL string // the router's public base URL; default DefaultPlaybackBaseURL
}

// WithDefaults fills unset fields.
func (c PublicURLs) WithDefaults() PublicURLs {
	c.EdgeHost = cmp.Or(c.EdgeHost, DefaultEdgePublicHost)
	c.RTMPPort = cmp.Or(c.RTMPPort, DefaultRTMPPort)
	c.SRTPort = cmp.Or(c.SRTPort, DefaultSRTPort)
	c.RTSPPort = cmp.Or(c.RTSPPort, DefaultRTSPPort)
	c.WebRTCPort = cmp.Or(c.WebRTCPort, DefaultWebRTCPort)
	c.PlaybackBaseURL = strings.TrimRight(cmp.Or(c.PlaybackBaseURL, DefaultPlaybackBaseURL), "/")
	return c
}

// Validate checks the configuration.
func (c PublicURLs) Validate() error {
	var errs []error
	if c.EdgeHost == "" || (strings.ContainsAny(c.EdgeHost, "/:?#@ ") && net.ParseIP(c.EdgeHost) == nil) {
		errs = append(errs, fmt.Errorf("edge public host: must be a host name or IP address, got %q", c.EdgeHost))
	}
	for name, p := range map[string]int{"rtmp": c.RTMPPort, "srt": c.SRTPort, "rtsp": c.RTSPPort, "webrtc": c.WebRTCPort} {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("edge %s port: must be 1-65535, got %d", name, p))
		}
	}
	if u, err := url.Parse(c.PlaybackBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("playback base url: must be an absolute http(s) URL, got %q", c.PlaybackBaseURL))
	}
	return errors.Join(errs...)
}

// RegisterFlags binds the fields to flags.
func (c *PublicURLs) RegisterFlags(fs *pflag.FlagSet) {
	d := c.WithDefaults()
	fs.StringVar(&c.EdgeHost, "edge-public-host", d.EdgeHost, "host name or IP publishers use to reach the edge")
	annotate(fs, "edge-public-host", "DIONYSIA_EDGE_PUBLIC_HOST")
	fs.IntVar(&c.RTMPPort, "edge-rtmp-port", d.RTMPPort, "public RTMP port of the edge")
	annotate(fs, "edge-rtmp-port", "DIONYSIA_EDGE_RTMP_PORT")
	fs.IntVar(&c.SRTPort, "edge-srt-port", d.SRTPort, "public SRT port (UDP) of the edge")
	annotate(fs, "edge-srt-port", "DIONYSIA_EDGE_SRT_PORT")
	fs.IntVar(&c.RTSPPort, "edge-rtsp-port", d.RTSPPort, "public RTSP port of the edge")
	annotate(fs, "edge-rtsp-port", "DIONYSIA_EDGE_RTSP_PORT")
	fs.IntVar(&c.WebRTCPort, "edge-webrtc-port", d.WebRTCPort, "public WebRTC (WHIP, HTTP) port of the edge")
	annotate(fs, "edge-webrtc-port", "DIONYSIA_EDGE_WEBRTC_PORT")
	fs.StringVar(&c.PlaybackBaseURL, "playback-base-url", d.PlaybackBaseURL, "public base URL of the playback router")
	annotate(fs, "playback-base-url", "DIONYSIA_PLAYBACK_BASE_URL")
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
	var errs []error
	for name, d := range map[string]time.Duration{"dispatch interval": c.Interval, "redispatch grace": c.Grace,
		"redispatch min interval": c.MinInterval, "dispatch first pickup": c.FirstPickup, "reconnect grace": c.ReconnectGrace} {
		if d <= 0 || d > time.Hour {
			errs = append(errs, fmt.Errorf("%s: must be between 0 and 1h, got %s", name, d))
		}
	}
	return errors.Join(errs...)
}

// RegisterFlags binds the fields to flags.
func (c *Dispatch) RegisterFlags(fs *pflag.FlagSet) {
	d := c.WithDefaults()
	fs.DurationVar(&c.Interval, "dispatch-interval", d.Interval, "how often the failover watchdog looks for live sessions without a worker")
	annotate(fs, "dispatch-interval", "DIONYSIA_DISPATCH_INTERVAL")
	fs.DurationVar(&c.Grace, "redispatch-grace", d.Grace, "how long a session whose worker is gone waits before it is re-dispatched")
	annotate(fs, "redispatch-grace", "DIONYSIA_REDISPATCH_GRACE")
	fs.DurationVar(&c.MinInterval, "redispatch-min-interval", d.MinInterval, "shortest time between two dispatches of one session")
	annotate(fs, "redispatch-min-interval", "DIONYSIA_REDISPATCH_MIN_INTERVAL")
	fs.DurationVar(&c.FirstPickup, "dispatch-first-pickup", d.FirstPickup, "how long a dispatched task that left the queue may take to be picked up before it is dispatched again")
	annotate(fs, "dispatch-first-pickup", "DIONYSIA_DISPATCH_FIRST_PICKUP")
	fs.DurationVar(&c.ReconnectGrace, "reconnect-grace", d.ReconnectGrace, "how long a dropped publisher may reconnect and continue the same session")
	annotate(fs, "reconnect-grace", "DIONYSIA_RECONNECT_GRACE")
}

// API configures the management API server.
type API struct {
	Addr            string        // listen address host:port; default DefaultAPIAddr
	BodyLimit       int64         // maximum request body (bytes); default DefaultBodyLimit
	ShutdownTimeout time.Duration // grace period for in-flight requests on stop; default DefaultShutdownTimeout
	Public          PublicURLs
	Dispatch        Dispatch

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
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	c.EdgeSecret = get(EnvEdgeSecret)
	c.WorkerSecret = get(EnvWorkerSecret)
	c.PlaybackKeys = get(EnvPlaybackKeys)
}

// String describes the configuration without its secrets.
func (c API) String() string {
	set := func(s string) string {
		if s == "" {
			return "unset"
		}
		return "set"
	}
	return fmt.Sprintf("api addr=%s edge_secret=%s worker_secret=%s playback_keys=%s",
		c.Addr, set(c.EdgeSecret), set(c.WorkerSecret), set(c.PlaybackKeys))
}

// WithDefaults fills unset fields.
func (c API) WithDefaults() API {
	c.Addr = cmp.Or(c.Addr, DefaultAPIAddr)
	c.BodyLimit = cmp.Or(c.BodyLimit, DefaultBodyLimit)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.Public = c.Public.WithDefaults()
	c.Dispatch = c.Dispatch.WithDefaults()
	return c
}

// Validate checks the configuration.
func (c API) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("api addr: must be host:port, got %q", c.Addr))
	}
	if c.BodyLimit < 1024 || c.BodyLimit > 64<<20 {
		errs = append(errs, fmt.Errorf("api body limit: must be 1 KiB-64 MiB, got %d bytes", c.BodyLimit))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("api shutdown timeout: must be positive, got %s", c.ShutdownTimeout))
	}
	errs = append(errs, c.Public.Validate(), c.Dispatch.Validate())
	if c.PlaybackKeys != "" {
		if _, err := playback.ParseKeys(c.PlaybackKeys); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvPlaybackKeys, err))
		}
	}
	return errors.Join(errs...)
}

// RegisterFlags binds the fields to flags.
func (c *API) RegisterFlags(fs *pflag.FlagSet) {
	d := c.WithDefaults()
	fs.StringVar(&c.Addr, "addr", d.Addr, "address the API listens on (host:port)")
	annotate(fs, "addr", "DIONYSIA_API_ADDR")
	fs.Int64Var(&c.BodyLimit, "body-limit", d.BodyLimit, "maximum request body size in bytes")
	annotate(fs, "body-limit", "DIONYSIA_API_BODY_LIMIT")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", d.ShutdownTimeout, "grace period for in-flight requests on stop")
	annotate(fs, "shutdown-timeout", "DIONYSIA_API_SHUTDOWN_TIMEOUT")
	c.Public.RegisterFlags(fs)
	c.Dispatch.RegisterFlags(fs)
}

// Client configures the CLI's connection to the API.
type Client struct {
	APIURL string // base URL of the API; default DefaultAPIURL
	APIKey string // bearer key (dio_...); required by commands that call the API
}

// WithDefaults fills unset fields.
func (c Client) WithDefaults() Client {
	c.APIURL = strings.TrimRight(cmp.Or(c.APIURL, DefaultAPIURL), "/")
	return c
}

// Validate checks the configuration.
func (c Client) Validate() error {
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("api url: must be an absolute http(s) URL, got %q", c.APIURL)
	}
	if c.APIKey == "" {
		return errors.New("api key: required (--api-key or DIONYSIA_API_KEY); create one with `dionysia api-key create`")
	}
	return nil
}

// RegisterFlags binds the fields to flags.
func (c *Client) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.APIURL, "api-url", c.WithDefaults().APIURL, "base URL of the management API")
	annotate(fs, "api-url", "DIONYSIA_API_URL")
	fs.StringVar(&c.APIKey, "api-key", "", "API key (prefer the environment variable: flags show in ps)")
	annotate(fs, "api-key", "DIONYSIA_API_KEY")
}

func annotate(fs *pflag.FlagSet, flag, env string) { BindEnv(fs, flag, env) }

// BindEnv ties the registered flag to the environment variable env for
// ApplyEnv and mentions the variable in the flag's help.
func BindEnv(fs *pflag.FlagSet, flag, env string) {
	f := fs.Lookup(flag)
	f.Usage += " (env " + env + ")"
	_ = fs.SetAnnotation(flag, envAnnotation, []string{env})
}

// EnvName returns the environment variable of a flag registered by this
// package, or "".
func EnvName(f *pflag.Flag) string {
	if v := f.Annotations[envAnnotation]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// ApplyEnv sets every flag of fs that was not given on the command line from
// its environment variable, when that is set. lookup is os.LookupEnv in
// production.
func ApplyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		env := EnvName(f)
		if env == "" || f.Changed {
			return
		}
		if v, ok := lookup(env); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	return errors.Join(errs...)
}
