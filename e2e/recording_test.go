package e2e

import (
	"bytes"
	"image/jpeg"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/stretchr/testify/require"
)

// asset is the part of GET /api/v1/assets/{id} the suite reads.
type asset struct {
	ID            string   `json:"id"`
	StreamID      string   `json:"stream_id"`
	SessionIDs    []string `json:"session_ids"`
	Status        string   `json:"status"`
	DurationS     float64  `json:"duration_s"`
	SizeBytes     int64    `json:"size_bytes"`
	LostS         float64  `json:"lost_s"`
	FailureReason *string  `json:"failure_reason"`
	Renditions    []struct {
		Name string `json:"name"`
	} `json:"renditions"`
	Playback struct {
		HLS  string `json:"hls"`
		DASH string `json:"dash"`
		MP4  string `json:"mp4"`
	} `json:"playback"`
	Thumbnail string     `json:"thumbnail"`
	ReadyAt   *time.Time `json:"ready_at"`
}

// assets lists a stream's assets.
func (p *Platform) assets(t testing.TB, streamID string) []asset {
	t.Helper()
	var list struct {
		Data []asset `json:"data"`
	}
	require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodGet, "/api/v1/assets?stream_id="+streamID, "", &list))
	return list.Data
}

// abs makes a playback URL the API gave absolute (on the router).
func (p *Platform) abs(u string) string {
	if strings.HasPrefix(u, "/") {
		return p.RouterURL + u
	}
	return u
}

