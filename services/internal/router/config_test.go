package router_test

import (
	"testing"
	"time"

	"github.com/dionysia/dionysia/services/internal/router"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

func TestSettings(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DIONYSIA_ROUTER_MODE":      "redirect",
		"DIONYSIA_REDIS_URL":        "redis://127.0.0.1:6379/3",
		"DIONYSIA_ROUTER_CACHE_TTL": "2s",
		"DIONYSIA_PLAYBACK_KEYS":    "k1:" + keyV1,
	}
	s := router.DefaultSettings()
	require.NoError(t, s.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	fs := pflag.NewFlagSet("router", pflag.ContinueOnError)
	s.BindFlags(fs)
	require.NoError(t, fs.Parse([]string{"--addr", "127.0.0.1:25081", "--negative-ttl", "250ms"}))
	require.NoError(t, s.Validate())
	require.Equal(t, "127.0.0.1:25081", s.Addr)
	require.Equal(t, router.ModeRedirect, s.Mode)
	require.Equal(t, "redis://127.0.0.1:6379/3", s.RedisURL)
	require.Equal(t, 2*time.Second, s.CacheTTL)
	require.Equal(t, 250*time.Millisecond, s.NegativeTTL)
	cfg, rdb, err := s.Config(nil, nil)
	require.NoError(t, err)
	defer rdb.Close()
	require.Equal(t, "k1", cfg.Signer.Current)

	bad := router.DefaultSettings()
	bad.Mode = "teleport"
	bad.PlaybackKeys = "k1:short"
	err = bad.Validate()
	require.ErrorContains(t, err, "mode")
	require.ErrorContains(t, err, "invalid playback signing keys")
	require.Error(t, bad.ApplyEnv(func(k string) (string, bool) { return "x", k == "DIONYSIA_ROUTER_CACHE_TTL" }))
}
