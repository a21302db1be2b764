// Package mediamtx runs the pinned mediamtx media server (v1.20.1) as a
// supervised child process: it writes its configuration, restarts it with
// backoff when it dies, folds its log into slog with stream keys redacted, and
// talks to its control API on loopback.
//
// mediamtx cannot be imported as a library (its packages are internal/), so
// the edge owns it as a child; see docs/edge.md.
package mediamtx

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// Config is what the edge decides about mediamtx. Every other mediamtx
// setting keeps mediamtx's default, except the servers we never want: HLS,
// playback, metrics, pprof and MoQ are off, the control API listens on
// loopback only, and every publish/read goes through AuthHTTPAddress.
type Config struct {
	BindAddress string // host part of every public listener; "" = all interfaces

	RTMPPort      int // TCP
	SRTPort       int // UDP
	RTSPPort      int // TCP (RTSP over TCP only: no fixed UDP RTP/RTCP ports)
	WebRTCPort    int // TCP (WHIP/WHEP HTTP)
	WebRTCUDPPort int // UDP (ICE); 0 disables WebRTC (mediamtx needs an ICE listener)

	WebRTCAdditionalHosts []string // host names/IPs announced to WebRTC clients

	APIAddress      string // loopback host:port of the control API
	AuthHTTPAddress string // URL mediamtx POSTs its auth requests to

	LogLevel string // error, warn, info or debug

	ReadTimeout string // mediamtx duration, e.g. "10s": how long a silent publisher is kept
}

// file is the subset of mediamtx.yml we write. JSON is valid YAML, and
// mediamtx parses it as such; every key here exists in v1.20.1's internal/conf.
type file struct {
	LogLevel        string   `json:"logLevel"`
	LogDestinations []string `json:"logDestinations"`
	LogStructured   bool     `json:"logStructured"`
	ReadTimeout     string   `json:"readTimeout,omitempty"`

	AuthMethod        string           `json:"authMethod"`
	AuthInternalUsers []map[string]any `json:"authInternalUsers"`
	AuthHTTPAddress   string           `json:"authHTTPAddress"`
	AuthHTTPExclude   []map[string]any `json:"authHTTPExclude"`

	API            bool     `json:"api"`
	APIAddress     string   `json:"apiAddress"`
	APIAllowOrigin []string `json:"apiAllowOrigins"`
	Metrics        bool     `json:"metrics"`
	PPROF          bool     `json:"pprof"`
	Playback       bool     `json:"playback"`

	RTSP           bool     `json:"rtsp"`
	RTSPTransports []string `json:"rtspTransports"`
	RTSPEncryption string   `json:"rtspEncryption"`
	RTSPAddress    string   `json:"rtspAddress"`

	RTMP           bool   `json:"rtmp"`
	RTMPEncryption string `json:"rtmpEncryption"`
	RTMPAddress    string `json:"rtmpAddress"`

	HLS bool `json:"hls"`

	WebRTC                bool     `json:"webrtc"`
	WebRTCAddress         string   `json:"webrtcAddress"`
	WebRTCAllowOrigins    []string `json:"webrtcAllowOrigins"`
	WebRTCLocalUDPAddress string   `json:"webrtcLocalUDPAddress"`
	WebRTCLocalTCPAddress string   `json:"webrtcLocalTCPAddress"`
	WebRTCAdditionalHosts []string `json:"webrtcAdditionalHosts"`

	SRT        bool   `json:"srt"`
	SRTAddress string `json:"srtAddress"`

	MoQ bool `json:"moq"`

	PathDefaults map[string]any            `json:"pathDefaults"`
	Paths        map[string]map[string]any `json:"paths"`
}

// Validate checks c.
func (c Config) Validate() error {
	ports := map[string]int{"rtmp": c.RTMPPort, "srt": c.SRTPort, "rtsp": c.RTSPPort, "webrtc": c.WebRTCPort}
	for name, p := range ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("%s port must be 1-65535, got %d", name, p)
		}
	}
	if c.WebRTCUDPPort < 0 || c.WebRTCUDPPort > 65535 {
		return fmt.Errorf("webrtc udp port must be 0-65535, got %d", c.WebRTCUDPPort)
	}
	host, _, err := net.SplitHostPort(c.APIAddress)
	if err != nil {
		return fmt.Errorf("api address %q: %w", c.APIAddress, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("api address %q must be a loopback IP", c.APIAddress)
	}
	if c.AuthHTTPAddress == "" {
		return errors.New("auth http address is required")
	}
	switch c.LogLevel {
	case "", "error", "warn", "info", "debug":
	default:
		return fmt.Errorf("unknown mediamtx log level %q", c.LogLevel)
	}
	return nil
}

// Render returns the mediamtx.yml content for c.
func (c Config) Render() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("validating mediamtx config: %w", err)
	}
	addr := func(port int) string { return net.JoinHostPort(c.BindAddress, strconv.Itoa(port)) }
	udpICE := ""
	if c.WebRTCUDPPort != 0 {
		udpICE = addr(c.WebRTCUDPPort)
	}
	logLevel := c.LogLevel
	if logLevel == "" {
		logLevel = "info"
	}
	f := file{
		LogLevel:        logLevel,
		LogDestinations: []string{"stdout"},
		LogStructured:   true,
		ReadTimeout:     c.ReadTimeout,

		// Every decision goes to the edge's loopback auth endpoint; nothing is
		// excluded: even the control API is authorized there (loopback plus
		// the edge's per-run credential).
		AuthMethod:        "http",
		AuthInternalUsers: []map[string]any{},
		AuthHTTPAddress:   c.AuthHTTPAddress,
		AuthHTTPExclude:   []map[string]any{},

		API:            true,
		APIAddress:     c.APIAddress,
		APIAllowOrigin: []string{},
		Metrics:        false,
		PPROF:          false,
		Playback:       false,

		RTSP:           true,
		RTSPTransports: []string{"tcp"},
		RTSPEncryption: "no",
		RTSPAddress:    addr(c.RTSPPort),

		RTMP:           true,
		RTMPEncryption: "no",
		RTMPAddress:    addr(c.RTMPPort),

		HLS: false,

		WebRTC:                c.WebRTCUDPPort != 0,
		WebRTCAddress:         addr(c.WebRTCPort),
		WebRTCAllowOrigins:    []string{"*"}, // WHIP from browsers; reading is refused by auth anyway
		WebRTCLocalUDPAddress: udpICE,
		WebRTCLocalTCPAddress: "",
		WebRTCAdditionalHosts: nonNil(c.WebRTCAdditionalHosts),

		SRT:        true,
		SRTAddress: addr(c.SRTPort),

		MoQ: false,

		PathDefaults: map[string]any{
			"source":            "publisher",
			"overridePublisher": false, // a second publisher on a live key is refused
			"record":            false,
		},
		// all_others lets every path reach the auth endpoint, which refuses
		// anything but live/<stream_key> (and counts it).
		Paths: map[string]map[string]any{"all_others": {}},
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding mediamtx config: %w", err)
	}
	return append(b, '\n'), nil
}

// WriteFile renders c into path (mode 0600), through a temporary file and a
// rename so that mediamtx's config watcher never sees half a file.
func (c Config) WriteFile(path string) error {
	b, err := c.Render()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".mediamtx-*.yml")
	if err != nil {
		return fmt.Errorf("creating mediamtx config: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("setting mediamtx config mode: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("writing mediamtx config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing mediamtx config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("installing mediamtx config: %w", err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
