package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/dionysia/dionysia/bench/internal/measure"
	"github.com/dionysia/dionysia/bench/internal/report"
	"github.com/dionysia/dionysia/bench/internal/routing"
)

// routingSection: origin direct vs router vs nginx on the same files.
func (b *bench) routingSection(ctx context.Context) error {
	work := filepath.Join(b.opt.work, "routing")
	logDir := filepath.Join(work, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/sbin/nginx"} {
			if _, e := os.Stat(p); e == nil {
				nginx, err = p, nil
			}
		}
	}
	if err != nil {
		b.rep.Note("routing: nginx is not installed (apt-get install nginx-light): the nginx column is missing")
		nginx = ""
	}
	s, err := routing.Start(ctx, routing.Config{
		Dionysia: filepath.Join(b.path(b.opt.binDir), "dionysia"),
		Origin:   filepath.Join(b.path(b.opt.benchBin), "origin"),
		Nginx:    nginx, Work: work, LogDir: logDir,
	})
	defer s.Close()
	if err != nil {
		return err
	}
	type figs struct{ rps, mbps, p50, p99 []float64 }
	res := map[string]*figs{}
	var lines []string
	for i := range b.opt.runs {
		for _, t := range s.Targets {
			if _, err := s.Load(ctx, t, b.opt.routeConcurrency, time.Second); err != nil { // warm-up
				return err
			}
			r, err := s.Load(ctx, t, b.opt.routeConcurrency, b.opt.routeDuration)
			if err != nil {
				return err
			}
			f := res[t.Name]
			if f == nil {
				f = &figs{}
				res[t.Name] = f
			}
			f.rps = append(f.rps, r.PerSecond())
			f.mbps = append(f.mbps, r.MBPerSecond())
			f.p50 = append(f.p50, ms(r.P(.5)))
			f.p99 = append(f.p99, ms(r.P(.99)))
			b.progress("  run %d %-16s %7.0f req/s %6.1f MB/s p50 %.2f ms p99 %.2f ms", i+1, t.Name, r.PerSecond(), r.MBPerSecond(), ms(r.P(.5)), ms(r.P(.99)))
			lines = append(lines, fmt.Sprintf("| %d | %s | %d | %.0f | %.1f | %.2f | %.2f |", i+1, t.Name, r.Requests, r.PerSecond(), r.MBPerSecond(), ms(r.P(.5)), ms(r.P(.99))))
		}
	}
	sec := "5 Routing"
	router, direct, ngx, bare := res["router"], res["direct (origin)"], res["nginx"], res["router (no shield)"]
	for _, ref := range []struct {
		name string
		f    *figs
	}{{"origin direct", direct}, {"nginx", ngx}, {"router without its shield", bare}} {
		if ref.f == nil {
			continue
		}
		b.rep.Add(report.Row{Section: sec, Metric: "throughput, router vs " + ref.name, Unit: "req/s", Verb: "%.0f",
			Ours: measure.Summarize(router.rps), Ref: measure.Summarize(ref.f.rps), RefName: ref.name})
		b.rep.Add(report.Row{Section: sec, Metric: "p50, router vs " + ref.name, Unit: "ms", Verb: "%.2f",
			Ours: measure.Summarize(router.p50), Ref: measure.Summarize(ref.f.p50), RefName: ref.name, LowerIsBetter: true})
		b.rep.Add(report.Row{Section: sec, Metric: "p99, router vs " + ref.name, Unit: "ms", Verb: "%.2f",
			Ours: measure.Summarize(router.p99), Ref: measure.Summarize(ref.f.p99), RefName: ref.name, LowerIsBetter: true})
	}
	added50 := make([]float64, len(router.p50))
	added99 := make([]float64, len(router.p99))
	for i := range router.p50 {
		added50[i] = router.p50[i] - direct.p50[i]
		added99[i] = router.p99[i] - direct.p99[i]
	}
	var body strings.Builder
	fmt.Fprintf(&body, "%d files (HLS and DASH playlists, init and media segments of a 6 s 320x180 two-rendition tree, the router benchmark's), %d concurrent keep-alive clients each cycling through every file, 1 s warm-up then %s per target and run. `direct` is the worker's origin handler (standalone build), `router` the `dionysia router` process in proxy mode in front of it (owner looked up in its own Redis; origin shield on, default 256 MiB), `router (no shield)` the same with `DIONYSIA_ROUTER_CACHE_SIZE=0` (the proxy alone, as before the shield), `nginx` Debian's nginx serving the same directory (generated config: worker_processes auto, sendfile, keep-alive, access log off). Load generator, servers and Redis share the same cores.\n\n",
		len(s.Files), b.opt.routeConcurrency, b.opt.routeDuration)
	body.WriteString("| run | target | requests | req/s | MB/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|\n")
	body.WriteString(strings.Join(lines, "\n") + "\n\n")
	fmt.Fprintf(&body, "Added by the router over direct origin fetches: p50 %s ms, p99 %s ms.\n",
		measure.Summarize(added50).Format("%+.2f"), measure.Summarize(added99).Format("%+.2f"))
	b.rep.Detail(sec, body.String())
	return nil
}
