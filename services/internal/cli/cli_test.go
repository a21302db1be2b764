package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/dionysia/dionysia/pkg/storage"
	"io/fs"

	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/pkg/testkit/postgres"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/migrations"
	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/pkg/conf/conftest"
	"github.com/dionysia/dionysia/services/internal/api"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/cli"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/dbtest"
	"github.com/dionysia/dionysia/services/internal/edge"
	"github.com/dionysia/dionysia/services/internal/router"
	"github.com/dionysia/dionysia/services/internal/secret"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

type testBundle struct {
	t      *testing.T
	env    map[string]string
	schema *postgres.Schema
	st     *store.Store
}

// setup starts the real API on a migrated schema and returns a bundle whose
// environment points the CLI at it with an admin key.
func setup(t *testing.T) *testBundle {
	t.Helper()
	s := postgres.NewSchema(t)
	pool := s.Pool(t)
	_, err := dbtest.Migrator(t, s, pool).Up(context.Background())
	require.NoError(t, err)
	st := store.New(pool)
	rdb := testkit.RedisPrefix(t)
	srv, err := api.NewApp(config.API{}, api.Deps{Store: st, Pool: pool, Redis: rdb.Client, RedisPrefix: rdb.Prefix, Objects: fileStore(t), Registry: prometheus.NewRegistry()})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	_, key, err := st.CreateAPIKey(context.Background(), "cli", store.ScopeAdmin)
	require.NoError(t, err)
	// The CLI's database commands reach the schema through search_path in the URL.
	dbURL := s.URL
	return &testBundle{t: t, schema: s, st: st, env: map[string]string{
		"DIONYSIA_API_URL": hs.URL, "DIONYSIA_API_KEY": key, "DIONYSIA_DATABASE_URL": dbURL,
	}}
}

// run executes the CLI in-process and returns stdout, stderr and the error.
func (b *testBundle) run(stdin string, args ...string) (string, string, error) {
	b.t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRoot(cli.Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
		LookupEnv: func(k string) (string, bool) { v, ok := b.env[k]; return v, ok },
	})
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func (b *testBundle) ok(args ...string) string {
	b.t.Helper()
	out, errOut, err := b.run("", args...)
	require.NoError(b.t, err, "dionysia %v: stderr %s", args, errOut)
	return out
}

func TestStreamsCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)

	var created apiv1.Stream
	require.NoError(t, json.Unmarshal([]byte(b.ok("streams", "create", "--name", "news", "-o", "json")), &created))
	require.Equal(t, "news", created.Name)
	require.True(t, secret.ValidStreamKey(created.StreamKey))

	out := b.ok("streams", "create", "--name", "sports", "--profile", "1080p", "--outputs", "hls", "--hardware", "cpu")
	require.Contains(t, out, "stream key")
	require.Contains(t, out, "rtmp://127.0.0.1:1935/live/sk_")
	require.NotContains(t, out, "playback dash")

	table := b.ok("streams", "list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	require.Len(t, lines, 3, table)
	require.Regexp(t, `^ID\s+NAME\s+STATUS\s+PROFILE\s+OUTPUTS\s+DISABLED\s+CREATED$`, lines[0])
	require.Regexp(t, `^`+created.ID.String()+`\s+news\s+idle\s+720p\s+hls,dash\s+false\s+`, lines[1])
	require.Regexp(t, `\s+sports\s+idle\s+1080p\s+hls\s+false\s+`, lines[2])

	var list []apiv1.Stream
	require.NoError(t, json.Unmarshal([]byte(b.ok("streams", "list", "-o", "json")), &list))
	require.Len(t, list, 2)
	require.Equal(t, created.ID, list[0].ID)

	out = b.ok("streams", "get", created.ID.String())
	require.Contains(t, out, created.StreamKey)

	var updated apiv1.Stream
	require.NoError(t, json.Unmarshal([]byte(b.ok("streams", "update", created.ID.String(), "--disabled", "--segment-duration", "4", "-o", "json")), &updated))
	require.True(t, updated.Disabled)
	require.Equal(t, 4, updated.SegmentDuration)

	var rotated apiv1.Stream
	require.NoError(t, json.Unmarshal([]byte(b.ok("streams", "rotate-key", created.ID.String(), "-o", "json")), &rotated))
	require.NotEqual(t, created.StreamKey, rotated.StreamKey)

	require.Contains(t, b.ok("streams", "delete", created.ID.String()), "deleted stream")

	// Errors carry the server's message and make the command fail.
	_, _, err := b.run("", "streams", "get", created.ID.String())
	require.Error(t, err)
	require.Contains(t, err.Error(), "404 Not Found: no stream with id "+created.ID.String())
	_, _, err = b.run("", "streams", "create", "--name", "x", "--hardware", "tpu")
	require.Error(t, err)
	require.Contains(t, err.Error(), "422")
	require.Contains(t, err.Error(), "hardware")
	_, _, err = b.run("", "streams", "update", rotated.ID.String())
	require.ErrorContains(t, err, "nothing to update")

	// A bad key is the server's 401; a missing one is refused before any call.
	_, _, err = b.run("", "streams", "list", "--api-key", "dio_AAAAAAAA_"+strings.Repeat("A", 43))
	require.ErrorContains(t, err, "401 Unauthorized: invalid api key")
	delete(b.env, "DIONYSIA_API_KEY")
	_, _, err = b.run("", "streams", "list")
	require.ErrorContains(t, err, "api key: required")
}

func TestProfilesCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	out := b.ok("profiles", "list")
	require.Regexp(t, `1080p\s+true\s+1080p,720p,480p,360p`, out)
	require.Regexp(t, `passthrough\s+true\s+source`, out)

	ladder := `{"renditions":[{"name":"540p","width":960,"height":540,"video_bitrate_kbps":1800}],"audio":{"bitrate_kbps":96}}`
	path := filepath.Join(t.TempDir(), "ladder.json")
	require.NoError(t, os.WriteFile(path, []byte(ladder), 0o600))
	out = b.ok("profiles", "create", "--name", "sd", "--file", path)
	require.Regexp(t, `540p\s+960x540\s+1800\s+2700`, out)

	out, errOut, err := b.run(ladder, "profiles", "create", "--name", "sd-stdin", "--file", "-", "-o", "json")
	require.NoError(t, err, errOut)
	var p apiv1.Profile
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	require.Equal(t, 96, p.Audio.BitrateKbps)

	_, _, err = b.run(`{"renditions":[{"name":"a","width":641,"height":360,"video_bitrate_kbps":800}]}`, "profiles", "create", "--name", "odd", "--file", "-")
	require.ErrorContains(t, err, "renditions[0].width")

	require.Contains(t, b.ok("profiles", "get", "sd"), "960x540")
	require.Contains(t, b.ok("profiles", "delete", "sd"), "deleted profile sd")
	_, _, err = b.run("", "profiles", "delete", "720p")
	require.ErrorContains(t, err, "409 Conflict: profile \"720p\" is built in")
}

func TestAPIKeyAndMigrateCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)

	out, errOut, err := b.run("", "api-key", "create", "--name", "ops")
	require.NoError(t, err, errOut)
	key := strings.TrimSpace(out)
	_, err = secret.ParseAPIKey(key)
	require.NoError(t, err, "stdout is just the key: %q", out)
	require.Contains(t, errOut, "shown only once")

	// The new key works against the API.
	b.env["DIONYSIA_API_KEY"] = key
	b.ok("streams", "list")

	out = b.ok("api-key", "list")
	require.Contains(t, out, "ops")
	require.NotContains(t, out, key)
	var keys []apiv1.APIKey
	require.NoError(t, json.Unmarshal([]byte(b.ok("api-key", "list", "-o", "json")), &keys))
	require.Len(t, keys, 2)
	require.Contains(t, b.ok("api-key", "revoke", keys[1].ID.String()), "revoked api key")
	_, _, err = b.run("", "streams", "list")
	require.ErrorContains(t, err, "revoked")

	_, _, err = b.run("", "api-key", "create", "--name", "x", "--scope", "root")
	require.ErrorContains(t, err, "--scope must be admin or read")

	out = b.ok("migrate", "status")
	require.Regexp(t, `5\s+00005_builtin_profiles.sql\s+\d{4}-`, out)
	files, err := fs.Glob(migrations.FS, "*.sql")
	require.NoError(t, err)
	// Numbers may have gaps: the version is the highest one.
	latest := 0
	for _, f := range files {
		n, err := strconv.Atoi(f[:strings.IndexByte(f, '_')])
		require.NoError(t, err, f)
		latest = max(latest, n)
	}
	require.Contains(t, b.ok("migrate", "up"), fmt.Sprintf("schema is at version %d", latest), "every migration applied")
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.env["DIONYSIA_OUTPUT"] = "json"
	var list []apiv1.Profile
	require.NoError(t, json.Unmarshal([]byte(b.ok("profiles", "list")), &list), "DIONYSIA_OUTPUT applies")
	require.Contains(t, b.ok("profiles", "list", "-o", "table"), "BUILTIN", "the flag wins")
	b.env["DIONYSIA_OUTPUT"] = "yaml"
	_, _, err := b.run("", "profiles", "list")
	require.ErrorContains(t, err, `DIONYSIA_OUTPUT="yaml" (--output): must be table or json`)
}

// sections maps each command to its section of docs/configuration.md.
var sections = map[string]string{
	"api":      "dionysia api",
	"edge":     "dionysia edge",
	"router":   "dionysia router",
	"migrate":  "dionysia migrate and dionysia api-key",
	"api-key":  "dionysia migrate and dionysia api-key",
	"streams":  "dionysia streams, profiles and workers",
	"profiles": "dionysia streams, profiles and workers",
	"workers":  "dionysia streams, profiles and workers",
	"webhooks": "dionysia streams, profiles and workers",
	"events":   "dionysia streams, profiles and workers",
}

// secrets are each server command's environment-only settings.
var secrets = map[string][]conf.Var{"api": config.APISecrets, "edge": edge.Secrets, "router": router.Secrets}

// TestEveryVariableIsDocumented fails when a command's flag or variable is
// missing from its section of docs/configuration.md, or the section
// documents a variable the command does not read.
func TestEveryVariableIsDocumented(t *testing.T) {
	t.Parallel()
	root := cli.NewRoot(cli.Env{})
	conftest.RequireDocumented(t, "Every command", nil, root.PersistentFlags())
	bySection := map[string][]*pflag.FlagSet{}
	extra := map[string][]conf.Var{}
	for _, c := range root.Commands() {
		title, ok := sections[c.Name()]
		if !ok {
			continue // help, completion
		}
		bySection[title] = append(bySection[title], c.LocalNonPersistentFlags(), c.PersistentFlags())
		extra[title] = append(extra[title], secrets[c.Name()]...)
	}
	require.Len(t, bySection, 5)
	for title, sets := range bySection {
		conftest.RequireDocumented(t, title, extra[title], sets...)
	}
}

