// Command dionysia-bench runs every Dionysia benchmark on this machine in one
// go, each figure next to its reference, and writes the results file
// bench/results/<date>-<host>.md and the summary block of
// docs/performance.md. It asserts nothing: these are measurements. Run it
// through deploy/local/bench.sh (`just bench`), which builds what it needs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/dionysia/dionysia/pkg/testkit"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dionysia/dionysia/bench/internal/report"
)

// options are the command's flags.
type options struct {
	root, out, summary, binDir, benchBin, work string
	clip                                       string
	runs, maxStreams, dispatchCycles           int
	cpConcurrency, routeConcurrency            int
	latencyLength, cpDuration, routeDuration   time.Duration
	hookDuration, storageDuration              time.Duration
	hookBacklog, hookProducers, hookConc       int
	hookRate                                   float64
	segment                                    time.Duration
	sections                                   string
	density                                    string
	quick, keep                                bool
}

// bench is one run of the command.
type bench struct {
	opt     options
	rep     *report.Report
	start   time.Time
	clip    string
	clipLen float64
	audio   bool
	timing  []string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dionysia-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var o options
	flag.StringVar(&o.root, "root", "", "repository root (default: the directory holding go.work above the working directory)")
	flag.StringVar(&o.out, "out", "bench/results", "directory of the results file, relative to the root")
	flag.StringVar(&o.summary, "summary", "docs/performance.md", "file whose summary block is rewritten (empty: none)")
	flag.StringVar(&o.binDir, "bin", "bin", "directory holding dionysia, dionysia-worker and mediamtx")
	flag.StringVar(&o.benchBin, "bench-bin", "bin/bench", "directory holding dionysia-bench-transcode and origin")
	flag.StringVar(&o.work, "work", "", "scratch directory (default: a new temporary one, removed at the end)")
	flag.StringVar(&o.clip, "clip", "", "input clip (default: ../shared/media/big_buck_bunny_1080p60_10s.mp4, else a generated one)")
	flag.IntVar(&o.runs, "runs", 3, "repetitions of every measurement")
	flag.IntVar(&o.maxStreams, "max-streams", 4, "density ramp limit")
	flag.IntVar(&o.dispatchCycles, "dispatch-cycles", 8, "extra publish cycles for the dispatch latency")
	flag.IntVar(&o.cpConcurrency, "api-concurrency", 8, "concurrent API clients")
	flag.IntVar(&o.routeConcurrency, "route-concurrency", 8, "concurrent playback clients")
	flag.DurationVar(&o.latencyLength, "latency-length", 24*time.Second, "publishing time per latency run")
	flag.DurationVar(&o.cpDuration, "api-duration", 3*time.Second, "load time per API operation and run")
	flag.DurationVar(&o.routeDuration, "route-duration", 4*time.Second, "load time per routing target and run")
	flag.DurationVar(&o.storageDuration, "storage-duration", 4*time.Second, "upload time per storage target and run")
	flag.DurationVar(&o.segment, "segment", 2*time.Second, "segment duration")
	flag.DurationVar(&o.hookDuration, "webhook-duration", 5*time.Second, "event-recording time per sustained webhook run")
	flag.IntVar(&o.hookBacklog, "webhook-backlog", 3000, "events in the webhook backlog drained per run")
	flag.Float64Var(&o.hookRate, "webhook-rate", 200, "events per second recorded in the sustained webhook runs (below the drain rate, so the delay is not queueing)")
	flag.IntVar(&o.hookProducers, "webhook-producers", 8, "concurrent API clients recording webhook.test events")
	flag.IntVar(&o.hookConc, "webhook-concurrency", 16, "the delivery worker's DIONYSIA_WEBHOOK_CONCURRENCY (and the reference's clients)")
	flag.StringVar(&o.sections, "sections", "transcode,density,latency,control,routing,webhooks,storage,thumbnails,recording", "sections to run")
	flag.StringVar(&o.density, "density-light", "auto", "also ramp a lighter ladder: auto (when the 720p ladder sustains < 2 streams), always, never")
	flag.BoolVar(&o.quick, "quick", false, "one run of everything with short durations (for development)")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory")
	flag.Parse()
	if o.quick {
		o.runs, o.maxStreams, o.dispatchCycles = 1, 2, 2
		o.latencyLength, o.cpDuration, o.routeDuration = 16*time.Second, time.Second, time.Second
		o.storageDuration = time.Second
		o.hookDuration, o.hookBacklog = 2*time.Second, 1000
	}
	if o.runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if o.root == "" {
		r, err := testkit.FindRepoRoot()
		if err != nil {
			return fmt.Errorf("%w: pass -root", err)
		}
		o.root = r
	}
	if err := os.Chdir(o.root); err != nil {
		return err
	}
	if o.work == "" {
		w, err := os.MkdirTemp("", "dionysia-bench-")
		if err != nil {
			return err
		}
		o.work = w
	}
	if !o.keep {
		defer os.RemoveAll(o.work)
	}
	b := &bench{opt: o, start: time.Now(), rep: &report.Report{}}
	b.progress("work directory %s", o.work)
	loadBefore := report.Load()
	machine := report.ReadMachine(ctx)

	if err := b.resolveClip(ctx); err != nil {
		return err
	}
	want := map[string]bool{}
	for s := range strings.SplitSeq(o.sections, ",") {
		want[strings.TrimSpace(s)] = true
	}
	type section struct {
		name string
		fn   func(context.Context) error
	}
	for _, s := range []section{
		{"transcode", b.transcodeSection},
		{"density", b.densitySection},
		{"latency", nil}, // latency and control share one platform
		{"routing", b.routingSection},
		{"webhooks", b.webhooksSection},
		{"storage", b.storageSection},
		{"thumbnails", b.thumbnailsSection},
		{"recording", b.recordingSection},
	} {
		name := s.name
		fn := s.fn
		if name == "latency" {
			if !want["latency"] && !want["control"] {
				continue
			}
			fn = func(ctx context.Context) error { return b.platformSections(ctx, want["latency"], want["control"]) }
			name = "latency+control"
		} else if !want[name] {
			continue
		}
		t := time.Now()
		b.progress("== %s", name)
		if err := fn(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.rep.Note("%s: %v", name, err)
			b.progress("%s failed: %v", name, err)
		}
		b.timing = append(b.timing, fmt.Sprintf("%s %s", name, time.Since(t).Round(time.Second)))
	}
	total := time.Since(b.start).Round(time.Second)
	loadAfter := report.Load()

	now := time.Now()
	b.rep.Title = fmt.Sprintf("Benchmark results %s on %s", now.Format("2006-01-02"), machine.Host)
	b.rep.Header = append(machine.Lines(),
		fmt.Sprintf("- Run %s, %d repetition(s) per figure, took %s (%s)", now.Format(time.RFC3339), o.runs, total, strings.Join(b.timing, ", ")),
		fmt.Sprintf("- Load average before %s, after %s (other work on this machine shares the CPUs unless both are near 0)", loadBefore, loadAfter),
		fmt.Sprintf("- Input %s: %.1f s, %s", b.clip, b.clipLen, probeSummary(ctx, b.clip)),
	)
	if err := b.write(machine, now, total, loadBefore, loadAfter); err != nil {
		return err
	}
	fmt.Println()
	fmt.Println(b.rep.SummaryTable())
	return nil
}

