package worker

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/spf13/pflag"
)

// Settings of dionysia-worker (Redis, the API URL and the secret are shared:
// package conf).
var (
	VarID              = conf.Var{Flag: "id", Env: "DIONYSIA_WORKER_ID"}
	VarDataDir         = conf.Var{Flag: "data-dir", Env: "DIONYSIA_WORKER_DATA_DIR"}
	VarOriginAddr      = conf.Var{Flag: "origin-addr", Env: "DIONYSIA_WORKER_ORIGIN_ADDR"}
	VarOriginURL       = conf.Var{Flag: "origin-url", Env: "DIONYSIA_WORKER_ORIGIN_URL"}
	VarClass           = conf.Var{Flag: "class", Env: "DIONYSIA_WORKER_CLASS"}
	VarCapacity        = conf.Var{Flag: "capacity", Env: "DIONYSIA_WORKER_CAPACITY"}
	VarNVENCSessions   = conf.Var{Flag: "nvenc-sessions", Env: "DIONYSIA_WORKER_NVENC_SESSIONS"}
	VarLeaseTTL        = conf.Var{Flag: "lease-ttl", Env: "DIONYSIA_WORKER_LEASE_TTL"}
	VarRetention       = conf.Var{Flag: "retention", Env: "DIONYSIA_WORKER_RETENTION"}
	VarSourceGrace     = conf.Var{Flag: "source-grace", Env: "DIONYSIA_WORKER_SOURCE_GRACE"}
	VarShutdownTimeout = conf.Var{Flag: "shutdown-timeout", Env: "DIONYSIA_WORKER_SHUTDOWN_TIMEOUT"}
)

// Secrets are the worker's environment-only settings.
var Secrets = []conf.Var{conf.WorkerSecret, conf.PlaybackKeys, conf.StorageAccessKeyID, conf.StorageSecretAccessKey}

// DefaultOriginAddr is the origin's listen address: loopback, because only
// the routers reach it; on several hosts set DIONYSIA_WORKER_ORIGIN_ADDR to
// 0.0.0.0:8090 (or a private interface) and DIONYSIA_WORKER_ORIGIN_URL to
// the URL the routers use.
const DefaultOriginAddr = "127.0.0.1:8090"

// Config configures a worker. Every field has a flag and a DIONYSIA_WORKER_*
// (or shared DIONYSIA_*) environment variable; see docs/configuration.md. The
// zero value of a field means its default. Load order: flags (RegisterFlags),
// environment (conf.ApplyEnv, LoadSecrets), WithDefaults, Validate.
type Config struct {
	ID    string     // worker id; default hostname + pid
	Redis conf.Redis // queues, leases, fleet and stop signals

	DataDir    string // where streams are packaged, {data_dir}/{stream_id}; default var/worker
	OriginAddr string // listen address of the origin, metrics and health server; default DefaultOriginAddr
	OriginURL  string // URL routers use to reach this origin; default http://<origin addr>

	APIURL string // control plane, for session events; default conf.DefaultAPIURL
	Secret string // DIONYSIA_WORKER_SECRET shared with the API; required, never logged
	// PlaybackKeys are DIONYSIA_PLAYBACK_KEYS (environment only, never
	// logged): the origin verifies the tokens of signed streams with them.
	// Without them every signed stream is refused (403).
	PlaybackKeys string
	// Storage is the object store recordings are uploaded to
	// (DIONYSIA_STORAGE_URL, credentials from the environment only), the
	// same as the API's and the routers'.
	Storage conf.Storage

	Class         string // "auto" (probe), "cpu" (never use a GPU); default auto
	Capacity      int    // concurrent live transcodes; default: cores/2 (min 1) on CPU, NVENC sessions/rungs on GPU
	NVENCSessions int    // NVENC sessions the GPU allows at once; default 8

	LeaseTTL        time.Duration // stream ownership lease; default 2 s (bounds failover detection)
	Retention       time.Duration // how long files stay after a session ends; default 60 s
	SourceGrace     time.Duration // how long an ended source may come back (publisher reconnect); default 12 s
	ShutdownTimeout time.Duration // graceful stop budget; default 10 s
}

