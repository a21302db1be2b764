package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dionysia/dionysia/bench/internal/measure"
	"github.com/dionysia/dionysia/bench/internal/report"
	"github.com/dionysia/dionysia/bench/internal/webhooks"
)

// webhooksSection: events from the outbox to a local receiver through the
// real API's delivery worker, next to a plain POST loop to the same receiver.
func (b *bench) webhooksSection(ctx context.Context) error {
	logDir := filepath.Join(b.opt.work, "webhooks", "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	s, err := webhooks.Start(ctx, webhooks.Config{Dionysia: filepath.Join(b.path(b.opt.binDir), "dionysia"), LogDir: logDir,
		Concurrency: b.opt.hookConc})
	defer s.Close()
	if err != nil {
		return err
	}
	// Warm-up: connections, caches, the pool.
	if _, err := s.RunSustained(ctx, b.opt.hookProducers, b.opt.hookRate, time.Second); err != nil {
		return err
	}
	var (
		sustRate, sustP50, sustP99, drainRate, refRate, refP50, refP99 []float64
		lines                                                          []string
	)
	for i := range b.opt.runs {
		r, err := s.RunSustained(ctx, b.opt.hookProducers, b.opt.hookRate, b.opt.hookDuration)
		if err != nil {
			return err
		}
		d, err := s.RunDrain(ctx, b.opt.hookProducers, b.opt.hookBacklog)
		if err != nil {
			return err
		}
		ref := s.RunReference(ctx, b.opt.hookDuration)
		sustRate, sustP50, sustP99 = append(sustRate, r.PerSecond()), append(sustP50, ms(r.P(.5))), append(sustP99, ms(r.P(.99)))
		drainRate = append(drainRate, d.PerSecond())
		refRate, refP50, refP99 = append(refRate, ref.PerSecond()), append(refP50, ms(ref.P(.5))), append(refP99, ms(ref.P(.99)))
		b.progress("  run %d sustained %d events %.0f/s commit→arrival p50 %.1f ms p99 %.1f ms; backlog %d in %s = %.0f/s; reference %.0f req/s p50 %.2f ms p99 %.2f ms",
			i+1, r.Events, r.PerSecond(), ms(r.P(.5)), ms(r.P(.99)), d.Events, d.Elapsed.Round(time.Millisecond), d.PerSecond(),
			ref.PerSecond(), ms(ref.P(.5)), ms(ref.P(.99)))
		lines = append(lines, fmt.Sprintf("| %d | %d | %.0f | %.1f | %.1f | %d | %.0f | %.0f | %.2f | %.2f |", i+1, r.Events, r.PerSecond(),
			ms(r.P(.5)), ms(r.P(.99)), d.Events, d.PerSecond(), ref.PerSecond(), ms(ref.P(.5)), ms(ref.P(.99))))
	}
	sec := "6 Webhook delivery"
	ref := "plain POST loop"
	b.rep.Add(report.Row{Section: sec, Metric: "backlog drain, outbox → receiver vs " + ref, Unit: "events/s", Verb: "%.0f",
		Ours: measure.Summarize(drainRate), Ref: measure.Summarize(refRate), RefName: ref})
	b.rep.Add(report.Row{Section: sec, Metric: "sustained, recorded and delivered", Unit: "events/s", Verb: "%.0f",
		Ours: measure.Summarize(sustRate), Note: fmt.Sprintf("the offered load: %.0f events/s recorded through the API", b.opt.hookRate)})
	b.rep.Add(report.Row{Section: sec, Metric: "p50, commit → receiver vs " + ref + " round trip", Unit: "ms", Verb: "%.2f",
		Ours: measure.Summarize(sustP50), Ref: measure.Summarize(refP50), RefName: ref, LowerIsBetter: true})
	b.rep.Add(report.Row{Section: sec, Metric: "p99, commit → receiver vs " + ref + " round trip", Unit: "ms", Verb: "%.2f",
		Ours: measure.Summarize(sustP99), Ref: measure.Summarize(refP99), RefName: ref, LowerIsBetter: true})
	var body strings.Builder
	fmt.Fprintf(&body, "One `dionysia api` (its delivery worker at DIONYSIA_WEBHOOK_CONCURRENCY=%d) on a fresh database, one webhook to a receiver in the benchmark process that verifies every signature (pkg/signature) and answers 204. "+
		"**Sustained**: %d API clients record `webhook.test` events (`POST /webhooks/{id}/test`, one transaction each) at %.0f events/s in all (below the drain rate, so that the delay is delivery, not queueing) for %s while the worker delivers them; the delay is from the event's `created_at` (its transaction's start, a fraction of a millisecond before its commit) to its arrival at the receiver, the throughput is events over the time from the first request to the last arrival. "+
		"**Backlog**: the receiver holds its answers while %d events are recorded, then the time from its release to the last arrival gives the drain rate. "+
		"**Reference**: %d keep-alive Go clients POSTing signed payloads of the same shape straight to the same receiver for %s, the ceiling of the receiver and the loopback; its latency is a request's round trip. API, PostgreSQL, receiver and load share the same cores.\n\n",
		b.opt.hookConc, b.opt.hookProducers, b.opt.hookRate, b.opt.hookDuration, b.opt.hookBacklog, b.opt.hookConc, b.opt.hookDuration)
	body.WriteString("| run | sustained events | events/s | p50 ms | p99 ms | backlog events | drain events/s | reference req/s | reference p50 ms | reference p99 ms |\n|---|---|---|---|---|---|---|---|---|---|\n")
	body.WriteString(strings.Join(lines, "\n") + "\n")
	b.rep.Detail(sec, body.String())
	return nil
}
