package worker_test

import (
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/workers/internal/worker"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

func TestConfigZeroValueMeansDefaults(t *testing.T) {
	t.Parallel()
	c := worker.Config{Secret: "s"}.WithDefaults()
	require.NoError(t, c.Validate())
	require.Equal(t, worker.DefaultOriginAddr, c.OriginAddr)
	require.Equal(t, "http://127.0.0.1:8090", c.OriginURL)
	require.Equal(t, conf.Redis{}.WithDefaults(), c.Redis)
	require.Equal(t, 2*time.Second, c.LeaseTTL)
	require.Equal(t, "auto", c.Class)
	require.Equal(t, conf.DefaultStorageURL, c.Storage.URL)
	require.NotEmpty(t, c.ID)
}

func TestConfigFromEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DIONYSIA_WORKER_CAPACITY":           "4",
		"DIONYSIA_WORKER_SOURCE_GRACE":       "20s",
		"DIONYSIA_WORKER_ORIGIN_URL":         "http://worker-1:8090",
		"DIONYSIA_WORKER_SECRET":             " s ",
		"DIONYSIA_STORAGE_URL":               "s3://recordings/live?endpoint=http://127.0.0.1:8333",
		"DIONYSIA_STORAGE_ACCESS_KEY_ID":     "AKID",
		"DIONYSIA_STORAGE_SECRET_ACCESS_KEY": "sekrit",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var c worker.Config
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"--capacity", "2"}))
	require.NoError(t, conf.ApplyEnv(fs, lookup))
	c.LoadSecrets(lookup)
	require.Equal(t, 2, c.Capacity, "the flag wins")
	require.Equal(t, 20*time.Second, c.SourceGrace)
	require.Equal(t, "http://worker-1:8090", c.OriginURL)
	require.Equal(t, "s", c.Secret)
	require.Nil(t, fs.Lookup("secret"), "the secret is not a flag")
	require.Equal(t, conf.Storage{URL: "s3://recordings/live?endpoint=http://127.0.0.1:8333", AccessKeyID: "AKID", SecretAccessKey: "sekrit"}, c.Storage)
	require.NoError(t, c.WithDefaults().Validate())

	env["DIONYSIA_WORKER_CAPACITY"] = "x"
	var d worker.Config
	fs = pflag.NewFlagSet("worker", pflag.ContinueOnError)
	d.RegisterFlags(fs)
	require.ErrorContains(t, conf.ApplyEnv(fs, lookup), `DIONYSIA_WORKER_CAPACITY="x": not a whole number`)
}

func TestConfigValidateNamesTheVariable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		c    worker.Config
		want string
	}{
		{worker.Config{}, "DIONYSIA_WORKER_SECRET is required"},
		{worker.Config{Secret: "s", OriginURL: "worker:8090"}, `DIONYSIA_WORKER_ORIGIN_URL="worker:8090" (--origin-url)`},
		{worker.Config{Secret: "s", NVENCSessions: -1}, `DIONYSIA_WORKER_NVENC_SESSIONS="-1"`},
		{worker.Config{Secret: "s", ID: "a b"}, `DIONYSIA_WORKER_ID="a b" (--id)`},
		{worker.Config{Secret: "s", Retention: -time.Second}, `DIONYSIA_WORKER_RETENTION="-1s"`},
		{worker.Config{Secret: "s", Storage: conf.Storage{URL: "ftp://host/dir"}}, `DIONYSIA_STORAGE_URL="ftp://host/dir"`},
		{worker.Config{Secret: "s", Storage: conf.Storage{AccessKeyID: "a"}}, "DIONYSIA_STORAGE_SECRET_ACCESS_KEY must be set together"},
	}
	for _, tc := range cases {
		require.ErrorContains(t, tc.c.WithDefaults().Validate(), tc.want)
	}
}
