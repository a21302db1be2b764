package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// stream is the part of the API's stream JSON the suite reads.
type stream struct {
	ID        string `json:"id"`
	StreamKey string `json:"stream_key"`
	Status    string `json:"status"`
	Ingest    struct {
		RTMP string `json:"rtmp"`
		SRT  string `json:"srt"`
	} `json:"ingest"`
	Playback struct {
		HLS  string `json:"hls"`
		DASH string `json:"dash"`
	} `json:"playback"`
	Session *struct {
		ID        string  `json:"id"`
		Status    string  `json:"status"`
		Protocol  string  `json:"protocol"`
		WorkerID  *string `json:"worker_id"`
		EndReason *string `json:"end_reason"`
		Source    struct {
			VideoCodec string `json:"video_codec"`
			Width      int    `json:"width"`
			Height     int    `json:"height"`
		} `json:"source"`
	} `json:"session"`
}

// e2eProfile is a two-rung ladder a 2-core machine transcodes in real time
// from the 1080p60 clip, alongside everything else the suite runs.
const e2eProfile = `{"name":"e2e","description":"end-to-end suite ladder","renditions":[
 {"name":"480p","width":854,"height":480,"video_bitrate_kbps":1000,"frame_rate":30,"preset":"superfast"},
 {"name":"360p","width":640,"height":360,"video_bitrate_kbps":600,"frame_rate":30,"preset":"superfast"}],
 "audio":{"codec":"aac","bitrate_kbps":128,"channels":2,"sample_rate":48000}}`

func (p *Platform) getStream(t testing.TB, id string) stream {
	t.Helper()
	var s stream
	require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodGet, "/api/v1/streams/"+id, "", &s))
	return s
}

func (p *Platform) createStream(t testing.TB, body string) stream {
	t.Helper()
	var s stream
	require.Equal(t, http.StatusCreated, p.APIRequest(t, http.MethodPost, "/api/v1/streams", body, &s))
	return s
}

