package mediamtx

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseLine(t *testing.T) {
	cases := []struct {
		raw   string
		level slog.Level
		msg   string
	}{
		{`{"timestamp":"2026-11-21T01:05:03Z","level":"INF","message":"[RTMP] [conn 1.2.3.4:5] opened"}`, slog.LevelInfo, "[RTMP] [conn 1.2.3.4:5] opened"},
		{`{"timestamp":"2026-11-21T01:05:03Z","level":"WAR","message":"w"}`, slog.LevelWarn, "w"},
		{`{"timestamp":"2026-11-21T01:05:03Z","level":"ERR","message":"e"}`, slog.LevelError, "e"},
		{`{"timestamp":"2026-11-21T01:05:03Z","level":"DEB","message":"d"}`, slog.LevelDebug, "d"},
		{`2026/11/21 01:05:03 WAR [SRT] something`, slog.LevelWarn, "[SRT] something"},
		{`ERR: at least one between 'a' or 'b' must be filled`, slog.LevelError, "at least one between 'a' or 'b' must be filled"},
		{"panic: runtime error\r\n", slog.LevelInfo, "panic: runtime error"},
		{`{"not":"a log line"}`, slog.LevelInfo, `{"not":"a log line"}`},
	}
	for _, tc := range cases {
		l := ParseLine(tc.raw)
		require.Equal(t, tc.level, l.Level, tc.raw)
		require.Equal(t, tc.msg, l.Message, tc.raw)
	}
}

func TestRedact(t *testing.T) {
	const key = "sk_abcDEF123-xyz"
	lines := []string{
		"[path live/" + key + "] stream is available and online, 2 tracks (H264, MPEG-4 Audio)",
		"[RTMP] [conn 127.0.0.1:37776] is publishing to path 'live/" + key + "'",
		"[SRT] [conn 127.0.0.1:1] closed: someone is already publishing to path 'live/" + key + "'",
		"[RTMP] [conn 127.0.0.1:1] closed: invalid path live/" + key + "?user=x",
		"[SRT] [conn 127.0.0.1:1] closed: bad streamid=publish:live/" + key + ":u:p",
		"[path other/" + key + "] destroyed",
	}
	for _, l := range lines {
		got := Redact(l)
		require.NotContains(t, got, key, l)
		require.Contains(t, got, "<redacted>", l)
	}
	require.Equal(t, "[RTMP] [conn 127.0.0.1:1] opened", Redact("[RTMP] [conn 127.0.0.1:1] opened"))
}

func FuzzRedact(f *testing.F) {
	f.Add("[path live/sk_1] x", "sk_1")
	f.Add("publishing to path 'live/abc'", "abc")
	f.Fuzz(func(t *testing.T, msg, key string) {
		out := Redact(msg)
		// Whatever the input, a key that follows live/ never survives.
		if key != "" && !strings.ContainsAny(key, " '\"[](),;\t\n\r\v\f") && strings.Contains(msg, "live/"+key) {
			require.NotContains(t, out, "live/"+key)
		}
	})
}

func TestPublishingAndClosed(t *testing.T) {
	conn, path, ok := Publishing("[RTMP] [conn 127.0.0.1:37776] is publishing to path 'live/sk_1', 2 tracks (H264, MPEG-4 Audio)")
	require.True(t, ok)
	require.Equal(t, "[RTMP] [conn 127.0.0.1:37776]", conn)
	require.Equal(t, "live/sk_1", path)

	conn, reason, ok := Closed("[RTMP] [conn 127.0.0.1:37776] closed: EOF")
	require.True(t, ok)
	require.Equal(t, "[RTMP] [conn 127.0.0.1:37776]", conn)
	require.Equal(t, "EOF", reason)

	conn, reason, ok = Closed("[RTSP] [session 9b3f] destroyed: torn down by 127.0.0.1:5")
	require.True(t, ok)
	require.Equal(t, "[RTSP] [session 9b3f]", conn)
	require.Equal(t, "torn down by 127.0.0.1:5", reason)

	_, _, ok = Closed("[RTMP] [conn 127.0.0.1:1] opened")
	require.False(t, ok)
	_, _, ok = Publishing("[path live/x] stream is available")
	require.False(t, ok)
}
