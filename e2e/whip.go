package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// WHIPPublisher publishes H.264 and Opus over WebRTC (WHIP), as a browser or
// OBS's WHIP output does: ffmpeg 5.1 cannot. The media are a test pattern
// (constrained baseline H.264, 640x360, 30 fps, a keyframe a second) and a
// stereo 440 Hz tone (Opus, 20 ms frames), encoded by ffmpeg into files and
// sent, looped, in real time.
type WHIPPublisher struct {
	pc       *webrtc.PeerConnection
	resource string // the WHIP session URL (DELETE ends the publish)
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once
}

const whipFPS = 30

// whipMedia encodes the publisher's media once per directory.
func whipMedia(t testing.TB, dir string) (h264, ogg string) {
	t.Helper()
	h264, ogg = filepath.Join(dir, "whip.h264"), filepath.Join(dir, "whip.ogg")
	Run(t, 5*time.Minute, nil, "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=640x360:rate=%d:duration=20", whipFPS),
		"-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast", "-bf", "0", "-g", fmt.Sprint(whipFPS),
		"-x264-params", "repeat-headers=1", "-f", "h264", h264)
	Run(t, 5*time.Minute, nil, "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=20", "-ac", "2",
		"-c:a", "libopus", "-b:a", "64k", "-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", ogg)
	return h264, ogg
}

// PublishWHIP starts publishing to a WHIP endpoint and returns once the
// endpoint answered the offer and ICE connected. Stop (or the test's
// cleanup) ends it with a DELETE.
func PublishWHIP(t testing.TB, endpoint string) *WHIPPublisher {
	t.Helper()
	h264, ogg := whipMedia(t, t.TempDir())
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatalf("creating the peer connection: %v", err)
	}
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
		ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "e2e")
	if err != nil {
		t.Fatalf("creating the video track: %v", err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2}, "audio", "e2e")
	if err != nil {
		t.Fatalf("creating the audio track: %v", err)
	}
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatalf("adding a track: %v", err)
		}
	}
	connected := make(chan struct{})
	var connOnce sync.Once
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateConnected {
			connOnce.Do(func() { close(connected) })
		}
	})
	p := &WHIPPublisher{pc: pc}
	t.Cleanup(func() { p.Stop() })
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatalf("creating the offer: %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatalf("setting the offer: %v", err)
	}
	<-gathered
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewBufferString(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatalf("building the WHIP offer: %v", err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("posting the WHIP offer: %v", err)
	}
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP offer: %s: %s", res.Status, answer)
	}
	loc, err := res.Location()
	if err != nil {
		t.Fatalf("WHIP answer without a Location: %v", err)
	}
	p.resource = loc.String()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatalf("setting the WHIP answer: %v", err)
	}
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		t.Fatal("WHIP: ICE did not connect within 30 s")
	}
	sendCtx, stop := context.WithCancel(context.Background())
	p.cancel = stop
	p.wg.Add(2)
	go func() { defer p.wg.Done(); sendLooped(sendCtx, t, video, h264, sendH264) }()
	go func() { defer p.wg.Done(); sendLooped(sendCtx, t, audio, ogg, sendOpus) }()
	return p
}

// Stop ends the publish cleanly: the WHIP DELETE, then the peer connection
// is closed. It returns the DELETE's status code (0 when it failed or was
// done already).
func (p *WHIPPublisher) Stop() int {
	code := 0
	p.once.Do(func() {
		if p.cancel != nil {
			p.cancel()
		}
		p.wg.Wait()
		if p.resource != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if req, err := http.NewRequestWithContext(ctx, http.MethodDelete, p.resource, nil); err == nil {
				if res, err := http.DefaultClient.Do(req); err == nil {
					code = res.StatusCode
					res.Body.Close()
				}
			}
		}
		_ = p.pc.Close()
	})
	return code
}

type sendFunc func(ctx context.Context, tr *webrtc.TrackLocalStaticSample, f *os.File) error

// sendLooped sends a file with send until ctx ends, from the start again at
// its end.
func sendLooped(ctx context.Context, t testing.TB, tr *webrtc.TrackLocalStaticSample, path string, send sendFunc) {
	for ctx.Err() == nil {
		f, err := os.Open(path)
		if err != nil {
			t.Errorf("opening %s: %v", path, err)
			return
		}
		err = send(ctx, tr, f)
		f.Close()
		if err != nil && ctx.Err() == nil {
			t.Errorf("sending %s: %v", filepath.Base(path), err)
			return
		}
	}
}

// sendH264 sends the access units of an Annex-B file at whipFPS.
func sendH264(ctx context.Context, tr *webrtc.TrackLocalStaticSample, f *os.File) error {
	r, err := h264reader.NewReader(f)
	if err != nil {
		return fmt.Errorf("reading h264: %w", err)
	}
	frame := time.Second / whipFPS
	tick := time.NewTicker(frame)
	defer tick.Stop()
	var au []byte
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading h264: %w", err)
		}
		au = append(au, 0, 0, 0, 1)
		au = append(au, nal.Data...)
		if nal.UnitType != h264reader.NalUnitTypeCodedSliceNonIdr && nal.UnitType != h264reader.NalUnitTypeCodedSliceIdr {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := tr.WriteSample(media.Sample{Data: au, Duration: frame}); err != nil {
			return fmt.Errorf("writing video: %w", err)
		}
		au = nil
	}
}

// sendOpus sends the Opus packets of an Ogg file (one 20 ms packet a page).
func sendOpus(ctx context.Context, tr *webrtc.TrackLocalStaticSample, f *os.File) error {
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		return fmt.Errorf("reading ogg: %w", err)
	}
	const frame = 20 * time.Millisecond
	tick := time.NewTicker(frame)
	defer tick.Stop()
	var last uint64
	for {
		page, head, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading ogg: %w", err)
		}
		if head.GranulePosition == 0 || head.GranulePosition == last {
			continue // the Opus headers
		}
		last = head.GranulePosition
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := tr.WriteSample(media.Sample{Data: page, Duration: frame}); err != nil {
			return fmt.Errorf("writing audio: %w", err)
		}
	}
}
