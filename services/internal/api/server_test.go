package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/jackc/pgx/v5/pgxpool"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/services/internal/api"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/dbtest"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

type testBundle struct {
	t        *testing.T
	pool     *pgxpool.Pool
	rdb      redis.UniversalClient
	prefix   string        // the Redis key prefix
	objects  storage.Store // the recordings' file store
	srv      *api.App
	http     *httptest.Server
	st       *store.Store
	adminKey string
	readKey  string
	logs     *testkit.LogBuffer
	cfg      config.API
	// client checks every exchange against openapi.json (specClient).
	client *http.Client
}

type bundleOpts struct {
	redis     redis.UniversalClient
	bodyLimit int64
	// The ingest tests' settings: their secrets, Redis key prefix and dispatch timing.
	edgeSecret, workerSecret, playbackKeys string
	redisPrefix                            string
	dispatch                               config.Dispatch
	// The webhook tests' settings; background also runs the background
	// loops (the delivery worker among them) until the test ends.
	allowPrivateTargets bool
	webhooks            config.Webhooks
	background          bool
}

func setup(t *testing.T, opts ...bundleOpts) *testBundle {
	t.Helper()
	var o bundleOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	pool := dbtest.New(t)
	st := store.New(pool)
	rdb, prefix := o.redis, o.redisPrefix
	if rdb == nil {
		r := testkit.RedisPrefix(t)
		rdb, prefix = r.Client, r.Prefix
	}
	logs := &testkit.LogBuffer{}
	objects, err := storage.Open(context.Background(), "file://"+t.TempDir(), storage.Options{})
	require.NoError(t, err)
	cfg := config.API{BodyLimit: o.bodyLimit, Public: config.PublicURLs{EdgeHost: "edge.example.com", PlaybackBaseURL: "https://play.example.com/"},
		EdgeSecret: o.edgeSecret, WorkerSecret: o.workerSecret, PlaybackKeys: o.playbackKeys, Dispatch: o.dispatch,
		AllowPrivateTargets: o.allowPrivateTargets, Webhooks: o.webhooks}
	srv, err := api.NewApp(cfg, api.Deps{Store: st, Pool: pool, Redis: rdb, RedisPrefix: prefix, Objects: objects, Registry: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	if o.background {
		bctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); srv.RunBackground(bctx) }()
		t.Cleanup(func() { stop(); <-done })
	}

	ctx := context.Background()
	_, admin, err := st.CreateAPIKey(ctx, "admin", store.ScopeAdmin)
	require.NoError(t, err)
	_, read, err := st.CreateAPIKey(ctx, "reader", store.ScopeRead)
	require.NoError(t, err)
	return &testBundle{t: t, pool: pool, rdb: rdb, prefix: prefix, objects: objects, srv: srv, http: hs, st: st, adminKey: admin, readKey: read, logs: logs, cfg: cfg.WithDefaults(),
		client: specClient(t)}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem(t *testing.T) apiv1.Problem {
	t.Helper()
	require.Equal(t, apiv1.ProblemContentType, r.header.Get("Content-Type"), "body: %s", r.body)
	var p apiv1.Problem
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&p))
	require.Equal(t, r.status, p.Status)
	require.NotEmpty(t, p.Title)
	return p
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), string(r.body))
}

