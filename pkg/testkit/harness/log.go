package harness

import (
	"bytes"
	"encoding/json"
	"os"
	"time"
)

// LogEvent is one JSON log line of a platform process (DIONYSIA_LOG_FORMAT=json).
type LogEvent struct {
	Time   time.Time
	Msg    string
	Fields map[string]any
}

// ReadLog parses a process's JSON log; lines that are not JSON are skipped.
func ReadLog(path string) ([]LogEvent, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []LogEvent
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		ts, _ := m["time"].(string)
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		msg, _ := m["msg"].(string)
		out = append(out, LogEvent{Time: t, Msg: msg, Fields: m})
	}
	return out, nil
}

// Find returns the value of key anywhere in the event's fields (groups
// included) as a string.
func (e LogEvent) Find(key string) string {
	var walk func(m map[string]any) string
	walk = func(m map[string]any) string {
		if v, ok := m[key]; ok {
			if s, ok := v.(string); ok {
				return s
			}
		}
		for _, v := range m {
			if sub, ok := v.(map[string]any); ok {
				if s := walk(sub); s != "" {
					return s
				}
			}
		}
		return ""
	}
	return walk(e.Fields)
}
