package edgeapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/services/internal/edgeapi"
)

func TestStreamKey(t *testing.T) {
	for path, want := range map[string]string{
		"live/sk_abc-DEF_123": "sk_abc-DEF_123",
		"live/":               "",
		"live/a/b":            "",
		"other/abc":           "",
		"live/..":             "",
		"live/a b":            "",
		"live/a?b=c":          "",
		"":                    "",
	} {
		got, ok := edgeapi.StreamKey(path)
		require.Equal(t, want, got, path)
		require.Equal(t, want != "", ok, path)
	}
}

func FuzzStreamKey(f *testing.F) {
	f.Add("live/sk_1")
	f.Add("live/../x")
	f.Fuzz(func(t *testing.T, path string) {
		key, ok := edgeapi.StreamKey(path)
		if ok {
			require.Equal(t, edgeapi.PathPrefix+key, path)
			require.NotContains(t, key, "/")
			require.NotEmpty(t, key)
		}
	})
}

func TestLogValuesHideSecrets(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x",
		"auth", edgeapi.AuthRequest{Path: "live/sk_secret", StreamKey: "sk_secret", Password: "pw_secret", Query: "pass=q_secret"},
		"event", edgeapi.Event{Path: "live/sk_secret"},
	)
	for _, s := range []string{"sk_secret", "pw_secret", "q_secret"} {
		require.NotContains(t, buf.String(), s)
	}
	require.Contains(t, buf.String(), edgeapi.StreamRef("live/sk_secret"))
}

func TestSourceURL(t *testing.T) {
	e := edgeapi.EdgeInfo{PublicHost: "edge1", RTMPPort: 1935, SRTPort: 8890, RTSPPort: 8554}
	require.Equal(t, "rtmp://edge1:1935/live/k", e.SourceURL(edgeapi.ProtocolRTMP, "k"))
	require.Equal(t, "srt://edge1:8890?streamid=read:live/k", e.SourceURL(edgeapi.ProtocolSRT, "k"))
	require.Equal(t, "rtsp://edge1:8554/live/k", e.SourceURL(edgeapi.ProtocolRTSP, "k"))
	require.Empty(t, e.SourceURL(edgeapi.ProtocolWebRTC, "k"))
	e.PublicHost = "::1"
	require.Equal(t, "rtmp://[::1]:1935/live/k", e.SourceURL(edgeapi.ProtocolRTMP, "k"))
}

func TestClient(t *testing.T) {
	var gotAuth string
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+edgeapi.AuthPath, func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		if !edgeapi.CheckSecret(r, "s3cret") {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(edgeapi.AuthResponse{Allow: true, StreamID: "id1"})
	})
	mux.HandleFunc("POST "+edgeapi.EventsPath, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("POST "+edgeapi.SyncPath, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(edgeapi.SyncResponse{Kick: []edgeapi.Kick{{SourceID: "c1"}}})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()

	c := &edgeapi.Client{BaseURL: srv.URL + "/", Secret: "s3cret"}
	res, err := c.Auth(ctx, edgeapi.AuthRequest{Action: edgeapi.ActionPublish})
	require.NoError(t, err)
	require.Equal(t, edgeapi.AuthResponse{Allow: true, StreamID: "id1"}, res)
	require.Equal(t, "Bearer s3cret", gotAuth)

	sync, err := c.Sync(ctx, edgeapi.SyncRequest{Live: []edgeapi.LiveStream{}})
	require.NoError(t, err)
	require.Equal(t, "c1", sync.Kick[0].SourceID)

	err = c.Event(ctx, edgeapi.Event{Type: edgeapi.EventReady})
	require.Error(t, err)
	require.False(t, errors.Is(err, edgeapi.ErrRejected), "5xx is retryable")

	bad := &edgeapi.Client{BaseURL: srv.URL, Secret: "wrong"}
	_, err = bad.Auth(ctx, edgeapi.AuthRequest{})
	require.ErrorIs(t, err, edgeapi.ErrRejected)

	req := httptest.NewRequest(http.MethodPost, "/", nil)
	require.False(t, edgeapi.CheckSecret(req, ""), "an empty secret never matches")
	req.Header.Set("Authorization", "Bearer ")
	require.False(t, edgeapi.CheckSecret(req, ""))
}
