package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// startRouter builds `dionysia` (the control plane's binary, another module)
// and runs `dionysia router` in mode against the test's Redis keys. It
// returns the router's base URL; the process is killed at cleanup.
func startRouter(t *testing.T, mode, redisURL, prefix string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dionysia")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/dionysia/dionysia/services/cmd/dionysia") // just build's flags: its cache
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building dionysia: %s", out)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	cmd := exec.Command(bin, "router", "--addr", addr, "--redis-url", redisURL, "--redis-prefix", prefix, "--mode", mode)
	cmd.Env = append(os.Environ(), "DIONYSIA_PLAYBACK_KEYS="+testPlaybackKeys)
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // by PID
	base := "http://" + addr
	require.Eventually(t, func() bool {
		res, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "router not ready")
	return base
}

// A signed stream through the real router in redirect mode, to the origin
// the worker serves (NewServeMux, as Run builds it): 403 without a token at
// the router and straight at the origin, 200 with one (the token rides in
// the redirect's path); a policy change applies within 2 s at both.
func TestSignedStreamThroughTheRouterInRedirectMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs dionysia router: skipped with -short")
	}
	tb := setup(t)
	// The router reads the database and prefix the test's handler writes.
	routerURL := startRouter(t, "redirect", tb.redisURL, tb.store.Config().Prefix)

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux, err := NewServeMux(Config{ID: "worker-a", DataDir: tb.dataDir, PlaybackKeys: testPlaybackKeys},
		tb.handler.Holds, nil, tb.store, tb.rdb, prometheus.NewRegistry(), log)
	require.NoError(t, err)
	origin := httptest.NewServer(mux)
	t.Cleanup(origin.Close)
	tb.handler.OriginURL = origin.URL

	p := payload(t, liveSource(t))
	stream := p.StreamID.String()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, tb.store.Assign(ctx, stream, p.SessionID.String(), ownership.PolicySigned))
	done := make(chan error, 1)
	go func() { done <- tb.handler.ProcessTask(ctx, task(t, p)) }()
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(tb.dataDir, stream, "index.m3u8"))
		return err == nil && tb.handler.Holds(stream)
	}, 30*time.Second, 50*time.Millisecond)

	signer, err := playback.ParseKeys(testPlaybackKeys)
	require.NoError(t, err)
	tok, err := signer.Mint(stream, time.Hour, "127.0.0.1")
	require.NoError(t, err)
	noFollow := &http.Client{Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(c *http.Client, url string) (*http.Response, string) {
		res, err := c.Get(url)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	res, body := get(noFollow, routerURL+playback.URLPath(stream, "", "index.m3u8"))
	require.Equal(t, http.StatusForbidden, res.StatusCode, "the router refuses: %s", body)
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	res, _ = get(noFollow, origin.URL+playback.URLPath(stream, "", "index.m3u8"))
	require.Equal(t, http.StatusForbidden, res.StatusCode, "straight at the origin: refused too")
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))

	res, _ = get(noFollow, routerURL+playback.URLPath(stream, tok, "index.m3u8"))
	require.Equal(t, http.StatusFound, res.StatusCode)
	loc := res.Header.Get("Location")
	require.Equal(t, origin.URL+playback.URLPath(stream, tok, "index.m3u8"), loc, "the token rides in the redirect's path")
	res, body = get(http.DefaultClient, routerURL+playback.URLPath(stream, tok, "index.m3u8"))
	require.Equal(t, http.StatusOK, res.StatusCode, "with the token, after the redirect: %s", body)
	require.True(t, strings.HasPrefix(body, "#EXTM3U"), body)
	res, _ = get(http.DefaultClient, origin.URL+playback.URLPath(stream, tok, "index.m3u8"))
	require.Equal(t, http.StatusOK, res.StatusCode, "straight at the origin with the token")

	// Public now: both serve without a token within 2 s; signed again: both refuse.
	for _, c := range []struct {
		policy string
		want   int
	}{{ownership.PolicyPublic, http.StatusOK}, {ownership.PolicySigned, http.StatusForbidden}} {
		_, err = tb.store.SetPolicy(ctx, stream, c.policy)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			r, _ := get(http.DefaultClient, routerURL+playback.URLPath(stream, "", "index.m3u8"))
			o, _ := get(http.DefaultClient, origin.URL+playback.URLPath(stream, "", "index.m3u8"))
			return r.StatusCode == c.want && o.StatusCode == c.want
		}, 2*time.Second, 20*time.Millisecond, fmt.Sprintf("%s within 2 s", c.policy))
	}

	require.NoError(t, tb.stops.Request(ctx, p.SessionID, "test_done"))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("handler did not stop")
	}
}
