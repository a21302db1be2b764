package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dionysia/dionysia/bench/internal/measure"
	"github.com/dionysia/dionysia/bench/internal/report"
	"github.com/dionysia/dionysia/bench/internal/transcode"
	"github.com/dionysia/dionysia/pkg/ladder"
)

// lightLadder is the two-rung ladder of the e2e suite and the live sections:
// one that a 2-core machine can transcode in real time from a 1080p60
// source alongside the rest of the platform.
var lightLadder = ladder.Ladder{
	Renditions: []ladder.Rendition{
		{Name: "480p", Width: 854, Height: 480, VideoBitrateKbps: 1000, FrameRate: 30, Preset: "superfast"},
		{Name: "360p", Width: 640, Height: 360, VideoBitrateKbps: 600, FrameRate: 30, Preset: "superfast"},
	},
	Audio: ladder.Audio{Codec: ladder.CodecAAC, BitrateKbps: 128, Channels: 2, SampleRate: 48000},
}.WithDefaults()

func (b *bench) transcoder() transcode.Config {
	return transcode.Config{
		Clip: b.clip, ClipSeconds: b.clipLen, HasAudio: b.audio,
		Bin:  filepath.Join(b.path(b.opt.benchBin), "dionysia-bench-transcode"),
		Work: filepath.Join(b.opt.work, "transcode"), Segment: b.opt.segment, Cores: cores(),
		Log: b.progress, KeepOutputDir: b.opt.keep,
	}
}

func ladderText(l ladder.Ladder) string {
	var parts []string
	for _, r := range l.Renditions {
		parts = append(parts, fmt.Sprintf("%s %dx%d@%g %d kb/s (VBV max %d) %s keyint %gs", r.Name, r.Width, r.Height, r.FrameRate,
			r.VideoBitrateKbps, r.MaxBitrateKbps, r.Preset, r.KeyframeInterval))
	}
	return strings.Join(parts, "; ") + fmt.Sprintf("; audio AAC %dch %d Hz %d kb/s", l.Audio.Channels, l.Audio.SampleRate, l.Audio.BitrateKbps)
}