// do sends a request with the given key ("" for none) and a body (string,
// []byte or a value to encode as JSON; nil for none).
func (b *testBundle) do(method, path, key string, body any) response {
	b.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		buf, err := json.Marshal(v)
		require.NoError(b.t, err)
		rd = bytes.NewReader(buf)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.http.URL+path, rd)
	require.NoError(b.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := b.client.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func (b *testBundle) createStream(body any) apiv1.Stream {
	b.t.Helper()
	r := b.do(http.MethodPost, "/api/v1/streams", b.adminKey, body)
	require.Equal(b.t, http.StatusCreated, r.status, string(r.body))
	var s apiv1.Stream
	r.decode(b.t, &s)
	return s
}

func TestStreamLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)

	s := b.createStream(map[string]any{"name": "news"})
	require.Equal(t, "news", s.Name)
	require.Equal(t, byte(7), s.ID[6]>>4, "UUIDv7 id")
	require.True(t, strings.HasPrefix(s.StreamKey, "sk_"))
	require.Equal(t, "720p", s.Profile.Name)
	require.Equal(t, []string{"hls", "dash"}, s.Outputs)
	require.Equal(t, "auto", s.Hardware)
	require.Equal(t, "public", s.PlaybackPolicy)
	require.Equal(t, 2, s.SegmentDuration)
	require.Equal(t, 6, s.PlaylistWindowSize)
	require.Equal(t, "idle", s.Status)
	require.Equal(t, apiv1.IngestURLs{
		RTMP: "rtmp://edge.example.com:1935/live/" + s.StreamKey,
		SRT:  "srt://edge.example.com:8890?streamid=publish:live/" + s.StreamKey,
		RTSP: "rtsp://edge.example.com:8554/live/" + s.StreamKey,
		WHIP: "http://edge.example.com:8889/live/" + s.StreamKey + "/whip",
	}, s.Ingest)
	require.Equal(t, apiv1.PlaybackURLs{
		HLS:  "https://play.example.com/live/" + s.ID.String() + "/index.m3u8",
		DASH: "https://play.example.com/live/" + s.ID.String() + "/manifest.mpd",
	}, s.Playback)

	r := b.do(http.MethodGet, "/api/v1/streams/"+s.ID.String(), b.readKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	var got apiv1.Stream
	r.decode(t, &got)
	require.Equal(t, s.StreamKey, got.StreamKey)

	r = b.do(http.MethodPatch, "/api/v1/streams/"+s.ID.String(), b.adminKey,
		map[string]any{"profile": "1080p", "outputs": []string{"hls"}, "hardware": "cpu", "segment_duration": 4, "disabled": true})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	got = apiv1.Stream{}
	r.decode(t, &got)
	require.Equal(t, "1080p", got.Profile.Name)
	require.Equal(t, []string{"hls"}, got.Outputs)
	require.Empty(t, got.Playback.DASH, "no DASH URL without the dash output")
	require.Equal(t, "cpu", got.Hardware)
	require.Equal(t, 4, got.SegmentDuration)
	require.True(t, got.Disabled)
	require.Equal(t, "news", got.Name)

	r = b.do(http.MethodPost, "/api/v1/streams/"+s.ID.String()+"/stream-key", b.adminKey, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r.decode(t, &got)
	require.NotEqual(t, s.StreamKey, got.StreamKey)
	require.Contains(t, got.Ingest.RTMP, got.StreamKey)

	r = b.do(http.MethodGet, "/api/v1/streams", b.adminKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	var list apiv1.List[apiv1.Stream]
	r.decode(t, &list)
	require.Len(t, list.Data, 1)
	require.Nil(t, list.NextCursor)

	r = b.do(http.MethodDelete, "/api/v1/streams/"+s.ID.String(), b.adminKey, nil)
	require.Equal(t, http.StatusNoContent, r.status)
	for _, m := range []string{http.MethodGet, http.MethodDelete, http.MethodPatch} {
		var body any
		if m == http.MethodPatch {
			body = map[string]any{"name": "x"}
		}
		r = b.do(m, "/api/v1/streams/"+s.ID.String(), b.adminKey, body)
		require.Equal(t, http.StatusNotFound, r.status, m)
		require.Contains(t, r.problem(t).Detail, s.ID.String())
	}

	// Secrets never reach the log.
	require.NotContains(t, b.logs.String(), s.StreamKey)
	require.NotContains(t, b.logs.String(), got.StreamKey)
	require.NotContains(t, b.logs.String(), b.adminKey)
	require.Contains(t, b.logs.String(), `"route":"/api/v1/streams/:id"`)
}

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	revokedKey, revoked, err := b.st.CreateAPIKey(ctx, "old", store.ScopeAdmin)
	require.NoError(t, err)
	_, err = b.st.RevokeAPIKey(ctx, revokedKey.ID)
	require.NoError(t, err)
	// Right prefix, wrong secret.
	forged := b.adminKey[:len(b.adminKey)-4] + "AAAA"
	if forged == b.adminKey {
		forged = b.adminKey[:len(b.adminKey)-4] + "BBBB"
	}

	cases := []struct {
		name, method, path, header string
		body                       any
		want                       int
		detail                     string
	}{
		{"no header", "POST", "/api/v1/streams", "", map[string]any{"name": "x"}, 401, "missing Authorization"},
		{"no header on get", "GET", "/api/v1/streams", "", nil, 401, "missing Authorization"},
		{"basic scheme", "GET", "/api/v1/streams", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", nil, 401, "malformed Authorization"},
		{"bearer without key", "GET", "/api/v1/streams", "Bearer ", nil, 401, "malformed Authorization"},
		{"not a key", "GET", "/api/v1/streams", "Bearer hunter2", nil, 401, "malformed api key"},
		{"unknown key", "GET", "/api/v1/streams", "Bearer dio_AAAAAAAA_" + strings.Repeat("A", 43), nil, 401, "invalid api key"},
		{"forged secret", "GET", "/api/v1/streams", "Bearer " + forged, nil, 401, "invalid api key"},
		{"revoked", "GET", "/api/v1/streams", "Bearer " + revoked, nil, 401, "revoked"},
		{"read key reads", "GET", "/api/v1/streams", "Bearer " + b.readKey, nil, 200, ""},
		{"read key reads profiles", "GET", "/api/v1/profiles/720p", "Bearer " + b.readKey, nil, 200, ""},
		{"read key writes", "POST", "/api/v1/streams", "Bearer " + b.readKey, map[string]any{"name": "x"}, 403, "scope \"read\""},
		{"read key deletes", "DELETE", "/api/v1/profiles/720p", "Bearer " + b.readKey, nil, 403, "scope \"read\""},
		{"read key lists api keys", "GET", "/api/v1/api-keys", "Bearer " + b.readKey, nil, 403, "scope \"admin\""},
		{"admin writes", "POST", "/api/v1/streams", "Bearer " + b.adminKey, map[string]any{"name": "x"}, 201, ""},
		{"lower-case scheme", "GET", "/api/v1/streams", "bearer " + b.adminKey, nil, 200, ""},
		{"openapi needs no key", "GET", "/api/v1/openapi.json", "", nil, 200, ""},
		{"health needs no key", "GET", "/healthz", "", nil, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rd io.Reader
			if tc.body != nil {
				buf, _ := json.Marshal(tc.body)
				rd = bytes.NewReader(buf)
			}
			req, err := http.NewRequest(tc.method, b.http.URL+tc.path, rd)
			require.NoError(t, err)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := b.client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			r := response{status: resp.StatusCode, header: resp.Header, body: data}
			require.Equal(t, tc.want, r.status, string(data))
			if tc.want >= 400 {
				p := r.problem(t)
				require.Contains(t, p.Detail, tc.detail)
				require.Equal(t, tc.path, p.Instance)
			}
			if tc.want == 401 {
				require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
			}
		})
	}

	// A successful use is recorded.
	k, _, err := b.st.APIKeyByPrefix(ctx, b.readKey[4:12])
	require.NoError(t, err)
	require.NotNil(t, k.LastUsedAt)
}

func fieldsOf(p apiv1.Problem) []string {
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}

func TestStreamValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, bundleOpts{bodyLimit: 4096})
	cases := []struct {
		name   string
		body   any
		status int
		fields []string
		detail string
	}{
		{"empty name", `{"name":""}`, 422, []string{"name"}, "name: must not be empty"},
		{"blank name", `{"name":"   "}`, 422, []string{"name"}, ""},
		{"missing name", `{}`, 422, []string{"name"}, ""},
		{"long name", map[string]any{"name": strings.Repeat("x", 201)}, 422, []string{"name"}, ""},
		{"control char", map[string]any{"name": "a\x00b"}, 422, []string{"name"}, ""},
		{"hardware tpu", `{"name":"a","hardware":"tpu"}`, 422, []string{"hardware"}, `got "tpu"`},
		{"bad policy", `{"name":"a","playback_policy":"private"}`, 422, []string{"playback_policy"}, ""},
		{"bad output", `{"name":"a","outputs":["hls","rtmp"]}`, 422, []string{"outputs[1]"}, ""},
		{"duplicate output", `{"name":"a","outputs":["hls","hls"]}`, 422, []string{"outputs[1]"}, ""},
		{"no outputs", `{"name":"a","outputs":[]}`, 422, []string{"outputs"}, ""},
		{"segment zero", `{"name":"a","segment_duration":0}`, 422, []string{"segment_duration"}, ""},
		{"segment huge", `{"name":"a","segment_duration":11}`, 422, []string{"segment_duration"}, ""},
		{"window", `{"name":"a","playlist_window_size":2}`, 422, []string{"playlist_window_size"}, ""},
		{"many at once", `{"name":"","hardware":"x","segment_duration":-1}`, 422, []string{"name", "hardware", "segment_duration"}, ""},
		{"unknown profile", `{"name":"a","profile":"4k"}`, 422, []string{"profile"}, `"4k"`},
		{"wrong type", `{"name":"a","segment_duration":"2"}`, 422, []string{"segment_duration"}, "must be a JSON number"},
		{"overflowing number", `{"name":"a","segment_duration":1e40}`, 422, []string{"segment_duration"}, ""},
		{"unknown field", `{"name":"a","colour":"red"}`, 400, []string{"colour"}, `unknown field "colour"`},
		{"malformed", `{"name":"a",}`, 400, nil, "malformed JSON at byte offset"},
		{"truncated", `{"name":"a"`, 400, nil, "ends early"},
		{"trailing data", `{"name":"a"} {}`, 400, nil, "unexpected data after"},
		{"not an object", `["a"]`, 400, nil, "must be a JSON object"},
		{"empty body", ``, 400, nil, "empty"},
		{"too large", `{"name":"` + strings.Repeat("a", 5000) + `"}`, 413, nil, "larger than 4096 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := b.do(http.MethodPost, "/api/v1/streams", b.adminKey, tc.body)
			require.Equal(t, tc.status, r.status, string(r.body))
			p := r.problem(t)
			require.ElementsMatch(t, tc.fields, fieldsOf(p))
			require.Contains(t, p.Detail, tc.detail)
		})
	}

	s := b.createStream(map[string]any{"name": "ok"})
	r := b.do(http.MethodPatch, "/api/v1/streams/"+s.ID.String(), b.adminKey, `{"hardware":"tpu","name":""}`)
	require.Equal(t, 422, r.status)
	require.ElementsMatch(t, []string{"hardware", "name"}, fieldsOf(r.problem(t)))

	// The body is JSON whatever the Content-Type says (curl -d sends form-urlencoded).
	req, err := http.NewRequest(http.MethodPost, b.http.URL+"/api/v1/streams", strings.NewReader(`{"name":""}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+b.adminKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	req, err = http.NewRequest(http.MethodPost, b.http.URL+"/api/v1/streams", strings.NewReader(`name=a`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+b.adminKey)
	resp, err = b.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func rendition(name string, w, h, kbps int) map[string]any {
	return map[string]any{"name": name, "width": w, "height": h, "video_bitrate_kbps": kbps}
}

func TestProfileValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nine := make([]any, 9)
	for i := range nine {
		nine[i] = rendition(string(rune('a'+i)), 640, 360, 800)
	}
	cases := []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"odd width", map[string]any{"name": "p", "renditions": []any{rendition("a", 641, 360, 800)}}, []string{"renditions[0].width"}},
		{"odd height", map[string]any{"name": "p", "renditions": []any{rendition("a", 640, 361, 800)}}, []string{"renditions[0].height"}},
		{"zero bitrate", map[string]any{"name": "p", "renditions": []any{rendition("a", 640, 360, 0)}},
			[]string{"renditions[0].video_bitrate_kbps"}},
		{"absurd bitrate", map[string]any{"name": "p", "renditions": []any{rendition("a", 640, 360, 1_000_000_000)}},
			[]string{"renditions[0].video_bitrate_kbps", "renditions[0].max_bitrate_kbps"}},
		{"nine renditions", map[string]any{"name": "p", "renditions": nine}, []string{"renditions"}},
		{"no renditions", map[string]any{"name": "p", "renditions": []any{}}, []string{"renditions"}},
		{"duplicate names", map[string]any{"name": "p", "renditions": []any{rendition("a", 640, 360, 800), rendition("a", 320, 180, 300)}},
			[]string{"renditions[1].name"}},
		{"bad codec and preset", map[string]any{"name": "p", "renditions": []any{
			map[string]any{"name": "a", "width": 640, "height": 360, "video_bitrate_kbps": 800, "codec": "h265", "preset": "warp"}}},
			[]string{"renditions[0].codec", "renditions[0].preset"}},
		{"audio", map[string]any{"name": "p", "renditions": []any{rendition("a", 640, 360, 800)},
			"audio": map[string]any{"channels": 6, "sample_rate": 22050, "codec": "opus"}},
			[]string{"audio.channels", "audio.sample_rate", "audio.codec"}},
		{"bad profile name", map[string]any{"name": "has space", "renditions": []any{rendition("a", 640, 360, 800)}}, []string{"name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := b.do(http.MethodPost, "/api/v1/profiles", b.adminKey, tc.body)
			require.Equal(t, 422, r.status, string(r.body))
			require.ElementsMatch(t, tc.fields, fieldsOf(r.problem(t)))
		})
	}
	r := b.do(http.MethodPost, "/api/v1/profiles", b.adminKey, `{"name":"p","renditions":[{"name":"a","width":640,"height":360,"video_bitrate_kbps":800,"bogus":1}]}`)
	require.Equal(t, 400, r.status)
	require.Equal(t, []string{"bogus"}, fieldsOf(r.problem(t)))
}

func TestProfileLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)

	r := b.do(http.MethodPost, "/api/v1/profiles", b.adminKey, map[string]any{"name": "mobile", "description": "two rungs",
		"renditions": []any{rendition("540p", 960, 540, 1800), rendition("270p", 480, 270, 400)}})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	var p apiv1.Profile
	r.decode(t, &p)
	require.False(t, p.Builtin)
	require.Equal(t, "veryfast", p.Renditions[0].Preset, "defaults applied")
	require.Equal(t, 2700, p.Renditions[0].MaxBitrateKbps)
	require.Equal(t, 48000, p.Audio.SampleRate)

	r = b.do(http.MethodPost, "/api/v1/profiles", b.adminKey, map[string]any{"name": "mobile", "renditions": []any{rendition("a", 640, 360, 800)}})
	require.Equal(t, http.StatusConflict, r.status)
	require.Equal(t, []string{"name"}, fieldsOf(r.problem(t)))

	for _, ref := range []string{"mobile", p.ID.String()} {
		r = b.do(http.MethodGet, "/api/v1/profiles/"+ref, b.readKey, nil)
		require.Equal(t, http.StatusOK, r.status)
	}

	r = b.do(http.MethodPatch, "/api/v1/profiles/mobile", b.adminKey, map[string]any{"audio": map[string]any{"bitrate_kbps": 96}})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r.decode(t, &p)
	require.Equal(t, 96, p.Audio.BitrateKbps)
	require.Len(t, p.Renditions, 2)
	r = b.do(http.MethodPatch, "/api/v1/profiles/mobile", b.adminKey, map[string]any{"renditions": []any{rendition("a", 641, 360, 800)}})
	require.Equal(t, 422, r.status)
	require.Equal(t, []string{"renditions[0].width"}, fieldsOf(r.problem(t)))

	s := b.createStream(map[string]any{"name": "uses mobile", "profile": "mobile"})
	require.Equal(t, p.ID, s.Profile.ID)
	r = b.do(http.MethodDelete, "/api/v1/profiles/mobile", b.adminKey, nil)
	require.Equal(t, http.StatusConflict, r.status)
	require.Contains(t, r.problem(t).Detail, "used by at least one stream")

	for _, name := range []string{"720p", "1080p", "passthrough"} {
		r = b.do(http.MethodDelete, "/api/v1/profiles/"+name, b.adminKey, nil)
		require.Equal(t, http.StatusConflict, r.status)
		require.Contains(t, r.problem(t).Detail, "built in")
		r = b.do(http.MethodPatch, "/api/v1/profiles/"+name, b.adminKey, map[string]any{"description": "mine"})
		require.Equal(t, http.StatusConflict, r.status)
		require.Contains(t, r.problem(t).Detail, "built in")
	}

	r = b.do(http.MethodDelete, "/api/v1/streams/"+s.ID.String(), b.adminKey, nil)
	require.Equal(t, http.StatusNoContent, r.status)
	r = b.do(http.MethodDelete, "/api/v1/profiles/mobile", b.adminKey, nil)
	require.Equal(t, http.StatusNoContent, r.status)
	r = b.do(http.MethodGet, "/api/v1/profiles/mobile", b.adminKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)

	r = b.do(http.MethodGet, "/api/v1/profiles", b.adminKey, nil)
	var list apiv1.List[apiv1.Profile]
	r.decode(t, &list)
	require.Len(t, list.Data, 3)
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{
		"/api/v1/streams/0190a4b2-0000-7000-8000-000000000000",
		"/api/v1/streams/not-a-uuid",
		"/api/v1/profiles/nope",
		"/api/v1/api-keys/0190a4b2-0000-7000-8000-000000000000",
		"/api/v1/nothing-here",
		"/nothing-here",
	} {
		r := b.do(http.MethodGet, path, b.adminKey, nil)
		require.Equal(t, http.StatusNotFound, r.status, path)
		r.problem(t)
	}
	r := b.do(http.MethodPost, "/api/v1/streams/0190a4b2-0000-7000-8000-000000000000/stream-key", b.adminKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	// Echo answers an unsupported method on a known path with 404 (the group's
	// catch-all route), still as a problem.
	r = b.do(http.MethodPut, "/api/v1/streams", b.adminKey, `{}`)
	require.Equal(t, http.StatusNotFound, r.status)
	r.problem(t)
}

func TestPagination(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, b.createStream(map[string]any{"name": string(rune('a' + i))}).ID.String())
	}
	var got []string
	path := "/api/v1/streams?limit=2"
	for range 3 {
		r := b.do(http.MethodGet, path, b.readKey, nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		var list apiv1.List[apiv1.Stream]
		r.decode(t, &list)
		for _, s := range list.Data {
			got = append(got, s.ID.String())
		}
		if list.NextCursor == nil {
			break
		}
		path = "/api/v1/streams?limit=2&cursor=" + *list.NextCursor
	}
	require.Equal(t, ids, got)

	for _, q := range []string{"limit=0", "limit=201", "limit=x", "cursor=***", "cursor=AAAA"} {
		r := b.do(http.MethodGet, "/api/v1/streams?"+q, b.readKey, nil)
		require.Equal(t, http.StatusBadRequest, r.status, q)
		require.Len(t, r.problem(t).Errors, 1)
	}
}

func TestAPIKeyEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do(http.MethodPost, "/api/v1/api-keys", b.adminKey, map[string]any{"name": "ci", "scope": "read"})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	var created apiv1.APIKeyCreated
	r.decode(t, &created)
	require.Equal(t, "read", created.Scope)
	require.True(t, strings.HasPrefix(created.Secret, "dio_"+created.Prefix+"_"))

	require.Equal(t, http.StatusOK, b.do(http.MethodGet, "/api/v1/streams", created.Secret, nil).status)
	require.Equal(t, http.StatusForbidden, b.do(http.MethodPost, "/api/v1/streams", created.Secret, `{"name":"x"}`).status)

	r = b.do(http.MethodGet, "/api/v1/api-keys", b.adminKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.NotContains(t, string(r.body), created.Secret)
	require.NotContains(t, string(r.body), "hash")
	var list apiv1.List[apiv1.APIKey]
	r.decode(t, &list)
	require.Len(t, list.Data, 3)

	r = b.do(http.MethodPost, "/api/v1/api-keys", b.adminKey, map[string]any{"name": "x", "scope": "root"})
	require.Equal(t, 422, r.status)
	require.Equal(t, []string{"scope"}, fieldsOf(r.problem(t)))

	r = b.do(http.MethodDelete, "/api/v1/api-keys/"+created.ID.String(), b.adminKey, nil)
	require.Equal(t, http.StatusNoContent, r.status)
	r = b.do(http.MethodGet, "/api/v1/streams", created.Secret, nil)
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Contains(t, r.problem(t).Detail, "revoked")
	r = b.do(http.MethodGet, "/api/v1/api-keys/"+created.ID.String(), b.adminKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	var k apiv1.APIKey
	r.decode(t, &k)
	require.NotNil(t, k.RevokedAt)
	require.NotNil(t, k.LastUsedAt)
	require.NotContains(t, b.logs.String(), created.Secret)
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do(http.MethodGet, "/healthz", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	r = b.do(http.MethodGet, "/readyz", "", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var h apiv1.Health
	r.decode(t, &h)
	require.Equal(t, apiv1.Health{Status: "ok", Checks: map[string]string{"postgres": "ok", "redis": "ok"}}, h)

	b.createStream(map[string]any{"name": "m"})
	b.do(http.MethodGet, "/api/v1/streams/0190a4b2-0000-7000-8000-000000000000", b.adminKey, nil)
	r = b.do(http.MethodGet, "/metrics", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	m := string(r.body)
	require.Contains(t, m, `dionysia_api_request_duration_seconds_bucket{method="POST",route="/api/v1/streams",status="201",le="0.001"}`)
	require.Contains(t, m, `dionysia_api_request_duration_seconds_count{method="GET",route="/api/v1/streams/:id",status="404"} 1`)
	require.Contains(t, m, "dionysia_db_pool_max_connections 4")
	require.Contains(t, m, "dionysia_db_pool_acquires_total")
}

func TestReadyzFailsWithoutRedis(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1 of the loopback interface.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	b := setup(t, bundleOpts{redis: dead})
	r := b.do(http.MethodGet, "/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	var h apiv1.Health
	r.decode(t, &h)
	require.Equal(t, "unavailable", h.Status)
	require.Equal(t, "ok", h.Checks["postgres"])
	require.NotEqual(t, "ok", h.Checks["redis"])
}

func TestRunStopsGracefully(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.srv.Run(ctx, ln) }()

	resp, err := b.client.Get("http://" + ln.Addr().String() + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	_, err = b.client.Get("http://" + ln.Addr().String() + "/healthz")
	require.Error(t, err, "the listener is closed")
	require.Contains(t, b.logs.String(), "api stopped")
}
