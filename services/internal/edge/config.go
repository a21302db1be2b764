package edge

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/spf13/pflag"
)

// Settings of `dionysia edge` (the API URL and the secret are shared: package conf).
var (
	VarID               = conf.Var{Flag: "id", Env: "DIONYSIA_EDGE_ID"}
	VarMediaMTX         = conf.Var{Flag: "mediamtx", Env: "DIONYSIA_EDGE_MEDIAMTX"}
	VarWorkDir          = conf.Var{Flag: "work-dir", Env: "DIONYSIA_EDGE_WORK_DIR"}
	VarBind             = conf.Var{Flag: "bind", Env: "DIONYSIA_EDGE_BIND"}
	VarAdvertiseHost    = conf.Var{Flag: "advertise-host", Env: "DIONYSIA_EDGE_ADVERTISE_HOST"}
	VarRTMPPort         = conf.Var{Flag: "rtmp-port", Env: "DIONYSIA_EDGE_RTMP_PORT"}
	VarSRTPort          = conf.Var{Flag: "srt-port", Env: "DIONYSIA_EDGE_SRT_PORT"}
	VarRTSPPort         = conf.Var{Flag: "rtsp-port", Env: "DIONYSIA_EDGE_RTSP_PORT"}
	VarWebRTCPort       = conf.Var{Flag: "webrtc-port", Env: "DIONYSIA_EDGE_WEBRTC_PORT"}
	VarWebRTCUDPPort    = conf.Var{Flag: "webrtc-udp-port", Env: "DIONYSIA_EDGE_WEBRTC_UDP_PORT"}
	VarHookAddr         = conf.Var{Flag: "hook-addr", Env: "DIONYSIA_EDGE_HOOK_ADDR"}
	VarMediaMTXAPIAddr  = conf.Var{Flag: "mediamtx-api-addr", Env: "DIONYSIA_EDGE_MEDIAMTX_API_ADDR"}
	VarAdminAddr        = conf.Var{Flag: "admin-addr", Env: "DIONYSIA_EDGE_ADMIN_ADDR"}
	VarPollInterval     = conf.Var{Flag: "poll-interval", Env: "DIONYSIA_EDGE_POLL_INTERVAL"}
	VarSyncInterval     = conf.Var{Flag: "sync-interval", Env: "DIONYSIA_EDGE_SYNC_INTERVAL"}
	VarAPITimeout       = conf.Var{Flag: "api-timeout", Env: "DIONYSIA_EDGE_API_TIMEOUT"}
	VarStopTimeout      = conf.Var{Flag: "stop-timeout", Env: "DIONYSIA_EDGE_STOP_TIMEOUT"}
	VarPublisherTimeout = conf.Var{Flag: "publisher-timeout", Env: "DIONYSIA_EDGE_PUBLISHER_TIMEOUT"}
	VarMediaMTXLogLevel = conf.Var{Flag: "mediamtx-log-level", Env: "DIONYSIA_EDGE_MEDIAMTX_LOG_LEVEL"}
)

// Secrets are the edge's environment-only settings.
var Secrets = []conf.Var{conf.EdgeSecret}

// Defaults of the listeners. The publisher-facing ones (RTMP, SRT, RTSP,
// WebRTC) bind every interface unless Bind says otherwise; the others stay
// on loopback.
const (
	DefaultRTMPPort           = 1935
	DefaultSRTPort            = 8890
	DefaultRTSPPort           = 8554
	DefaultWebRTCPort         = 8889
	DefaultWebRTCUDPPort      = 8189
	DefaultHookAddress        = "127.0.0.1:9991"
	DefaultMediaMTXAPIAddress = "127.0.0.1:9997"
	DefaultAdminAddress       = "127.0.0.1:9990"
)

