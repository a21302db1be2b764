package mediamtx

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func validConfig() Config {
	return Config{
		RTMPPort: 1935, SRTPort: 8890, RTSPPort: 8554, WebRTCPort: 8889, WebRTCUDPPort: 8189,
		APIAddress:      "127.0.0.1:9997",
		AuthHTTPAddress: "http://127.0.0.1:9991/mediamtx/auth",
	}
}

func TestConfigRender(t *testing.T) {
	b, err := validConfig().Render()
	require.NoError(t, err)
	var f map[string]any
	require.NoError(t, json.Unmarshal(b, &f))
	// What must never change: auth through the edge, no public playback,
	// loopback API, no publisher takeover.
	require.Equal(t, "http", f["authMethod"])
	require.Equal(t, "http://127.0.0.1:9991/mediamtx/auth", f["authHTTPAddress"])
	require.Empty(t, f["authHTTPExclude"])
	for _, off := range []string{"hls", "playback", "metrics", "pprof", "moq"} {
		require.Equal(t, false, f[off], off)
	}
	require.Equal(t, true, f["api"])
	require.Equal(t, "127.0.0.1:9997", f["apiAddress"])
	require.Equal(t, true, f["webrtc"])
	require.Equal(t, ":1935", f["rtmpAddress"])
	require.Equal(t, ":8890", f["srtAddress"])
	require.Equal(t, false, f["pathDefaults"].(map[string]any)["overridePublisher"])
	require.Equal(t, true, f["logStructured"])

	c := validConfig()
	c.WebRTCUDPPort = 0
	c.BindAddress = "10.0.0.1"
	b, err = c.Render()
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &f))
	require.Equal(t, false, f["webrtc"])
	require.Equal(t, "10.0.0.1:1935", f["rtmpAddress"])
}

func TestConfigValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"public api":      func(c *Config) { c.APIAddress = "0.0.0.0:9997" },
		"no api port":     func(c *Config) { c.APIAddress = "127.0.0.1" },
		"no auth address": func(c *Config) { c.AuthHTTPAddress = "" },
		"bad port":        func(c *Config) { c.SRTPort = 0 },
		"bad log level":   func(c *Config) { c.LogLevel = "trace" },
	} {
		c := validConfig()
		mutate(&c)
		require.Error(t, c.Validate(), name)
	}
}

func TestConfigWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "mediamtx.yml")
	require.NoError(t, validConfig().WriteFile(path))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "temporary file left behind")
}
