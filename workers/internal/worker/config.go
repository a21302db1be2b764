package worker

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/spf13/pflag"
)

// Config configures a worker. Every field has a flag and a DIONYSIA_WORKER_*
// (or shared DIONYSIA_*) environment variable; see docs/configuration.md. The
// zero value of a field means its default.
type Config struct {
	ID       string // worker id; default hostname + pid
	RedisURL string // DIONYSIA_REDIS_URL; default redis://127.0.0.1:6379/0
	Prefix   string // Redis key prefix; default "dionysia:"

	DataDir    string // where streams are packaged, {data_dir}/{stream_id}; default ./var/worker
	OriginAddr string // listen address of the origin, metrics and health server; default 127.0.0.1:8090
	OriginURL  string // URL routers use to reach this origin; default http://<origin addr>

	APIURL string // control plane, for session events; default http://127.0.0.1:8080
	Secret string // DIONYSIA_WORKER_SECRET shared with the API; required, never logged
	// PlaybackKeys are DIONYSIA_PLAYBACK_KEYS (environment only, never
	// logged): the origin verifies the tokens of signed streams with them.
	// Without them every signed stream is refused (403).
	PlaybackKeys string

	Class         string // "auto" (probe), "cpu" (never use a GPU); default auto
	Capacity      int    // concurrent live transcodes; default: cores/2 (min 1) on CPU, NVENC sessions/rungs on GPU
	NVENCSessions int    // NVENC sessions the GPU allows at once; default 8

	LeaseTTL        time.Duration // stream ownership lease; default 2 s (bounds failover detection)
	Retention       time.Duration // how long files stay after a session ends; default 60 s
	SourceGrace     time.Duration // how long an ended source may come back (publisher reconnect); default 12 s
	ShutdownTimeout time.Duration // graceful stop budget; default 10 s
}

func envOr(key, def string) string { return cmp.Or(os.Getenv(key), def) }

func envInt(key string) int {
	n, _ := strconv.Atoi(os.Getenv(key))
	return n
}

func envDuration(key string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(key))
	return d
}

// BindFlags registers the flags, with defaults taken from the environment.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.ID, "id", os.Getenv("DIONYSIA_WORKER_ID"), "worker id (DIONYSIA_WORKER_ID; default hostname-pid)")
	fs.StringVar(&c.RedisURL, "redis-url", envOr("DIONYSIA_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL (DIONYSIA_REDIS_URL)")
	fs.StringVar(&c.Prefix, "redis-prefix", envOr("DIONYSIA_REDIS_PREFIX", "dionysia:"), "Redis key prefix (DIONYSIA_REDIS_PREFIX)")
	fs.StringVar(&c.DataDir, "data-dir", envOr("DIONYSIA_WORKER_DATA_DIR", "var/worker"), "directory for packaged output (DIONYSIA_WORKER_DATA_DIR)")
	fs.StringVar(&c.OriginAddr, "origin-addr", envOr("DIONYSIA_WORKER_ORIGIN_ADDR", "127.0.0.1:8090"), "origin listen address (DIONYSIA_WORKER_ORIGIN_ADDR)")
	fs.StringVar(&c.OriginURL, "origin-url", os.Getenv("DIONYSIA_WORKER_ORIGIN_URL"), "URL routers use to reach this origin (DIONYSIA_WORKER_ORIGIN_URL; default http://<origin-addr>)")
	fs.StringVar(&c.APIURL, "api-url", envOr("DIONYSIA_API_URL", "http://127.0.0.1:8080"), "management API URL (DIONYSIA_API_URL)")
	fs.StringVar(&c.Class, "class", envOr("DIONYSIA_WORKER_CLASS", "auto"), "hardware class: auto (probe) or cpu (DIONYSIA_WORKER_CLASS)")
	fs.IntVar(&c.Capacity, "capacity", envInt("DIONYSIA_WORKER_CAPACITY"), "concurrent live transcodes (DIONYSIA_WORKER_CAPACITY; default from the hardware)")
	fs.IntVar(&c.NVENCSessions, "nvenc-sessions", envInt("DIONYSIA_WORKER_NVENC_SESSIONS"), "NVENC sessions the GPU allows (DIONYSIA_WORKER_NVENC_SESSIONS; default 8)")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", envDuration("DIONYSIA_WORKER_LEASE_TTL"), "stream ownership lease (DIONYSIA_WORKER_LEASE_TTL; default 2s)")
	fs.DurationVar(&c.Retention, "retention", envDuration("DIONYSIA_WORKER_RETENTION"), "how long files stay after a session ends (DIONYSIA_WORKER_RETENTION; default 60s)")
	fs.DurationVar(&c.SourceGrace, "source-grace", envDuration("DIONYSIA_WORKER_SOURCE_GRACE"), "how long an ended source may come back before the session is finished; keep it above the API's reconnect grace (DIONYSIA_WORKER_SOURCE_GRACE; default 12s)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", envDuration("DIONYSIA_WORKER_SHUTDOWN_TIMEOUT"), "graceful stop budget (DIONYSIA_WORKER_SHUTDOWN_TIMEOUT; default 10s)")
	// The secrets come from the environment only, so they never show in ps.
	c.Secret = os.Getenv("DIONYSIA_WORKER_SECRET")
	c.PlaybackKeys = os.Getenv("DIONYSIA_PLAYBACK_KEYS")
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d", cmp.Or(host, "worker"), os.Getpid())
	}
	c.RedisURL = cmp.Or(c.RedisURL, "redis://127.0.0.1:6379/0")
	c.Prefix = cmp.Or(c.Prefix, "dionysia:")
	c.DataDir = cmp.Or(c.DataDir, "var/worker")
	c.OriginAddr = cmp.Or(c.OriginAddr, "127.0.0.1:8090")
	c.OriginURL = cmp.Or(c.OriginURL, "http://"+c.OriginAddr)
	c.APIURL = cmp.Or(c.APIURL, "http://127.0.0.1:8080")
	c.Class = cmp.Or(c.Class, "auto")
	c.NVENCSessions = cmp.Or(c.NVENCSessions, 8)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, 2*time.Second)
	c.Retention = cmp.Or(c.Retention, time.Minute)
	c.SourceGrace = cmp.Or(c.SourceGrace, 12*time.Second)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, 10*time.Second)
	return c
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Secret == "" {
		errs = append(errs, errors.New("DIONYSIA_WORKER_SECRET is required (the secret shared with the API)"))
	}
	if c.PlaybackKeys != "" {
		if _, err := playback.ParseKeys(c.PlaybackKeys); err != nil {
			errs = append(errs, fmt.Errorf("DIONYSIA_PLAYBACK_KEYS: %w", err))
		}
	}
	if c.Class != "auto" && c.Class != "cpu" {
		errs = append(errs, fmt.Errorf("class must be auto or cpu, got %q", c.Class))
	}
	if _, _, err := net.SplitHostPort(c.OriginAddr); err != nil {
		errs = append(errs, fmt.Errorf("origin-addr %q: %w", c.OriginAddr, err))
	}
	for name, v := range map[string]string{"origin-url": c.OriginURL, "api-url": c.APIURL} {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s must be an http(s) URL, got %q", name, v))
		}
	}
	if c.Capacity < 0 || c.NVENCSessions < 1 {
		errs = append(errs, errors.New("capacity must be >= 0 and nvenc-sessions >= 1"))
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("lease-ttl must be at least 1s, got %s", c.LeaseTTL))
	}
	if strings.ContainsRune(c.ID, ' ') {
		errs = append(errs, fmt.Errorf("id must not contain spaces, got %q", c.ID))
	}
	return errors.Join(errs...)
}
