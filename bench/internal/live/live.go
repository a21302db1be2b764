// Package live measures the running platform: latency from publishing to
// segments listed through the router, dispatch latency from the edge's
// go-live to the worker's pipeline playing, and the management API's
// throughput and tail latency.
package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/bench/internal/measure"
	"github.com/dionysia/dionysia/pkg/testkit/harness"
)

// Bench drives one running platform.
type Bench struct {
	P       *harness.Platform
	Work    string
	LogDir  string
	Profile string // profile the streams use
	Rung    string // rendition whose playlist is watched
	Segment time.Duration
	Log     func(format string, args ...any)
	client  *http.Client
}

// NewBench returns a Bench.
func NewBench(p *harness.Platform, work, logDir, profile, rung string, segment time.Duration, log func(string, ...any)) *Bench {
	return &Bench{P: p, Work: work, LogDir: logDir, Profile: profile, Rung: rung, Segment: segment, Log: log,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// Stream is the part of the API's stream the benchmark reads.
type Stream struct {
	ID     string `json:"id"`
	Ingest struct {
		RTMP string `json:"rtmp"`
	} `json:"ingest"`
}

// CreateProfile creates a profile from a JSON ladder body (with "name").
func (b *Bench) CreateProfile(ctx context.Context, body string) error {
	code, err := b.P.Request(ctx, b.client, http.MethodPost, "/api/v1/profiles", body, nil)
	if err != nil {
		return fmt.Errorf("creating profile: %w", err)
	}
	if code != http.StatusCreated {
		return fmt.Errorf("creating profile: status %d", code)
	}
	return nil
}

// CreateStream creates a stream on b.Profile.
func (b *Bench) CreateStream(ctx context.Context, name, profile string) (Stream, error) {
	var s Stream
	code, err := b.P.Request(ctx, b.client, http.MethodPost, "/api/v1/streams",
		fmt.Sprintf(`{"name":%q,"profile":%q}`, name, profile), &s)
	if err != nil {
		return s, fmt.Errorf("creating stream: %w", err)
	}
	if code != http.StatusCreated {
		return s, fmt.Errorf("creating stream: status %d", code)
	}
	return s, nil
}

// MakeBeepClip writes a clip of the given length to out: the video of src
// (copied, looped as needed) and a generated stereo AAC track carrying the
// timeline beeps (see findBeeps).
func MakeBeepClip(ctx context.Context, src, out string, length time.Duration) error {
	if _, err := os.Stat(out); err == nil {
		return nil
	}
	tmp := out + ".tmp.mp4"
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-stream_loop", "-1", "-i", src,
		"-f", "lavfi", "-i", fmt.Sprintf("aevalsrc=exprs='%s':s=%d:c=stereo", beepExprFmt, sampleRate),
		"-map", "0:v:0", "-map", "1:a:0", "-t", fmt.Sprintf("%.3f", length.Seconds()),
		"-c:v", "copy", "-c:a", "aac", "-b:a", "128k", tmp)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("making the beep clip: %w\n%s", err, b)
	}
	return os.Rename(tmp, out)
}

// LatencyResult is one publish of the latency measurement.
type LatencyResult struct {
	StreamID string
	// FirstListed: publisher started → first segment of the watched rung
	// listed in its playlist through the router.
	FirstListed time.Duration
	// FirstFrame: for each steady-state segment, listed time − the wall time
	// its first frame entered the edge (at least one segment duration: the
	// segment must be complete). LastFrame: the same for its last frame,
	// i.e. what the pipeline, packager and router add on top.
	FirstFrame, LastFrame []time.Duration
	// Residual is the largest disagreement between beeps in the mapping of
	// output time to publisher time (an error bar of Delays).
	Residual time.Duration
	// Dispatch: edge go-live → worker pipeline playing.
	Dispatch time.Duration
	// PublishAccepted: publisher started → the edge accepted the publish.
	PublishAccepted time.Duration
}

type audioSeg struct {
	segment
	data []byte
}