func (b *bench) write(m report.Machine, now time.Time, total time.Duration, before, after string) error {
	dir := b.path(b.opt.out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := fmt.Sprintf("%s-%s.md", now.Format("2006-01-02"), m.Host)
	if b.opt.quick {
		name = fmt.Sprintf("%s-%s-quick.md", now.Format("2006-01-02"), m.Host)
	}
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.rep.Markdown()), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	b.progress("wrote %s", path)
	if b.opt.summary == "" || b.opt.quick {
		return nil
	}
	rel, _ := filepath.Rel(filepath.Join(b.opt.root, "docs"), path)
	block := fmt.Sprintf("Latest run: %s on `%s` (%d cores, %s), %d repetition(s), took %s; load average %s before, %s after. Full results: [%s](%s).\n\n%s",
		now.Format("2006-01-02"), m.Host, m.Cores, m.CPUModel, b.opt.runs, total, before, after, filepath.Base(path), rel, b.rep.SummaryTable())
	if len(b.rep.Notes) > 0 {
		block += "\nNot measured in that run: " + strings.Join(b.rep.Notes, "; ") + "\n"
	}
	if err := report.ReplaceBlock(b.path(b.opt.summary), block); err != nil {
		return err
	}
	b.progress("updated %s", b.opt.summary)
	return nil
}

// path resolves a flag's path against the repository root.
func (b *bench) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(b.opt.root, p)
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6s] %s\n", time.Since(b.start).Round(time.Second), fmt.Sprintf(format, args...))
}

// resolveClip finds the shared clip or generates a stand-in with the same
// traits (1080p60 H.264 High with B-frames, 5.1 AAC).
func (b *bench) resolveClip(ctx context.Context) error {
	clip := b.opt.clip
	if clip == "" {
		var shared bool
		if clip, shared = testkit.FindSharedClip(b.opt.root); !shared {
			clip = filepath.Join(b.opt.root, ".dev", "bench", "generated_1080p60_10s.mp4")
			if _, err := os.Stat(clip); err != nil {
				b.progress("the shared clip is absent: generating a 10 s 1080p60 clip")
				if err := os.MkdirAll(filepath.Dir(clip), 0o755); err != nil {
					return err
				}
				cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
					"-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=60", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
					"-t", "10", "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
					"-bf", "2", "-g", "120", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "6", "-b:a", "192k", clip+".tmp.mp4")
				if out, err := cmd.CombinedOutput(); err != nil {
					return fmt.Errorf("generating a clip: %w\n%s", err, out)
				}
				if err := os.Rename(clip+".tmp.mp4", clip); err != nil {
					return err
				}
			}
		}
	}
	abs, err := filepath.Abs(clip)
	if err != nil {
		return err
	}
	b.clip = abs
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type",
		"-of", "default=nw=1", abs).Output()
	if err != nil {
		return fmt.Errorf("probing %s: %w", abs, err)
	}
	for l := range strings.SplitSeq(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "duration="); ok {
			b.clipLen, _ = strconv.ParseFloat(v, 64)
		}
		if l == "codec_type=audio" {
			b.audio = true
		}
	}
	if b.clipLen <= 0 {
		return fmt.Errorf("probing %s: no duration", abs)
	}
	return nil
}

func probeSummary(ctx context.Context, clip string) string {
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries",
		"stream=codec_name,profile,width,height,r_frame_rate,channels,sample_rate", "-of", "compact=p=0:nk=0", clip).Output()
	if err != nil {
		return "unprobed"
	}
	var parts []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		var kept []string
		for f := range strings.SplitSeq(l, "|") {
			if !strings.HasSuffix(f, "=N/A") && !strings.HasSuffix(f, "=0/0") && !strings.HasSuffix(f, "=unknown") {
				kept = append(kept, f)
			}
		}
		parts = append(parts, strings.Join(kept, " "))
	}
	return strings.Join(parts, "; ")
}

func cores() int { return runtime.NumCPU() }

// mib formats KiB as MiB.
func mib(kib int64) float64 { return float64(kib) / 1024 }

// median of ints.
func medianInt(xs []int) int {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