// Config configures an edge. Its zero value means "defaults" for every field
// but Secret, which is required. Load order: defaults → flags/env
// (RegisterFlags, conf.ApplyEnv, LoadSecrets) → Validate (New calls
// WithDefaults and Validate).
type Config struct {
	// ID names this edge towards the API; default: the host name.
	ID string
	// APIURL is the management API's base URL (DIONYSIA_API_URL); default
	// conf.DefaultAPIURL.
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
	// AdvertiseHost is the host name the workers read streams from and the
	// API sends kicks to (EdgeInfo.PublicHost); it is also mediamtx's extra
	// WebRTC ICE host. Default: the host name. What publishers are told is
	// the API's setting (DIONYSIA_PUBLIC_INGEST_HOST).
	AdvertiseHost string

	RTMPPort      int // TCP; default DefaultRTMPPort
	SRTPort       int // UDP; default DefaultSRTPort
	RTSPPort      int // TCP; default DefaultRTSPPort
	WebRTCPort    int // TCP (WHIP); default DefaultWebRTCPort
	WebRTCUDPPort int // UDP (ICE); default DefaultWebRTCUDPPort; -1 disables WebRTC (WHIP) altogether

	// HookAddress is the loopback listener mediamtx sends its auth requests to;
	// default DefaultHookAddress. Port 0 picks a free port.
	HookAddress string
	// MediaMTXAPIAddress is mediamtx's control API, loopback only; default
	// DefaultMediaMTXAPIAddress.
	MediaMTXAPIAddress string
	// AdminAddress serves /healthz, /readyz, /metrics and the kick endpoint;
	// default DefaultAdminAddress (loopback: set it to 0.0.0.0:9990 when the
	// API runs on another host). Port 0 picks a free port.
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
	c.APIURL = cmp.Or(c.APIURL, conf.DefaultAPIURL)
	c.MediaMTXPath = cmp.Or(c.MediaMTXPath, defaultMediaMTXPath())
	c.WorkDir = cmp.Or(c.WorkDir, filepath.Join(os.TempDir(), "dionysia-edge-"+safeName(c.ID)))
	c.AdvertiseHost = cmp.Or(c.AdvertiseHost, host)
	c.RTMPPort = cmp.Or(c.RTMPPort, DefaultRTMPPort)
	c.SRTPort = cmp.Or(c.SRTPort, DefaultSRTPort)
	c.RTSPPort = cmp.Or(c.RTSPPort, DefaultRTSPPort)
	c.WebRTCPort = cmp.Or(c.WebRTCPort, DefaultWebRTCPort)
	c.WebRTCUDPPort = cmp.Or(c.WebRTCUDPPort, DefaultWebRTCUDPPort)
	c.HookAddress = cmp.Or(c.HookAddress, DefaultHookAddress)
	c.MediaMTXAPIAddress = cmp.Or(c.MediaMTXAPIAddress, DefaultMediaMTXAPIAddress)
	c.AdminAddress = cmp.Or(c.AdminAddress, DefaultAdminAddress)
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

// Validate checks a config that went through WithDefaults. Each error names
// the setting's variable, its flag and the bad value.
func (c Config) Validate() error {
	errs := []error{
		conf.Required(conf.EdgeSecret, c.Secret),
		conf.HTTPURL(conf.APIURL, c.APIURL),
		conf.Host(VarAdvertiseHost, c.AdvertiseHost),
		conf.Port(VarRTMPPort, c.RTMPPort),
		conf.Port(VarSRTPort, c.SRTPort),
		conf.Port(VarRTSPPort, c.RTSPPort),
		conf.Port(VarWebRTCPort, c.WebRTCPort),
		conf.Loopback(VarHookAddr, c.HookAddress),
		conf.Loopback(VarMediaMTXAPIAddr, c.MediaMTXAPIAddress),
		conf.HostPort(VarAdminAddr, c.AdminAddress),
		conf.Positive(VarPollInterval, c.PollInterval),
		conf.Positive(VarSyncInterval, c.SyncInterval),
		conf.Positive(VarAPITimeout, c.APITimeout),
		conf.Positive(VarStopTimeout, c.StopTimeout),
		conf.Range(VarPublisherTimeout, c.PublisherTimeout, time.Second, time.Hour),
		conf.OneOf(VarMediaMTXLogLevel, c.MediaMTXLogLevel, "error", "warn", "info", "debug"),
	}
	if c.BindAddress != "" {
		errs = append(errs, conf.Host(VarBind, c.BindAddress))
	}
	if c.WebRTCUDPPort != -1 {
		if err := conf.Port(VarWebRTCUDPPort, c.WebRTCUDPPort); err != nil {
			errs = append(errs, VarWebRTCUDPPort.Invalid(c.WebRTCUDPPort, "must be a port number (1-65535), or -1 to disable WebRTC"))
		}
	}
	if c.MediaMTXPath == "" {
		errs = append(errs, fmt.Errorf("%s: no mediamtx binary next to this one nor in PATH: set it", VarMediaMTX))
	} else if st, err := os.Stat(c.MediaMTXPath); err != nil {
		errs = append(errs, VarMediaMTX.Invalid(c.MediaMTXPath, "mediamtx binary: %v", err))
	} else if st.IsDir() || st.Mode()&0o111 == 0 {
		errs = append(errs, VarMediaMTX.Invalid(c.MediaMTXPath, "mediamtx binary is not executable"))
	}
	if c.RestartBackoffMin <= 0 || c.RestartBackoffMax < c.RestartBackoffMin {
		errs = append(errs, fmt.Errorf("restart backoff: min %s must be positive and not above max %s", c.RestartBackoffMin, c.RestartBackoffMax))
	}
	return errors.Join(errs...)
}

// RegisterFlags binds the edge's settings to flags on fs, each tied to its
// variable (DIONYSIA_EDGE_<NAME>, e.g. DIONYSIA_EDGE_RTMP_PORT; the API URL is
// the shared DIONYSIA_API_URL) for conf.ApplyEnv. Unset flags keep the zero
// value, which means default.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	f := conf.On(fs)
	f.String(&c.ID, VarID, c.ID, "edge ID reported to the API (default: host name)")
	f.String(&c.APIURL, conf.APIURL, c.APIURL, "management API base URL (default "+conf.DefaultAPIURL+")")
	f.String(&c.MediaMTXPath, VarMediaMTX, c.MediaMTXPath, "mediamtx executable (default: bin/mediamtx next to this binary, else PATH)")
	f.String(&c.WorkDir, VarWorkDir, c.WorkDir, "directory for the generated mediamtx.yml (default $TMPDIR/dionysia-edge-<id>)")
	f.String(&c.BindAddress, VarBind, c.BindAddress, "host the RTMP/SRT/RTSP/WebRTC listeners bind to (default: all interfaces)")
	f.String(&c.AdvertiseHost, VarAdvertiseHost, c.AdvertiseHost, "host workers read streams from and the API kicks by; also the WebRTC ICE host (default: host name)")
	f.Port(&c.RTMPPort, VarRTMPPort, c.RTMPPort, "RTMP port (default 1935)")
	f.Port(&c.SRTPort, VarSRTPort, c.SRTPort, "SRT UDP port (default 8890)")
	f.Port(&c.RTSPPort, VarRTSPPort, c.RTSPPort, "RTSP port (default 8554)")
	f.Port(&c.WebRTCPort, VarWebRTCPort, c.WebRTCPort, "WebRTC/WHIP HTTP port (default 8889)")
	f.Int(&c.WebRTCUDPPort, VarWebRTCUDPPort, c.WebRTCUDPPort, "WebRTC ICE UDP port, -1 disables WebRTC/WHIP (default 8189)")
	f.String(&c.HookAddress, VarHookAddr, c.HookAddress, "loopback address mediamtx calls for auth (default "+DefaultHookAddress+")")
	f.String(&c.MediaMTXAPIAddress, VarMediaMTXAPIAddr, c.MediaMTXAPIAddress, "loopback address of mediamtx's control API (default "+DefaultMediaMTXAPIAddress+")")
	f.String(&c.AdminAddress, VarAdminAddr, c.AdminAddress, "address of /healthz, /readyz, /metrics and the kick endpoint (default "+DefaultAdminAddress+")")
	f.Duration(&c.PollInterval, VarPollInterval, c.PollInterval, "mediamtx polling interval (default 1s)")
	f.Duration(&c.SyncInterval, VarSyncInterval, c.SyncInterval, "live-set sync interval with the API (default 5s)")
	f.Duration(&c.APITimeout, VarAPITimeout, c.APITimeout, "timeout of each call to the API (default 3s)")
	f.Duration(&c.StopTimeout, VarStopTimeout, c.StopTimeout, "SIGTERM to SIGKILL delay for mediamtx (default 10s)")
	f.Duration(&c.PublisherTimeout, VarPublisherTimeout, c.PublisherTimeout, "drop a publisher silent for this long (default 10s)")
	f.String(&c.MediaMTXLogLevel, VarMediaMTXLogLevel, c.MediaMTXLogLevel, "mediamtx log level: error, warn, info, debug (default info)")
}

// LoadSecrets reads the secret from the environment (lookup is os.LookupEnv
// in production): a flag would show in ps.
func (c *Config) LoadSecrets(lookup func(string) (string, bool)) {
	c.Secret = conf.Secret(lookup, conf.EdgeSecret)
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
		slog.String("advertise_host", c.AdvertiseHost),
		slog.Int("rtmp_port", c.RTMPPort),
		slog.Int("srt_port", c.SRTPort),
		slog.Int("rtsp_port", c.RTSPPort),
		slog.Int("webrtc_port", c.WebRTCPort),
		slog.String("hook_addr", c.HookAddress),
		slog.String("mediamtx_api_addr", c.MediaMTXAPIAddress),
		slog.String("admin_addr", c.AdminAddress),
	)
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
