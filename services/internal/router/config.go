package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"
)

// Settings of `dionysia router` (Redis and the playback keys are shared:
// package conf).
var (
	VarAddr              = conf.Var{Flag: "addr", Env: "DIONYSIA_ROUTER_ADDR"}
	VarMode              = conf.Var{Flag: "mode", Env: "DIONYSIA_ROUTER_MODE"}
	VarCacheTTL          = conf.Var{Flag: "cache-ttl", Env: "DIONYSIA_ROUTER_CACHE_TTL"}
	VarNegativeTTL       = conf.Var{Flag: "negative-ttl", Env: "DIONYSIA_ROUTER_NEGATIVE_TTL"}
	VarTrustForwardedFor = conf.Var{Flag: "trust-forwarded-for", Env: "DIONYSIA_ROUTER_TRUST_FORWARDED_FOR"}
	VarCacheSize         = conf.Var{Flag: "cache-size", Env: "DIONYSIA_ROUTER_CACHE_SIZE"}
	VarPlaylistTTL       = conf.Var{Flag: "playlist-ttl", Env: "DIONYSIA_ROUTER_PLAYLIST_TTL"}
)

// Secrets are the router's environment-only settings.
var Secrets = []conf.Var{conf.PlaybackKeys, conf.WorkerSecret, conf.StorageAccessKeyID, conf.StorageSecretAccessKey}

// DefaultAddr is the router's listen address: loopback, because the router
// also serves /metrics and normally sits behind a CDN or a load balancer on
// the same host or network; set DIONYSIA_ROUTER_ADDR=0.0.0.0:8081 to serve
// viewers directly.
const DefaultAddr = "127.0.0.1:8081"

// Settings are the command-line and environment settings of `dionysia
// router`; the zero value of each field means its default. Load order:
// defaults, flags (RegisterFlags), environment (conf.ApplyEnv, LoadSecrets),
// WithDefaults, Validate.
type Settings struct {
	Addr              string        // listen address; default DefaultAddr
	Redis             conf.Redis    // the ownership registry
	Mode              string        // ModeProxy (default) or ModeRedirect
	CacheTTL          time.Duration // owner cache lifetime; default DefaultCacheTTL
	NegativeTTL       time.Duration // "not live" cache lifetime; default DefaultNegativeTTL
	PlaybackKeys      string        // "kid1:base64,kid2:base64", first signs; empty: signed streams are refused
	TrustForwardedFor bool          // take the viewer IP from X-Forwarded-For
	// CacheSize bounds the origin shield in bytes; 0 disables it. Its
	// default (DefaultShieldSize) comes with the flag, since 0 is a value.
	CacheSize   int64
	PlaylistTTL time.Duration // longest a playlist is shielded; default DefaultPlaylistTTL

	// VOD playback (/vod/): the recordings store, and the API the asset
	// facts come from (GET {APIURL}/internal/v1/assets/{id}/playback with
	// the worker secret). Without WorkerSecret, /vod/ answers 503.
	Storage      conf.Storage
	APIURL       string // default conf.DefaultAPIURL
	WorkerSecret string // environment only (conf.WorkerSecret)
}

// WithDefaults fills unset fields.
func (s Settings) WithDefaults() Settings {
	s.Addr = cmp.Or(s.Addr, DefaultAddr)
	s.Redis = s.Redis.WithDefaults()
	s.Mode = cmp.Or(s.Mode, ModeProxy)
	s.CacheTTL = cmp.Or(s.CacheTTL, DefaultCacheTTL)
	s.NegativeTTL = cmp.Or(s.NegativeTTL, DefaultNegativeTTL)
	s.PlaylistTTL = cmp.Or(s.PlaylistTTL, DefaultPlaylistTTL)
	s.Storage = s.Storage.WithDefaults()
	s.APIURL = strings.TrimRight(cmp.Or(s.APIURL, conf.DefaultAPIURL), "/")
	return s
}