// transcodeSection: efficiency and quality of one stream of the built-in
// 720p ladder, ours and ffmpeg's, alternating which goes first.
func (b *bench) transcodeSection(ctx context.Context) error {
	l, err := ladder.Builtin(ladder.Builtin720p)
	if err != nil {
		return err
	}
	l = l.WithDefaults()
	tc := b.transcoder()
	type perSide struct {
		cpu, rtf, rss []float64
		psnr, ssim    map[string][]float64
		rawPSNR       map[string][]float64
		rawSSIM       map[string][]float64
		color         map[string]string
		x264          string
	}
	sides := map[transcode.Side]*perSide{}
	for _, s := range []transcode.Side{transcode.Ours, transcode.Ref} {
		sides[s] = &perSide{psnr: map[string][]float64{}, ssim: map[string][]float64{}, rawPSNR: map[string][]float64{},
			rawSSIM: map[string][]float64{}, color: map[string]string{}}
	}
	var runLines []string
	for i := range b.opt.runs {
		order := []transcode.Side{transcode.Ours, transcode.Ref}
		if i%2 == 1 {
			order = []transcode.Side{transcode.Ref, transcode.Ours}
		}
		for _, side := range order {
			tag := fmt.Sprintf("eff-%s-%d", side, i)
			r, err := tc.Transcode(ctx, side, l, 1, tag)
			if err != nil {
				tc.Clean(tag)
				return fmt.Errorf("%s run %d: %w", side, i+1, err)
			}
			ps := sides[side]
			ps.cpu = append(ps.cpu, r.CPUPerMediaSecond())
			ps.rtf = append(ps.rtf, r.RealtimeFactor())
			ps.rss = append(ps.rss, mib(r.Usage.MaxRSSKiB))
			ps.x264 = r.X264Options
			scores, err := transcode.Quality(ctx, b.clip, r.Renditions)
			tc.Clean(tag)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", side, i+1, err)
			}
			var q []string
			for _, s := range scores {
				ps.psnr[s.Name] = append(ps.psnr[s.Name], s.PSNR)
				ps.ssim[s.Name] = append(ps.ssim[s.Name], s.SSIM)
				ps.rawPSNR[s.Name] = append(ps.rawPSNR[s.Name], s.RawPSNR)
				ps.rawSSIM[s.Name] = append(ps.rawSSIM[s.Name], s.RawSSIM)
				ps.color[s.Name] = s.ColorSpace
				q = append(q, fmt.Sprintf("%s %.2f dB/%.4f", s.Name, s.PSNR, s.SSIM))
			}
			b.progress("  run %d %-8s wall %5.1fs cpu %5.1fs (%.2f cpu-s per media-s) rtf %.2f rss %.0f MiB | %s", i+1, side,
				r.Usage.Wall.Seconds(), r.Usage.CPU.Seconds(), r.CPUPerMediaSecond(), r.RealtimeFactor(), mib(r.Usage.MaxRSSKiB), strings.Join(q, ", "))
			runLines = append(runLines, fmt.Sprintf("| %d | %s | %.2f | %.2f | %.2f | %.2f | %.0f | %s |", i+1, side, r.Usage.Wall.Seconds(),
				r.Usage.CPU.Seconds(), r.CPUPerMediaSecond(), r.RealtimeFactor(), mib(r.Usage.MaxRSSKiB), strings.Join(q, ", ")))
		}
	}
	ours, ref := sides[transcode.Ours], sides[transcode.Ref]
	sec := "1 Transcoding (720p ladder)"
	refName := "ffmpeg"
	b.rep.Add(report.Row{Section: sec, Metric: "CPU per media second", Unit: "cpu-s/s", Ours: measure.Summarize(ours.cpu),
		Ref: measure.Summarize(ref.cpu), RefName: refName, LowerIsBetter: true})
	b.rep.Add(report.Row{Section: sec, Metric: "real-time factor (file, as fast as possible)", Unit: "×", Ours: measure.Summarize(ours.rtf),
		Ref: measure.Summarize(ref.rtf), RefName: refName})
	b.rep.Add(report.Row{Section: sec, Metric: "peak RSS", Unit: "MiB", Verb: "%.0f", Ours: measure.Summarize(ours.rss),
		Ref: measure.Summarize(ref.rss), RefName: refName, LowerIsBetter: true})
	var qLines []string
	for _, r := range l.Renditions {
		note := ""
		if c := ours.color[r.Name]; c == "smpte170m" || c == "bt470bg" {
			note = fmt.Sprintf("our %s output is tagged %s (ffmpeg's: %s); scored after converting it back to BT.709 as a player would", r.Name, ours.color[r.Name], ref.color[r.Name])
		}
		b.rep.Add(report.Row{Section: sec, Metric: "PSNR " + r.Name, Unit: "dB", Ours: measure.Summarize(ours.psnr[r.Name]),
			Ref: measure.Summarize(ref.psnr[r.Name]), RefName: refName, Note: note})
		b.rep.Add(report.Row{Section: sec, Metric: "SSIM " + r.Name, Verb: "%.4f", Ours: measure.Summarize(ours.ssim[r.Name]),
			Ref: measure.Summarize(ref.ssim[r.Name]), RefName: refName})
		qLines = append(qLines, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s |", r.Name,
			ours.color[r.Name], measure.Summarize(ours.rawPSNR[r.Name]).Format("%.2f"), measure.Summarize(ours.rawSSIM[r.Name]).Format("%.4f"),
			ref.color[r.Name], measure.Summarize(ref.rawPSNR[r.Name]).Format("%.2f"), measure.Summarize(ref.rawSSIM[r.Name]).Format("%.4f")))
	}
	var body strings.Builder
	fmt.Fprintf(&body, "Ladder `720p` (built-in): %s. Segments of %s. One stream, file input read as fast as possible.\n\n", ladderText(l), b.opt.segment)
	body.WriteString("Reference command (run in its output directory):\n\n```\nffmpeg " + shellJoin(transcode.FFmpegArgs(b.clip, l, b.opt.segment, cores(), b.audio)) + "\n```\n\n")
	body.WriteString("| run | side | wall s | CPU s | CPU-s per media-s | real-time factor | peak RSS MiB | PSNR dB / SSIM per rendition |\n|---|---|---|---|---|---|---|---|\n")
	body.WriteString(strings.Join(runLines, "\n") + "\n\n")
	body.WriteString("Raw pixel comparison (no colour-tag handling), with the colour matrix each output is tagged with:\n\n")
	body.WriteString("| rendition | ours tagged | ours PSNR dB | ours SSIM | ffmpeg tagged | ffmpeg PSNR dB | ffmpeg SSIM |\n|---|---|---|---|---|---|---|\n")
	body.WriteString(strings.Join(qLines, "\n") + "\n\n")
	body.WriteString("x264 settings as written by x264 into each output (first rendition), differences only:\n\n")
	body.WriteString(x264Diff(ours.x264, ref.x264) + "\n")
	b.rep.Detail(sec, body.String())
	return nil
}

