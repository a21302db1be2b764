package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FindWeed returns the pinned SeaweedFS build: bin/weed of the repository,
// else weed on PATH.
func FindWeed(root string) (string, error) {
	p := filepath.Join(root, "bin", "weed")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if lp, err := exec.LookPath("weed"); err == nil {
		return lp, nil
	}
	return "", fmt.Errorf("%s is missing and weed is not on PATH", p)
}

// Weed returns the SeaweedFS binary, or fails (CI) or skips the test.
func Weed(t testing.TB) string {
	t.Helper()
	p, err := FindWeed(RepoRoot(t))
	Require(t, err, "SeaweedFS (weed)", "deploy/local/setup.sh weed (or deploy/local/just setup)")
	return p
}

// S3Options shape a SeaweedFS started by StartSeaweedFS.
type S3Options struct {
	// Weed is the binary (FindWeed). Required.
	Weed string
	// Dir holds all its data; a restart on the same Dir keeps the objects.
	// Required.
	Dir string
	// Log receives its output. Nil discards it.
	Log io.Writer
	// Bucket is created at the first start (default "dionysia").
	Bucket string
	// AccessKey and SecretKey are the one identity the server accepts
	// (default: random). Anonymous requests are refused.
	AccessKey, SecretKey string
	// Ports: zero picks free ones (FindFreePort).
	S3Port, FilerPort, MasterPort, VolumePort int
	// ReadyTimeout bounds each Start's wait for S3 to serve (default 90 s:
	// weed answers in ~4 s on an idle machine, much later on a busy one).
	ReadyTimeout time.Duration
}

// S3Server is a SeaweedFS `weed server -s3` on loopback: the real S3 server
// the storage tests and benchmarks run against. Its S3 API serves one
// identity (AccessKey/SecretKey, signature v4) and one bucket (Bucket).
type S3Server struct {
	// Endpoint is the S3 API's base URL, "http://127.0.0.1:PORT".
	Endpoint string
	// Bucket exists from the first Start on.
	Bucket string
	// Region is the region requests are signed for.
	Region string
	// AccessKey and SecretKey authenticate requests.
	AccessKey, SecretKey string
	// Dir is the data directory.
	Dir string

	opts    S3Options
	args    []string
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	created bool
}

// SeaweedFS starts a SeaweedFS for the test in a fresh t.TempDir(), with a
// bucket and an access key, and stops it at cleanup. Its output is shown
// (its last 200 lines) when the test fails. It fails (CI) or skips the test
// when weed is missing (deploy/local/setup.sh weed).
func SeaweedFS(t testing.TB) *S3Server {
	t.Helper()
	weed := Weed(t)
	logs := &LogBuffer{}
	s, err := StartSeaweedFS(context.Background(), S3Options{Weed: weed, Dir: t.TempDir(), Log: logs})
	t.Cleanup(func() {
		if s != nil {
			s.Stop()
		}
		if t.Failed() {
			lines := strings.Split(strings.TrimRight(logs.String(), "\n"), "\n")
			t.Logf("last %d lines of SeaweedFS's output:\n%s", min(len(lines), 200), strings.Join(lines[max(len(lines)-200, 0):], "\n"))
		}
	})
	if err != nil {
		t.Fatalf("starting SeaweedFS: %v", err)
	}
	return s
}

