package edge

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// EnvPrefix is the prefix of the edge's environment variables.
const EnvPrefix = "DIONYSIA_EDGE_"

// Config configures an edge. Its zero value means "defaults" for every field
// but Secret, which is required. Load order: defaults → flags/env (BindFlags,
// LoadEnv) → Validate (New calls WithDefaults and Validate).
type Config struct {
	// ID names this edge towards the API; default: the host name.
	ID string
	// APIURL is the management API's base URL (DIONYSIA_API_URL); default
	// http://127.0.0.1:8080.
	APIURL string
	// Secret is the edge↔API shared secret (DIONYSIA_EDGE_SECRET); required,
	// never logged, never written to mediamtx's config.
	Secret string

	// MediaMTXPath is the mediamtx executable; default bin/mediamtx next to our
	// executable (or ../bin/mediamtx), else "mediamtx" from PATH.
	MediaMTXPath string
	// WorkDir holds the generated mediamtx.yml (0600); default
	// $TMPDIR/dionysia-edge-<ID>.
	WorkDir string

	// BindAddress is the host the publisher-facing listeners bind to; "" (the
	// default) means every interface.
	BindAddress string
	// PublicHost is the host name workers and publishers use to reach this edge
	// (EdgeInfo.PublicHost, WebRTC ICE host); default: the host name.
	PublicHost string

	RTMPPort      int // TCP; default 1935
	SRTPort       int // UDP; default 8890
	RTSPPort      int // TCP; default 8554
	WebRTCPort    int // TCP (WHIP); default 8889
	WebRTCUDPPort int // UDP (ICE); default 8189; -1 disables WebRTC (WHIP) altogether

	// HookAddress is the loopback listener mediamtx sends its auth requests to;
	// default 127.0.0.1:9991. Port 0 picks a free port.
	HookAddress string
	// MediaMTXAPIAddress is mediamtx's control API, loopback only; default
	// 127.0.0.1:9997.
	MediaMTXAPIAddress string
	// AdminAddress serves /healthz, /readyz, /metrics and the kick endpoint;
	// default :9990. Port 0 picks a free port.
	AdminAddress string

	PollInterval time.Duration // mediamtx path polling; default 1 s
	SyncInterval time.Duration // live-set sync with the API; default 5 s
	APITimeout   time.Duration // each call to the API; default 3 s
	StopTimeout  time.Duration // SIGTERM → SIGKILL for mediamtx; default 10 s

	RestartBackoffMin time.Duration // default 500 ms
	RestartBackoffMax time.Duration // default 30 s

	// PublisherTimeout is how long a silent publisher is kept (mediamtx
	// readTimeout); default 10 s.
	PublisherTimeout time.Duration

	// MediaMTXLogLevel is error, warn, info (default) or debug.
	MediaMTXLogLevel string
}

// WithDefaults returns c with every unset field set to its default.
func (c Config) WithDefaults() Config {
	host, _ := os.Hostname()
	host = cmp.Or(host, "localhost")
	c.ID = cmp.Or(c.ID, host)
	c.APIURL = cmp.Or(c.APIURL, "http://127.0.0.1:8080")
	c.MediaMTXPath = cmp.Or(c.MediaMTXPath, defaultMediaMTXPath())
	c.WorkDir = cmp.Or(c.WorkDir, filepath.Join(os.TempDir(), "dionysia-edge-"+safeName(c.ID)))
	c.PublicHost = cmp.Or(c.PublicHost, host)
	c.RTMPPort = cmp.Or(c.RTMPPort, 1935)
	c.SRTPort = cmp.Or(c.SRTPort, 8890)
	c.RTSPPort = cmp.Or(c.RTSPPort, 8554)
	c.WebRTCPort = cmp.Or(c.WebRTCPort, 8889)
	c.WebRTCUDPPort = cmp.Or(c.WebRTCUDPPort, 8189)
	c.HookAddress = cmp.Or(c.HookAddress, "127.0.0.1:9991")
	c.MediaMTXAPIAddress = cmp.Or(c.MediaMTXAPIAddress, "127.0.0.1:9997")
	c.AdminAddress = cmp.Or(c.AdminAddress, ":9990")
	c.PollInterval = cmp.Or(c.PollInterval, time.Second)
	c.SyncInterval = cmp.Or(c.SyncInterval, 5*time.Second)
	c.APITimeout = cmp.Or(c.APITimeout, 3*time.Second)
	c.StopTimeout = cmp.Or(c.StopTimeout, 10*time.Second)
	c.RestartBackoffMin = cmp.Or(c.RestartBackoffMin, 500*time.Millisecond)
	c.RestartBackoffMax = cmp.Or(c.RestartBackoffMax, 30*time.Second)
	c.PublisherTimeout = cmp.Or(c.PublisherTimeout, 10*time.Second)
	c.MediaMTXLogLevel = cmp.Or(c.MediaMTXLogLevel, "info")
	return c
}

