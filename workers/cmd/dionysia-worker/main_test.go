package main

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/conf/conftest"
	"github.com/dionysia/dionysia/workers/internal/worker"
	"github.com/stretchr/testify/require"
)

// execute runs the real command with env and args; it returns the
// configuration run was given (nil if run was not called) and the error.
func execute(t *testing.T, env map[string]string, args ...string) (*worker.Config, error) {
	t.Helper()
	var got *worker.Config
	run := func(_ context.Context, cfg worker.Config, _ *slog.Logger, _ string) error { got = &cfg; return nil }
	var stderr bytes.Buffer
	cmd := newCommand(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &stderr, run)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return got, cmd.ExecuteContext(ctx)
}

func TestConfiguration(t *testing.T) {
	t.Parallel()
	cfg, err := execute(t, map[string]string{
		"DIONYSIA_WORKER_SECRET":   "s3cret\n",
		"DIONYSIA_WORKER_CAPACITY": "3",
		"DIONYSIA_WORKER_CLASS":    "gpu-please", // loses to the flag
		"DIONYSIA_REDIS_PREFIX":    "w:",
		"DIONYSIA_API_URL":         "http://api:8080",
		"DIONYSIA_LOG_FORMAT":      "json",
	}, "--class", "cpu", "--lease-ttl", "5s")
	require.NoError(t, err)
	require.NotNil(t, cfg, "run was called")
	require.Equal(t, "s3cret", cfg.Secret)
	require.Equal(t, 3, cfg.Capacity)
	require.Equal(t, "cpu", cfg.Class)
	require.Equal(t, 5*time.Second, cfg.LeaseTTL)
	require.Equal(t, "w:", cfg.Redis.Prefix)
	require.Equal(t, "http://api:8080", cfg.APIURL)
	require.Equal(t, worker.DefaultOriginAddr, cfg.OriginAddr, "the origin defaults to loopback")
	require.Equal(t, "http://"+worker.DefaultOriginAddr, cfg.OriginURL)
}

// TestBadSettingsStopTheWorkerAtStart: a bad value is an error naming the
// variable and the value, and the worker does not start.
func TestBadSettingsStopTheWorkerAtStart(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"capacity":      {map[string]string{"DIONYSIA_WORKER_CAPACITY": "x"}, nil, `DIONYSIA_WORKER_CAPACITY="x": not a whole number`},
		"lease":         {map[string]string{"DIONYSIA_WORKER_LEASE_TTL": "2"}, nil, `DIONYSIA_WORKER_LEASE_TTL="2": not a duration`},
		"short lease":   {map[string]string{"DIONYSIA_WORKER_LEASE_TTL": "100ms"}, nil, `DIONYSIA_WORKER_LEASE_TTL="100ms" (--lease-ttl): must be between 1s and 1h0m0s`},
		"class":         {map[string]string{"DIONYSIA_WORKER_CLASS": "tpu"}, nil, `DIONYSIA_WORKER_CLASS="tpu" (--class): must be auto or cpu`},
		"origin addr":   {map[string]string{"DIONYSIA_WORKER_ORIGIN_ADDR": "8090"}, nil, `DIONYSIA_WORKER_ORIGIN_ADDR="8090" (--origin-addr): must be host:port`},
		"redis":         {map[string]string{"DIONYSIA_REDIS_URL": "localhost:6379"}, nil, `DIONYSIA_REDIS_URL="localhost:6379" (--redis-url)`},
		"log level":     {map[string]string{"DIONYSIA_LOG_LEVEL": "loud"}, nil, `DIONYSIA_LOG_LEVEL="loud" (--log-level)`},
		"no secret":     {map[string]string{"DIONYSIA_WORKER_SECRET": ""}, nil, "DIONYSIA_WORKER_SECRET is required"},
		"negative flag": {nil, []string{"--capacity", "-1"}, `DIONYSIA_WORKER_CAPACITY="-1" (--capacity): must be between 0 and 1000`},
		"bad flag":      {nil, []string{"--retention", "long"}, `invalid argument "long" for "--retention" flag: not a duration`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"DIONYSIA_WORKER_SECRET": "s"}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := execute(t, env, tc.args...)
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, cfg, "the worker did not start")
		})
	}
}

// TestEveryVariableIsDocumented checks the worker's section of
// docs/configuration.md (the services module checks the other binaries').
func TestEveryVariableIsDocumented(t *testing.T) {
	t.Parallel()
	cmd := newCommand(func(string) (string, bool) { return "", false }, &bytes.Buffer{}, nil)
	conftest.RequireDocumented(t, "dionysia-worker", worker.Secrets, cmd.Flags())
}
