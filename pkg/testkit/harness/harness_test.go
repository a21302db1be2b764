package harness_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/pkg/testkit/harness"
)

func TestProcLogsStopsAndTails(t *testing.T) {
	dir := t.TempDir()
	p, err := harness.StartProc(dir, "sh", []string{"GREETING=hello"}, "sh", "-c", `echo "$GREETING"; echo second; exec sleep 60`)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return harness.GrepLog(p.LogPath, "second") }, 10*time.Second, 20*time.Millisecond)
	require.False(t, p.Exited())
	require.Equal(t, "second", harness.Tail(p.LogPath, 1))
	require.Equal(t, filepath.Join(dir, "sh.log"), p.LogPath)
	p.Stop(5 * time.Second)
	require.True(t, p.Exited())
	require.Error(t, p.Err(), "ended by SIGTERM")
}

func TestWaitHTTPGivesUpWhenTheProcessExits(t *testing.T) {
	p, err := harness.StartProc(t.TempDir(), "false", nil, "sh", "-c", "echo failing; exit 3")
	require.NoError(t, err)
	err = harness.WaitHTTP(context.Background(), p, "http://127.0.0.1:1/readyz", time.Minute)
	require.ErrorContains(t, err, "exited")
	require.ErrorContains(t, err, "failing", "with the end of its log")
}

func TestRunStdoutKeepsStderrForTheError(t *testing.T) {
	out, err := harness.RunStdout(context.Background(), time.Minute, nil, "sh", "-c", "echo out; echo oops >&2")
	require.NoError(t, err)
	require.Equal(t, "out\n", out)
	_, err = harness.RunStdout(context.Background(), time.Minute, nil, "sh", "-c", "echo oops >&2; exit 1")
	require.ErrorContains(t, err, "oops")
	_, err = harness.Run(context.Background(), 100*time.Millisecond, nil, "sleep", "10")
	require.ErrorContains(t, err, "timed out")
}

func TestStartRedis(t *testing.T) {
	testkit.Program(t, "redis-server", "redis-server")
	proc, url, err := harness.StartRedis(context.Background(), t.TempDir(), 0)
	if proc != nil {
		t.Cleanup(func() { proc.Stop(5 * time.Second) })
	}
	require.NoError(t, err)
	require.Contains(t, url, "redis://127.0.0.1:")
}

func TestLoadCountsStatusesAndBytes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("0123456789"))
	}))
	defer srv.Close()
	res := harness.Load(context.Background(), "test", []string{srv.URL + "/a", srv.URL + "/missing"}, 2, 300*time.Millisecond)
	require.Equal(t, "test", res.Name)
	require.Positive(t, res.Requests)
	require.Positive(t, res.Errors, "404s are errors")
	require.Equal(t, int64(10*res.Requests), res.Bytes)
	require.LessOrEqual(t, res.P(0.5), res.P(0.99))

	calls := harness.RunLoad(context.Background(), 1, 200*time.Millisecond, func(context.Context, int, int) (int64, error) {
		return 0, errors.New("no")
	})
	require.Zero(t, calls.Requests)
	require.Positive(t, calls.Errors)
	require.Zero(t, calls.P(0.5))
}

func TestMakeMediaWritesHLSAndDASH(t *testing.T) {
	testkit.FFmpeg(t)
	dir := t.TempDir()
	files, err := harness.MakeMedia(context.Background(), dir)
	require.NoError(t, err)
	require.Contains(t, files, "index.m3u8")
	require.Contains(t, files, "dash/manifest.mpd")
	for _, f := range files {
		_, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
	}
}