// Latency publishes clip in real time into a new stream for length, watches
// the rung's and the audio playlists through the router every 50 ms, and
// computes the latencies. See docs/performance.md for the method.
func (b *Bench) Latency(ctx context.Context, clip string, length time.Duration, name string) (LatencyResult, error) {
	st, err := b.CreateStream(ctx, name, b.Profile)
	if err != nil {
		return LatencyResult{}, err
	}
	res := LatencyResult{StreamID: st.ID}
	pub, err := harness.StartProc(b.LogDir, "publisher-"+name, nil, "ffmpeg", "-hide_banner", "-loglevel", "warning",
		"-nostdin", "-re", "-i", clip, "-c", "copy", "-f", "flv", st.Ingest.RTMP)
	if err != nil {
		return res, err
	}
	defer pub.Stop(5 * time.Second)
	base := b.P.RouterURL + "/live/" + st.ID + "/"
	videoSeen := map[uint64]time.Time{}
	videoDur := map[uint64]time.Duration{}
	audio := map[uint64]audioSeg{}
	var audioInit []byte
	deadline := pub.Started.Add(length)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) && !pub.Exited() {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
		body, code, err := get(ctx, b.client, base+b.Rung+"/index.m3u8")
		now := time.Now()
		if err == nil && code == http.StatusOK {
			if pl, err := parseMedia(string(body)); err == nil {
				for _, s := range pl.Segments {
					if _, ok := videoSeen[s.Number]; !ok {
						videoSeen[s.Number], videoDur[s.Number] = now, s.Duration
					}
				}
			}
		}
		body, code, err = get(ctx, b.client, base+"audio/index.m3u8")
		if err != nil || code != http.StatusOK {
			continue
		}
		pl, err := parseMedia(string(body))
		if err != nil {
			continue
		}
		if audioInit == nil && pl.Map != "" {
			if data, code, err := get(ctx, b.client, base+"audio/"+pl.Map); err == nil && code == http.StatusOK {
				audioInit = data
			}
		}
		for _, s := range pl.Segments {
			if _, ok := audio[s.Number]; ok {
				continue
			}
			if data, code, err := get(ctx, b.client, base+"audio/"+s.URI); err == nil && code == http.StatusOK {
				audio[s.Number] = audioSeg{segment: s, data: data}
			}
		}
	}
	if pub.Exited() {
		return res, fmt.Errorf("the publisher exited early (log %s)", pub.LogPath)
	}
	pub.Stop(5 * time.Second)
	if len(videoSeen) == 0 {
		return res, fmt.Errorf("no segment of %s was listed within %s", b.Rung, length)
	}
	var first time.Time
	for _, t := range videoSeen {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	res.FirstListed = first.Sub(pub.Started)

	// The edge's and the worker's own timestamps.
	t0 := pub.Started
	if ev, ok := b.find("edge", "publish accepted", st.ID); ok {
		t0 = ev.Time
		res.PublishAccepted = ev.Time.Sub(pub.Started)
	}
	if d, err := b.dispatch(st.ID); err == nil {
		res.Dispatch = d
	}

	firstFrame, lastFrame, residual, err := b.delays(ctx, t0, audioInit, audio, videoSeen, videoDur)
	if err != nil {
		return res, err
	}
	res.FirstFrame, res.LastFrame, res.Residual = firstFrame, lastFrame, residual
	return res, nil
}

// delays maps output time to the publisher's timeline with the beeps and
// returns the steady-state delay of each segment.
func (b *Bench) delays(ctx context.Context, t0 time.Time, init []byte, audio map[uint64]audioSeg,
	videoSeen map[uint64]time.Time, videoDur map[uint64]time.Duration,
) (first, last []time.Duration, residual time.Duration, err error) {
	if init == nil || len(audio) == 0 {
		return nil, nil, 0, errors.New("no audio segments fetched: cannot map output time to the publisher's")
	}
	nums := make([]uint64, 0, len(audio))
	for n := range audio {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	// The contiguous run from the first fetched segment.
	start := map[uint64]time.Duration{}
	var buf bytes.Buffer
	buf.Write(init)
	var at time.Duration
	for i, n := range nums {
		if i > 0 && n != nums[i-1]+1 {
			break
		}
		start[n] = at
		at += audio[n].Duration
		buf.Write(audio[n].data)
	}
	m0 := nums[0]
	f := filepath.Join(b.Work, fmt.Sprintf("audio-%d.mp4", time.Now().UnixNano()))
	if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
		return nil, nil, 0, err
	}
	defer os.Remove(f)
	dec, err := measure.Run(ctx, "", nil, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", f,
		"-ac", "1", "-ar", fmt.Sprint(sampleRate), "-f", "s16le", "-")
	if err != nil {
		return nil, nil, 0, fmt.Errorf("decoding the output audio: %w", err)
	}
	beeps := findBeeps(dec.Stdout)
	if len(beeps) < 2 {
		return nil, nil, 0, fmt.Errorf("found %d beeps in %s of output audio: cannot map time", len(beeps), at)
	}
	// c maps output time (from the start of segment m0) to publisher time:
	// P = O + c. The first beep fixes c modulo 16 s; causality (a segment is
	// listed after its media was published) picks the largest candidate.
	lm0, ok := videoSeen[m0]
	if !ok {
		return nil, nil, 0, fmt.Errorf("segment %d was fetched for audio but never listed for video", m0)
	}
	bound := lm0.Sub(t0) - (start[m0] + videoDur[m0]) + 200*time.Millisecond // c ≤ bound
	b0 := beeps[0]
	var c time.Duration
	for k := b0.Index; ; k += beepModulo {
		cand := time.Duration(k)*time.Second - b0.At
		if cand > bound {
			break
		}
		c = cand
	}
	if c == 0 && time.Duration(b0.Index)*time.Second-b0.At > bound {
		return nil, nil, 0, errors.New("no beep mapping is consistent with the listing times")
	}
	// Refine c with every beep and measure the disagreement.
	var offs []float64
	for _, bp := range beeps {
		p := bp.At + c
		k := math.Round(p.Seconds())
		if int(k)%beepModulo != bp.Index || math.Abs(p.Seconds()-k) > 0.2 {
			continue // a beep cut by a segment boundary glitch or misread
		}
		offs = append(offs, k-bp.At.Seconds())
	}
	if len(offs) == 0 {
		return nil, nil, 0, errors.New("no beep agrees with the mapping")
	}
	sm := measure.Summarize(offs)
	c = time.Duration(sm.Median * float64(time.Second))
	residual = time.Duration(max(sm.Max-sm.Median, sm.Median-sm.Min) * float64(time.Second))

	for n, listed := range videoSeen {
		s, ok := start[n]
		if !ok || n < m0+2 { // the first two fetched segments are warm-up
			continue
		}
		first = append(first, listed.Sub(t0.Add(c+s)))
		last = append(last, listed.Sub(t0.Add(c+s+videoDur[n])))
	}
	slices.Sort(first)
	slices.Sort(last)
	return first, last, residual, nil
}

