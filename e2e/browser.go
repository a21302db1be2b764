package e2e

import (
	"context"
	"fmt"
	"github.com/dionysia/dionysia/pkg/testkit"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// PlayerState is what the preview page reports in window.dionysiaPlayer.
type PlayerState struct {
	Format       string   `json:"format"`
	State        string   `json:"state"`
	CurrentTime  float64  `json:"currentTime"`
	Errors       []string `json:"errors"`
	Levels       int      `json:"levels"`
	CurrentLevel int      `json:"currentLevel"`
	Latency      *float64 `json:"latency"`
}

const readPlayer = `(() => { const p = window.dionysiaPlayer; if (!p) return {state: "no player"};
  return {format: p.format, state: p.state, currentTime: p.currentTime(), errors: p.errors,
          levels: p.levels.length, currentLevel: p.currentLevel, latency: p.latency}; })()`

// Play opens url (the preview page) in headless Chromium (Debian's, started
// by the test) and waits until the video's currentTime advanced by at least
// seconds past the first frame, or a fatal player error, or timeout. It saves
// a screenshot next to the process logs and returns the last state.
func Play(t testing.TB, logDir, name, url string, seconds float64, timeout time.Duration) PlayerState {
	t.Helper()
	b := openChromium(t, url, timeout+30*time.Second)
	defer b.close()
	st, start := b.waitPlayed(t, seconds, timeout)
	b.screenshot(t, logDir, name)
	if start >= 0 {
		st.CurrentTime -= start // report the time played since the first frame
	}
	return st
}

// browser is one headless Chromium with one page open.
type browser struct {
	ctx   context.Context
	close func()
}

// openChromium starts Debian's Chromium (found by testkit) on a fresh
// profile and opens url. The browser lives until close or lifetime.
func openChromium(t testing.TB, url string, lifetime time.Duration) *browser {
	t.Helper()
	chromium := testkit.Chromium(t)
	// Chromium's helper processes may still write into the profile for a
	// moment after the browser is gone, so the directory is removed here
	// with retries rather than by t.TempDir's strict cleanup.
	profile, err := os.MkdirTemp("", "dionysia-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	}
	ctx, cancel := context.WithTimeout(context.Background(), lifetime)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	b := &browser{ctx: bctx, close: func() {
		bcancel()
		acancel()
		cancel()
		for range 20 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}}
	if err := chromedp.Run(bctx, chromedp.Navigate(url)); err != nil {
		b.close()
		t.Fatalf("opening %s in Chromium: %v", url, err)
	}
	return b
}

// state reads window.dionysiaPlayer.
func (b *browser) state(t testing.TB) PlayerState {
	t.Helper()
	var st PlayerState
	if err := chromedp.Run(b.ctx, chromedp.Evaluate(readPlayer, &st)); err != nil {
		t.Fatalf("reading the player state: %v", err)
	}
	return st
}

// waitPlayed waits until the video's currentTime advanced by at least
// seconds past the first frame, a fatal player error, or timeout. It returns
// the last state and the currentTime of the first frame (-1: none).
func (b *browser) waitPlayed(t testing.TB, seconds float64, timeout time.Duration) (PlayerState, float64) {
	t.Helper()
	var st PlayerState
	start := -1.0
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st = b.state(t)
		if st.State == "error" {
			break
		}
		if st.State == "playing" && start < 0 {
			start = st.CurrentTime
		}
		if start >= 0 && st.CurrentTime-start >= seconds {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return st, start
}

// screenshot saves the page next to the process logs.
func (b *browser) screenshot(t testing.TB, logDir, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot(&png)); err == nil {
		shot := filepath.Join(logDir, name+".png")
		_ = os.WriteFile(shot, png, 0o644)
		t.Logf("%s: screenshot %s", name, shot)
	}
}

// videoState is the <video> element's own view.
type videoState struct {
	CurrentTime   float64   `json:"currentTime"`
	Duration      float64   `json:"duration"`
	Ended         bool      `json:"ended"`
	Paused        bool      `json:"paused"`
	Seeking       bool      `json:"seeking"`
	Seekable      []float64 `json:"seekable"` // start and end of the first seekable range
	ReadyState    int       `json:"readyState"`
	PlayerState   string    `json:"playerState"`
	PlayerErrors  []string  `json:"playerErrors"`
	VideoWidth    int       `json:"videoWidth"`
	DroppedFrames int       `json:"droppedFrames"`
}

const readVideo = `(() => { const v = document.querySelector("video"); const p = window.dionysiaPlayer || {};
  if (!v) return {playerState: "no video"};
  const s = v.seekable.length ? [v.seekable.start(0), v.seekable.end(v.seekable.length-1)] : [];
  return {currentTime: v.currentTime, duration: isFinite(v.duration) ? v.duration : -1, ended: v.ended,
          paused: v.paused, seeking: v.seeking, seekable: s, readyState: v.readyState,
          playerState: p.state || "", playerErrors: p.errors || [], videoWidth: v.videoWidth}; })()`

func (b *browser) video(t testing.TB) videoState {
	t.Helper()
	var v videoState
	if err := chromedp.Run(b.ctx, chromedp.Evaluate(readVideo, &v)); err != nil {
		t.Fatalf("reading the video element: %v", err)
	}
	return v
}

// seek sets the video's currentTime (and makes sure it plays).
func (b *browser) seek(t testing.TB, to float64) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const v = document.querySelector("video"); v.currentTime = %f; v.play().catch(() => {}); return true; })()`, to)
	var ok bool
	if err := chromedp.Run(b.ctx, chromedp.Evaluate(js, &ok)); err != nil {
		t.Fatalf("seeking to %.1f s: %v", to, err)
	}
}

// SeekResult is where a seek landed and whether the video played on from it.
type SeekResult struct {
	Target, Landed, PlayedTo float64
	Ended                    bool
}

// seekAndPlay seeks to `to` and waits until the video plays at least `play`
// seconds from there (or ended, when to is near the end). It fails the test
// on a player error or when the deadline passes.
func (b *browser) seekAndPlay(t testing.TB, to, play float64, timeout time.Duration) SeekResult {
	t.Helper()
	b.seek(t, to)
	res := SeekResult{Target: to, Landed: -1}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		v := b.video(t)
		if v.PlayerState == "error" {
			t.Fatalf("player error after seeking to %.1f s: %v", to, v.PlayerErrors)
		}
		if !v.Seeking && res.Landed < 0 && v.ReadyState >= 2 {
			res.Landed = v.CurrentTime
		}
		res.PlayedTo, res.Ended = v.CurrentTime, v.Ended
		if res.Landed >= 0 && (v.Ended || v.CurrentTime-res.Landed >= play) {
			return res
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("after seeking to %.1f s the video did not play %.1f s within %s: %+v (last %+v)", to, play, timeout, res, b.video(t))
	return res
}

// playToEnd seeks to `from` and waits until the video ended, or stands within
// half a second of its end (a player may stop a few frames short when one
// track ends before the other; the result says whether "ended" fired). It
// fails the test on a player error or at the deadline.
func (b *browser) playToEnd(t testing.TB, from float64, timeout time.Duration) SeekResult {
	t.Helper()
	b.seek(t, from)
	res := SeekResult{Target: from, Landed: -1}
	var nearSince time.Time
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		v := b.video(t)
		if v.PlayerState == "error" {
			t.Fatalf("player error while playing to the end: %v", v.PlayerErrors)
		}
		if !v.Seeking && res.Landed < 0 && v.ReadyState >= 2 {
			res.Landed = v.CurrentTime
		}
		res.PlayedTo, res.Ended = v.CurrentTime, v.Ended
		if v.Ended {
			return res
		}
		if v.Duration > 0 && v.CurrentTime >= v.Duration-0.5 {
			if nearSince.IsZero() {
				nearSince = time.Now()
			} else if time.Since(nearSince) > 3*time.Second {
				return res
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the video did not reach its end within %s of seeking to %.1f s: %+v (last %+v)", timeout, from, res, b.video(t))
	return res
}
