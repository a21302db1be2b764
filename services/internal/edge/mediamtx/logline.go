package mediamtx

import (
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
)

// Line is one parsed mediamtx log line.
type Line struct {
	Level   slog.Level
	Message string // as mediamtx wrote it: may contain stream keys, never log it as is
}

// ParseLine parses a line of mediamtx's structured (JSON) log, falling back to
// its plain format ("2006/01/02 15:04:05 INF message") and to the raw text at
// info level.
func ParseLine(raw string) Line {
	raw = strings.TrimRight(raw, "\r\n")
	if strings.HasPrefix(raw, "{") {
		var j struct {
			Level   string `json:"level"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(raw), &j); err == nil && j.Level != "" {
			return Line{Level: level(j.Level), Message: j.Message}
		}
	}
	// Fatal errors before the logger exists: "ERR: message".
	if msg, ok := strings.CutPrefix(raw, "ERR: "); ok {
		return Line{Level: slog.LevelError, Message: msg}
	}
	// Plain format: date, time, level, message.
	if f := strings.SplitN(raw, " ", 4); len(f) == 4 && isLevel(f[2]) {
		return Line{Level: level(f[2]), Message: f[3]}
	}
	return Line{Level: slog.LevelInfo, Message: raw}
}

func isLevel(s string) bool {
	switch s {
	case "DEB", "INF", "WAR", "ERR":
		return true
	}
	return false
}

func level(s string) slog.Level {
	switch s {
	case "DEB":
		return slog.LevelDebug
	case "WAR":
		return slog.LevelWarn
	case "ERR":
		return slog.LevelError
	}
	return slog.LevelInfo
}

var (
	// Every place mediamtx prints a path name: "[path NAME]", "path 'NAME'",
	// and any bare live/<key>.
	redactBracket = regexp.MustCompile(`\[path [^\]]*\]`)
	redactQuoted  = regexp.MustCompile(`path '[^']*'`)
	redactLive    = regexp.MustCompile(`live/[^\s'"\]\[,;)(]+`)
	redactStream  = regexp.MustCompile(`streamid=[^\s'"&]+`)
)

// Redact removes stream keys (path names) from a mediamtx log message.
func Redact(msg string) string {
	msg = redactBracket.ReplaceAllString(msg, "[path <redacted>]")
	msg = redactQuoted.ReplaceAllString(msg, "path '<redacted>'")
	msg = redactStream.ReplaceAllString(msg, "streamid=<redacted>")
	return redactLive.ReplaceAllString(msg, "live/<redacted>")
}

var (
	// "[RTMP] [conn 127.0.0.1:37776] is publishing to path 'live/KEY', ..."
	publishingRe = regexp.MustCompile(`^(\[[A-Za-z]+\] \[(?:conn|session) [^\]]+\]) is publishing to path '([^']+)'`)
	// "[RTMP] [conn 127.0.0.1:37776] closed: EOF", "[RTSP] [session x] destroyed: ..."
	closedRe = regexp.MustCompile(`^(\[[A-Za-z]+\] \[(?:conn|session) [^\]]+\]) (?:closed|destroyed): (.*)$`)
)

// Publishing reports whether msg says a connection started publishing, with
// the connection's log prefix (e.g. "[RTMP] [conn 127.0.0.1:37776]") and path.
func Publishing(msg string) (conn, path string, ok bool) {
	m := publishingRe.FindStringSubmatch(msg)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// Closed reports whether msg says a connection closed, with its log prefix and
// the close reason (e.g. "EOF", "terminated", "read tcp ...: i/o timeout").
func Closed(msg string) (conn, reason string, ok bool) {
	m := closedRe.FindStringSubmatch(msg)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}
