package mediamtx

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Supervisor runs mediamtx as a child process and restarts it when it dies.
type Supervisor struct {
	Binary     string       // path of the mediamtx executable
	ConfigPath string       // mediamtx.yml, passed as its only argument
	Dir        string       // working directory ("" = ours)
	Logger     *slog.Logger // its own lines and mediamtx's (redacted) go here

	BackoffMin  time.Duration // first restart delay; default 500 ms
	BackoffMax  time.Duration // longest restart delay; default 30 s
	ResetAfter  time.Duration // a child that ran this long restarts after BackoffMin again; default 1 min
	StopTimeout time.Duration // SIGTERM, then SIGKILL after this; default 10 s

	// OnLine, if set, is called with every log line before it is redacted and
	// logged (from the log-reading goroutines).
	OnLine func(Line)
	// OnRestart, if set, is called each time the child is started again after
	// it exited.
	OnRestart func()

	mu    sync.Mutex
	state State
}

// State is the supervisor's view of the child.
type State struct {
	Running    bool
	PID        int
	Generation int       // 1 for the first child, +1 for each (re)start
	Restarts   int       // starts after an unexpected exit
	StartedAt  time.Time // of the current (or last) child
	LastExit   string    // how the last child ended ("" if none yet)
}

// State returns a snapshot of the child's state.
func (s *Supervisor) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Run starts the child and keeps it running until ctx is cancelled, then stops
// it (SIGTERM, SIGKILL after StopTimeout) and returns nil. Start failures are
// logged and retried with the same backoff as exits.
func (s *Supervisor) Run(ctx context.Context) error {
	minB := cmp.Or(s.BackoffMin, 500*time.Millisecond)
	maxB := cmp.Or(s.BackoffMax, 30*time.Second)
	resetAfter := cmp.Or(s.ResetAfter, time.Minute)
	backoff := minB
	for first := true; ; first = false {
		if !first {
			s.mu.Lock()
			s.state.Restarts++
			s.mu.Unlock()
			if s.OnRestart != nil {
				s.OnRestart()
			}
		}
		started := time.Now()
		err := s.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) >= resetAfter {
			backoff = minB
		}
		s.Logger.Warn("mediamtx exited, restarting", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, maxB)
	}
}

// runOnce runs one child until it exits or ctx is cancelled (then stops it).
func (s *Supervisor) runOnce(ctx context.Context) error {
	cmd := exec.Command(s.Binary, s.ConfigPath)
	cmd.Dir = s.Dir
	cmd.Env = childEnv(os.Environ())
	cmd.SysProcAttr = sysProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("piping mediamtx stdout: %w", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("piping mediamtx stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting mediamtx: %w", err)
	}
	s.mu.Lock()
	s.state.Running = true
	s.state.PID = cmd.Process.Pid
	s.state.Generation++
	s.state.StartedAt = time.Now()
	gen := s.state.Generation
	s.mu.Unlock()
	s.Logger.Info("mediamtx started", "pid", cmd.Process.Pid, "generation", gen)

	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); s.fold(stdout) }()
	go func() { defer readers.Done(); s.fold(stderr) }()

	exited := make(chan error, 1)
	go func() {
		readers.Wait() // Wait must not run before the pipes are drained
		exited <- cmd.Wait()
	}()

	var exitErr error
	select {
	case exitErr = <-exited:
	case <-ctx.Done():
		exitErr = s.stop(cmd, exited)
	}

	s.mu.Lock()
	s.state.Running = false
	s.state.PID = 0
	s.state.LastExit = describeExit(exitErr)
	s.mu.Unlock()
	if ctx.Err() != nil {
		s.Logger.Info("mediamtx stopped", "exit", describeExit(exitErr))
		return nil
	}
	return fmt.Errorf("mediamtx exited: %s", describeExit(exitErr))
}

// stop sends SIGTERM, then SIGKILL after StopTimeout, and waits for the exit.
func (s *Supervisor) stop(cmd *exec.Cmd, exited <-chan error) error {
	timeout := cmp.Or(s.StopTimeout, 10*time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.Logger.Warn("signalling mediamtx", "err", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-exited:
		return err
	case <-t.C:
		s.Logger.Warn("mediamtx did not stop in time, killing it", "timeout", timeout)
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			s.Logger.Warn("killing mediamtx", "err", err)
		}
		return <-exited
	}
}

// fold logs every line of r through slog, redacted.
func (s *Supervisor) fold(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := ParseLine(sc.Text())
		if s.OnLine != nil {
			s.OnLine(line)
		}
		s.Logger.Log(context.Background(), line.Level, Redact(line.Message))
	}
	// A too-long line stops the scanner: drain the rest so the child never
	// blocks on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

// childEnv is what mediamtx gets of our environment: an allow-list of the
// process basics (search path, home, locale, time zone, temporary directory,
// CA certificates). mediamtx needs nothing else: its whole configuration is
// the file we write (authHTTPAddress points at the edge's loopback hook, and
// the control API credential is checked there, never passed to the child).
// In particular the edge's secrets (DIONYSIA_EDGE_SECRET, ...) never reach
// it, nor MTX_* variables, which mediamtx would read as overrides of that
// file.
func childEnv(env []string) []string {
	out := make([]string, 0, 8)
	for _, kv := range env {
		name, _, ok := strings.Cut(kv, "=")
		if ok && allowedEnv(name) {
			out = append(out, kv)
		}
	}
	return out
}

func allowedEnv(name string) bool {
	switch name {
	case "PATH", "HOME", "USER", "LOGNAME", "TZ", "TMPDIR", "LANG", "LANGUAGE", "SSL_CERT_FILE", "SSL_CERT_DIR":
		return true
	}
	return strings.HasPrefix(name, "LC_")
}

func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
		}
		return ee.Error()
	}
	return err.Error()
}