// Validate checks a config that went through WithDefaults.
func (c Config) Validate() error {
	var errs []error
	if c.Secret == "" {
		errs = append(errs, errors.New("secret is required (DIONYSIA_EDGE_SECRET)"))
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("api url %q must be an absolute http(s) URL", c.APIURL))
	}
	for name, p := range map[string]int{"rtmp": c.RTMPPort, "srt": c.SRTPort, "rtsp": c.RTSPPort, "webrtc": c.WebRTCPort} {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s port must be 1-65535, got %d", name, p))
		}
	}
	if c.WebRTCUDPPort < -1 || c.WebRTCUDPPort > 65535 {
		errs = append(errs, fmt.Errorf("webrtc udp port must be 1-65535 or -1, got %d", c.WebRTCUDPPort))
	}
	for name, a := range map[string]string{"hook address": c.HookAddress, "mediamtx api address": c.MediaMTXAPIAddress} {
		if err := requireLoopback(a); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if _, _, err := net.SplitHostPort(c.AdminAddress); err != nil {
		errs = append(errs, fmt.Errorf("admin address %q: %w", c.AdminAddress, err))
	}
	if c.MediaMTXPath == "" {
		errs = append(errs, errors.New("mediamtx path is required"))
	} else if st, err := os.Stat(c.MediaMTXPath); err != nil {
		errs = append(errs, fmt.Errorf("mediamtx binary: %w", err))
	} else if st.IsDir() || st.Mode()&0o111 == 0 {
		errs = append(errs, fmt.Errorf("mediamtx binary %s is not executable", c.MediaMTXPath))
	}
	for name, d := range map[string]time.Duration{
		"poll interval": c.PollInterval, "sync interval": c.SyncInterval, "api timeout": c.APITimeout,
		"stop timeout": c.StopTimeout, "restart backoff min": c.RestartBackoffMin,
		"restart backoff max": c.RestartBackoffMax, "publisher timeout": c.PublisherTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", name, d))
		}
	}
	if c.PublisherTimeout < time.Second {
		errs = append(errs, fmt.Errorf("publisher timeout must be at least 1s, got %s", c.PublisherTimeout))
	}
	if c.RestartBackoffMax < c.RestartBackoffMin {
		errs = append(errs, errors.New("restart backoff max must not be below min"))
	}
	switch c.MediaMTXLogLevel {
	case "error", "warn", "info", "debug":
	default:
		errs = append(errs, fmt.Errorf("mediamtx log level must be error, warn, info or debug, got %q", c.MediaMTXLogLevel))
	}
	return errors.Join(errs...)
}

