package config_test

import (
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	t.Parallel()
	var c config.API
	fs := pflag.NewFlagSet("api", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"--addr", "0.0.0.0:9000"}))
	require.NoError(t, conf.ApplyEnv(fs, envOf(map[string]string{
		"DIONYSIA_API_ADDR":             "127.0.0.1:1", // loses to the flag
		"DIONYSIA_PUBLIC_RTMP_PORT":     "19350",
		"DIONYSIA_API_SHUTDOWN_TIMEOUT": "3s",
		"DIONYSIA_API_RECONNECT_GRACE":  "4s",
	})))
	require.Equal(t, "0.0.0.0:9000", c.Addr)
	require.Equal(t, 19350, c.Public.RTMPPort)
	require.Equal(t, 3*time.Second, c.ShutdownTimeout)
	require.Equal(t, 4*time.Second, c.Dispatch.ReconnectGrace)
	require.Equal(t, config.DefaultSRTPort, c.Public.SRTPort)
	require.Equal(t, config.DefaultPlaybackURL, c.Public.PlaybackBaseURL)
	require.NoError(t, c.WithDefaults().Validate())
}

func TestApplyEnvReportsBadValues(t *testing.T) {
	t.Parallel()
	var c config.API
	fs := pflag.NewFlagSet("api", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	err := conf.ApplyEnv(fs, envOf(map[string]string{"DIONYSIA_PUBLIC_RTMP_PORT": "many", "DIONYSIA_API_SHUTDOWN_TIMEOUT": "soon"}))
	require.ErrorContains(t, err, `DIONYSIA_PUBLIC_RTMP_PORT="many": not a port number`)
	require.ErrorContains(t, err, `DIONYSIA_API_SHUTDOWN_TIMEOUT="soon": not a duration`)
}

func TestZeroValueMeansDefaults(t *testing.T) {
	t.Parallel()
	c := config.API{}.WithDefaults()
	require.Equal(t, config.DefaultAPIAddr, c.Addr)
	require.Equal(t, int64(config.DefaultBodyLimit), c.BodyLimit)
	require.Equal(t, config.DefaultIngestHost, c.Public.EdgeHost)
	require.NoError(t, c.Validate())
	require.Equal(t, config.DefaultDatabaseURL, config.Database{}.WithDefaults().URL)
	require.Equal(t, "http://x:1", config.PublicURLs{PlaybackBaseURL: "http://x:1/"}.WithDefaults().PlaybackBaseURL)
}

func TestValidateNamesTheVariableAndTheValue(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"addr", config.API{Addr: "8080"}.WithDefaults().Validate(), `DIONYSIA_API_ADDR="8080" (--addr): must be host:port`},
		{"body limit", config.API{BodyLimit: 10}.WithDefaults().Validate(), `DIONYSIA_API_BODY_LIMIT="10" (--body-limit)`},
		{"port", config.API{Public: config.PublicURLs{RTMPPort: 70000}}.WithDefaults().Validate(), `DIONYSIA_PUBLIC_RTMP_PORT="70000"`},
		{"ingest host", config.API{Public: config.PublicURLs{EdgeHost: "http://x/"}}.WithDefaults().Validate(), `DIONYSIA_PUBLIC_INGEST_HOST="http://x/"`},
		{"playback url", config.API{Public: config.PublicURLs{PlaybackBaseURL: "ftp://x"}}.WithDefaults().Validate(), `DIONYSIA_PUBLIC_PLAYBACK_URL="ftp://x"`},
		{"grace", config.API{Dispatch: config.Dispatch{Grace: -time.Second}}.WithDefaults().Validate(), `DIONYSIA_API_REDISPATCH_GRACE="-1s"`},
		{"database url", config.Database{URL: "mysql://x"}.WithDefaults().Validate(), "DIONYSIA_DATABASE_URL (--database-url): must be a postgres:// URL"},
		{"max conns", config.Database{MaxConns: -1}.WithDefaults().Validate(), `DIONYSIA_DATABASE_MAX_CONNS="-1"`},
		{"client key", config.Client{}.WithDefaults().Validate(), "api key: required"},
		{"client url", config.Client{APIURL: "localhost:8080", APIKey: "k"}.WithDefaults().Validate(), `DIONYSIA_API_URL="localhost:8080"`},
	}
	for _, tc := range cases {
		require.ErrorContains(t, tc.err, tc.want, tc.name)
	}
	require.NoError(t, config.PublicURLs{EdgeHost: "::1"}.WithDefaults().Validate(), "IPv6 literal")
}

func TestSecretsComeFromTheEnvironmentOnly(t *testing.T) {
	t.Parallel()
	var c config.API
	fs := pflag.NewFlagSet("api", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		require.NotContains(t, f.Name, "secret", "secrets are never flags")
		require.NotContains(t, f.Name, "playback-keys")
	})
	env := map[string]string{
		"DIONYSIA_EDGE_SECRET":   "edge-secret-0123456789",
		"DIONYSIA_WORKER_SECRET": " worker-secret-0123456789 ",
		"DIONYSIA_PLAYBACK_KEYS": "k1:MDEyMzQ1Njc4OWFiY2RlZg",
	}
	c.LoadSecrets(envOf(env))
	require.Equal(t, "edge-secret-0123456789", c.EdgeSecret)
	require.Equal(t, "worker-secret-0123456789", c.WorkerSecret)
	require.NoError(t, c.WithDefaults().Validate())
	require.NotContains(t, c.String(), "secret-0123456789")
	require.Contains(t, c.String(), "edge_secret=set")

	c.PlaybackKeys = "k1:c2hvcnQ"
	require.ErrorContains(t, c.WithDefaults().Validate(), "DIONYSIA_PLAYBACK_KEYS")
}
