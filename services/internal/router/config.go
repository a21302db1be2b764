package router

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"
)

// Settings are the command-line and environment settings of `dionysia
// router`. Load order: defaults, then DIONYSIA_ROUTER_* environment
// (ApplyEnv), then flags (BindFlags, parsed by the caller), then Validate.
type Settings struct {
	Addr              string        // listen address, default 127.0.0.1:8081
	RedisURL          string        // default redis://127.0.0.1:6379/0
	Prefix            string        // Redis key prefix, default "dionysia:"
	Mode              string        // proxy (default) or redirect
	CacheTTL          time.Duration // owner cache lifetime, default 1 s
	NegativeTTL       time.Duration // "not live" cache lifetime, default 0.5 s
	PlaybackKeys      string        // "kid1:base64,kid2:base64", first signs; empty: signed streams are refused
	TrustForwardedFor bool          // take the viewer IP from X-Forwarded-For
}

// DefaultSettings returns the defaults.
func DefaultSettings() Settings {
	return Settings{
		Addr:        "127.0.0.1:8081",
		RedisURL:    "redis://127.0.0.1:6379/0",
		Prefix:      ownership.DefaultPrefix,
		Mode:        ModeProxy,
		CacheTTL:    DefaultCacheTTL,
		NegativeTTL: DefaultNegativeTTL,
	}
}

// ApplyEnv overrides s from the environment: DIONYSIA_ROUTER_ADDR,
// DIONYSIA_ROUTER_REDIS_URL (or DIONYSIA_REDIS_URL), DIONYSIA_ROUTER_PREFIX,
// DIONYSIA_ROUTER_MODE, DIONYSIA_ROUTER_CACHE_TTL, DIONYSIA_ROUTER_NEGATIVE_TTL
// (Go durations), DIONYSIA_ROUTER_TRUST_FORWARDED_FOR (bool) and
// DIONYSIA_PLAYBACK_KEYS.
func (s *Settings) ApplyEnv(lookup func(string) (string, bool)) error {
	str := func(dst *string, names ...string) {
		for _, n := range names {
			if v, ok := lookup(n); ok && v != "" {
				*dst = v
				return
			}
		}
	}
	str(&s.Addr, "DIONYSIA_ROUTER_ADDR")
	str(&s.RedisURL, "DIONYSIA_ROUTER_REDIS_URL", "DIONYSIA_REDIS_URL")
	str(&s.Prefix, "DIONYSIA_ROUTER_PREFIX")
	str(&s.Mode, "DIONYSIA_ROUTER_MODE")
	str(&s.PlaybackKeys, "DIONYSIA_PLAYBACK_KEYS")
	for name, dst := range map[string]*time.Duration{
		"DIONYSIA_ROUTER_CACHE_TTL": &s.CacheTTL, "DIONYSIA_ROUTER_NEGATIVE_TTL": &s.NegativeTTL,
	} {
		if v, ok := lookup(name); ok && v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("parsing %s: %w", name, err)
			}
			*dst = d
		}
	}
	if v, ok := lookup("DIONYSIA_ROUTER_TRUST_FORWARDED_FOR"); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("parsing DIONYSIA_ROUTER_TRUST_FORWARDED_FOR: %w", err)
		}
		s.TrustForwardedFor = b
	}
	return nil
}

// BindFlags registers the settings as flags on fs, with s's current values
// as defaults (call ApplyEnv first so the environment shows as the default).
// The signing keys have no flag: secrets stay out of process listings.
func (s *Settings) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.Addr, "addr", s.Addr, "listen address")
	fs.StringVar(&s.RedisURL, "redis-url", s.RedisURL, "Redis URL of the ownership registry")
	fs.StringVar(&s.Prefix, "redis-prefix", s.Prefix, "Redis key prefix")
	fs.StringVar(&s.Mode, "mode", s.Mode, "proxy (reverse-proxy to the origin) or redirect (302 to the origin)")
	fs.DurationVar(&s.CacheTTL, "cache-ttl", s.CacheTTL, "how long a stream's owner is cached")
	fs.DurationVar(&s.NegativeTTL, "negative-ttl", s.NegativeTTL, "how long an unknown stream is cached")
	fs.BoolVar(&s.TrustForwardedFor, "trust-forwarded-for", s.TrustForwardedFor,
		"take the viewer address from X-Forwarded-For (only behind a trusted proxy)")
}

// Validate checks the settings.
func (s Settings) Validate() error {
	var errs []error
	if s.Addr == "" {
		errs = append(errs, errors.New("addr is required"))
	}
	if s.Mode != ModeProxy && s.Mode != ModeRedirect {
		errs = append(errs, fmt.Errorf("mode must be %s or %s, got %q", ModeProxy, ModeRedirect, s.Mode))
	}
	if s.CacheTTL <= 0 || s.CacheTTL > time.Minute {
		errs = append(errs, fmt.Errorf("cache-ttl must be in (0, 1m], got %s", s.CacheTTL))
	}
	if s.NegativeTTL <= 0 || s.NegativeTTL > time.Minute {
		errs = append(errs, fmt.Errorf("negative-ttl must be in (0, 1m], got %s", s.NegativeTTL))
	}
	if _, err := redis.ParseURL(s.RedisURL); err != nil {
		errs = append(errs, fmt.Errorf("redis-url: %w", err))
	}
	if s.PlaybackKeys != "" {
		if _, err := playback.ParseKeys(s.PlaybackKeys); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Config builds the Router configuration from validated settings. The caller
// owns the returned Redis client and closes it after the router stopped.
func (s Settings) Config(log *slog.Logger, reg *prometheus.Registry) (Config, *redis.Client, error) {
	if err := s.Validate(); err != nil {
		return Config{}, nil, err
	}
	opt, err := redis.ParseURL(s.RedisURL)
	if err != nil {
		return Config{}, nil, fmt.Errorf("parsing redis url: %w", err)
	}
	var signer *playback.Signer
	if s.PlaybackKeys != "" {
		if signer, err = playback.ParseKeys(s.PlaybackKeys); err != nil {
			return Config{}, nil, err
		}
	}
	rdb := redis.NewClient(opt)
	return Config{
		Redis: rdb, Prefix: s.Prefix, Mode: s.Mode, CacheTTL: s.CacheTTL, NegativeTTL: s.NegativeTTL,
		Signer: signer, TrustForwardedFor: s.TrustForwardedFor, Logger: log, Registry: reg,
	}, rdb, nil
}