// BindFlags registers the edge's flags on fs, with defaults taken from the
// environment (DIONYSIA_EDGE_<NAME>, e.g. DIONYSIA_EDGE_RTMP_PORT; the API URL
// is DIONYSIA_API_URL). Unset flags keep the zero value, which means default.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.ID, "edge-id", env("ID", c.ID), "edge ID reported to the API (default: host name)")
	fs.StringVar(&c.APIURL, "api-url", envOr("DIONYSIA_API_URL", c.APIURL), "management API base URL (env DIONYSIA_API_URL; default http://127.0.0.1:8080)")
	// The secret is taken from the environment only: a flag would show in ps.
	c.Secret = env("SECRET", c.Secret)
	fs.StringVar(&c.MediaMTXPath, "mediamtx", env("MEDIAMTX", c.MediaMTXPath), "mediamtx executable (default: bin/mediamtx next to this binary, else PATH)")
	fs.StringVar(&c.WorkDir, "work-dir", env("WORK_DIR", c.WorkDir), "directory for the generated mediamtx.yml")
	fs.StringVar(&c.BindAddress, "bind", env("BIND", c.BindAddress), "host the RTMP/SRT/RTSP/WebRTC listeners bind to (default: all interfaces)")
	fs.StringVar(&c.PublicHost, "public-host", env("PUBLIC_HOST", c.PublicHost), "host workers and publishers reach this edge by (default: host name)")
	fs.IntVar(&c.RTMPPort, "rtmp-port", envInt("RTMP_PORT", c.RTMPPort), "RTMP port (default 1935)")
	fs.IntVar(&c.SRTPort, "srt-port", envInt("SRT_PORT", c.SRTPort), "SRT UDP port (default 8890)")
	fs.IntVar(&c.RTSPPort, "rtsp-port", envInt("RTSP_PORT", c.RTSPPort), "RTSP port (default 8554)")
	fs.IntVar(&c.WebRTCPort, "webrtc-port", envInt("WEBRTC_PORT", c.WebRTCPort), "WebRTC/WHIP HTTP port (default 8889)")
	fs.IntVar(&c.WebRTCUDPPort, "webrtc-udp-port", envInt("WEBRTC_UDP_PORT", c.WebRTCUDPPort), "WebRTC ICE UDP port, -1 disables WebRTC/WHIP (default 8189)")
	fs.StringVar(&c.HookAddress, "hook-addr", env("HOOK_ADDR", c.HookAddress), "loopback address mediamtx calls for auth (default 127.0.0.1:9991)")
	fs.StringVar(&c.MediaMTXAPIAddress, "mediamtx-api-addr", env("MEDIAMTX_API_ADDR", c.MediaMTXAPIAddress), "loopback address of mediamtx's control API (default 127.0.0.1:9997)")
	fs.StringVar(&c.AdminAddress, "admin-addr", env("ADMIN_ADDR", c.AdminAddress), "address of /healthz, /readyz, /metrics and the kick endpoint (default :9990)")
	fs.DurationVar(&c.PollInterval, "poll-interval", envDuration("POLL_INTERVAL", c.PollInterval), "mediamtx polling interval (default 1s)")
	fs.DurationVar(&c.SyncInterval, "sync-interval", envDuration("SYNC_INTERVAL", c.SyncInterval), "live-set sync interval with the API (default 5s)")
	fs.DurationVar(&c.APITimeout, "api-timeout", envDuration("API_TIMEOUT", c.APITimeout), "timeout of each call to the API (default 3s)")
	fs.DurationVar(&c.StopTimeout, "stop-timeout", envDuration("STOP_TIMEOUT", c.StopTimeout), "SIGTERM to SIGKILL delay for mediamtx (default 10s)")
	fs.DurationVar(&c.PublisherTimeout, "publisher-timeout", envDuration("PUBLISHER_TIMEOUT", c.PublisherTimeout), "drop a publisher silent for this long (default 10s)")
	fs.StringVar(&c.MediaMTXLogLevel, "mediamtx-log-level", env("MEDIAMTX_LOG_LEVEL", c.MediaMTXLogLevel), "mediamtx log level: error, warn, info, debug (default info)")
}

// String shows the config with the secret redacted.
func (c Config) String() string {
	type plain Config // no methods: no recursion into String
	if c.Secret != "" {
		c.Secret = "<redacted>"
	}
	return fmt.Sprintf("%+v", plain(c))
}

// LogValue implements slog.LogValuer, without the secret.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", c.ID),
		slog.String("api_url", c.APIURL),
		slog.String("mediamtx", c.MediaMTXPath),
		slog.String("work_dir", c.WorkDir),
		slog.String("bind", c.BindAddress),
		slog.String("public_host", c.PublicHost),
		slog.Int("rtmp_port", c.RTMPPort),
		slog.Int("srt_port", c.SRTPort),
		slog.Int("rtsp_port", c.RTSPPort),
		slog.Int("webrtc_port", c.WebRTCPort),
		slog.String("hook_addr", c.HookAddress),
		slog.String("mediamtx_api_addr", c.MediaMTXAPIAddress),
		slog.String("admin_addr", c.AdminAddress),
	)
}

func env(name, def string) string { return envOr(EnvPrefix+name, def) }

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(env(name, "")); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(env(name, "")); err == nil {
		return v
	}
	return def
}

func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q must be a loopback IP", addr)
	}
	return nil
}

// defaultMediaMTXPath looks for bin/mediamtx next to our executable (and in
// its parent: bin/dionysia and bin/mediamtx are siblings), then in PATH.
func defaultMediaMTXPath() string {
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		for _, p := range []string{
			filepath.Join(dir, "mediamtx"),
			filepath.Join(dir, "bin", "mediamtx"),
			filepath.Join(dir, "..", "bin", "mediamtx"),
		} {
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p
			}
		}
	}
	if p, err := exec.LookPath("mediamtx"); err == nil {
		return p
	}
	return ""
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}
