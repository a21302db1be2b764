package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dionysia/dionysia/bench/internal/measure"
	"github.com/dionysia/dionysia/bench/internal/report"
	"github.com/dionysia/dionysia/pkg/ladder"
)

// thumbnailsSection: what the live thumbnail costs (issue 12). One stream
// of the 720p ladder through our pipeline with the thumbnail written every
// 10 s of stream time (the default) and every 1 s (ten times as often),
// each against the same transcode with thumbnails off, the three runs of a
// repetition in rotating order.
func (b *bench) thumbnailsSection(ctx context.Context) error {
	l, err := ladder.Builtin(ladder.Builtin720p)
	if err != nil {
		return err
	}
	l = l.WithDefaults()
	intervals := []time.Duration{0, 10 * time.Second, time.Second}
	name := func(d time.Duration) string {
		if d == 0 {
			return "off"
		}
		return "every " + d.String()
	}
	cpu := map[time.Duration][]float64{}
	var lines []string
	for i := range b.opt.runs {
		for j := range intervals {
			d := intervals[(i+j)%len(intervals)]
			tc := b.transcoder()
			tc.ThumbnailInterval = d
			tag := fmt.Sprintf("thumbs-%d-%d", i, j)
			r, err := tc.TranscodeOurs(ctx, l, 1, tag)
			tc.Clean(tag)
			if err != nil {
				return fmt.Errorf("thumbnails %s, run %d: %w", name(d), i+1, err)
			}
			cpu[d] = append(cpu[d], r.CPUPerMediaSecond())
			b.progress("  run %d thumbnails %-9s wall %5.1fs cpu %5.1fs (%.3f cpu-s per media-s), %d thumbnail(s)", i+1, name(d),
				r.Usage.Wall.Seconds(), r.Usage.CPU.Seconds(), r.CPUPerMediaSecond(), r.Thumbnails)
			lines = append(lines, fmt.Sprintf("| %d | %s | %.2f | %.2f | %.3f | %d |", i+1, name(d), r.Usage.Wall.Seconds(),
				r.Usage.CPU.Seconds(), r.CPUPerMediaSecond(), r.Thumbnails))
		}
	}
	sec := "8 Thumbnails"
	off := measure.Summarize(cpu[0])
	for _, d := range intervals[1:] {
		note := ""
		if d == 10*time.Second {
			note = "the default thumbnail_interval_s; target: < 3% more CPU"
		}
		b.rep.Add(report.Row{Section: sec, Metric: "CPU per media second, thumbnails " + name(d) + " vs off", Unit: "cpu-s/s", Verb: "%.3f",
			Ours: measure.Summarize(cpu[d]), Ref: off, RefName: "thumbnails off", LowerIsBetter: true, Note: note})
	}
	var body strings.Builder
	fmt.Fprintf(&body, "Ladder `720p` (built-in): %s. One stream, file input read as fast as possible, through `dionysia-bench-transcode` with `-thumbnail-interval` (the worker's thumbnail leg: one decoded frame kept per interval of stream time, scaled to ≤ 1280 wide, `jpegenc`, written atomically to the stream directory). The thumbnail count of a run is its media length over the interval, plus the first frame.\n\n", ladderText(l))
	body.WriteString("| run | thumbnails | wall s | CPU s | CPU-s per media-s | thumbnails written |\n|---|---|---|---|---|---|\n")
	body.WriteString(strings.Join(lines, "\n") + "\n")
	b.rep.Detail(sec, body.String())
	return nil
}
