package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dionysia/dionysia/bench/internal/live"
	"github.com/dionysia/dionysia/bench/internal/measure"
	"github.com/dionysia/dionysia/bench/internal/report"
	"github.com/dionysia/dionysia/pkg/testkit/harness"
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// platformSections brings the platform up once for the latency and the
// control-plane sections.
func (b *bench) platformSections(ctx context.Context, latency, control bool) error {
	work := filepath.Join(b.opt.work, "platform")
	logDir := filepath.Join(work, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	admin := os.Getenv("BENCH_DATABASE_ADMIN_URL") // default postgres.DefaultAdminDatabaseURL
	bin := b.path(b.opt.binDir)
	b.progress("  starting the platform (API, edge, router, worker) on loopback; logs in %s", logDir)
	p, err := harness.Start(ctx, harness.Options{
		BinDir: bin, MediaMTX: filepath.Join(bin, "mediamtx"), LogDir: logDir, WorkDir: work,
		AdminDatabaseURL: admin, Name: "bench", Workers: 1, WorkerCapacity: 4,
		// The benchmark reads the processes' timestamps from their JSON logs.
		LogLevel: "info", Env: []string{"DIONYSIA_LOG_FORMAT=json"},
	})
	defer func() {
		if err := p.Stop(); err != nil {
			b.rep.Note("stopping the platform: %v", err)
		}
	}()
	if err != nil {
		return fmt.Errorf("starting the platform: %w", err)
	}
	lb := live.NewBench(p, work, logDir, "bench-live", lightLadder.Renditions[len(lightLadder.Renditions)-1].Name, b.opt.segment, b.progress)
	body, err := json.Marshal(map[string]any{"name": "bench-live", "description": "benchmark live ladder",
		"renditions": lightLadder.Renditions, "audio": lightLadder.Audio})
	if err != nil {
		return err
	}
	if err := lb.CreateProfile(ctx, string(body)); err != nil {
		return err
	}
	var dispatch []time.Duration
	if latency {
		clip := filepath.Join(b.opt.root, ".dev", "bench", fmt.Sprintf("beeps-%s-%ds.mp4", strings.TrimSuffix(filepath.Base(b.clip), ".mp4"), int(b.opt.latencyLength.Seconds())+6))
		if err := os.MkdirAll(filepath.Dir(clip), 0o755); err != nil {
			return err
		}
		if err := live.MakeBeepClip(ctx, b.clip, clip, b.opt.latencyLength+6*time.Second); err != nil {
			return err
		}
		d, err := b.latency(ctx, lb, clip)
		dispatch = append(dispatch, d...)
		if err != nil {
			b.rep.Note("latency: %v", err)
		}
		for i := range b.opt.dispatchCycles {
			d, err := lb.DispatchCycle(ctx, clip, fmt.Sprintf("dispatch-%d", i))
			if err != nil {
				b.rep.Note("dispatch cycle %d: %v", i+1, err)
				continue
			}
			b.progress("  dispatch cycle %d: %.0f ms", i+1, ms(d))
			dispatch = append(dispatch, d)
		}
	}
	if control {
		if err := b.control(ctx, lb, dispatch); err != nil {
			return err
		}
	}
	return nil
}

// latency runs the latency measurement runs times and returns the dispatch
// latencies it saw.
func (b *bench) latency(ctx context.Context, lb *live.Bench, clip string) ([]time.Duration, error) {
	var first, steadyMed, steadyMax, overMed []float64
	var dispatch []time.Duration
	var lines []string
	var errs []string
	for i := range b.opt.runs {
		r, err := lb.Latency(ctx, clip, b.opt.latencyLength, fmt.Sprintf("latency-%d", i))
		if err != nil {
			errs = append(errs, fmt.Sprintf("run %d: %v", i+1, err))
			b.progress("  latency run %d: %v", i+1, err)
			if r.FirstListed == 0 {
				continue
			}
		}
		first = append(first, r.FirstListed.Seconds())
		if r.Dispatch > 0 {
			dispatch = append(dispatch, r.Dispatch)
		}
		med, mx, over := "n/a", "n/a", "n/a"
		if len(r.FirstFrame) > 0 {
			d := measure.Summarize(durSecs(r.FirstFrame))
			o := measure.Summarize(durSecs(r.LastFrame))
			steadyMed = append(steadyMed, d.Median)
			steadyMax = append(steadyMax, d.Max)
			overMed = append(overMed, o.Median)
			med, mx, over = fmt.Sprintf("%.2f", d.Median), fmt.Sprintf("%.2f", d.Max), o.Format("%.2f")
		}
		b.progress("  latency run %d: first segment listed %.2fs after publish start; steady delay median %s s, max %s s over %d segments (last frame: %s s; ±%.0f ms); dispatch %.0f ms",
			i+1, r.FirstListed.Seconds(), med, mx, len(r.FirstFrame), over, ms(r.Residual), ms(r.Dispatch))
		lines = append(lines, fmt.Sprintf("| %d | %.0f | %.2f | %s | %s | %s | %d | ±%.0f | %.0f |", i+1, ms(r.PublishAccepted), r.FirstListed.Seconds(),
			med, mx, over, len(r.FirstFrame), ms(r.Residual), ms(r.Dispatch)))
	}
	sec := "3 Latency"
	seg := b.opt.segment.Seconds()
	floor := measure.Summary{Min: seg, Median: seg, Max: seg, N: 1}
	b.rep.Add(report.Row{Section: sec, Metric: "publish start → first segment listed (through the router)", Unit: "s",
		Ours: measure.Summarize(first), Ref: floor, RefName: "floor: one segment", LowerIsBetter: true})
	b.rep.Add(report.Row{Section: sec, Metric: "steady state: a segment's first frame enters the edge → segment listed (median per run)", Unit: "s",
		Ours: measure.Summarize(steadyMed), Ref: floor, RefName: "floor: one segment", LowerIsBetter: true,
		Note: fmt.Sprintf("the floor is the segment duration (a segment is listed once complete); the excess, i.e. its last frame → listed, was %s s", measure.Summarize(overMed).Format("%.2f"))})
	b.rep.Add(report.Row{Section: sec, Metric: "steady state, worst segment per run", Unit: "s",
		Ours: measure.Summarize(steadyMax), Ref: floor, RefName: "floor: one segment", LowerIsBetter: true})
	var body strings.Builder
	fmt.Fprintf(&body, "Ladder `bench-live`: %s, segments of %s; %d publish run(s) of %s each with ffmpeg `-re -c copy` over RTMP into the edge; the %s playlist and the audio playlist are polled through the router every 50 ms. Method and error bars: docs/performance.md.\n\n",
		ladderText(lightLadder), b.opt.segment, b.opt.runs, b.opt.latencyLength, lb.Rung)
	body.WriteString("| run | publish accepted ms after start | first segment listed s | first frame → listed, median s | worst s | last frame → listed s | segments | beep mapping residual ms | dispatch ms |\n|---|---|---|---|---|---|---|---|---|\n")
	body.WriteString(strings.Join(lines, "\n") + "\n")
	b.rep.Detail(sec, body.String())
	if len(errs) > 0 {
		return dispatch, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return dispatch, nil
}

func durSecs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// control measures the API and reports the dispatch latencies.
func (b *bench) control(ctx context.Context, lb *live.Bench, dispatch []time.Duration) error {
	type figs struct{ rps, p50, p99 []float64 }
	var create, read, floor figs
	add := func(f *figs, l live.Load) {
		f.rps = append(f.rps, l.PerSecond())
		f.p50 = append(f.p50, ms(measure.Percentile(l.Latencies, 0.50)))
		f.p99 = append(f.p99, ms(measure.Percentile(l.Latencies, 0.99)))
	}
	var lines []string
	for i := range b.opt.runs {
		c, r, f, err := lb.ControlPlane(ctx, b.opt.cpConcurrency, b.opt.cpDuration, fmt.Sprint(i))
		if err != nil {
			return err
		}
		add(&create, c)
		add(&read, r)
		add(&floor, f)
		for _, x := range []struct {
			n string
			l live.Load
		}{{"create", c}, {"get", r}, {"healthz", f}} {
			line := fmt.Sprintf("| %d | %s | %d | %.0f | %.1f | %.1f |", i+1, x.n, x.l.Requests, x.l.PerSecond(),
				ms(measure.Percentile(x.l.Latencies, 0.5)), ms(measure.Percentile(x.l.Latencies, 0.99)))
			lines = append(lines, line)
		}
		b.progress("  api run %d: create %.0f/s p99 %.1f ms, get %.0f/s p99 %.1f ms, healthz %.0f/s p99 %.1f ms", i+1,
			c.PerSecond(), ms(measure.Percentile(c.Latencies, .99)), r.PerSecond(), ms(measure.Percentile(r.Latencies, .99)),
			f.PerSecond(), ms(measure.Percentile(f.Latencies, .99)))
	}
	sec := "4 Control plane"
	hz := "API /healthz"
	b.rep.Add(report.Row{Section: sec, Metric: "stream create throughput", Unit: "req/s", Verb: "%.0f", Ours: measure.Summarize(create.rps), Ref: measure.Summarize(floor.rps), RefName: hz})
	b.rep.Add(report.Row{Section: sec, Metric: "stream create p99", Unit: "ms", Verb: "%.1f", Ours: measure.Summarize(create.p99), Ref: measure.Summarize(floor.p99), RefName: hz, LowerIsBetter: true})
	b.rep.Add(report.Row{Section: sec, Metric: "stream get throughput", Unit: "req/s", Verb: "%.0f", Ours: measure.Summarize(read.rps), Ref: measure.Summarize(floor.rps), RefName: hz})
	b.rep.Add(report.Row{Section: sec, Metric: "stream get p99", Unit: "ms", Verb: "%.1f", Ours: measure.Summarize(read.p99), Ref: measure.Summarize(floor.p99), RefName: hz, LowerIsBetter: true})
	var dl string
	if len(dispatch) > 0 {
		s := slices.Clone(dispatch)
		slices.Sort(s)
		p50, p99 := ms(measure.Percentile(s, .5)), ms(measure.Percentile(s, .99))
		one := func(v float64) measure.Summary { return measure.Summary{Min: v, Median: v, Max: v, N: 1} }
		note := fmt.Sprintf("over all %d go-lives of the run (min %.0f, max %.0f ms); with so few samples p99 is the maximum", len(s), ms(s[0]), ms(s[len(s)-1]))
		b.rep.Add(report.Row{Section: sec, Metric: "dispatch: edge go-live → worker pipeline playing, p50", Unit: "ms", Verb: "%.0f", Ours: one(p50), LowerIsBetter: true, Note: note})
		b.rep.Add(report.Row{Section: sec, Metric: "dispatch p99", Unit: "ms", Verb: "%.0f", Ours: one(p99), LowerIsBetter: true})
		dl = fmt.Sprintf("Dispatch samples (ms, sorted): %s. Each is the worker log's `pipeline started` minus the edge log's `stream live` for that stream (both processes log JSON with nanosecond timestamps from the same clock).\n\n", live.Strings(s))
	} else {
		b.rep.Note("dispatch latency: no sample (the latency section did not run or failed)")
	}
	var body strings.Builder
	fmt.Fprintf(&body, "%d concurrent clients, closed loop, %s per operation and run, keep-alive, against the API process with its PostgreSQL and Redis. The reference is the same load on the API's `/healthz` (no database): the cost of the HTTP round trip alone on this machine.\n\n", b.opt.cpConcurrency, b.opt.cpDuration)
	body.WriteString("| run | operation | requests | req/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|\n")
	body.WriteString(strings.Join(lines, "\n") + "\n\n" + dl)
	b.rep.Detail(sec, body.String())
	return nil
}
