package conf

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"
)

// Defaults of the shared settings.
const (
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
	DefaultRedisPrefix = "dionysia:" // job.DefaultPrefix and ownership.DefaultPrefix
	DefaultAPIURL      = "http://127.0.0.1:8080"
	DefaultLogLevel    = "info"
	DefaultLogFormat   = "text"
)

// Redis is the Redis connection of the API, the routers and the workers.
type Redis struct {
	URL    string // redis://, rediss:// or unix:// URL; default DefaultRedisURL
	Prefix string // key prefix (not of asynq's keys); default DefaultRedisPrefix
}

// WithDefaults fills unset fields.
func (c Redis) WithDefaults() Redis {
	c.URL = cmp.Or(c.URL, DefaultRedisURL)
	c.Prefix = cmp.Or(c.Prefix, DefaultRedisPrefix)
	return c
}

// Validate checks the configuration.
func (c Redis) Validate() error {
	var errs []error
	if _, err := redis.ParseURL(c.URL); err != nil {
		errs = append(errs, RedisURL.Invalid(redactURL(c.URL), "must be a redis://, rediss:// or unix:// URL"))
	}
	if strings.ContainsAny(c.Prefix, " \t\n") {
		errs = append(errs, RedisPrefix.Invalid(c.Prefix, "must not contain white space"))
	}
	return errors.Join(errs...)
}

// Options parses the URL (call Validate first).
func (c Redis) Options() (*redis.Options, error) {
	o, err := redis.ParseURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", RedisURL.Env, err)
	}
	return o, nil
}

// RegisterFlags binds the fields to --redis-url and --redis-prefix.
func (c *Redis) RegisterFlags(fs *pflag.FlagSet) {
	d := c.WithDefaults()
	f := On(fs)
	f.String(&c.URL, RedisURL, d.URL, "Redis URL")
	f.String(&c.Prefix, RedisPrefix, d.Prefix, "Redis key prefix, the same on the API, the routers and the workers")
}

// redactURL hides a password in a URL shown in an error.
func redactURL(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "…" + s[i:]
		}
	}
	return s
}

// Log configures the logs (on stderr, through log/slog).
type Log struct {
	Level  string // debug, info, warn or error; default DefaultLogLevel
	Format string // text or json; default DefaultLogFormat
}

// WithDefaults fills unset fields.
func (c Log) WithDefaults() Log {
	c.Level = cmp.Or(c.Level, DefaultLogLevel)
	c.Format = cmp.Or(c.Format, DefaultLogFormat)
	return c
}

// Validate checks the configuration.
func (c Log) Validate() error {
	return errors.Join(
		OneOf(LogLevel, strings.ToLower(c.Level), "debug", "info", "warn", "error"),
		OneOf(LogFormat, c.Format, "text", "json"),
	)
}

// RegisterFlags binds the fields to --log-level and --log-format.
func (c *Log) RegisterFlags(fs *pflag.FlagSet) {
	d := c.WithDefaults()
	f := On(fs)
	f.String(&c.Level, LogLevel, d.Level, "log level: debug, info, warn or error")
	f.String(&c.Format, LogFormat, d.Format, "log format: text or json")
}

// Logger returns the logger writing to w, or the Validate error.
func (c Log) Logger(w io.Writer) (*slog.Logger, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // checked by Validate
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// DefaultStorageURL is where recordings go when DIONYSIA_STORAGE_URL is unset.
const DefaultStorageURL = "file:///var/lib/dionysia/recordings"

// Storage is the object store of recordings (pkg/storage), the same on the
// API, the routers and the workers.
type Storage struct {
	URL             string // file:///dir or s3://bucket/prefix?...; default DefaultStorageURL
	AccessKeyID     string // environment only (StorageAccessKeyID)
	SecretAccessKey string // environment only (StorageSecretAccessKey); never logged
}

// WithDefaults fills unset fields.
func (c Storage) WithDefaults() Storage {
	c.URL = cmp.Or(c.URL, DefaultStorageURL)
	return c
}

// Validate checks the URL's form (pkg/storage.Open checks the rest).
func (c Storage) Validate() error {
	var errs []error
	switch {
	case strings.HasPrefix(c.URL, "file:///"), strings.HasPrefix(c.URL, "s3://"):
	default:
		errs = append(errs, StorageURL.Invalid(redactURL(c.URL), "must be file:///absolute/dir or s3://bucket[/prefix]?endpoint=…&region=…"))
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, errors.New(StorageAccessKeyID.Env+" and "+StorageSecretAccessKey.Env+" must be set together"))
	}
	return errors.Join(errs...)
}

// RegisterFlags binds URL to --storage-url.
func (c *Storage) RegisterFlags(fs *pflag.FlagSet) {
	d := c.WithDefaults()
	On(fs).String(&c.URL, StorageURL, d.URL, "object store of recordings: file:///dir or s3://bucket/prefix?endpoint=URL&region=R")
}

// LoadSecrets reads the credentials from the environment (lookup is os.LookupEnv).
func (c *Storage) LoadSecrets(lookup func(string) (string, bool)) {
	c.AccessKeyID = Secret(lookup, StorageAccessKeyID)
	c.SecretAccessKey = Secret(lookup, StorageSecretAccessKey)
}
