package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// streamHealth is the stream's health JSON (docs/health.md).
type streamHealth struct {
	Status string `json:"status"`
	Source struct {
		FrameRate         float64 `json:"frame_rate"`
		KeyframeIntervalS float64 `json:"keyframe_interval_s"`
		BitrateKbps       int     `json:"bitrate_kbps"`
		BFrames           bool    `json:"b_frames"`
		Audio             string  `json:"audio"`
		Width             int     `json:"width"`
		Height            int     `json:"height"`
	} `json:"source"`
	Output struct {
		RealtimeFactor float64 `json:"realtime_factor"`
		DroppedFrames  int     `json:"dropped_frames"`
		SegmentsLate   int     `json:"segments_late"`
	} `json:"output"`
	Warnings []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"warnings"`
	UpdatedAt *time.Time `json:"updated_at"`
}

func (h streamHealth) warning(code string) string {
	for _, w := range h.Warnings {
		if w.Code == code {
			return w.Message
		}
	}
	return ""
}

func (p *Platform) health(t testing.TB, id string) (string, streamHealth) {
	t.Helper()
	var s struct {
		Status string       `json:"status"`
		Health streamHealth `json:"health"`
	}
	require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodGet, "/api/v1/streams/"+id, "", &s))
	return s.Status, s.Health
}

// healthChanges lists the stream's stream.health_changed events, oldest
// first, as "previous→status".
func (p *Platform) healthChanges(t testing.TB, id string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DatabaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT data FROM events WHERE type = 'stream.health_changed' AND stream_id = $1 ORDER BY seq`, id)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var raw []byte
		require.NoError(t, rows.Scan(&raw))
		var d struct {
			StreamID string       `json:"stream_id"`
			Previous string       `json:"previous"`
			Status   string       `json:"status"`
			Health   streamHealth `json:"health"`
		}
		require.NoError(t, json.Unmarshal(raw, &d))
		require.Equal(t, id, d.StreamID)
		require.Equal(t, d.Status, d.Health.Status)
		out = append(out, d.Previous+"→"+d.Status)
	}
	require.NoError(t, rows.Err())
	return out
}

// healthProfile is one light rung, so the machine's load never makes the
// worker slower than real time.
const healthProfile = `{"name":"health","description":"stream health suite ladder","renditions":[
 {"name":"360p","width":640,"height":360,"video_bitrate_kbps":600,"frame_rate":30,"preset":"superfast"}],
 "audio":{"codec":"aac","bitrate_kbps":96,"channels":2,"sample_rate":48000}}`

// publishPattern publishes a generated 640x360@30 pattern in real time over
// RTMP with a keyframe every gop frames, with or without a tone.
func publishPattern(t testing.TB, logDir, name, url string, gop string, audio bool) *Proc {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "warning", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"}
	if audio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-c:a", "aac", "-b:a", "96k")
	}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", gop, "-keyint_min", gop,
		"-sc_threshold", "0", "-pix_fmt", "yuv420p", "-b:v", "800k", "-f", "flv", url)
	return StartProc(t, logDir, name, nil, "ffmpeg", args...)
}

