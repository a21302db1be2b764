package report

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine describes the host and the versions of every tool measured.
type Machine struct {
	Host, CPUModel, Kernel, OS string
	Cores                      int
	MemTotal                   string
	Load                       string // /proc/loadavg at the time of reading
	Versions                   map[string]string
}

// ReadMachine gathers the host's description; a tool that cannot be asked
// is reported as "unknown".
func ReadMachine(ctx context.Context) Machine {
	m := Machine{Cores: runtime.NumCPU(), Versions: map[string]string{}}
	m.Host, _ = os.Hostname()
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	m.MemTotal = procField("/proc/meminfo", "MemTotal")
	m.Kernel = firstLine(ctx, "uname", "-sr")
	m.OS = osRelease()
	m.Load = Load()
	m.Versions["Go"] = firstLine(ctx, "go", "version")
	m.Versions["GStreamer"] = lineWith(ctx, "GStreamer", "gst-inspect-1.0", "--version")
	m.Versions["ffmpeg"], _, _ = strings.Cut(firstLine(ctx, "ffmpeg", "-hide_banner", "-version"), " Copyright")
	m.Versions["x264 (libx264 in ffmpeg, x264enc in GStreamer)"] = x264Version(ctx)
	m.Versions["nginx"] = firstLine(ctx, "nginx", "-v")
	m.Versions["mediamtx"] = firstLine(ctx, "bin/mediamtx", "--version")
	m.Versions["PostgreSQL"] = firstLine(ctx, "psql", "--version")
	m.Versions["Redis"] = firstLine(ctx, "redis-server", "--version")
	return m
}

// Load returns /proc/loadavg's first three fields.
func Load() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Lines renders the machine as Markdown list items.
func (m Machine) Lines() []string {
	out := []string{
		fmt.Sprintf("- Host `%s`: %d cores, %s, memory %s", m.Host, m.Cores, m.CPUModel, m.MemTotal),
		fmt.Sprintf("- %s, kernel %s", m.OS, m.Kernel),
	}
	for _, k := range []string{"Go", "GStreamer", "ffmpeg", "x264 (libx264 in ffmpeg, x264enc in GStreamer)", "nginx", "mediamtx", "PostgreSQL", "Redis"} {
		out = append(out, fmt.Sprintf("- %s: %s", k, m.Versions[k]))
	}
	return out
}

func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "unknown"
}

func osRelease() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "unknown OS"
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "unknown OS"
}

func output(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil && len(b) == 0 {
		return ""
	}
	return string(b)
}

func firstLine(ctx context.Context, name string, args ...string) string {
	s := strings.TrimSpace(output(ctx, name, args...))
	if s == "" {
		return "unknown"
	}
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func lineWith(ctx context.Context, substr, name string, args ...string) string {
	for l := range strings.SplitSeq(output(ctx, name, args...), "\n") {
		if strings.Contains(l, substr) {
			return strings.TrimSpace(l)
		}
	}
	return "unknown"
}

func x264Version(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "sh", "-c", "dpkg-query -W -f='${Package} ${Version}\\n' 'libx264-*' 2>/dev/null").Output()
	if err != nil || len(strings.TrimSpace(string(out))) == 0 {
		return "unknown"
	}
	return strings.Join(strings.Fields(strings.TrimSpace(strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", ", "))), " ")
}