// TestServersRefuseBadSettingsAtStart runs the real commands: a variable
// that does not parse, or a value out of range, stops the command before
// anything starts, with an error naming the variable and the value.
func TestServersRefuseBadSettingsAtStart(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"edge"}, map[string]string{"DIONYSIA_EDGE_RTMP_PORT": "abc"}, `DIONYSIA_EDGE_RTMP_PORT="abc": not a port number`},
		{[]string{"edge"}, map[string]string{"DIONYSIA_EDGE_POLL_INTERVAL": "5"}, `DIONYSIA_EDGE_POLL_INTERVAL="5": not a duration`},
		{[]string{"edge"}, map[string]string{"DIONYSIA_EDGE_ADMIN_ADDR": "9990"}, `DIONYSIA_EDGE_ADMIN_ADDR="9990" (--admin-addr): must be host:port`},
		{[]string{"router"}, map[string]string{"DIONYSIA_ROUTER_CACHE_TTL": "forever"}, `DIONYSIA_ROUTER_CACHE_TTL="forever": not a duration`},
		{[]string{"router"}, map[string]string{"DIONYSIA_ROUTER_MODE": "teleport"}, `DIONYSIA_ROUTER_MODE="teleport" (--mode)`},
		{[]string{"api"}, map[string]string{"DIONYSIA_PUBLIC_RTMP_PORT": "x"}, `DIONYSIA_PUBLIC_RTMP_PORT="x": not a port number`},
		{[]string{"api"}, map[string]string{"DIONYSIA_API_ADDR": "8080"}, `DIONYSIA_API_ADDR="8080" (--addr): must be host:port`},
		{[]string{"api"}, map[string]string{"DIONYSIA_PLAYBACK_KEYS": "k1:short"}, "DIONYSIA_PLAYBACK_KEYS"},
		{[]string{"api"}, map[string]string{"DIONYSIA_WEBHOOK_DISABLE_AFTER": "-1"}, `DIONYSIA_WEBHOOK_DISABLE_AFTER="-1" (--webhook-disable-after): must be between 1 and 100000`},
		{[]string{"api"}, map[string]string{"DIONYSIA_WEBHOOK_BACKOFF_BASE": "2h", "DIONYSIA_WEBHOOK_BACKOFF_MAX": "1h30m"}, `DIONYSIA_WEBHOOK_BACKOFF_BASE="2h0m0s" (--webhook-backoff-base): must be between 1ms and 1h0m0s`},
		{[]string{"api"}, map[string]string{"DIONYSIA_ALLOW_PRIVATE_TARGETS": "maybe"}, `DIONYSIA_ALLOW_PRIVATE_TARGETS="maybe"`},
		{[]string{"streams", "list"}, map[string]string{"DIONYSIA_LOG_LEVEL": "loud"}, `DIONYSIA_LOG_LEVEL="loud" (--log-level)`},
		{[]string{"router", "--cache-ttl", "soon"}, nil, `invalid argument "soon" for "--cache-ttl" flag: not a duration`},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		root := cli.NewRoot(cli.Env{Stdout: &out, Stderr: &errOut,
			LookupEnv: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }})
		root.SetArgs(tc.args)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := root.ExecuteContext(ctx)
		cancel()
		require.ErrorContains(t, err, tc.want, "dionysia %v with %v", tc.args, tc.env)
		require.Empty(t, errOut.String(), "nothing started, nothing logged")
	}
}

func TestSessionAndWorkerCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var s apiv1.Stream
	require.NoError(t, json.Unmarshal([]byte(b.ok("streams", "create", "--name", "idle", "-o", "json")), &s))
	require.Nil(t, s.Session)

	out := b.ok("streams", "sessions", s.ID.String())
	require.Regexp(t, `^ID\s+STATUS\s+STARTED\s+ENDED\s+END REASON\s+EDGE\s+PROTOCOL\s+SOURCE\s+WORKER\n$`, out)
	require.Equal(t, "[]\n", b.ok("streams", "sessions", s.ID.String(), "-o", "json"))

	// This API runs without the edge and playback secrets.
	_, _, err := b.run("", "streams", "disconnect", s.ID.String())
	require.ErrorContains(t, err, "503 Service Unavailable: edge integration not configured")
	_, _, err = b.run("", "streams", "playback-url", s.ID.String(), "--ttl", "10m")
	require.ErrorContains(t, err, "503 Service Unavailable: playback signing not configured")

	out = b.ok("workers", "list")
	require.Regexp(t, `^ID\s+HOST\s+CLASS\s+STATE\s+LOAD/CAPACITY\s+ENCODERS\s+VERSION\s+LAST SEEN\n`, out)
}

// fileStore is a file object store in a temporary directory.
func fileStore(t testing.TB) storage.Store {
	t.Helper()
	st, err := storage.Open(context.Background(), "file://"+t.TempDir(), storage.Options{})
	require.NoError(t, err)
	return st
}
