package testkit

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// LiveSource returns ffmpeg input arguments for a publisher in real time:
// the shared clip looped and copied (1920x1080), or, without it, a generated
// 640x360 H.264/AAC pattern; and the source's width and height.
func LiveSource(t testing.TB) (args []string, width, height int) {
	t.Helper()
	if clip, ok := SharedClip(t); ok {
		return []string{"-re", "-stream_loop", "-1", "-i", clip, "-c", "copy"}, 1920, 1080
	}
	return []string{
		"-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
	}, 640, 360
}

// FFmpegProc is an ffmpeg process started by a test; it is killed (by its
// PID) at cleanup if still running.
type FFmpegProc struct {
	Cmd *exec.Cmd
	// Out holds its standard output and error.
	Out  *LogBuffer
	done chan struct{}
	err  error
}

// StartFFmpeg starts ffmpeg with args after -hide_banner -nostdin -loglevel error.
func StartFFmpeg(t testing.TB, args ...string) *FFmpegProc {
	t.Helper()
	full := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, args...)
	p := &FFmpegProc{Cmd: exec.Command(FFmpeg(t), full...), Out: &LogBuffer{}, done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("starting ffmpeg: %v", err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.Cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Wait waits up to timeout for ffmpeg to exit and returns its error; it
// fails the test, showing ffmpeg's output, when it is still running.
func (p *FFmpegProc) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("ffmpeg still running after %s; output:\n%s", timeout, p.Out.String())
		return nil
	}
}

// Interrupt stops ffmpeg as a user does (SIGINT: it closes its output
// cleanly) and waits up to 10 s for it to exit.
func (p *FFmpegProc) Interrupt(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGINT); err != nil && p.Running() {
		t.Fatalf("interrupting ffmpeg: %v", err)
	}
	_ = p.Wait(t, 10*time.Second)
}

// Running reports whether ffmpeg has not exited yet.
func (p *FFmpegProc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}