// densitySection ramps concurrent streams for both sides.
func (b *bench) densitySection(ctx context.Context) error {
	l, err := ladder.Builtin(ladder.Builtin720p)
	if err != nil {
		return err
	}
	ours, err := b.density(ctx, "720p", l.WithDefaults())
	if err != nil {
		return err
	}
	if b.opt.density == "always" || (b.opt.density == "auto" && ours < 2) {
		if _, err := b.density(ctx, "light (480p+360p superfast)", lightLadder); err != nil {
			return err
		}
	}
	return nil
}

// density runs the ramp runs times per side and returns our median.
func (b *bench) density(ctx context.Context, name string, l ladder.Ladder) (int, error) {
	tc := b.transcoder()
	sustained := map[transcode.Side][]int{}
	single := map[transcode.Side][]float64{} // real-time factor of the first step (one stream)
	var lines []string
	for i := range b.opt.runs {
		for _, side := range []transcode.Side{transcode.Ours, transcode.Ref} {
			b.progress("  %s ladder, ramp %d, %s", name, i+1, side)
			n, steps, err := tc.Density(ctx, side, l, b.opt.maxStreams, fmt.Sprintf("dens-%d", i))
			if err != nil {
				return 0, fmt.Errorf("%s ramp %d: %w", side, i+1, err)
			}
			sustained[side] = append(sustained[side], n)
			if len(steps) > 0 {
				single[side] = append(single[side], steps[0].RTF)
			}
			var st []string
			for _, s := range steps {
				st = append(st, fmt.Sprintf("%d → %.2f×", s.Streams, s.RTF))
			}
			lines = append(lines, fmt.Sprintf("| %d | %s | %s | %d |", i+1, side, strings.Join(st, ", "), n))
		}
	}
	toF := func(xs []int) []float64 {
		out := make([]float64, len(xs))
		for i, x := range xs {
			out[i] = float64(x)
		}
		return out
	}
	sec := "2 Density"
	b.rep.Add(report.Row{Section: sec, Metric: "streams sustained at ≥ 1.0× real time, " + name + " ladder", Verb: "%.0f",
		Ours: measure.Summarize(toF(sustained[transcode.Ours])), Ref: measure.Summarize(toF(sustained[transcode.Ref])), RefName: "ffmpeg"})
	b.rep.Add(report.Row{Section: sec, Metric: "real-time factor of a single stream (ramp step 1), " + name + " ladder", Unit: "×",
		Ours: measure.Summarize(single[transcode.Ours]), Ref: measure.Summarize(single[transcode.Ref]), RefName: "ffmpeg"})
	var body strings.Builder
	fmt.Fprintf(&body, "Ladder %s: %s. N copies of the clip are transcoded at once, unpaced (ours: N pipelines in one process, as one worker hosts N streams; reference: N ffmpeg processes); the slowest stream's real-time factor is media seconds ÷ wall seconds of the whole step. N is sustained when it is ≥ 1.0; the ramp stops at the first N that is not (or at %d).\n\n",
		name, ladderText(l), b.opt.maxStreams)
	body.WriteString("| ramp | side | streams → slowest real-time factor | sustained |\n|---|---|---|---|\n")
	body.WriteString(strings.Join(lines, "\n") + "\n")
	b.rep.Detail(sec+" — "+name, body.String())
	return medianInt(sustained[transcode.Ours]), nil
}

// x264Diff lists the x264 options that differ between two option strings.
func x264Diff(a, b string) string {
	if a == "" || b == "" {
		return "(x264 options not found in an output)"
	}
	parse := func(s string) (map[string]string, []string) {
		m := map[string]string{}
		var keys []string
		for f := range strings.FieldsSeq(s) {
			k, v, _ := strings.Cut(f, "=")
			m[k] = v
			keys = append(keys, k)
		}
		return m, keys
	}
	ma, keys := parse(a)
	mb, _ := parse(b)
	var diff []string
	for _, k := range keys {
		if ma[k] != mb[k] {
			diff = append(diff, fmt.Sprintf("`%s`: ours %s, ffmpeg %s", k, ma[k], mb[k]))
		}
	}
	if len(diff) == 0 {
		return "none: both encoders ran with identical x264 settings.\n"
	}
	return "- " + strings.Join(diff, "\n- ") + "\n\nAll of ours: `" + a + "`\n"
}

func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " ;[]()*$'\"|&<>") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}
