package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// inputsProfile: two rungs, so that "every rendition" means more than one.
const inputsProfile = `{"name":"inputs","description":"push protocols suite ladder","renditions":[
 {"name":"360p","width":640,"height":360,"video_bitrate_kbps":600,"frame_rate":30,"preset":"superfast"},
 {"name":"240p","width":426,"height":240,"video_bitrate_kbps":300,"frame_rate":30,"preset":"superfast"}],
 "audio":{"codec":"aac","bitrate_kbps":96,"channels":2,"sample_rate":48000}}`

// sessionDoc is the part of GET /streams/{id}/sessions the suite reads.
type sessionDoc struct {
	Status    string  `json:"status"`
	Protocol  string  `json:"protocol"`
	EndReason *string `json:"end_reason"`
	EndDetail *string `json:"end_detail"`
	Source    struct {
		VideoCodec string `json:"video_codec"`
		AudioCodec string `json:"audio_codec"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
	} `json:"source"`
}

func (p *Platform) sessions(t testing.TB, id string) []sessionDoc {
	t.Helper()
	var doc struct {
		Data []sessionDoc `json:"data"`
	}
	require.Equal(t, http.StatusOK, p.APIRequest(t, http.MethodGet, "/api/v1/streams/"+id+"/sessions", "", &doc))
	return doc.Data
}

var reStreamInf = regexp.MustCompile(`(?m)^#EXT-X-STREAM-INF:.*$`)

// checkPlays waits for the stream's multivariant playlist through the
// router and checks that every rendition has video and stereo AAC: each
// variant's CODECS name mp4a.40.2 and ffprobe finds the video of every rung
// and the 2-channel 48 kHz AAC.
func (p *Platform) checkPlays(t *testing.T, id string) {
	t.Helper()
	hlsURL := p.RouterURL + "/live/" + id + "/index.m3u8"
	var body string
	took := Eventually(t, 3*time.Minute, 250*time.Millisecond, "a multivariant playlist listing both renditions", func() bool {
		f := Get(t, hlsURL)
		body = string(f.Body)
		return f.Status == http.StatusOK && len(reStreamInf.FindAllString(body, -1)) == 2
	})
	t.Logf("multivariant playlist served %s after going live:\n%s", took.Round(time.Millisecond), body)
	for _, inf := range reStreamInf.FindAllString(body, -1) {
		require.Contains(t, inf, "mp4a.40.2", "a variant without AAC")
	}
	got := ffprobeStreams(t, hlsURL)
	t.Logf("ffprobe %s: %v", hlsURL, got)
	require.Contains(t, got, "h264 640x360")
	require.Contains(t, got, "h264 426x240")
	require.Contains(t, got, "aac 2ch 48000")
}

// TestPushProtocols: every push protocol delivers all its media (issue 17
// part 0). A WHIP publisher (pion: H.264 + Opus) plays with stereo AAC, its
// session shows the source as the worker sees it, and a DELETE ends it as
// publisher_disconnected; an HEVC publish over SRT plays. (The 10 s keyframe
// interval over RTMP is TestStreamHealth's.)
func TestPushProtocols(t *testing.T) {
	p := Start(t, Options{Workers: 1, WebRTC: true})
	require.Equal(t, http.StatusCreated, p.APIRequest(t, http.MethodPost, "/api/v1/profiles", inputsProfile, nil))

	t.Run("WHIP H.264 and Opus", func(t *testing.T) {
		var st struct {
			ID     string `json:"id"`
			Ingest struct {
				WHIP string `json:"whip"`
			} `json:"ingest"`
		}
		require.Equal(t, http.StatusCreated, p.APIRequest(t, http.MethodPost, "/api/v1/streams", `{"name":"inputs-whip","profile":"inputs"}`, &st))
		require.NotEmpty(t, st.Ingest.WHIP)
		pub := PublishWHIP(t, st.Ingest.WHIP)
		p.checkPlays(t, st.ID)
		var sess sessionDoc
		Eventually(t, 90*time.Second, 250*time.Millisecond, "the session's source size", func() bool {
			ss := p.sessions(t, st.ID)
			if len(ss) == 0 {
				return false
			}
			sess = ss[0]
			return sess.Source.Width > 0
		})
		raw, _ := json.Marshal(sess)
		t.Logf("session: %s", raw)
		require.Equal(t, "webrtc", sess.Protocol)
		require.Equal(t, "H264", sess.Source.VideoCodec)
		require.Equal(t, "Opus", sess.Source.AudioCodec)
		require.Equal(t, [2]int{640, 360}, [2]int{sess.Source.Width, sess.Source.Height})

		require.Equal(t, http.StatusOK, pub.Stop(), "the WHIP DELETE")
		Eventually(t, 90*time.Second, 250*time.Millisecond, "the session ended", func() bool {
			sess = p.sessions(t, st.ID)[0]
			return sess.Status == "ended"
		})
		raw, _ = json.Marshal(sess)
		t.Logf("after the DELETE: %s", raw)
		require.NotNil(t, sess.EndReason)
		require.Equal(t, "publisher_disconnected", *sess.EndReason)
	})

	t.Run("SRT HEVC", func(t *testing.T) {
		st := p.createStream(t, `{"name":"inputs-hevc","profile":"inputs"}`)
		pub := StartProc(t, p.LogDir, "ffmpeg-hevc", nil, "ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", "-re",
			"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-ac", "2",
			"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=60:log-level=error", "-pix_fmt", "yuv420p",
			"-c:a", "aac", "-b:a", "96k", "-f", "mpegts", st.Ingest.SRT+"&pkt_size=1316")
		defer pub.Stop(5 * time.Second)
		p.checkPlays(t, st.ID)
		sess := p.sessions(t, st.ID)[0]
		raw, _ := json.Marshal(sess)
		t.Logf("session: %s", raw)
		require.Equal(t, "srt", sess.Protocol)
		require.Equal(t, "H265", sess.Source.VideoCodec)
		require.Equal(t, "live", sess.Status)
		require.True(t, strings.HasPrefix(sess.Source.AudioCodec, "MPEG-4"), sess.Source.AudioCodec)
	})
}
