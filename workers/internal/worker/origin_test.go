package worker

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

var testPlaybackKeys = "k1:" + base64.StdEncoding.EncodeToString([]byte("worker-origin-test-key-0123456789"))

// The origin as the worker runs it (NewServeMux, which Run serves) verifies
// playback tokens itself and follows the stream's live policy: a switch to
// signed, and back, applies within 2 s, and a signed stream is never served
// without a valid token.
func TestWorkerOriginEnforcesTheLivePolicy(t *testing.T) {
	tb := setup(t)
	p := payload(t, liveSource(t))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stream := p.StreamID.String()
	require.NoError(t, tb.store.Assign(ctx, stream, p.SessionID.String(), ownership.PolicyPublic))

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux, err := NewServeMux(Config{ID: "worker-a", DataDir: tb.dataDir, PlaybackKeys: testPlaybackKeys},
		tb.handler.Holds, nil, tb.store, tb.rdb, prometheus.NewRegistry(), log)
	require.NoError(t, err)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	done := make(chan error, 1)
	go func() { done <- tb.handler.ProcessTask(ctx, task(t, p)) }()
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(tb.dataDir, stream, "index.m3u8"))
		return err == nil && tb.handler.Holds(stream)
	}, 30*time.Second, 50*time.Millisecond, "the worker holds the stream and wrote its playlist")

	signer, err := playback.ParseKeys(testPlaybackKeys)
	require.NoError(t, err)
	tok, err := signer.Mint(stream, time.Hour, "127.0.0.1")
	require.NoError(t, err)
	status := func(token string) (int, string) {
		res, err := http.Get(srv.URL + playback.URLPath(stream, token, "index.m3u8"))
		require.NoError(t, err)
		defer res.Body.Close()
		return res.StatusCode, res.Header.Get("Content-Type")
	}
	code, _ := status("")
	require.Equal(t, http.StatusOK, code, "public: no token needed")

	_, err = tb.store.SetPolicy(ctx, stream, ownership.PolicySigned)
	require.NoError(t, err)
	require.Eventually(t, func() bool { c, _ := status(""); return c == http.StatusForbidden }, 2*time.Second, 20*time.Millisecond,
		"signed within 2 s")
	code, ctype := status("")
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, "application/problem+json", ctype)
	code, _ = status(tok)
	require.Equal(t, http.StatusOK, code, "a valid token")
	other, err := playback.ParseKeys("k1:" + base64.StdEncoding.EncodeToString([]byte("not-the-worker-key-0123456789abc")))
	require.NoError(t, err)
	forged, err := other.Mint(stream, time.Hour, "")
	require.NoError(t, err)
	code, _ = status(forged)
	require.Equal(t, http.StatusForbidden, code, "a token of another key")

	_, err = tb.store.SetPolicy(ctx, stream, ownership.PolicyPublic)
	require.NoError(t, err)
	require.Eventually(t, func() bool { c, _ := status(""); return c == http.StatusOK }, 2*time.Second, 20*time.Millisecond,
		"public again within 2 s")

	// Without keys the same origin refuses signed streams: it fails closed.
	bare, err := NewServeMux(Config{ID: "worker-a", DataDir: tb.dataDir}, tb.handler.Holds, nil, tb.store, tb.rdb, prometheus.NewRegistry(), log)
	require.NoError(t, err)
	bareSrv := httptest.NewServer(bare)
	t.Cleanup(bareSrv.Close)
	_, err = tb.store.SetPolicy(ctx, stream, ownership.PolicySigned)
	require.NoError(t, err)
	res, err := http.Get(bareSrv.URL + playback.URLPath(stream, tok, "index.m3u8"))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusForbidden, res.StatusCode)

	require.NoError(t, tb.stops.Request(ctx, p.SessionID, "test_done"))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("handler did not stop")
	}
}

func TestConfigRejectsBadPlaybackKeys(t *testing.T) {
	t.Parallel()
	cfg := Config{Secret: "s", PlaybackKeys: "k1:c2hvcnQ="}.WithDefaults()
	err := cfg.Validate()
	require.ErrorContains(t, err, "DIONYSIA_PLAYBACK_KEYS")
	require.NotContains(t, err.Error(), "c2hvcnQ=")
}
