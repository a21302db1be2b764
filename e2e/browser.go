package e2e

import (
	"context"
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
	chromium := testkit.Chromium(t)
	// Chromium's helper processes may still write into the profile for a
	// moment after the browser is gone, so the directory is removed here
	// with retries rather than by t.TempDir's strict cleanup.
	profile, err := os.MkdirTemp("", "dionysia-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for range 20 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
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
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Run(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s in Chromium: %v", url, err)
	}
	var st PlayerState
	start := -1.0
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := chromedp.Run(bctx, chromedp.Evaluate(readPlayer, &st)); err != nil {
			t.Fatalf("reading the player state: %v", err)
		}
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
	var png []byte
	if err := chromedp.Run(bctx, chromedp.CaptureScreenshot(&png)); err == nil {
		shot := filepath.Join(logDir, name+".png")
		_ = os.WriteFile(shot, png, 0o644)
		t.Logf("%s: screenshot %s", name, shot)
	}
	if start >= 0 {
		st.CurrentTime -= start // report the time played since the first frame
	}
	return st
}