// RegisterFlags binds the fields to flags, each tied to its variable for
// conf.ApplyEnv. Unset flags keep the zero value, which means default.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	f := conf.On(fs)
	f.String(&c.ID, VarID, c.ID, "worker id (default hostname-pid)")
	c.Redis.RegisterFlags(fs)
	f.String(&c.DataDir, VarDataDir, c.DataDir, "directory for packaged output (default var/worker)")
	f.String(&c.OriginAddr, VarOriginAddr, c.OriginAddr, "origin listen address (default "+DefaultOriginAddr+")")
	f.String(&c.OriginURL, VarOriginURL, c.OriginURL, "URL routers use to reach this origin (default http://<origin-addr>)")
	f.String(&c.APIURL, conf.APIURL, c.APIURL, "management API URL (default "+conf.DefaultAPIURL+")")
	c.Storage.RegisterFlags(fs)
	f.String(&c.Class, VarClass, c.Class, "hardware class: auto (probe) or cpu (default auto)")
	f.Int(&c.Capacity, VarCapacity, c.Capacity, "concurrent live transcodes (default from the hardware)")
	f.Int(&c.NVENCSessions, VarNVENCSessions, c.NVENCSessions, "NVENC sessions the GPU allows (default 8)")
	f.Duration(&c.LeaseTTL, VarLeaseTTL, c.LeaseTTL, "stream ownership lease (default 2s)")
	f.Duration(&c.Retention, VarRetention, c.Retention, "how long files stay after a session ends (default 60s)")
	f.Duration(&c.SourceGrace, VarSourceGrace, c.SourceGrace, "how long an ended source may come back before the session is finished; keep it above the API's reconnect grace (default 12s)")
	f.Duration(&c.ShutdownTimeout, VarShutdownTimeout, c.ShutdownTimeout, "graceful stop budget (default 10s)")
}

// LoadSecrets reads the secrets from the environment (lookup is os.LookupEnv
// in production), so they never show in ps.
func (c *Config) LoadSecrets(lookup func(string) (string, bool)) {
	c.Secret = conf.Secret(lookup, conf.WorkerSecret)
	c.PlaybackKeys = conf.Secret(lookup, conf.PlaybackKeys)
	c.Storage.LoadSecrets(lookup)
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d", cmp.Or(host, "worker"), os.Getpid())
	}
	c.Redis = c.Redis.WithDefaults()
	c.DataDir = cmp.Or(c.DataDir, "var/worker")
	c.OriginAddr = cmp.Or(c.OriginAddr, DefaultOriginAddr)
	c.OriginURL = cmp.Or(c.OriginURL, "http://"+c.OriginAddr)
	c.APIURL = cmp.Or(c.APIURL, conf.DefaultAPIURL)
	c.Storage = c.Storage.WithDefaults()
	c.Class = cmp.Or(c.Class, "auto")
	c.NVENCSessions = cmp.Or(c.NVENCSessions, 8)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, 2*time.Second)
	c.Retention = cmp.Or(c.Retention, time.Minute)
	c.SourceGrace = cmp.Or(c.SourceGrace, 12*time.Second)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, 10*time.Second)
	return c
}

// Validate reports every invalid field, naming its variable, its flag and
// the bad value.
func (c Config) Validate() error {
	errs := []error{
		conf.Required(conf.WorkerSecret, c.Secret),
		c.Redis.Validate(),
		c.Storage.Validate(),
		conf.OneOf(VarClass, c.Class, "auto", "cpu"),
		conf.HostPort(VarOriginAddr, c.OriginAddr),
		conf.HTTPURL(VarOriginURL, c.OriginURL),
		conf.HTTPURL(conf.APIURL, c.APIURL),
		conf.Range(VarCapacity, c.Capacity, 0, 1000),
		conf.Range(VarNVENCSessions, c.NVENCSessions, 1, 1000),
		conf.Range(VarLeaseTTL, c.LeaseTTL, time.Second, time.Hour),
		conf.Positive(VarRetention, c.Retention),
		conf.Positive(VarSourceGrace, c.SourceGrace),
		conf.Positive(VarShutdownTimeout, c.ShutdownTimeout),
	}
	if c.ID == "" || strings.ContainsAny(c.ID, " \t\n") {
		errs = append(errs, VarID.Invalid(c.ID, "must not be empty nor contain white space"))
	}
	if c.DataDir == "" {
		errs = append(errs, conf.Required(VarDataDir, c.DataDir))
	}
	if c.PlaybackKeys != "" {
		if _, err := playback.ParseKeys(c.PlaybackKeys); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", conf.PlaybackKeys, err))
		}
	}
	return errors.Join(errs...)
}
