package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/cli"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/stretchr/testify/require"
)

func TestEventsCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var s apiv1.Stream
	require.NoError(t, json.Unmarshal([]byte(b.ok("streams", "create", "--name", "evented", "-o", "json")), &s))

	out := b.ok("events", "list")
	require.Regexp(t, `^ID\s+CREATED\s+TYPE\s+STREAM\s+DETAIL\n\S+\s+\S+\s+stream\.created\s+`+s.ID.String()+`\s+name=evented status=idle\n$`, out)
	require.Regexp(t, `^ID\s+CREATED\s+TYPE\s+STREAM\s+DETAIL\n$`, b.ok("events", "list", "--type", "session."))
	var events []apiv1.Event
	require.NoError(t, json.Unmarshal([]byte(b.ok("events", "list", "--stream", s.ID.String(), "-o", "json")), &events))
	require.Len(t, events, 1)
	require.Equal(t, event.StreamCreated, events[0].Type)
	require.NotContains(t, string(events[0].Data), s.StreamKey)

	out = b.ok("events", "get", events[0].ID.String())
	require.Contains(t, out, "stream.created")
	require.Contains(t, out, `"name": "evented"`)
	var one apiv1.Event
	require.NoError(t, json.Unmarshal([]byte(b.ok("events", "get", events[0].ID.String(), "-o", "json")), &one))
	require.Equal(t, events[0].ID, one.ID)

	_, _, err := b.run("", "events", "list", "--type", "NOPE")
	require.ErrorContains(t, err, "400 Bad Request")
	require.ErrorContains(t, err, "type")
	_, _, err = b.run("", "events", "get", "nope")
	require.ErrorContains(t, err, "404 Not Found")
}

func TestEventsFollow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// follow runs the CLI until its context is cancelled (Ctrl-C).
	follow := func(ctx context.Context, out *testkit.LogBuffer, args ...string) chan error {
		root := cli.NewRoot(cli.Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: out,
			LookupEnv: func(k string) (string, bool) { v, ok := b.env[k]; return v, ok }})
		root.SetArgs(args)
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		return done
	}
	appendEvent := func(typ string) {
		t.Helper()
		_, err := b.st.AppendEvent(ctx, store.NewEvent{Type: typ, Data: map[string]string{"id": "w-" + typ}})
		require.NoError(t, err)
	}
	lines := func(out *testkit.LogBuffer) []string { return strings.Split(strings.TrimSpace(out.String()), "\n") }

	// Started on an empty log, it waits for the first event, then follows.
	out := &testkit.LogBuffer{}
	followCtx, stop := context.WithCancel(ctx)
	done := follow(followCtx, out, "events", "list", "-f", "--interval", "20ms", "--type", "worker.")
	appendEvent(event.WorkerUp)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "worker=w-worker.up") }, time.Minute, 20*time.Millisecond)
	appendEvent(event.StreamLive) // filtered out
	appendEvent(event.WorkerLost)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "worker=w-worker.lost") }, time.Minute, 20*time.Millisecond)
	stop()
	require.NoError(t, <-done, "interrupting a follow is not an error")
	got := lines(out)
	require.Len(t, got, 3, out.String())
	require.Regexp(t, `^ID\s+CREATED\s+TYPE`, got[0])
	require.Contains(t, got[1], "worker.up")
	require.Contains(t, got[2], "worker.lost")
	require.NotContains(t, out.String(), "stream.live")

	// JSON Lines, starting with the latest events, oldest first.
	out = &testkit.LogBuffer{}
	jsonCtx, stopJSON := context.WithCancel(ctx)
	defer stopJSON()
	done = follow(jsonCtx, out, "events", "list", "-f", "--interval", "20ms", "--limit", "2", "-o", "json")
	require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") == 2 }, time.Minute, 20*time.Millisecond)
	appendEvent(event.WorkerUp)
	require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") == 3 }, time.Minute, 20*time.Millisecond)
	stopJSON()
	require.NoError(t, <-done)
	var types []string
	for _, l := range lines(out) {
		var e apiv1.Event
		require.NoError(t, json.Unmarshal([]byte(l), &e), l)
		types = append(types, e.Type)
	}
	require.Equal(t, []string{event.StreamLive, event.WorkerLost, event.WorkerUp}, types)
}
