package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/dionysia/dionysia/bench/internal/measure"
	"github.com/dionysia/dionysia/bench/internal/report"
	"github.com/dionysia/dionysia/bench/internal/storagebench"
	"github.com/dionysia/dionysia/pkg/testkit"
)

// storageSection: recording uploads (segment-sized objects) through
// pkg/storage into a real SeaweedFS and into the file store, each next to a
// plain client on the same target.
func (b *bench) storageSection(ctx context.Context) error {
	weed, err := testkit.FindWeed(b.opt.root)
	if err != nil {
		return fmt.Errorf("%w (deploy/local/setup.sh weed builds it)", err)
	}
	const size = 1 << 20
	s, err := storagebench.Start(ctx, weed, filepath.Join(b.opt.work, "storage"), size)
	defer s.Close()
	if err != nil {
		return err
	}
	d := b.opt.storageDuration
	// Warm-up: connections, the first volume's allocation.
	s.PutStore(ctx, s.S3Put, "warm", 2, time.Second)
	s.PutReferenceS3(ctx, "warm", 2, time.Second)
	sec := "7 Recording uploads"
	var lines []string
	for _, conc := range []int{1, 4} {
		var ours, ref, fileOurs, fileRef, oursP99, refP99 []float64
		for i := range b.opt.runs {
			run := fmt.Sprintf("c%d-r%d", conc, i)
			o := s.PutStore(ctx, s.S3Put, run, conc, d)
			r := s.PutReferenceS3(ctx, run, conc, d)
			fo := s.PutStore(ctx, s.File, run, conc, d)
			fr := s.PutReferenceFile(ctx, run, conc, d)
			for _, res := range []storagebench.Result{o, r, fo, fr} {
				if res.Errors > 0 || res.Requests == 0 {
					return fmt.Errorf("run %s: %d puts, %d errors", run, res.Requests, res.Errors)
				}
			}
			ours, ref = append(ours, o.MBPerSecond()), append(ref, r.MBPerSecond())
			fileOurs, fileRef = append(fileOurs, fo.MBPerSecond()), append(fileRef, fr.MBPerSecond())
			oursP99, refP99 = append(oursP99, ms(o.P(.99))), append(refP99, ms(r.P(.99)))
			b.progress("  %d client(s) run %d: S3 %.0f MB/s (plain PUT %.0f), p99 %.1f ms (%.1f); file store %.0f MB/s (os.WriteFile %.0f)",
				conc, i+1, o.MBPerSecond(), r.MBPerSecond(), ms(o.P(.99)), ms(r.P(.99)), fo.MBPerSecond(), fr.MBPerSecond())
			lines = append(lines, fmt.Sprintf("| %d | %d | %d | %.0f | %.0f | %.1f | %.1f | %.0f | %.0f |", conc, i+1, o.Requests,
				o.MBPerSecond(), r.MBPerSecond(), ms(o.P(.99)), ms(r.P(.99)), fo.MBPerSecond(), fr.MBPerSecond()))
		}
		who := fmt.Sprintf("%d uploader(s)", conc)
		b.rep.Add(report.Row{Section: sec, Metric: "S3 (SeaweedFS) put throughput, " + who + ", vs plain signed PUT", Unit: "MB/s", Verb: "%.0f",
			Ours: measure.Summarize(ours), Ref: measure.Summarize(ref), RefName: "plain PUT"})
		b.rep.Add(report.Row{Section: sec, Metric: "S3 put p99, " + who + ", vs plain signed PUT", Unit: "ms", Verb: "%.1f",
			Ours: measure.Summarize(oursP99), Ref: measure.Summarize(refP99), RefName: "plain PUT", LowerIsBetter: true})
		b.rep.Add(report.Row{Section: sec, Metric: "file store put throughput, " + who + ", vs os.WriteFile", Unit: "MB/s", Verb: "%.0f",
			Ours: measure.Summarize(fileOurs), Ref: measure.Summarize(fileRef), RefName: "os.WriteFile"})
	}
	var body strings.Builder
	fmt.Fprintf(&body, "1 MiB objects (a 2 s segment of a 4 Mbit/s rung) under segment-shaped keys, put for %s per target and run by 1 (one stream's uploader, which uploads in order) and 4 concurrent clients. "+
		"**S3**: `pkg/storage` (minio-go, the client workers upload with) into a SeaweedFS `weed server -s3` on loopback, next to a plain net/http PUT signed with signature v4 (unsigned payload) to the same bucket. "+
		"**File**: `pkg/storage`'s file store (temporary file, fsync-free write, rename into place) next to `os.WriteFile` into the same disk. SeaweedFS, the clients and the disk share the same cores.\n\n", d)
	body.WriteString("| clients | run | S3 puts | S3 MB/s | plain PUT MB/s | S3 p99 ms | plain PUT p99 ms | file store MB/s | os.WriteFile MB/s |\n|---|---|---|---|---|---|---|---|---|\n")
	body.WriteString(strings.Join(lines, "\n") + "\n")
	b.rep.Detail(sec, body.String())
	return nil
}