// RegisterFlags binds the settings to flags on fs, each tied to its
// variable. The signing keys have no flag: secrets stay out of process
// listings (LoadSecrets).
func (s *Settings) RegisterFlags(fs *pflag.FlagSet) {
	d := s.WithDefaults()
	f := conf.On(fs)
	f.String(&s.Addr, VarAddr, d.Addr, "listen address (host:port)")
	s.Redis.RegisterFlags(fs)
	f.String(&s.Mode, VarMode, d.Mode, "proxy (reverse-proxy to the origin) or redirect (302 to the origin)")
	f.Duration(&s.CacheTTL, VarCacheTTL, d.CacheTTL, "how long a stream's owner is cached")
	f.Duration(&s.NegativeTTL, VarNegativeTTL, d.NegativeTTL, "how long an unknown stream is cached")
	f.Bool(&s.TrustForwardedFor, VarTrustForwardedFor, d.TrustForwardedFor,
		"take the viewer address from X-Forwarded-For (only behind a trusted proxy)")
	f.Int64(&s.CacheSize, VarCacheSize, DefaultShieldSize,
		"bytes of segments, init files and playlists the router keeps in memory (proxy mode); 0 disables the shield")
	f.Duration(&s.PlaylistTTL, VarPlaylistTTL, d.PlaylistTTL,
		"longest a playlist is served from the router's memory (never longer than the origin's max-age)")
	s.Storage.RegisterFlags(fs)
	f.String(&s.APIURL, conf.APIURL, d.APIURL, "management API base URL, asked for the facts of a recorded asset (VOD playback)")
}

// LoadSecrets reads the playback keys, the worker secret and the storage
// credentials from the environment (lookup is os.LookupEnv in production).
func (s *Settings) LoadSecrets(lookup func(string) (string, bool)) {
	s.PlaybackKeys = conf.Secret(lookup, conf.PlaybackKeys)
	s.WorkerSecret = conf.Secret(lookup, conf.WorkerSecret)
	s.Storage.LoadSecrets(lookup)
}

// Validate checks settings that went through WithDefaults.
func (s Settings) Validate() error {
	errs := []error{
		conf.HostPort(VarAddr, s.Addr),
		s.Redis.Validate(),
		conf.OneOf(VarMode, s.Mode, ModeProxy, ModeRedirect),
		conf.Range(VarCacheTTL, s.CacheTTL, time.Millisecond, time.Minute),
		conf.Range(VarNegativeTTL, s.NegativeTTL, time.Millisecond, time.Minute),
		conf.Range(VarCacheSize, s.CacheSize, 0, 64<<30),
		conf.Range(VarPlaylistTTL, s.PlaylistTTL, time.Millisecond, 10*time.Second),
		s.Storage.Validate(),
		conf.HTTPURL(conf.APIURL, s.APIURL),
	}
	if s.PlaybackKeys != "" {
		if _, err := playback.ParseKeys(s.PlaybackKeys); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", conf.PlaybackKeys, err))
		}
	}
	return errors.Join(errs...)
}

// OpenStore opens the recordings store VOD playback reads from, or returns
// nil when the worker secret is unset (VOD playback is off: the router
// cannot ask the API about assets, so it does not need the store either).
func (s Settings) OpenStore(ctx context.Context) (storage.Store, error) {
	s = s.WithDefaults()
	if s.WorkerSecret == "" {
		return nil, nil
	}
	st, err := storage.Open(ctx, s.Storage.URL, storage.Options{
		AccessKeyID: s.Storage.AccessKeyID, SecretAccessKey: s.Storage.SecretAccessKey,
	})
	if err != nil {
		return nil, fmt.Errorf("opening %s %s: %w", conf.StorageURL.Env, storage.Redact(s.Storage.URL), err)
	}
	return st, nil
}

// Config builds the Router configuration from the settings (completed with
// their defaults and validated), without the store (OpenStore). The caller
// owns the returned Redis client and closes it after the router stopped.
func (s Settings) Config(log *slog.Logger, reg *prometheus.Registry) (Config, *redis.Client, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return Config{}, nil, err
	}
	opt, err := s.Redis.Options()
	if err != nil {
		return Config{}, nil, err
	}
	var signer *playback.Signer
	if s.PlaybackKeys != "" {
		if signer, err = playback.ParseKeys(s.PlaybackKeys); err != nil {
			return Config{}, nil, err
		}
	}
	rdb := redis.NewClient(opt)
	return Config{
		Redis: rdb, Prefix: s.Redis.Prefix, Mode: s.Mode, CacheTTL: s.CacheTTL, NegativeTTL: s.NegativeTTL,
		Signer: signer, TrustForwardedFor: s.TrustForwardedFor, Logger: log, Registry: reg,
		ShieldSize: s.CacheSize, PlaylistTTL: s.PlaylistTTL,
		APIURL: s.APIURL, WorkerSecret: s.WorkerSecret,
	}, rdb, nil
}
