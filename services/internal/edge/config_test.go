package edge_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/services/internal/edge"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// load is the edge's configuration path: flags, environment, secrets,
// defaults, validation.
func load(t *testing.T, args []string, env map[string]string) (edge.Config, error) {
	t.Helper()
	var cfg edge.Config
	fs := pflag.NewFlagSet("edge", pflag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse(args))
	if err := conf.ApplyEnv(fs, envOf(env)); err != nil {
		return cfg, err
	}
	cfg.LoadSecrets(envOf(env))
	cfg = cfg.WithDefaults()
	return cfg, cfg.Validate()
}

// fakeBinary is an executable file: Validate checks only that mediamtx exists.
func fakeBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mediamtx")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755))
	return p
}

func TestConfigFromFlagsAndEnvironment(t *testing.T) {
	t.Parallel()
	cfg, err := load(t, []string{"--srt-port", "9890", "--poll-interval", "500ms", "--mediamtx", fakeBinary(t)}, map[string]string{
		"DIONYSIA_EDGE_RTMP_PORT":       "2935",
		"DIONYSIA_EDGE_SRT_PORT":        "1", // loses to the flag
		"DIONYSIA_EDGE_SECRET":          "from-env\n",
		"DIONYSIA_API_URL":              "http://api:8080",
		"DIONYSIA_EDGE_ADVERTISE_HOST":  "edge-1.internal",
		"DIONYSIA_EDGE_WEBRTC_UDP_PORT": "-1",
	})
	require.NoError(t, err)
	require.Equal(t, 2935, cfg.RTMPPort)
	require.Equal(t, 9890, cfg.SRTPort)
	require.Equal(t, edge.DefaultRTSPPort, cfg.RTSPPort)
	require.Equal(t, -1, cfg.WebRTCUDPPort)
	require.Equal(t, 500*time.Millisecond, cfg.PollInterval)
	require.Equal(t, "from-env", cfg.Secret)
	require.Equal(t, "http://api:8080", cfg.APIURL)
	require.Equal(t, "edge-1.internal", cfg.AdvertiseHost)
	require.Equal(t, edge.DefaultAdminAddress, cfg.AdminAddress, "the admin listener defaults to loopback")
	require.Empty(t, cfg.BindAddress, "the publisher listeners bind every interface by default")
	require.NotContains(t, cfg.String(), "from-env")
}

func TestConfigRefusesBadValuesNamingTheVariable(t *testing.T) {
	t.Parallel()
	bin := fakeBinary(t)
	base := map[string]string{"DIONYSIA_EDGE_SECRET": "s", "DIONYSIA_EDGE_MEDIAMTX": bin}
	cases := map[string]struct{ name, value, want string }{
		"rtmp port":     {"DIONYSIA_EDGE_RTMP_PORT", "abc", `DIONYSIA_EDGE_RTMP_PORT="abc": not a port number`},
		"poll interval": {"DIONYSIA_EDGE_POLL_INTERVAL", "5", `DIONYSIA_EDGE_POLL_INTERVAL="5": not a duration`},
		"udp port":      {"DIONYSIA_EDGE_WEBRTC_UDP_PORT", "-2", `DIONYSIA_EDGE_WEBRTC_UDP_PORT="-2" (--webrtc-udp-port): must be a port number (1-65535), or -1`},
		"admin addr":    {"DIONYSIA_EDGE_ADMIN_ADDR", "9990", `DIONYSIA_EDGE_ADMIN_ADDR="9990" (--admin-addr): must be host:port`},
		"hook addr":     {"DIONYSIA_EDGE_HOOK_ADDR", "0.0.0.0:9991", `DIONYSIA_EDGE_HOOK_ADDR="0.0.0.0:9991" (--hook-addr): must be a loopback address`},
		"advertise":     {"DIONYSIA_EDGE_ADVERTISE_HOST", "http://edge", `DIONYSIA_EDGE_ADVERTISE_HOST="http://edge"`},
		"api url":       {"DIONYSIA_API_URL", "api:8080", `DIONYSIA_API_URL="api:8080" (--api-url)`},
		"publisher":     {"DIONYSIA_EDGE_PUBLISHER_TIMEOUT", "10ms", `DIONYSIA_EDGE_PUBLISHER_TIMEOUT="10ms"`},
		"mediamtx":      {"DIONYSIA_EDGE_MEDIAMTX", "/nonexistent/mediamtx", `DIONYSIA_EDGE_MEDIAMTX="/nonexistent/mediamtx" (--mediamtx): mediamtx binary`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{tc.name: tc.value}
			for k, v := range base {
				if _, set := env[k]; !set {
					env[k] = v
				}
			}
			_, err := load(t, nil, env)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := load(t, []string{"--mediamtx", bin}, nil)
	require.ErrorContains(t, err, "DIONYSIA_EDGE_SECRET is required")
}
