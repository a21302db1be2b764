package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dionysia/dionysia/bench/internal/measure"
	"github.com/dionysia/dionysia/bench/internal/report"
	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/pkg/testkit"
)

// recordingSection: what recording costs the worker (issue 12). One stream
// of the 720p ladder through our pipeline with its files uploaded as a
// worker records them (recording.Uploader: spool hard link, ordered PUTs),
// into the file store and into a real SeaweedFS, each against the same
// transcode not recording, in rotating order. Only the transcoding
// process's CPU counts (SeaweedFS is another process).
func (b *bench) recordingSection(ctx context.Context) error {
	l, err := ladder.Builtin(ladder.Builtin720p)
	if err != nil {
		return err
	}
	l = l.WithDefaults()
	type target struct {
		name, url string
		env       []string
	}
	targets := []target{{name: "off"}, {name: "file store", url: "file://" + filepath.Join(b.opt.work, "recording", "files")}}
	if weed, err := testkit.FindWeed(b.opt.root); err == nil {
		s3, err := testkit.StartSeaweedFS(ctx, testkit.S3Options{Weed: weed, Dir: filepath.Join(b.opt.work, "recording", "weed")})
		if err != nil {
			return fmt.Errorf("starting SeaweedFS: %w", err)
		}
		defer s3.Stop()
		targets = append(targets, target{name: "S3 (SeaweedFS)", url: s3.PrefixURL("bench"), env: s3.Env()[1:]})
	} else {
		b.rep.Note("recording: no S3 column: %v (deploy/local/setup.sh weed builds it)", err)
	}
	cpu := map[string][]float64{}
	var lines []string
	for i := range b.opt.runs {
		for j := range targets {
			tg := targets[(i+j)%len(targets)]
			tc := b.transcoder()
			tc.RecordStore, tc.RecordEnv = tg.url, tg.env
			tag := fmt.Sprintf("record-%d-%d", i, j)
			r, err := tc.TranscodeOurs(ctx, l, 1, tag)
			tc.Clean(tag)
			if err != nil {
				return fmt.Errorf("recording %s, run %d: %w", tg.name, i+1, err)
			}
			cpu[tg.name] = append(cpu[tg.name], r.CPUPerMediaSecond())
			b.progress("  run %d recording %-14s wall %5.1fs cpu %5.1fs (%.3f cpu-s per media-s), %d files %.1f MB uploaded, %d lost", i+1, tg.name,
				r.Usage.Wall.Seconds(), r.Usage.CPU.Seconds(), r.CPUPerMediaSecond(), r.RecordedFiles, float64(r.RecordedBytes)/1e6, r.LostSegments)
			lines = append(lines, fmt.Sprintf("| %d | %s | %.2f | %.2f | %.3f | %d | %.1f | %d |", i+1, tg.name, r.Usage.Wall.Seconds(),
				r.Usage.CPU.Seconds(), r.CPUPerMediaSecond(), r.RecordedFiles, float64(r.RecordedBytes)/1e6, r.LostSegments))
		}
	}
	sec := "9 Recording (worker CPU)"
	off := measure.Summarize(cpu["off"])
	for _, tg := range targets[1:] {
		b.rep.Add(report.Row{Section: sec, Metric: "CPU per media second, recording to " + tg.name + " vs not recording", Unit: "cpu-s/s", Verb: "%.3f",
			Ours: measure.Summarize(cpu[tg.name]), Ref: off, RefName: "not recording", LowerIsBetter: true, Note: "target: < 3% more CPU"})
	}
	var body strings.Builder
	fmt.Fprintf(&body, "Ladder `720p` (built-in): %s. One stream, file input read as fast as possible, through `dionysia-bench-transcode -record URL`: every CMAF file the packager completes goes through the worker's `recording.Uploader` (hard link into the spool, one PUT per file in order) into the store; the reports go to a function standing in for the API (the report's HTTP request is not counted). Only the transcoding process's CPU is measured.\n\n", ladderText(l))
	body.WriteString("| run | recording | wall s | CPU s | CPU-s per media-s | files uploaded | MB uploaded | lost |\n|---|---|---|---|---|---|---|---|\n")
	body.WriteString(strings.Join(lines, "\n") + "\n")
	b.rep.Detail(sec, body.String())
	return nil
}
