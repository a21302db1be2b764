// Package harness brings the whole Dionysia platform up on loopback as real
// processes: a fresh PostgreSQL database, its own Redis, the API, the edge
// (with mediamtx), the router and CPU workers. The end-to-end suite (e2e/)
// and the benchmarks (bench/) both run it, so it reports errors instead of
// failing a test; e2e wraps it for package testing.
//
// It also holds what the router's tests and benchmarks share: the worker's
// origin built and run as a standalone program, a real HLS/DASH tree made by
// ffmpeg, and the closed-loop HTTP load generator.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process whose standard output and error go to a log file.
type Proc struct {
	Name    string
	LogPath string
	Started time.Time
	cmd     *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex
	err     error
}

// StartProc starts bin with args and extra environment (after the parent's)
// in its own process group, so that its children (the edge's mediamtx) stop
// with it. Its output is appended to logDir/name.log.
func StartProc(logDir, name string, env []string, bin string, args ...string) (*Proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating log for %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Proc{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{}), Started: time.Now()}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		err := cmd.Wait()
		_ = f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the process ended (nil while it runs or after a clean exit).
func (p *Proc) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stop sends SIGTERM and waits up to timeout, then kills the process group;
// children that outlived their parent are killed too.
func (p *Proc) Stop(timeout time.Duration) {
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(timeout):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// Kill sends SIGKILL to the process only (as `kill -9 PID` would) and waits.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Tail returns the last n lines of a file.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// GrepLog reports whether a process log holds a line containing s.
func GrepLog(path, s string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			return true
		}
	}
	return false
}

// WaitHTTP polls url until it answers 200. It gives up when timeout passes,
// ctx ends or proc (when not nil) exits, with the end of proc's log.
func WaitHTTP(ctx context.Context, proc *Proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if proc != nil && proc.Exited() {
			return fmt.Errorf("%s exited while waiting for %s:\n%s", proc.Name, url, Tail(proc.LogPath, 30))
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			cancel()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
		} else {
			cancel()
			last = err.Error()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %s", url, timeout, last)
}

// Run runs a command to completion within timeout and returns its combined
// output.
func Run(ctx context.Context, timeout time.Duration, env []string, name string, args ...string) (string, error) {
	var buf bytes.Buffer
	err := run(ctx, timeout, env, &buf, &buf, name, args...)
	return buf.String(), err
}

// RunStdout runs a command to completion within timeout and returns its
// standard output; the error carries its standard error.
func RunStdout(ctx context.Context, timeout time.Duration, env []string, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	if err := run(ctx, timeout, env, &stdout, &stderr, name, args...); err != nil {
		return stdout.String(), fmt.Errorf("%w\n%s", err, stderr.String())
	}
	return stdout.String(), nil
}

func run(ctx context.Context, timeout time.Duration, env []string, stdout, stderr io.Writer, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s", timeout)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}
