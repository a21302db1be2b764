// Package measure holds the benchmark's measuring tools: summaries of
// repeated runs (min/median/max), latency percentiles, and child processes
// measured the way the kernel accounts for them (wall time, user+system CPU
// seconds and peak resident memory from wait4's rusage).
package measure

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"
)

// Summary is the spread of one figure over repeated runs.
type Summary struct {
	Min, Median, Max float64
	N                int
}

// Summarize returns the min, median and max of xs (NaNs ignored).
func Summarize(xs []float64) Summary {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Summary{Min: math.NaN(), Median: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Summary{Min: v[0], Median: med, Max: v[len(v)-1], N: len(v)}
}

// Valid reports whether the summary holds at least one value.
func (s Summary) Valid() bool { return s.N > 0 }

// Format prints "median (min–max)" with the given verb, or only the value
// when every run gave the same figure.
func (s Summary) Format(verb string) string {
	if !s.Valid() {
		return "n/a"
	}
	med := fmt.Sprintf(verb, s.Median)
	lo, hi := fmt.Sprintf(verb, s.Min), fmt.Sprintf(verb, s.Max)
	if s.N == 1 || (lo == med && hi == med) {
		return med
	}
	return fmt.Sprintf("%s (%s–%s)", med, lo, hi)
}

// Percentile returns the p-quantile (0..1) of sorted durations, nearest rank.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Usage is what one child process cost.
type Usage struct {
	Wall      time.Duration
	CPU       time.Duration // user + system, including descendants it waited for
	MaxRSSKiB int64         // peak resident set size
}

// Result is a finished child process.
type Result struct {
	Usage
	Stdout, Stderr []byte
}

// Run runs a command to completion and measures it. dir may be empty.
func Run(ctx context.Context, dir string, env []string, name string, args ...string) (Result, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	res := Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	res.Wall = time.Since(start)
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			res.MaxRSSKiB = ru.Maxrss
		}
	}
	if err != nil {
		tail := errb.Bytes()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return res, fmt.Errorf("running %s: %w\n%s", name, err, tail)
	}
	return res, nil
}
