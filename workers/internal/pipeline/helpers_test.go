package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/dionysia/dionysia/pkg/testkit"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dionysia/dionysia/workers/internal/media"
)

var testDir string // generated content shared by the package's tests

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "dionysia-pipeline-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDir = d
	// A goroutine left behind by a run (an appsink callback, a probe, the
	// supervision loop) fails the package. No exception is needed:
	// GStreamer's and GLib's threads are C threads, invisible to goleak, and
	// go-gst starts no long-lived goroutine.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(d)
		os.Exit(code)
	}))
}

var genMu sync.Mutex

// generate runs ffmpeg once per output name and returns the file's path.
func generate(t *testing.T, name string, args ...string) string {
	t.Helper()
	genMu.Lock()
	defer genMu.Unlock()
	out := filepath.Join(testDir, name)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	full := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)
	full = append(full, out)
	cmd := exec.CommandContext(ctx, testkit.FFmpeg(t), full...)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "ffmpeg %v: %s", full, b)
	return out
}

// clip1080 is the shared 1080p60 clip (H.264 High with B-frames, AAC 5.1),
// or a generated equivalent when it is absent.
func clip1080(t *testing.T) string {
	t.Helper()
	if shared, ok := testkit.SharedClip(t); ok {
		return shared
	}
	t.Logf("shared clip %s absent: generating one", testkit.ClipName)
	return generate(t, "gen1080p60.mp4",
		"-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=60:duration=6",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
		"-filter_complex", "[1:a]pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0[a]", "-map", "0:v", "-map", "[a]",
		"-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "high", "-bf", "2", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "192k")
}

// clip720 is a generated 1280x720@30 clip with B-frames and 5.1 AAC audio.
func clip720(t *testing.T) string {
	return generate(t, "gen720p30.mp4",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=5",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=5",
		"-filter_complex", "[1:a]pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0[a]", "-map", "0:v", "-map", "[a]",
		"-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "high", "-bf", "2", "-g", "30", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "192k")
}

// clipTiny is a 2 s 320x180@30 clip with stereo audio, for start/stop cycles.
func clipTiny(t *testing.T) string {
	return generate(t, "tiny.mp4",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2")
}

// recordingSink stores what the pipeline hands over and writes each
// rendition as an Annex-B .h264 file and the audio as ADTS .aac.
type recordingSink struct {
	dir string

	mu          sync.Mutex
	tracksCalls int
	video       []media.VideoTrack
	audio       *media.AudioTrack
	keyPTS      [][]time.Duration // per rendition
	count       []int
	lastPTS     []time.Duration
	nonMonotone []string
	audioFrames int
	firstAudio  time.Duration
	firstVideo  time.Duration
	files       []*os.File
	aacFile     *os.File
	firstFrame  chan struct{}
	firstOnce   sync.Once
	failAfter   int // WriteVideo fails after this many AUs (0: never)
}

func newRecordingSink(t *testing.T) *recordingSink {
	s := &recordingSink{dir: t.TempDir(), firstFrame: make(chan struct{})}
	t.Cleanup(s.close)
	return s
}

func (s *recordingSink) Tracks(video []media.VideoTrack, audio *media.AudioTrack) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tracksCalls++
	s.video, s.audio = video, audio
	s.keyPTS = make([][]time.Duration, len(video))
	s.count = make([]int, len(video))
	s.lastPTS = make([]time.Duration, len(video))
	for _, v := range video {
		f, err := os.Create(filepath.Join(s.dir, v.Name+".h264"))
		if err != nil {
			return err
		}
		s.files = append(s.files, f)
	}
	if audio != nil {
		f, err := os.Create(filepath.Join(s.dir, "audio.aac"))
		if err != nil {
			return err
		}
		s.aacFile = f
	}
	return nil
}

func (s *recordingSink) WriteVideo(track int, au media.VideoAU) error {
	s.firstOnce.Do(func() { close(s.firstFrame) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count[track] > 0 && au.DTS <= s.lastPTS[track] {
		s.nonMonotone = append(s.nonMonotone, fmt.Sprintf("%s: dts %s after %s", s.video[track].Name, au.DTS, s.lastPTS[track]))
	}
	s.lastPTS[track] = au.DTS
	if track == 0 && s.count[0] == 0 {
		s.firstVideo = au.PTS
	}
	s.count[track]++
	if au.Keyframe {
		s.keyPTS[track] = append(s.keyPTS[track], au.PTS)
	}
	if s.failAfter > 0 && s.count[track] > s.failAfter {
		return fmt.Errorf("disk full (test)")
	}
	_, err := s.files[track].Write(au.Data)
	return err
}

func (s *recordingSink) WriteAudio(f media.AudioFrame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.audioFrames == 0 {
		s.firstAudio = f.PTS
	}
	s.audioFrames++
	if s.aacFile == nil {
		return fmt.Errorf("audio frame without an audio track")
	}
	_, err := s.aacFile.Write(append(adtsHeader(s.audio, len(f.Data)), f.Data...))
	return err
}

// frames is how many access units track has received so far (0 before the
// tracks are known).
func (s *recordingSink) frames(track int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if track >= len(s.count) {
		return 0
	}
	return s.count[track]
}

func (s *recordingSink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		f.Close()
	}
	if s.aacFile != nil {
		s.aacFile.Close()
	}
	s.files, s.aacFile = nil, nil
}

func (s *recordingSink) path(name string) string { return filepath.Join(s.dir, name) }

// adtsHeader builds the 7-byte ADTS header of one raw AAC frame from the
// track's AudioSpecificConfig.
func adtsHeader(a *media.AudioTrack, n int) []byte {
	asc := a.Config
	profile := int(asc[0]>>3) - 1
	freq := int(asc[0]&7)<<1 | int(asc[1]>>7)
	ch := int(asc[1]>>3) & 0xf
	l := n + 7
	return []byte{
		0xFF, 0xF1,
		byte(profile<<6 | freq<<2 | ch>>2),
		byte((ch&3)<<6 | (l >> 11)),
		byte((l >> 3) & 0xFF),
		byte((l&7)<<5 | 0x1F),
		0xFC,
	}
}

type probeStream struct {
	CodecName    string `json:"codec_name"`
	Profile      string `json:"profile"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	RFrameRate   string `json:"r_frame_rate"`
	SampleRate   string `json:"sample_rate"`
	Channels     int    `json:"channels"`
	HasBFrames   int    `json:"has_b_frames"`
	CodecType    string `json:"codec_type"`
	PixFmt       string `json:"pix_fmt"`
	ChannelLayou string `json:"channel_layout"`
}

func ffprobeStream(t *testing.T, path string) probeStream {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-of", "json", path).Output()
	require.NoError(t, err, "ffprobe %s", path)
	var res struct{ Streams []probeStream }
	require.NoError(t, json.Unmarshal(out, &res))
	require.Len(t, res.Streams, 1, "streams in %s", path)
	return res.Streams[0]
}

// ffprobeKeyframes returns the indexes of the key frames of a raw .h264 file
// and its frame count.
func ffprobeKeyframes(t *testing.T, path string) (keys []int, frames int) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame,pict_type",
		"-of", "csv=p=0", path).Output()
	require.NoError(t, err, "ffprobe frames %s", path)
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" { // side-data lines (the x264 SEI) come out empty
			continue
		}
		if strings.HasPrefix(line, "1") {
			keys = append(keys, frames)
		}
		frames++
	}
	return keys, frames
}

// x264Options extracts the x264 settings SEI ("options: ...") of a stream.
func x264Options(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	i := bytes.Index(b, []byte("options: "))
	require.GreaterOrEqual(t, i, 0, "no x264 SEI in %s", path)
	rest := b[i+len("options: "):]
	if j := bytes.IndexByte(rest, 0); j >= 0 {
		rest = rest[:j]
	}
	opts := map[string]string{}
	for _, kv := range strings.Fields(string(rest)) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			opts[k] = v
		}
	}
	return opts
}

// goodTracks asserts the track list and the files of a run.
func checkKeyframesAligned(t *testing.T, s *recordingSink) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Empty(t, s.nonMonotone)
	ref := s.keyPTS[0]
	require.GreaterOrEqual(t, len(ref), 2, "keyframes of %s: %v", s.video[0].Name, ref)
	for i := range s.video {
		keys := s.keyPTS[i]
		// A run cut by cancellation may end one rendition a GOP earlier.
		n := min(len(keys), len(ref))
		require.GreaterOrEqual(t, n, len(ref)-1)
		require.Equal(t, ref[:n], keys[:n], "keyframe PTS of %s vs %s", s.video[i].Name, s.video[0].Name)
	}
}

// edge is a running mediamtx: its RTMP (TCP) and SRT (UDP) addresses.
type edge struct{ rtmp, srt, rtsp, api string }

func (e edge) rtspURL(path string) string { return "rtsp://" + e.rtsp + "/" + path }

func (e edge) rtmpURL(path string) string { return "rtmp://" + e.rtmp + "/" + path }

func (e edge) srtURL(path string) string { return "srt://" + e.srt + "?streamid=read:" + path }

// startMediaMTX runs the pinned mediamtx (testkit.MediaMTX) with a minimal config on free ports of
// 127.0.0.1 (every other listener off) and stops it at cleanup. Reading
// needs reader/secret; publishing is open.
func startMediaMTX(t *testing.T) edge {
	t.Helper()
	bin := testkit.MediaMTX(t)
	e := edge{
		rtmp: testkit.FreeAddr(t),
		srt:  testkit.FreeAddr(t),
		rtsp: testkit.FreeAddr(t),
		api:  testkit.FreeAddr(t),
	}
	dir := t.TempDir()
	conf := fmt.Sprintf(`logLevel: warn
api: true
apiAddress: %s
metrics: false
pprof: false
playback: false
rtsp: true
rtspAddress: %s
rtspTransports: [tcp]
rtspEncryption: "no"
hls: false
webrtc: false
moq: false
rtmp: true
rtmpAddress: %s
srt: true
srtAddress: %s
authMethod: internal
authInternalUsers:
- user: any
  pass:
  ips: []
  permissions:
  - action: publish
  - action: api
- user: reader
  pass: secret
  ips: []
  permissions:
  - action: read
paths:
  all_others:
`, e.api, e.rtsp, e.rtmp, e.srt)
	cfg := filepath.Join(dir, "mediamtx.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(conf), 0o600))
	cmd := exec.Command(bin, cfg)
	cmd.Dir = dir
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("mediamtx log:\n%s", logs.String())
		}
	})
	waitTCP(t, e.rtmp)
	return e
}

func waitTCP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not listening", addr)
}

// publish loops file into the edge over RTMP in real time until cleanup.
func publish(t *testing.T, e edge, file, path string) { publishN(t, e, file, path, -1) }

// publishN publishes file loops+1 times (-1: forever) in real time.
func publishN(t *testing.T, e edge, file, path string, loops int) {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", fmt.Sprint(loops), "-i", file,
		"-c", "copy", "-f", "flv", e.rtmpURL(path))
	var logs bytes.Buffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("ffmpeg publisher log:\n%s", logs.String())
		}
	})
	// mediamtx makes a path readable ~2 s after the publish starts (longer on
	// a loaded machine): wait until its API says so.
	require.Eventually(t, func() bool { return e.ready(path) }, time.Minute, 100*time.Millisecond,
		"path %s not ready on mediamtx (the publisher's log is printed at cleanup)", path)
}

// publishLive publishes a live test pattern with a tone, encoded with
// the ffmpeg output arguments (codecs, container, URL), until cleanup.
func publishLive(t *testing.T, e edge, path string, out ...string) {
	t.Helper()
	args := append([]string{"-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-ac", "2"}, out...)
	cmd := exec.Command("ffmpeg", args...)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("ffmpeg publisher log:\n%s", logs.String())
		}
	})
	require.Eventually(t, func() bool { return e.ready(path) }, time.Minute, 100*time.Millisecond,
		"path %s not ready on mediamtx (the publisher's log is printed at cleanup)", path)
}

// apiClient keeps no idle connection (and so no goroutine goleak would see).
var apiClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// ready reports whether mediamtx has a ready (readable) path.
func (e edge) ready(path string) bool {
	res, err := apiClient.Get("http://" + e.api + "/v3/paths/get/" + path)
	if err != nil {
		return false
	}
	defer res.Body.Close()
	var p struct {
		Ready bool `json:"ready"`
	}
	return res.StatusCode == http.StatusOK && json.NewDecoder(res.Body).Decode(&p) == nil && p.Ready
}

func renditionNames(s *recordingSink) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, v := range s.video {
		names = append(names, v.Name)
	}
	return slices.Clone(names)
}