// find returns the first event of a process's log with msg about a stream.
func (b *Bench) find(proc, msg, streamID string) (harness.LogEvent, bool) {
	evs, err := harness.ReadLog(filepath.Join(b.LogDir, proc+".log"))
	if err != nil {
		return harness.LogEvent{}, false
	}
	for _, ev := range evs {
		if ev.Msg == msg && ev.Find("stream_id") == streamID {
			return ev, true
		}
	}
	return harness.LogEvent{}, false
}

// dispatch is the edge's "stream live" → the worker's "pipeline started".
func (b *Bench) dispatch(streamID string) (time.Duration, error) {
	live, ok := b.find("edge", "stream live", streamID)
	if !ok {
		return 0, fmt.Errorf("no go-live of %s in the edge log", streamID)
	}
	for i := range b.P.Workers {
		if ev, ok := b.find(fmt.Sprintf("worker-%d", i+1), "pipeline started", streamID); ok {
			return ev.Time.Sub(live.Time), nil
		}
	}
	return 0, fmt.Errorf("no pipeline start of %s in the worker logs", streamID)
}

// DispatchCycle creates a stream, publishes the clip until a worker's
// pipeline plays it, stops the publisher and returns the dispatch latency.
func (b *Bench) DispatchCycle(ctx context.Context, clip, name string) (time.Duration, error) {
	st, err := b.CreateStream(ctx, name, b.Profile)
	if err != nil {
		return 0, err
	}
	pub, err := harness.StartProc(b.LogDir, "publisher-"+name, nil, "ffmpeg", "-hide_banner", "-loglevel", "warning",
		"-nostdin", "-re", "-i", clip, "-c", "copy", "-f", "flv", st.Ingest.RTMP)
	if err != nil {
		return 0, err
	}
	defer pub.Stop(5 * time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if d, err := b.dispatch(st.ID); err == nil {
			return d, nil
		}
		if pub.Exited() {
			return 0, fmt.Errorf("the publisher exited (log %s)", pub.LogPath)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("stream %s: no pipeline started within 30 s", st.ID)
}

// Load is the outcome of a closed-loop load (harness.RunLoad).
type Load = harness.LoadResult

// ControlPlane measures stream creation, stream reads and, as the floor of
// an HTTP round trip to the API, its /healthz.
func (b *Bench) ControlPlane(ctx context.Context, concurrency int, d time.Duration, tag string) (create, read, floor Load, err error) {
	var mu sync.Mutex
	var ids []string
	create = harness.RunLoad(ctx, concurrency, d, func(ctx context.Context, c, i int) (int64, error) {
		var s Stream
		code, err := b.P.Request(ctx, b.client, http.MethodPost, "/api/v1/streams",
			fmt.Sprintf(`{"name":"cp-%s-%d-%d","profile":%q}`, tag, c, i, b.Profile), &s)
		if err != nil {
			return 0, err
		}
		if code != http.StatusCreated {
			return 0, fmt.Errorf("status %d", code)
		}
		mu.Lock()
		ids = append(ids, s.ID)
		mu.Unlock()
		return 0, nil
	})
	if len(ids) == 0 {
		return create, read, floor, fmt.Errorf("no stream was created (%d errors)", create.Errors)
	}
	read = harness.RunLoad(ctx, concurrency, d, func(ctx context.Context, c, i int) (int64, error) {
		id := ids[(c*7919+i)%len(ids)]
		code, err := b.P.Request(ctx, b.client, http.MethodGet, "/api/v1/streams/"+id, "", nil)
		if err != nil {
			return 0, err
		}
		if code != http.StatusOK {
			return 0, fmt.Errorf("status %d", code)
		}
		return 0, nil
	})
	floor = harness.RunLoad(ctx, concurrency, d, func(ctx context.Context, c, i int) (int64, error) {
		_, code, err := get(ctx, b.client, b.P.APIURL+"/healthz")
		if err != nil {
			return 0, err
		}
		if code != http.StatusOK {
			return 0, fmt.Errorf("status %d", code)
		}
		return 0, nil
	})
	if create.Errors+read.Errors+floor.Errors > 0 {
		err = fmt.Errorf("control plane errors: create %d, read %d, healthz %d", create.Errors, read.Errors, floor.Errors)
	}
	return create, read, floor, err
}

// Strings formats durations in ms.
func Strings(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond))
	}
	return strings.Join(s, ", ")
}