// ffprobeStreams runs ffprobe on a URL and returns "codec WxH" for video and
// "codec Nch RATE" for audio streams.
func ffprobeStreams(t testing.TB, url string) []string {
	t.Helper()
	out := Run(t, 60*time.Second, nil, "ffprobe", "-v", "error", "-rw_timeout", "10000000",
		"-show_entries", "stream=codec_type,codec_name,profile,width,height,channels,sample_rate", "-of", "json", url)
	var res struct {
		Streams []struct {
			CodecType  string `json:"codec_type"`
			CodecName  string `json:"codec_name"`
			Width      int    `json:"width"`
			Height     int    `json:"height"`
			Channels   int    `json:"channels"`
			SampleRate string `json:"sample_rate"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res), out)
	var got []string
	for _, s := range res.Streams {
		switch s.CodecType {
		case "video":
			got = append(got, fmt.Sprintf("%s %dx%d", s.CodecName, s.Width, s.Height))
		case "audio":
			got = append(got, fmt.Sprintf("%s %dch %s", s.CodecName, s.Channels, s.SampleRate))
		}
	}
	return got
}

func TestPlatform(t *testing.T) {
	p := Start(t, Options{Workers: 2, LeaseTTL: 2 * time.Second})
	require.Equal(t, http.StatusCreated, p.APIRequest(t, http.MethodPost, "/api/v1/profiles", e2eProfile, nil))
	st := p.createStream(t, `{"name":"e2e-rtmp","profile":"e2e"}`)
	hlsURL := p.RouterURL + "/live/" + st.ID + "/index.m3u8"
	dashURL := p.RouterURL + "/live/" + st.ID + "/manifest.mpd"
	// Processes that outlive a subtest belong to the parent test.
	publisher := PublishRTMP(t, p.LogDir, "ffmpeg-rtmp", st.Ingest.RTMP)

	t.Run("RTMP publish goes live", func(t *testing.T) {
		took := Eventually(t, 60*time.Second, 100*time.Millisecond, "stream live", func() bool {
			s := p.getStream(t, st.ID)
			return s.Status == "live" && s.Session != nil && s.Session.Source.Width > 0
		})
		s := p.getStream(t, st.ID)
		t.Logf("live %s after publishing: session %s over %s, source %s %dx%d", took.Round(time.Millisecond),
			s.Session.ID, s.Session.Protocol, s.Session.Source.VideoCodec, s.Session.Source.Width, s.Session.Source.Height)
		require.Equal(t, "rtmp", s.Session.Protocol)
		require.Equal(t, 1920, s.Session.Source.Width)
		require.Equal(t, 1080, s.Session.Source.Height)
		out := p.CLI(t, "streams", "get", st.ID)
		require.Contains(t, out, "live")
	})

	t.Run("router serves the HLS tree", func(t *testing.T) {
		took := Eventually(t, 60*time.Second, 200*time.Millisecond, "multivariant playlist through the router", func() bool {
			return Get(t, hlsURL).Status == http.StatusOK
		})
		t.Logf("multivariant playlist served %s after going live", took.Round(time.Millisecond))
		files := WalkHLS(t, hlsURL)
		var segments int
		for _, f := range files {
			require.Equal(t, http.StatusOK, f.Status, f.URL)
			require.Equal(t, WantContentType(f.URL), f.ContentType, f.URL)
			if strings.HasSuffix(f.URL, ".m4s") {
				segments++
			}
		}
		t.Logf("fetched %d files (%d segments) through the router, all 200 with the right Content-Type", len(files), segments)
		require.Positive(t, segments)
		got := ffprobeStreams(t, hlsURL)
		t.Logf("ffprobe %s: %v", hlsURL, got)
		require.Contains(t, got, "h264 854x480")
		require.Contains(t, got, "h264 640x360")
		require.Contains(t, got, "aac 2ch 48000")
	})

	t.Run("router serves DASH", func(t *testing.T) {
		f := Get(t, dashURL)
		require.Equal(t, http.StatusOK, f.Status)
		require.Equal(t, "application/dash+xml", f.ContentType)
		require.Contains(t, string(f.Body), `type="dynamic"`)
		got := ffprobeStreams(t, dashURL)
		t.Logf("ffprobe %s: %v", dashURL, got)
		require.Contains(t, got, "h264 854x480")
		require.Contains(t, got, "h264 640x360")
		require.Contains(t, got, "aac 2ch 48000")
	})

	for _, format := range []string{"hls", "dash"} {
		t.Run(format+" plays in Chromium", func(t *testing.T) {
			url := p.RouterURL + "/play/" + st.ID + "?format=" + format
			state := Play(t, p.LogDir, "chromium-"+format, url, 5, 60*time.Second)
			t.Logf("%s player: state=%s played=%.1fs levels=%d current=%d latency=%v errors=%v", format, state.State,
				state.CurrentTime, state.Levels, state.CurrentLevel, fmtPtr(state.Latency), state.Errors)
			require.NotEqual(t, "error", state.State, "fatal player error: %v", state.Errors)
			require.GreaterOrEqual(t, state.CurrentTime, 5.0, "currentTime must advance at least 5 s")
			require.Equal(t, 2, state.Levels, "the player sees both rungs")
		})
	}

	t.Run("signing a live stream applies at once", func(t *testing.T) {
		// The operator signs a live public stream (a leaked URL): the router
		// and the worker's own origin refuse it without a token within the
		// 2 s target, serve it with one, and serve it without one again once
		// it is public again.
		var origin string
		owner := p.owner(t, st.ID)
		for _, w := range p.Workers {
			if w.ID == owner {
				origin = w.OriginURL
			}
		}
		require.NotEmpty(t, origin, "owner %q is not one of the workers", owner)
		routerURL := p.RouterURL + "/live/" + st.ID + "/index.m3u8"
		originURL := origin + "/live/" + st.ID + "/index.m3u8"
		require.Equal(t, http.StatusOK, Get(t, routerURL).Status)
		require.Equal(t, http.StatusOK, Get(t, originURL).Status)

		require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodPatch, "/api/v1/streams/"+st.ID, `{"playback_policy":"signed"}`, nil))
		took := Eventually(t, 60*time.Second, 50*time.Millisecond, "403 without a token at the router and the origin", func() bool {
			return Get(t, routerURL).Status == http.StatusForbidden && Get(t, originURL).Status == http.StatusForbidden
		})
		t.Logf("SIGNED LIVE: router and origin answered 403 without a token %s after the PATCH (target 2s: %s)",
			took.Round(time.Millisecond), map[bool]string{true: "met", false: "MISSED"}[took <= 2*time.Second])
		f := Get(t, routerURL)
		require.Equal(t, "application/problem+json", f.ContentType)
		var tok struct {
			Token string `json:"token"`
		}
		require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodPost, "/api/v1/streams/"+st.ID+"/playback-token", `{"ttl_seconds":600}`, &tok))
		require.NotEmpty(t, tok.Token)
		withToken := func(base string) string { return base + "/live/" + st.ID + "/t/" + tok.Token + "/index.m3u8" }
		require.Equal(t, http.StatusOK, Get(t, withToken(p.RouterURL)).Status, "router with the token")
		require.Equal(t, http.StatusOK, Get(t, withToken(origin)).Status, "origin with the token")

		require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodPatch, "/api/v1/streams/"+st.ID, `{"playback_policy":"public"}`, nil))
		took = Eventually(t, 60*time.Second, 50*time.Millisecond, "200 without a token again", func() bool {
			return Get(t, routerURL).Status == http.StatusOK && Get(t, originURL).Status == http.StatusOK
		})
		t.Logf("PUBLIC AGAIN: router and origin answered 200 without a token %s after the PATCH", took.Round(time.Millisecond))
	})

	t.Run("publisher reconnects within the grace window", func(t *testing.T) {
		media := strings.TrimSuffix(hlsURL, "index.m3u8") + "360p/index.m3u8"
		sess := p.getStream(t, st.ID).Session
		require.NotNil(t, sess)
		before := segmentNumber(lastURI(Get(t, media).Body))
		publisher.Stop(5 * time.Second)
		Eventually(t, 60*time.Second, 100*time.Millisecond, "stream idle", func() bool {
			return p.getStream(t, st.ID).Status == "idle"
		})
		publisher = PublishRTMP(p.t, p.LogDir, "ffmpeg-rtmp-again", st.Ingest.RTMP)
		back := Eventually(t, 60*time.Second, 100*time.Millisecond, "stream live again", func() bool {
			return p.getStream(t, st.ID).Status == "live"
		})
		s := p.getStream(t, st.ID)
		require.Equal(t, sess.ID, s.Session.ID, "the same session continues")
		var sawEnd bool
		took := Eventually(t, 60*time.Second, 200*time.Millisecond, "new segments after the reconnect", func() bool {
			f := Get(t, media)
			sawEnd = sawEnd || strings.Contains(string(f.Body), "#EXT-X-ENDLIST")
			seg := lastURI(f.Body)
			return f.Status == http.StatusOK && segmentNumber(seg) > before+1 &&
				strings.Contains(string(f.Body), "#EXT-X-DISCONTINUITY")
		})
		require.False(t, sawEnd, "the playlist never ended during the reconnect")
		t.Logf("RECONNECT: the publisher came back in %s; same session %s, playback continued after a discontinuity (%s)",
			back.Round(time.Millisecond), sess.ID, took.Round(time.Millisecond))
	})

	t.Run("worker failover", func(t *testing.T) {
		media := strings.TrimSuffix(hlsURL, "index.m3u8") + "360p/index.m3u8"
		victim, survivor := p.ownerAndSurvivor(t, st.ID)
		victim.Proc.Kill() // kill -9
		// The deadline is below asynq's own recovery of a dead worker's task
		// (60-120 s): only the ownership watchdog can meet it.
		took := Eventually(t, 45*time.Second, 100*time.Millisecond, "fresh segments from the surviving worker", func() bool {
			f := Get(t, media)
			if f.Status != http.StatusOK || f.Header.Get("X-Dionysia-Worker") != survivor.ID {
				return false
			}
			seg := lastURI(f.Body)
			return seg != "" && Get(t, strings.TrimSuffix(media, "index.m3u8")+seg).Status == http.StatusOK
		})
		t.Logf("FAILOVER: the router served fresh segments from %s %s after kill -9 of %s (target 5s: %s)",
			survivor.ID, took.Round(time.Millisecond), victim.ID, map[bool]string{true: "met", false: "MISSED"}[took <= 5*time.Second])
		// The 5 s target is reported, not asserted: it depends on the
		// source's keyframe interval and on the machine's load (see
		// docs/operations.md and just bench).
		s := p.getStream(t, st.ID)
		require.Equal(t, "live", s.Status, "the session survives a worker's death")
		// The dead worker's redelivered task must not start a second encoder:
		// restart it and check it does not take the stream back.
		p.StartWorker(t, victim.ID+"-restarted", 2*time.Second)
		time.Sleep(3 * time.Second)
		require.Equal(t, survivor.ID, p.owner(t, st.ID), "ownership stays with the survivor")

		// The move is one stream.failover event with the gap the API
		// measured: from the victim's last heartbeat to the survivor's start.
		var failovers []failoverEvent
		Eventually(t, 30*time.Second, 200*time.Millisecond, "a stream.failover event", func() bool {
			failovers = p.failovers(t, st.ID)
			return len(failovers) > 0
		})
		require.Len(t, failovers, 1, "one failover, one event")
		fo := failovers[0].Data
		require.Equal(t, s.Session.ID, fo.SessionID)
		require.Equal(t, victim.ID, fo.FromWorker)
		require.Equal(t, survivor.ID, fo.ToWorker)
		require.NotNil(t, fo.GapMs)
		require.Positive(t, *fo.GapMs)
		t.Logf("FAILOVER EVENT: stream.failover %s -> %s, gap_ms=%d (from %s's last heartbeat to %s's start)",
			fo.FromWorker, fo.ToWorker, *fo.GapMs, fo.FromWorker, fo.ToWorker)
	})

	t.Run("Redis restart", func(t *testing.T) {
		media := strings.TrimSuffix(hlsURL, "index.m3u8") + "360p/index.m3u8"
		before := segmentNumber(lastURI(Get(t, media).Body))
		require.Positive(t, before)
		// A lease taken after Redis lost its data is one acquired after the
		// restart began: a worker may take it within milliseconds, before
		// RestartRedis has seen Redis answer.
		restarting := time.Now()
		p.RestartRedis(t)
		// Fresh: the stream is owned again under a lease taken after the
		// restart, and its owner serves a playlist of the new run only (all
		// of it after the last segment before the restart) through the
		// router. A segment the old run wrote before it noticed its lease
		// was gone does not count.
		took := Eventually(t, 60*time.Second, 200*time.Millisecond, "a fresh segment after the Redis restart", func() bool {
			owner, err := p.Redis.HGetAll(context.Background(), "dionysia:stream:"+st.ID+":owner").Result()
			if err != nil {
				return false
			}
			acquired, _ := strconv.ParseInt(owner["acquired_at"], 10, 64)
			if acquired < restarting.UnixMilli() {
				return false
			}
			f := Get(t, media)
			seg := lastURI(f.Body)
			return f.Status == http.StatusOK && f.Header.Get("X-Dionysia-Worker") == owner["worker_id"] &&
				segmentNumber(firstURI(f.Body)) > before &&
				Get(t, strings.TrimSuffix(media, "index.m3u8")+seg).Status == http.StatusOK
		})
		t.Logf("REDIS RESTART: Redis lost everything; the router served a segment produced after the restart %s later",
			took.Round(time.Millisecond))
		s := p.getStream(t, st.ID)
		require.Equal(t, "live", s.Status)
		var prof struct {
			Renditions []struct {
				Name string `json:"name"`
			} `json:"renditions"`
		}
		require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodGet, "/api/v1/profiles/e2e", "", &prof))
		require.Len(t, prof.Renditions, 2, "configuration lives in PostgreSQL and survives")
	})

	t.Run("publisher stop ends the session and the playlists", func(t *testing.T) {
		media := strings.TrimSuffix(hlsURL, "index.m3u8") + "360p/index.m3u8"
		publisher.Stop(5 * time.Second)
		stopped := time.Now()
		took := Eventually(t, 60*time.Second, 100*time.Millisecond, "stream idle", func() bool {
			return p.getStream(t, st.ID).Status == "idle"
		})
		t.Logf("idle %s after the publisher stopped", took.Round(time.Millisecond))
		var ended bool
		Eventually(t, 60*time.Second, 100*time.Millisecond, "ENDLIST in the media playlist", func() bool {
			f := Get(t, media)
			ended = f.Status == http.StatusOK && strings.Contains(string(f.Body), "#EXT-X-ENDLIST")
			return ended
		})
		t.Logf("playlist ended %s after the publisher stopped", time.Since(stopped).Round(time.Millisecond))
		var sessions struct {
			Data []struct {
				Status    string  `json:"status"`
				EndReason *string `json:"end_reason"`
			} `json:"data"`
		}
		require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodGet, "/api/v1/streams/"+st.ID+"/sessions", "", &sessions))
		require.NotEmpty(t, sessions.Data)
		require.Equal(t, "ended", sessions.Data[0].Status)
		require.NotNil(t, sessions.Data[0].EndReason)
		t.Logf("session ended with reason %s", *sessions.Data[0].EndReason)
	})
	t.Run("SRT publish with signed playback", func(t *testing.T) {
		signed := p.createStream(t, `{"name":"e2e-srt-signed","profile":"e2e","playback_policy":"signed"}`)
		pub := PublishSRT(t, p.LogDir, "ffmpeg-srt", signed.Ingest.SRT+"&pkt_size=1316")
		defer pub.Stop(5 * time.Second)
		Eventually(t, 60*time.Second, 100*time.Millisecond, "SRT stream live", func() bool {
			s := p.getStream(t, signed.ID)
			return s.Status == "live" && s.Session != nil && s.Session.Protocol == "srt"
		})
		plain := p.RouterURL + "/live/" + signed.ID + "/index.m3u8"
		var tok struct {
			Token  string `json:"token"`
			HLSURL string `json:"hls_url"`
		}
		require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodPost, "/api/v1/streams/"+signed.ID+"/playback-token", `{"ttl_seconds":600}`, &tok))
		require.NotEmpty(t, tok.Token)
		Eventually(t, 60*time.Second, 200*time.Millisecond, "signed playlist through the router", func() bool {
			return Get(t, tok.HLSURL).Status == http.StatusOK
		})
		f := Get(t, plain)
		require.Equal(t, http.StatusForbidden, f.Status, "no token: 403")
		require.Equal(t, "application/problem+json", f.ContentType)
		tampered := strings.Replace(tok.HLSURL, tok.Token, tok.Token[:len(tok.Token)-2]+"xx", 1)
		require.Equal(t, http.StatusForbidden, Get(t, tampered).Status, "tampered token: 403")
		files := WalkHLS(t, tok.HLSURL)
		for _, f := range files {
			require.Equal(t, http.StatusOK, f.Status, f.URL)
			require.Equal(t, WantContentType(f.URL), f.ContentType, f.URL)
		}
		t.Logf("signed stream over SRT: %d files through the router with the token, all 200; without it 403", len(files))
		guessed := strings.Replace(files[len(files)-1].URL, "/t/"+tok.Token, "", 1)
		require.Equal(t, http.StatusForbidden, Get(t, guessed).Status, "a guessed segment URL without the token: 403")
		cliOut := p.CLI(t, "streams", "playback-url", signed.ID, "--ttl", "1h")
		require.Contains(t, cliOut, "/t/")
		got := ffprobeStreams(t, tok.HLSURL)
		t.Logf("ffprobe signed HLS: %v", got)
		require.Contains(t, got, "h264 854x480")
	})

	if os.Getenv("E2E_KEEP") != "" {
		t.Logf("E2E_KEEP set: logs stay in %s", p.LogDir)
	}
}

// owner returns the worker that owns a stream, from the routing registry.
// failoverEvent is the part of a stream.failover event the suite reads.
type failoverEvent struct {
	ID   string `json:"id"`
	Data struct {
		SessionID  string `json:"session_id"`
		FromWorker string `json:"from_worker"`
		ToWorker   string `json:"to_worker"`
		GapMs      *int64 `json:"gap_ms"`
	} `json:"data"`
}

// failovers returns a stream's stream.failover events.
func (p *Platform) failovers(t testing.TB, streamID string) []failoverEvent {
	t.Helper()
	var list struct {
		Data []failoverEvent `json:"data"`
	}
	require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodGet, "/api/v1/events?type=stream.failover&stream_id="+streamID, "", &list))
	return list.Data
}

// ownerAndSurvivor returns the worker serving streamID and a running one
// that does not.
func (p *Platform) ownerAndSurvivor(t testing.TB, streamID string) (owner, survivor *Worker) {
	t.Helper()
	id := p.owner(t, streamID)
	for _, w := range p.Workers {
		if w.ID == id {
			owner = w
		} else if !w.Proc.Exited() {
			survivor = w
		}
	}
	require.NotNil(t, owner, "owner %q is not one of the workers", id)
	require.NotNil(t, survivor, "no other worker is running")
	return owner, survivor
}

func (p *Platform) owner(t testing.TB, streamID string) string {
	t.Helper()
	id, err := p.Redis.HGet(context.Background(), "dionysia:stream:"+streamID+":owner", "worker_id").Result()
	require.NoError(t, err)
	return id
}

// segmentNumber is the number of a segment URI such as "897631203.m4s".
func segmentNumber(uri string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(uri, ".m4s"), 10, 64)
	return n
}

// lastURI returns the last media URI of a media playlist.
// firstURI returns the first media URI of a media playlist.
func firstURI(playlist []byte) string {
	for _, l := range strings.Split(string(playlist), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return ""
}

func lastURI(playlist []byte) string {
	lines := strings.Split(strings.TrimSpace(string(playlist)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return ""
}

func fmtPtr(f *float64) string {
	if f == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.1fs", *f)
}
