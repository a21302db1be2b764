package router_test

import (
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/services/internal/router"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// load is the router's configuration path: flags, environment, secrets,
// defaults, validation.
func load(t *testing.T, args []string, env map[string]string) (router.Settings, error) {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var s router.Settings
	fs := pflag.NewFlagSet("router", pflag.ContinueOnError)
	s.RegisterFlags(fs)
	require.NoError(t, fs.Parse(args))
	if err := conf.ApplyEnv(fs, lookup); err != nil {
		return s, err
	}
	s.LoadSecrets(lookup)
	s = s.WithDefaults()
	return s, s.Validate()
}

func TestSettings(t *testing.T) {
	t.Parallel()
	s, err := load(t, []string{"--addr", "127.0.0.1:25081", "--negative-ttl", "250ms", "--trust-forwarded-for"}, map[string]string{
		"DIONYSIA_ROUTER_MODE":      "redirect",
		"DIONYSIA_REDIS_URL":        "redis://127.0.0.1:6379/3",
		"DIONYSIA_REDIS_PREFIX":     "r:",
		"DIONYSIA_ROUTER_CACHE_TTL": "2s",
		"DIONYSIA_ROUTER_ADDR":      "127.0.0.1:1", // loses to the flag
		"DIONYSIA_PLAYBACK_KEYS":    "k1:" + keyV1,
	})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:25081", s.Addr)
	require.Equal(t, router.ModeRedirect, s.Mode)
	require.Equal(t, "redis://127.0.0.1:6379/3", s.Redis.URL)
	require.Equal(t, 2*time.Second, s.CacheTTL)
	require.Equal(t, 250*time.Millisecond, s.NegativeTTL)
	require.True(t, s.TrustForwardedFor)
	cfg, rdb, err := s.Config(nil, nil)
	require.NoError(t, err)
	defer rdb.Close()
	require.Equal(t, "k1", cfg.Signer.Current)
	require.Equal(t, "r:", cfg.Prefix)

	d, err := load(t, nil, nil)
	require.NoError(t, err)
	require.Equal(t, router.Settings{Addr: router.DefaultAddr, Redis: conf.Redis{}.WithDefaults(), Mode: router.ModeProxy,
		CacheTTL: router.DefaultCacheTTL, NegativeTTL: router.DefaultNegativeTTL,
		CacheSize: router.DefaultShieldSize, PlaylistTTL: router.DefaultPlaylistTTL,
		Storage: conf.Storage{URL: conf.DefaultStorageURL}, APIURL: conf.DefaultAPIURL}, d)
	store, err := d.OpenStore(t.Context())
	require.NoError(t, err)
	require.Nil(t, store, "without the worker secret VOD playback is off and no store is opened")
	off, err := load(t, []string{"--cache-size", "0"}, map[string]string{"DIONYSIA_ROUTER_PLAYLIST_TTL": "250ms"})
	require.NoError(t, err)
	require.Zero(t, off.CacheSize, "0 disables the shield")
	require.Equal(t, 250*time.Millisecond, off.PlaylistTTL)
}

func TestSettingsVOD(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := load(t, []string{"--storage-url", "file://" + dir + "/rec"}, map[string]string{
		"DIONYSIA_API_URL":       "http://10.0.0.5:8080/",
		"DIONYSIA_WORKER_SECRET": " s3cret\n",
		"DIONYSIA_STORAGE_URL":   "file:///nowhere", // loses to the flag
	})
	require.NoError(t, err)
	require.Equal(t, "file://"+dir+"/rec", s.Storage.URL)
	require.Equal(t, "http://10.0.0.5:8080", s.APIURL)
	require.Equal(t, "s3cret", s.WorkerSecret, "trimmed like every secret")
	cfg, rdb, err := s.Config(nil, nil)
	require.NoError(t, err)
	defer rdb.Close()
	require.Equal(t, "http://10.0.0.5:8080", cfg.APIURL)
	require.Equal(t, s.WorkerSecret, cfg.WorkerSecret)
	store, err := s.OpenStore(t.Context())
	require.NoError(t, err)
	require.Equal(t, "file://"+dir+"/rec", store.String())

	s3, err := load(t, nil, map[string]string{
		"DIONYSIA_STORAGE_URL":               "s3://recordings/vod?endpoint=http://127.0.0.1:1",
		"DIONYSIA_STORAGE_ACCESS_KEY_ID":     "AK",
		"DIONYSIA_STORAGE_SECRET_ACCESS_KEY": "SK",
	})
	require.NoError(t, err)
	require.Equal(t, conf.Storage{URL: "s3://recordings/vod?endpoint=http://127.0.0.1:1", AccessKeyID: "AK", SecretAccessKey: "SK"}, s3.Storage)
}

func TestSettingsRefuseBadValuesNamingTheVariable(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ name, value, want string }{
		"cache ttl":  {"DIONYSIA_ROUTER_CACHE_TTL", "forever", `DIONYSIA_ROUTER_CACHE_TTL="forever": not a duration`},
		"long ttl":   {"DIONYSIA_ROUTER_CACHE_TTL", "2m", `DIONYSIA_ROUTER_CACHE_TTL="2m0s" (--cache-ttl): must be between 1ms and 1m0s`},
		"mode":       {"DIONYSIA_ROUTER_MODE", "teleport", `DIONYSIA_ROUTER_MODE="teleport" (--mode): must be proxy or redirect`},
		"forwarded":  {"DIONYSIA_ROUTER_TRUST_FORWARDED_FOR", "maybe", `DIONYSIA_ROUTER_TRUST_FORWARDED_FOR="maybe": not a boolean`},
		"addr":       {"DIONYSIA_ROUTER_ADDR", "8081", `DIONYSIA_ROUTER_ADDR="8081" (--addr): must be host:port`},
		"redis":      {"DIONYSIA_REDIS_URL", "http://x", `DIONYSIA_REDIS_URL="http://x" (--redis-url)`},
		"keys":       {"DIONYSIA_PLAYBACK_KEYS", "k1:short", "DIONYSIA_PLAYBACK_KEYS: invalid playback signing keys"},
		"negative":   {"DIONYSIA_ROUTER_NEGATIVE_TTL", "-1s", `DIONYSIA_ROUTER_NEGATIVE_TTL="-1s"`},
		"cache size": {"DIONYSIA_ROUTER_CACHE_SIZE", "-1", `DIONYSIA_ROUTER_CACHE_SIZE="-1" (--cache-size): must be between 0 and`},
		"cache unit": {"DIONYSIA_ROUTER_CACHE_SIZE", "256MiB", `DIONYSIA_ROUTER_CACHE_SIZE="256MiB"`},
		"playlist":   {"DIONYSIA_ROUTER_PLAYLIST_TTL", "1m", `DIONYSIA_ROUTER_PLAYLIST_TTL="1m0s" (--playlist-ttl): must be between 1ms and 10s`},
		"storage":    {"DIONYSIA_STORAGE_URL", "/var/rec", `DIONYSIA_STORAGE_URL="/var/rec" (--storage-url): must be file:///absolute/dir or s3://`},
		"api url":    {"DIONYSIA_API_URL", "api:8080", `DIONYSIA_API_URL="api:8080" (--api-url): must be an absolute http(s) URL`},
		"half creds": {"DIONYSIA_STORAGE_ACCESS_KEY_ID", "AK", "DIONYSIA_STORAGE_ACCESS_KEY_ID and DIONYSIA_STORAGE_SECRET_ACCESS_KEY must be set together"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, nil, map[string]string{tc.name: tc.value})
			require.ErrorContains(t, err, tc.want)
		})
	}
}