// StartSeaweedFS starts weed with opts and waits until its S3 API serves
// the bucket (created at this first start). Stop it with Stop.
func StartSeaweedFS(ctx context.Context, opts S3Options) (*S3Server, error) {
	if opts.Weed == "" || opts.Dir == "" {
		return nil, errors.New("S3Options: Weed and Dir are required")
	}
	if opts.Bucket == "" {
		opts.Bucket = "dionysia"
	}
	if opts.AccessKey == "" {
		opts.AccessKey = "AK" + strings.ToUpper(randomHex(9))
	}
	if opts.SecretKey == "" {
		opts.SecretKey = randomHex(20)
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 90 * time.Second
	}
	// weed listens on each HTTP port and on a gRPC port for each of the four
	// services (it would pick HTTP port + 10000, which nothing reserved):
	// every one of the eight is drawn free and passed explicitly.
	ports := make([]int, 8)
	for i, p := range []int{opts.S3Port, opts.FilerPort, opts.MasterPort, opts.VolumePort, 0, 0, 0, 0} {
		if p == 0 {
			var err error
			if p, err = FindFreePort(); err != nil {
				return nil, err
			}
		}
		ports[i] = p
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	config := filepath.Join(opts.Dir, "s3.json")
	identity := fmt.Sprintf(`{"identities":[{"name":"admin","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]}]}`,
		opts.AccessKey, opts.SecretKey)
	if err := os.WriteFile(config, []byte(identity), 0o600); err != nil {
		return nil, err
	}
	data := filepath.Join(opts.Dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	s := &S3Server{
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		Bucket:   opts.Bucket, Region: "us-east-1",
		AccessKey: opts.AccessKey, SecretKey: opts.SecretKey, Dir: opts.Dir,
		opts: opts,
		args: []string{
			"server", "-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
			"-s3", "-s3.config=" + config,
			"-s3.port=" + strconv.Itoa(ports[0]), "-s3.port.grpc=" + strconv.Itoa(ports[4]),
			// Its Iceberg and Lance catalogue servers default to fixed
			// ports (8181, 9101): off, so that tests can run side by side.
			"-s3.port.iceberg=0", "-s3.port.lance=0",
			// A missing bucket must stay missing, as on a real service.
			"-s3.autoCreateBucket=false",
			"-filer.port=" + strconv.Itoa(ports[1]), "-filer.port.grpc=" + strconv.Itoa(ports[5]),
			"-master.port=" + strconv.Itoa(ports[2]), "-master.port.grpc=" + strconv.Itoa(ports[6]),
			"-volume.port=" + strconv.Itoa(ports[3]), "-volume.port.grpc=" + strconv.Itoa(ports[7]),
			"-master.telemetry=false",
			// Small volumes: a test writes megabytes, not the 30 GB default.
			"-master.volumeSizeLimitMB=64", "-volume.max=32",
		},
	}
	if err := s.Start(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// URL is the storage URL (DIONYSIA_STORAGE_URL) of the bucket, with no prefix.
func (s *S3Server) URL() string { return s.PrefixURL("") }

// PrefixURL is the storage URL of prefix ("" or "a/b") in the bucket.
func (s *S3Server) PrefixURL(prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&region=%s", s.Bucket, strings.Trim(prefix, "/"), s.Endpoint, s.Region)
}

// Env is the environment that points a Dionysia process at the bucket:
// DIONYSIA_STORAGE_URL and the two credential variables.
func (s *S3Server) Env() []string {
	return []string{
		"DIONYSIA_STORAGE_URL=" + s.URL(),
		"DIONYSIA_STORAGE_ACCESS_KEY_ID=" + s.AccessKey,
		"DIONYSIA_STORAGE_SECRET_ACCESS_KEY=" + s.SecretKey,
	}
}

// Start starts weed (again, after Stop: same directory and ports, so the
// objects stored before are there) and waits until its S3 API serves the
// bucket, up to S3Options.ReadyTimeout.
func (s *S3Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("SeaweedFS is running already")
	}
	cmd := exec.Command(s.opts.Weed, s.args...)
	cmd.Dir = s.Dir
	out := s.opts.Log
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("starting %s: %w", s.opts.Weed, err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Unlock()
	return s.waitReady(ctx, done)
}

// waitReady waits until the bucket exists (creating it at the first start)
// and a write succeeds: the filer and a volume server are up, not only the
// S3 listener. The probe object goes to a bucket of its own, so the tests'
// bucket holds only what they put there.
func (s *S3Server) waitReady(ctx context.Context, exited chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadyTimeout)
	defer cancel()
	probe := s.Bucket + "-ready"
	var last error
	for {
		last = s.ready(ctx, probe)
		if last == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("weed exited before its S3 API served (last: %v)", last)
		case <-ctx.Done():
			return fmt.Errorf("SeaweedFS's S3 API at %s not ready after %s: %v", s.Endpoint, s.opts.ReadyTimeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s *S3Server) ready(ctx context.Context, probe string) error {
	if !s.created {
		for _, b := range []string{s.Bucket, probe} {
			if err := s.do(ctx, http.MethodPut, "/"+b, nil, http.StatusOK, http.StatusConflict); err != nil {
				return fmt.Errorf("creating bucket %s: %w", b, err)
			}
		}
		s.created = true
	}
	if err := s.do(ctx, http.MethodHead, "/"+s.Bucket, nil, http.StatusOK); err != nil {
		return fmt.Errorf("bucket %s: %w", s.Bucket, err)
	}
	if err := s.do(ctx, http.MethodPut, "/"+probe+"/probe", []byte("ready"), http.StatusOK); err != nil {
		return fmt.Errorf("writing a probe object: %w", err)
	}
	return nil
}

// do sends a signed request and checks its status.
func (s *S3Server) do(ctx context.Context, method, path string, body []byte, want ...int) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := s.NewRequest(rctx, method, path, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	for _, w := range want {
		if resp.StatusCode == w {
			return nil
		}
	}
	return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, bytes.TrimSpace(msg))
}

// NewRequest returns a request to the S3 API, path being "/bucket[/key]"
// (keys of unreserved characters and '/', as the tests use), signed with
// signature v4 for the server's identity with an unsigned payload: what an
// SDK-less client sends (the benchmarks' reference).
func (s *S3Server) NewRequest(ctx context.Context, method, path string, body io.Reader, size int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.Endpoint+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil && size >= 0 {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	SignS3(req, s.Region, s.AccessKey, s.SecretKey, time.Now())
	return req, nil
}

// Stop stops weed: SIGTERM, then SIGKILL after 10 s (weed takes a few
// seconds to exit). The data stays in Dir for Start. Stop is a no-op when
// it is not running.
func (s *S3Server) Stop() { s.stop(10 * time.Second) }

// Kill stops weed at once (SIGKILL), as a crash would.
func (s *S3Server) Kill() { s.stop(0) }

// stop sends SIGTERM and waits up to grace (none: SIGKILL at once), then kills.
func (s *S3Server) stop(grace time.Duration) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	if grace > 0 {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			return
		case <-time.After(grace):
		}
	}
	_ = cmd.Process.Kill()
	<-done
}

// Running reports whether weed is running.
func (s *S3Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}
