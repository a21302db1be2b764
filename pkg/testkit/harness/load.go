package harness

import (
	"context"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"
)

// LoadResult is what one closed-loop load run measured.
type LoadResult struct {
	Name      string
	Requests  int // successful calls
	Errors    int // failed calls
	Bytes     int64
	Elapsed   time.Duration
	Latencies []time.Duration // of the successful calls, sorted
}

// PerSecond is successful calls per second.
func (r LoadResult) PerSecond() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// MBPerSecond is payload megabytes per second.
func (r LoadResult) MBPerSecond() float64 { return float64(r.Bytes) / r.Elapsed.Seconds() / 1e6 }

// P returns the latency at percentile p (0..1), nearest rank.
func (r LoadResult) P(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(r.Latencies)))) - 1
	return r.Latencies[min(max(i, 0), len(r.Latencies)-1)]
}

// RunLoad is the closed-loop load generator: concurrency clients call fn
// back to back for d (client c's i-th call is fn(ctx, c, i)), each call
// timed; fn returns the payload bytes it read. A call cut by the end of d
// counts neither way.
func RunLoad(ctx context.Context, concurrency int, d time.Duration, fn func(ctx context.Context, client, i int) (int64, error)) LoadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var res LoadResult
	start := time.Now()
	var wg sync.WaitGroup
	for c := range concurrency {
		wg.Go(func() {
			var lat []time.Duration
			var n int64
			var errs int
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				b, err := fn(ctx, c, i)
				if ctx.Err() != nil {
					break
				}
				if err != nil {
					errs++
					continue
				}
				lat = append(lat, time.Since(t0))
				n += b
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			res.Bytes += n
			res.Errors += errs
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Requests = len(res.Latencies)
	slices.Sort(res.Latencies)
	return res
}

// Load runs RunLoad with keep-alive HTTP clients that GET urls in turn
// (client c starting at urls[c]) and read every body in full; a status other
// than 200 is an error. It is the router benchmark's load.
func Load(ctx context.Context, name string, urls []string, concurrency int, d time.Duration) LoadResult {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: concurrency * 2, MaxIdleConnsPerHost: concurrency * 2, DisableCompression: true,
	}}
	defer client.CloseIdleConnections()
	bufs := make([][]byte, concurrency)
	for c := range bufs {
		bufs[c] = make([]byte, 32<<10)
	}
	res := RunLoad(ctx, concurrency, d, func(ctx context.Context, c, i int) (int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[(c+i)%len(urls)], nil)
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		n, err := io.CopyBuffer(io.Discard, resp.Body, bufs[c])
		if err == nil && resp.StatusCode != http.StatusOK {
			err = &StatusError{URL: req.URL.String(), Status: resp.Status}
		}
		return n, err
	})
	res.Name = name
	return res
}

// StatusError is an HTTP answer that was not the one expected.
type StatusError struct{ URL, Status string }

func (e *StatusError) Error() string { return e.URL + ": " + e.Status }