// TestStreamHealth: the worker's measurements reach the API and explain
// what is wrong with a source: a long keyframe interval, a missing audio
// track, a publisher that stalls while keeping its connection.
func TestStreamHealth(t *testing.T) {
	p := Start(t, Options{Workers: 1})
	require.Equal(t, http.StatusCreated, p.APIRequest(t, http.MethodPost, "/api/v1/profiles", healthProfile, nil))

	waitLive := func(t *testing.T, id string) time.Time {
		Eventually(t, 90*time.Second, 100*time.Millisecond, "stream live", func() bool {
			status, _ := p.health(t, id)
			return status == "live"
		})
		return time.Now()
	}
	waitIdle := func(t *testing.T, id string) {
		Eventually(t, 90*time.Second, 200*time.Millisecond, "stream idle", func() bool {
			status, _ := p.health(t, id)
			return status == "idle"
		})
	}

	for _, tc := range []struct {
		name, gop string
		audio     bool
		// 8 s: OBS's "auto" keyframe setting; 10 s with audio: the edge
		// sends the worker audio at once and video from the next keyframe
		// (issue 17).
		want  float64
		codes []string
	}{
		{"8 s keyframes, no audio", "240", false, 8, []string{"keyframe_interval_too_long", "audio_missing"}},
		{"10 s keyframes, audio", "300", true, 10, []string{"keyframe_interval_too_long"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := p.createStream(t, `{"name":"health-gop`+tc.gop+`","profile":"health"}`)
			pub := publishPattern(t, p.LogDir, "ffmpeg-gop"+tc.gop, st.Ingest.RTMP, tc.gop, tc.audio)
			live := waitLive(t, st.ID)
			var h streamHealth
			took := map[string]time.Duration{}
			Eventually(t, 90*time.Second, 200*time.Millisecond, strings.Join(tc.codes, " and "), func() bool {
				_, h = p.health(t, st.ID)
				for _, code := range tc.codes {
					if _, seen := took[code]; !seen && h.warning(code) != "" {
						took[code] = time.Since(live)
						t.Logf("%s %s after going live: %q", code, took[code].Round(100*time.Millisecond), h.warning(code))
					}
				}
				return len(took) == len(tc.codes)
			})
			require.Equal(t, "degraded", h.Status)
			require.Equal(t, [2]int{640, 360}, [2]int{h.Source.Width, h.Source.Height})
			// The exact interval is known once two keyframes arrived.
			Eventually(t, 2*time.Duration(tc.want)*time.Second+30*time.Second, 200*time.Millisecond, "the measured interval", func() bool {
				_, h = p.health(t, st.ID)
				return strings.HasPrefix(h.warning("keyframe_interval_too_long"), "the source sends a keyframe every")
			})
			t.Logf("measured %.0f s after going live: %+v", time.Since(live).Seconds(), h)
			require.Equal(t, map[bool]string{true: "present", false: "absent"}[tc.audio], h.Source.Audio)
			require.Equal(t, tc.codes, warningsBesidesLoad(t, h))
			require.InDelta(t, tc.want, h.Source.KeyframeIntervalS, 0.1)
			require.InDelta(t, 30, h.Source.FrameRate, 1.5)
			require.Contains(t, h.warning("keyframe_interval_too_long"), "set the encoder's keyframe interval to 2 s")
			require.Contains(t, p.CLI(t, "streams", "get", st.ID), "warning keyframe_interval_too_long")
			// Issue 11's target is 15 s from going live for an 8 s interval;
			// the figures are logged above, not asserted (a loaded machine
			// dispatches later).
			pub.Stop(5 * time.Second)
			waitIdle(t, st.ID)
			_, h = p.health(t, st.ID)
			require.Equal(t, "unknown", h.Status, "an idle stream's health is unknown")
		})
	}

	t.Run("a stalled publisher starves and recovers", func(t *testing.T) {
		st := p.createStream(t, `{"name":"health-stall","profile":"health"}`)
		pub := publishPattern(t, p.LogDir, "ffmpeg-stall", st.Ingest.RTMP, "60", true)
		waitLive(t, st.ID)
		var h streamHealth
		Eventually(t, 90*time.Second, 200*time.Millisecond, "healthy", func() bool {
			_, h = p.health(t, st.ID)
			ok := h.Status == "healthy" || (h.Status == "degraded" && len(warningsBesidesLoad(t, h)) == 0)
			return ok && h.Source.Audio != "" // the audio state is known a few seconds in
		})
		t.Logf("healthy: %+v", h)
		require.Equal(t, "present", h.Source.Audio)
		var doc struct {
			Session struct {
				Source struct {
					FrameRate float64 `json:"frame_rate"`
				} `json:"source"`
			} `json:"session"`
		}
		require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodGet, "/api/v1/streams/"+st.ID, "", &doc))
		require.InDelta(t, 30, doc.Session.Source.FrameRate, 1.5, "the session keeps the measured frame rate")

		// SIGSTOP keeps the TCP connection open: the edge still sees a
		// publisher, the worker sees no media.
		require.NoError(t, syscall.Kill(pub.PID(), syscall.SIGSTOP))
		stopped := time.Now()
		resumed := false
		defer func() {
			if !resumed {
				_ = syscall.Kill(pub.PID(), syscall.SIGCONT)
			}
		}()
		starving := Eventually(t, 30*time.Second, 100*time.Millisecond, "starving", func() bool {
			_, h = p.health(t, st.ID)
			return h.Status == "starving"
		})
		t.Logf("starving %s after the publisher stopped sending: %q", starving.Round(100*time.Millisecond), h.warning("source_stalled"))
		require.NotEmpty(t, h.warning("source_stalled"))
		time.Sleep(time.Until(stopped.Add(5 * time.Second)))
		require.NoError(t, syscall.Kill(pub.PID(), syscall.SIGCONT))
		resumed = true
		back := Eventually(t, 60*time.Second, 100*time.Millisecond, "healthy or degraded again", func() bool {
			_, h = p.health(t, st.ID)
			return h.Status == "healthy" || h.Status == "degraded"
		})
		t.Logf("%s %s after the publisher resumed: %+v", h.Status, back.Round(100*time.Millisecond), h)
		status, _ := p.health(t, st.ID)
		require.Equal(t, "live", status, "the session went on")

		var changes []string
		Eventually(t, 30*time.Second, 200*time.Millisecond, "the stream.health_changed events", func() bool {
			changes = p.healthChanges(t, st.ID)
			i := slices.IndexFunc(changes, func(c string) bool { return strings.HasSuffix(c, "→starving") })
			return i >= 0 && slices.ContainsFunc(changes[i+1:], func(c string) bool { return strings.HasPrefix(c, "starving→") })
		})
		t.Logf("stream.health_changed: %v", changes)
	})
}

// warningsBesidesLoad returns the codes of h's warnings but
// transcode_slower_than_realtime: true of a test worker on a loaded 2-core
// machine, and not what these tests are about (the logged health shows it).
func warningsBesidesLoad(t testing.TB, h streamHealth) []string {
	t.Helper()
	var codes []string
	for _, w := range h.Warnings {
		if w.Code == "transcode_slower_than_realtime" {
			continue
		}
		codes = append(codes, w.Code)
	}
	return codes
}