// eventTypes lists the types of a stream's events, oldest first.
func (p *Platform) eventTypes(t testing.TB, streamID string) []string {
	t.Helper()
	var list struct {
		Data []struct {
			Type string `json:"type"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodGet, "/api/v1/events?stream_id="+streamID+"&limit=200", "", &list))
	var types []string
	for i := len(list.Data) - 1; i >= 0; i-- {
		types = append(types, list.Data[i].Type)
	}
	return types
}

// jpegWidth decodes a JPEG and returns its width.
func jpegWidth(t testing.TB, b []byte) int {
	t.Helper()
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	require.NoError(t, err, "not a JPEG")
	return cfg.Width
}

// probeDuration is ffprobe's format duration of a URL.
func probeDuration(t testing.TB, url string) float64 {
	t.Helper()
	out := Run(t, 60*time.Second, nil, "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url)
	d, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	require.NoError(t, err, "ffprobe duration of %s: %q", url, out)
	return d
}

// TestRecording is issue 12's acceptance, once per store: 60 s of the clip
// published with one publisher reconnect and one kill -9 of the serving
// worker become exactly one asset, which plays as VOD (HLS, DASH, MP4)
// through the router. With S3 (SeaweedFS) the store is also killed for
// 20 s while the stream records: live playback goes on, and the recording
// completes once the store is back.
func TestRecording(t *testing.T) {
	for _, backend := range []string{"file", "s3"} {
		t.Run(backend, func(t *testing.T) { testRecording(t, backend) })
	}
}

func testRecording(t *testing.T, backend string) {
	var s3 *testkit.S3Server
	var env []string
	if backend == "s3" {
		s3 = testkit.SeaweedFS(t)
		env = s3.Env()
	}
	p := Start(t, Options{Workers: 2, LeaseTTL: 2 * time.Second, Env: env})
	require.Equal(t, http.StatusCreated, p.APIRequest(t, http.MethodPost, "/api/v1/profiles", e2eProfile, nil))
	st := p.createStream(t, `{"name":"rec-`+backend+`","profile":"e2e","recording":{"mode":"automatic"},"thumbnail_interval_s":2}`)
	idle := p.createStream(t, `{"name":"never-live-`+backend+`","profile":"e2e"}`)
	live := p.RouterURL + "/live/" + st.ID + "/"
	media := live + "360p/index.m3u8"

	// Publishing: two stretches of the clip with a reconnect between them.
	// What was published is counted from the moment the API saw the
	// publisher (the stream went live) to the moment it was stopped.
	Clip(t)
	var published time.Duration
	publisher := PublishRTMP(t, p.LogDir, "ffmpeg-rtmp", st.Ingest.RTMP)
	Eventually(t, 60*time.Second, 100*time.Millisecond, "stream live", func() bool {
		s := p.getStream(t, st.ID)
		return s.Status == "live" && s.Session != nil
	})
	pubStart := time.Now()
	session := p.getStream(t, st.ID).Session.ID
	Eventually(t, 60*time.Second, 200*time.Millisecond, "live playlist", func() bool { return Get(t, media).Status == http.StatusOK })

	t.Run("live thumbnail", func(t *testing.T) {
		u := live + "thumbnail.jpg?width=320"
		var first []byte
		Eventually(t, 60*time.Second, 200*time.Millisecond, "a live thumbnail", func() bool {
			f := Get(t, u)
			first = f.Body
			return f.Status == http.StatusOK && f.ContentType == "image/jpeg"
		})
		require.Equal(t, 320, jpegWidth(t, first))
		took := Eventually(t, 30*time.Second, 500*time.Millisecond, "the thumbnail changes", func() bool {
			f := Get(t, u)
			return f.Status == http.StatusOK && !bytes.Equal(f.Body, first)
		})
		t.Logf("THUMBNAIL: %d-byte JPEG 320 px wide; a new one %s later", len(first), took.Round(time.Millisecond))
		f := Get(t, p.RouterURL+"/live/"+idle.ID+"/thumbnail.jpg")
		require.Equal(t, http.StatusNotFound, f.Status, "an idle stream has no thumbnail")
		require.Equal(t, "application/problem+json", f.ContentType)
	})

	if s3 != nil {
		t.Run("store outage leaves live playback alone", func(t *testing.T) {
			before := segmentNumber(lastURI(Get(t, media).Body))
			s3.Kill()
			down := time.Now()
			last := before
			for time.Since(down) < 20*time.Second {
				f := Get(t, media)
				require.Equal(t, http.StatusOK, f.Status, "live playlist while the store is down")
				seg := lastURI(f.Body)
				require.Equal(t, http.StatusOK, Get(t, strings.TrimSuffix(media, "index.m3u8")+seg).Status, "live segment while the store is down")
				last = segmentNumber(seg)
				time.Sleep(time.Second)
			}
			require.Greater(t, last, before+5, "the live playlist advanced while the store was down")
			require.NoError(t, s3.Start(t.Context()))
			t.Logf("STORE OUTAGE: SeaweedFS down %s (until it served again); live segments %d -> %d, all served",
				time.Since(down).Round(time.Millisecond), before, last)
		})
	}

	// The publisher reconnects 25 s into the stream, within the grace window.
	time.Sleep(time.Until(pubStart.Add(25 * time.Second)))
	publisher.Stop(5 * time.Second)
	published += time.Since(pubStart)
	Eventually(t, 60*time.Second, 100*time.Millisecond, "stream idle", func() bool { return p.getStream(t, st.ID).Status == "idle" })
	publisher = PublishRTMP(t, p.LogDir, "ffmpeg-rtmp-again", st.Ingest.RTMP)
	Eventually(t, 60*time.Second, 100*time.Millisecond, "stream live again", func() bool { return p.getStream(t, st.ID).Status == "live" })
	pubStart = time.Now()
	require.Equal(t, session, p.getStream(t, st.ID).Session.ID, "the reconnect continues the session")

	// 10 s later the serving worker dies.
	time.Sleep(time.Until(pubStart.Add(10 * time.Second)))
	victim, survivor := p.ownerAndSurvivor(t, st.ID)
	victim.Proc.Kill()
	Eventually(t, 60*time.Second, 100*time.Millisecond, "fresh segments from the surviving worker", func() bool {
		f := Get(t, media)
		return f.Status == http.StatusOK && f.Header.Get("X-Dionysia-Worker") == survivor.ID
	})
	var failovers []failoverEvent
	Eventually(t, 30*time.Second, 200*time.Millisecond, "a stream.failover event", func() bool {
		failovers = p.failovers(t, st.ID)
		return len(failovers) > 0
	})
	require.NotNil(t, failovers[0].Data.GapMs)
	gap := time.Duration(*failovers[0].Data.GapMs) * time.Millisecond

	// 60 s published in all.
	time.Sleep(time.Until(pubStart.Add(60*time.Second - published)))
	publisher.Stop(5 * time.Second)
	published += time.Since(pubStart)

	var a asset
	took := Eventually(t, 3*time.Minute, 250*time.Millisecond, "the asset is ready", func() bool {
		list := p.assets(t, st.ID)
		require.LessOrEqual(t, len(list), 1, "one session, one asset: %+v", list)
		if len(list) == 1 {
			a = list[0]
			require.NotEqual(t, "failed", a.Status, "recording failed: %v", a.FailureReason)
		}
		return a.Status == "ready"
	})
	t.Logf("RECORDING (%s): asset %s ready %s after the publisher stopped (target 10s, %s); it waits out the %s reconnect grace first",
		backend, a.ID, took.Round(time.Millisecond), map[bool]string{true: "met", false: "MISSED"}[took <= 10*time.Second], "3s")
	require.Equal(t, []string{session}, a.SessionIDs)
	want := (published - gap).Seconds()
	t.Logf("RECORDING (%s): duration %.2f s; published %.2f s minus the %.2f s failover gap = %.2f s (off by %.2f s, target 1 s); lost %.2f s; %d bytes; %d renditions",
		backend, a.DurationS, published.Seconds(), gap.Seconds(), want, a.DurationS-want, a.LostS, a.SizeBytes, len(a.Renditions))
	// The failover gap the API reports runs from the dead worker's last
	// heartbeat; the media lost is that plus the segment in flight and the
	// survivor's start-up, so the bound is loose; the figure is logged.
	require.InDelta(t, want, a.DurationS, 10, "recorded duration")
	require.Zero(t, a.LostS, "nothing was lost (the store outage only delayed uploads)")
	var one asset
	require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodGet, "/api/v1/assets/"+a.ID, "", &one))
	require.Equal(t, a.ID, one.ID)
	require.Contains(t, p.CLI(t, "assets", "list", "--stream", st.ID), a.ID)

	t.Run("VOD HLS and DASH through the router", func(t *testing.T) {
		files := WalkHLS(t, p.abs(a.Playback.HLS))
		var segments int
		for _, f := range files {
			require.Equal(t, http.StatusOK, f.Status, f.URL)
			require.Equal(t, WantContentType(f.URL), f.ContentType, f.URL)
			require.Contains(t, f.Header.Get("Cache-Control"), "immutable", f.URL)
			if strings.HasSuffix(f.URL, ".m4s") {
				segments++
			}
		}
		mediaPl := Get(t, strings.TrimSuffix(p.abs(a.Playback.HLS), "index.m3u8")+"360p/index.m3u8")
		require.Contains(t, string(mediaPl.Body), "#EXT-X-PLAYLIST-TYPE:VOD")
		require.Contains(t, string(mediaPl.Body), "#EXT-X-ENDLIST")
		require.Contains(t, string(mediaPl.Body), "#EXT-X-DISCONTINUITY", "the failover is a discontinuity")
		got := ffprobeStreams(t, p.abs(a.Playback.HLS))
		require.Contains(t, got, "h264 854x480")
		require.Contains(t, got, "h264 640x360")
		require.Contains(t, got, "aac 2ch 48000")
		mpd := Get(t, p.abs(a.Playback.DASH))
		require.Equal(t, http.StatusOK, mpd.Status)
		require.Equal(t, "application/dash+xml", mpd.ContentType)
		require.Contains(t, string(mpd.Body), `type="static"`)
		require.Contains(t, ffprobeStreams(t, p.abs(a.Playback.DASH)), "h264 854x480")
		t.Logf("VOD: %d files (%d segments) through the router, all 200, immutable", len(files), segments)
	})

	t.Run("VOD MP4", func(t *testing.T) {
		u := p.abs(a.Playback.MP4)
		d := probeDuration(t, u)
		got := ffprobeStreams(t, u)
		t.Logf("MP4: ffprobe duration %.2f s (asset %.2f s), streams %v", d, a.DurationS, got)
		require.InDelta(t, a.DurationS, d, 1)
		require.Equal(t, []string{"h264 854x480", "aac 2ch 48000"}, got)
		req, err := http.NewRequest(http.MethodGet, u, nil)
		require.NoError(t, err)
		req.Header.Set("Range", "bytes=0-99")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusPartialContent, resp.StatusCode)
		require.Equal(t, "100", resp.Header.Get("Content-Length"))

		b := openChromium(t, u, 2*time.Minute)
		defer b.close()
		Eventually(t, 60*time.Second, 200*time.Millisecond, "the MP4 plays in Chromium", func() bool {
			v := b.video(t)
			return v.CurrentTime > 1 && v.Duration > 0
		})
		res := b.playToEnd(t, d-2, 60*time.Second)
		b.screenshot(t, p.LogDir, "chromium-mp4")
		t.Logf("MP4 in Chromium: reached %.2f of %.2f s (ended fired: %v)", res.PlayedTo, d, res.Ended)
	})

	for _, format := range []string{"hls", "dash"} {
		t.Run("VOD plays and seeks in "+format, func(t *testing.T) {
			b := openChromium(t, p.RouterURL+"/play/vod/"+a.ID+"?format="+format, 4*time.Minute)
			defer b.close()
			st, start := b.waitPlayed(t, 1, 60*time.Second)
			require.NotEqual(t, "error", st.State, "fatal player error: %v", st.Errors)
			require.GreaterOrEqual(t, start, 0.0, "the player never played")
			require.Less(t, start, 3.0, "VOD starts at the beginning")
			// 10 s and 50 s (the marks), but never into the last
			// 8 s: the recording is a few seconds shorter than what was
			// published, and a seek into its very end is playToEnd's case.
			v0 := b.video(t)
			marks := []float64{10, min(50, v0.Duration-8)}
			for _, to := range marks {
				r := b.seekAndPlay(t, to, 2, 60*time.Second)
				require.InDelta(t, to, r.Landed, 2.5, "seek to %.0f s", to)
			}
			v := b.video(t)
			end := b.playToEnd(t, v.Duration-3, 60*time.Second)
			b.screenshot(t, p.LogDir, "chromium-vod-"+format)
			t.Logf("VOD %s: started at %.2f s, seeks to %.1f and %.1f s played on, reached %.2f of %.2f s (ended fired: %v)",
				format, start, marks[0], marks[1], end.PlayedTo, v.Duration, end.Ended)
		})
	}

	t.Run("VOD thumbnail and poster", func(t *testing.T) {
		f := Get(t, p.RouterURL+"/vod/"+a.ID+"/thumbnail.jpg?time=30&width=160")
		require.Equal(t, http.StatusOK, f.Status)
		require.Equal(t, 160, jpegWidth(t, f.Body))
		require.NotEmpty(t, a.Thumbnail)
		f = Get(t, p.abs(a.Thumbnail))
		require.Equal(t, http.StatusOK, f.Status)
		jpegWidth(t, f.Body)
	})

	t.Run("delete removes the asset", func(t *testing.T) {
		seg := ""
		for _, f := range WalkHLS(t, p.abs(a.Playback.HLS)) {
			if strings.HasSuffix(f.URL, ".m4s") {
				seg = f.URL
				break
			}
		}
		require.NotEmpty(t, seg)
		code := p.APIRequest(t, http.MethodDelete, "/api/v1/assets/"+a.ID, "", nil)
		require.Contains(t, []int{http.StatusAccepted, http.StatusNoContent}, code)
		Eventually(t, 90*time.Second, 500*time.Millisecond, "the deleted asset's segment is gone", func() bool {
			return Get(t, seg).Status == http.StatusNotFound
		})
		var gone asset
		code = p.APIRequest(t, http.MethodGet, "/api/v1/assets/"+a.ID, "", &gone)
		require.True(t, code == http.StatusNotFound || gone.Status == "deleted", "GET after DELETE: %d %s", code, gone.Status)
		types := strings.Join(p.eventTypes(t, st.ID), " ")
		for _, want := range []string{"recording.started", "recording.ready", "asset.deleted"} {
			require.Contains(t, types, want)
		}
		require.Equal(t, 1, strings.Count(types, "recording.started"), types)
		require.Equal(t, 1, strings.Count(types, "recording.ready"), types)
	})
}

// TestDVR: a stream with a 2-minute DVR window offers that much history in
// its live playlists and MPD, and a viewer can seek 90 s back and play.
func TestDVR(t *testing.T) {
	// Two workers: after 100 s the serving one is killed, and the survivor
	// resumes the window from the recording.
	p := Start(t, Options{Workers: 2, LeaseTTL: 2 * time.Second})
	require.Equal(t, http.StatusCreated, p.APIRequest(t, http.MethodPost, "/api/v1/profiles", e2eProfile, nil))
	st := p.createStream(t, `{"name":"dvr","profile":"e2e","dvr_window_s":120,"recording":{"mode":"automatic"}}`)
	PublishRTMP(t, p.LogDir, "ffmpeg-rtmp", st.Ingest.RTMP)
	media := p.RouterURL + "/live/" + st.ID + "/360p/index.m3u8"
	history := func(body []byte) (seconds float64, discontinuities int, first string) {
		for _, l := range strings.Split(string(body), "\n") {
			if d, ok := strings.CutPrefix(l, "#EXTINF:"); ok {
				v, _ := strconv.ParseFloat(strings.TrimSuffix(strings.Split(d, ",")[0], ","), 64)
				seconds += v
			}
			if l == "#EXT-X-DISCONTINUITY" {
				discontinuities++
			}
			if first == "" && strings.HasSuffix(l, ".m4s") {
				first = l
			}
		}
		return seconds, discontinuities, first
	}
	var before float64
	took := Eventually(t, 4*time.Minute, time.Second, "100 s of history in the live playlist", func() bool {
		f := Get(t, media)
		if f.Status != http.StatusOK {
			return false
		}
		before, _, _ = history(f.Body)
		return before >= 100
	})
	t.Logf("DVR: the live playlist offered %.1f s of history %s after publishing", before, took.Round(time.Second))

	victim, survivor := p.ownerAndSurvivor(t, st.ID)
	victim.Proc.Kill()
	killed := time.Now()
	var after float64
	var disc int
	var oldest string
	var first time.Duration
	Eventually(t, 90*time.Second, 200*time.Millisecond, "the survivor's own segments after the history", func() bool {
		f := Get(t, media)
		if f.Status != http.StatusOK || f.Header.Get("X-Dionysia-Worker") != survivor.ID {
			return false
		}
		if first == 0 {
			first = time.Since(killed)
			h, _, _ := history(f.Body)
			t.Logf("DVR FAILOVER: the survivor's first playlist, %s after the kill, offers %.1f s of history (%.1f s before the kill)",
				first.Round(time.Millisecond), h, before)
			require.GreaterOrEqual(t, h, before-4, "the window is still complete after the failover (older segments from the store)")
		}
		after, disc, oldest = history(f.Body)
		return disc >= 1 // the failover is a discontinuity, then the survivor's own segments
	})
	t.Logf("DVR FAILOVER: %s after the kill the survivor's playlist offers %.1f s, its own segments after a discontinuity",
		time.Since(killed).Round(time.Millisecond), after)
	require.GreaterOrEqual(t, after, before-4, "the window is still complete after the failover (older segments from the store)")
	require.Equal(t, http.StatusOK, Get(t, strings.TrimSuffix(media, "index.m3u8")+oldest).Status, "the oldest listed segment is served")
	mpd := Get(t, p.RouterURL+"/live/"+st.ID+"/manifest.mpd")
	require.Equal(t, http.StatusOK, mpd.Status)
	require.Contains(t, string(mpd.Body), `timeShiftBufferDepth="PT2M"`)

	for _, format := range []string{"hls", "dash"} {
		t.Run("seek back 90 s in "+format, func(t *testing.T) {
			b := openChromium(t, p.RouterURL+"/play/"+st.ID+"?format="+format, 3*time.Minute)
			defer b.close()
			s, _ := b.waitPlayed(t, 1, 60*time.Second)
			require.NotEqual(t, "error", s.State, "fatal player error: %v", s.Errors)
			v := b.video(t)
			require.Len(t, v.Seekable, 2, "a live DVR stream is seekable")
			window := v.Seekable[1] - v.Seekable[0]
			require.GreaterOrEqual(t, window, 95.0, "seekable window %v", v.Seekable)
			r := b.seekAndPlay(t, v.CurrentTime-90, 3, 60*time.Second)
			b.screenshot(t, p.LogDir, "chromium-dvr-"+format)
			behind := b.video(t).Seekable[1] - r.PlayedTo
			t.Logf("DVR %s: seekable %.1f s; seeked from %.1f to %.1f, played to %.1f, %.1f s behind the live edge",
				format, window, v.CurrentTime, r.Landed, r.PlayedTo, behind)
			require.Greater(t, behind, 60.0, "the player stays in the past after a DVR seek")
		})
	}
}
