package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/workers/internal/packager"
	"github.com/google/uuid"
)

// DefaultDVRRestoreTimeout bounds how long a worker that takes over a
// recording stream holds its live playlists back while it fetches the DVR
// window's older segments from the store.
const DefaultDVRRestoreTimeout = 10 * time.Second

// maxHistoryAnswer bounds the API's answer to a history request (a 6-hour
// window of 1 s segments in 6 tracks is about 20 MB of JSON).
const maxHistoryAnswer = 64 << 20

// RecordingHistory asks the API for the segments a session recorded in its
// last window seconds (job.RecordingHistory).
func (r *Reporter) RecordingHistory(ctx context.Context, sessionID uuid.UUID, window int) (job.RecordingHistory, error) {
	var h job.RecordingHistory
	path := job.RecordingPath(sessionID) + "?window_s=" + strconv.Itoa(window)
	status, _, body, err := apiCallLimit(ctx, r.Client, r.APIURL, r.Secret, http.MethodGet, path, nil, maxHistoryAnswer)
	if err != nil {
		return h, fmt.Errorf("asking for the recorded DVR window: %w", err)
	}
	if status != http.StatusOK {
		return h, fmt.Errorf("asking for the recorded DVR window: %d %s: %s", status, http.StatusText(status), problemDetail(body))
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return h, fmt.Errorf("decoding the recorded DVR window: %w", err)
	}
	return h, nil
}

// resumeWindow gives a worker that takes over a recording stream with a
// DVR window the part of the window earlier owners recorded: the packager
// lists it before its own segments (packager.Resume), and its files are
// fetched from the store, newest first, in the background. The live
// playlists are published once they are in place, or after
// DVRRestoreTimeout with what arrived by then. It returns at once; a
// session that has recorded nothing yet (its first owner) costs one API
// call.
func (h *Handler) resumeWindow(ctx context.Context, log *slog.Logger, t job.Transcode, pk *packager.Packager, dir string) {
	if t.Recording == nil || t.DVRWindowS <= 0 || h.Store == nil || h.Reporter == nil {
		return
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	rec, err := h.Reporter.RecordingHistory(actx, t.SessionID, t.DVRWindowS)
	cancel()
	if err != nil {
		log.Warn("not resuming the DVR window", "err", err)
		return
	}
	hist, keys := historyOf(rec)
	if len(hist.Runs) == 0 {
		return
	}
	files, err := pk.Resume(hist)
	if err != nil {
		log.Warn("not resuming the DVR window", "err", err)
		return
	}
	timeout := cmp.Or(h.DVRRestoreTimeout, DefaultDVRRestoreTimeout)
	go func() {
		start := time.Now()
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		n, size, failed := h.fetchHistory(dctx, dir, files, keys)
		if err := pk.Release(); err != nil {
			log.Warn("publishing the resumed DVR window", "err", err)
		}
		log.Info("DVR window resumed from the recording", "files", n, "bytes", size, "missing", failed,
			"runs", len(hist.Runs), "took", time.Since(start).Round(time.Millisecond))
	}()
}

// historyFile names a file of a packager.History: a run, a track, and a
// segment number (0 for the run's CMAF header).
type historyFile struct {
	run       int
	rendition string
	number    uint64
}

// fetchHistory downloads the history's files into the stream directory,
// the newest first, four at a time, until ctx ends. It returns how many
// files and bytes it wrote and how many it could not get.
func (h *Handler) fetchHistory(ctx context.Context, dir string, files []packager.HistoryFile, keys map[historyFile]string) (int, int64, int) {
	var n, failed atomic.Int64
	var size atomic.Int64
	work := make(chan packager.HistoryFile)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for f := range work {
				k := keys[historyFile{f.Run, f.Rendition, f.Number}]
				got, err := h.fetchObject(ctx, k, filepath.Join(dir, f.Path))
				if err != nil {
					failed.Add(1)
					continue
				}
				n.Add(1)
				size.Add(got)
			}
		})
	}
	// Headers first (every segment needs its run's), then segments newest first.
	order := slices.Clone(files)
	slices.SortStableFunc(order, func(a, b packager.HistoryFile) int {
		if (a.Number == 0) != (b.Number == 0) {
			if a.Number == 0 {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.Number, a.Number)
	})
feed:
	for _, f := range order {
		select {
		case work <- f:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	unsent := int64(len(files)) - n.Load() - failed.Load()
	return int(n.Load()), size.Load(), int(failed.Load() + unsent)
}

func (h *Handler) fetchObject(ctx context.Context, key, path string) (int64, error) {
	if key == "" {
		return 0, fmt.Errorf("no key for %s", path)
	}
	rc, _, err := h.Store.Get(ctx, key, 0, 0)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	if err := packager.WriteFileAtomic(path, data); err != nil {
		return 0, err
	}
	return int64(len(data)), nil
}

// historyOf turns the API's list of a session's recorded segments into a
// packager.History, and the store key of each of its files. It keeps the
// newest part a packager can list as one window: going back from the
// newest run, each run keeps the segments every one of its tracks has,
// contiguous up to its newest; a run with a hole (a lost or unreported
// segment), with other renditions than the newest run, or on another
// timeline (an owner that did not resume the window) ends the history.
func historyOf(rec job.RecordingHistory) (packager.History, map[historyFile]string) {
	var h packager.History
	keys := map[historyFile]string{}
	type kept struct {
		tracks []packager.HistoryTrack
		keys   map[historyFile]string
	}
	var runs []kept // newest first
	var names []string
	var ast time.Time
	for i := len(rec.Runs) - 1; i >= 0; i-- {
		run := rec.Runs[i]
		var rnames []string
		for _, tr := range run.Tracks {
			rnames = append(rnames, tr.Rendition)
		}
		slices.Sort(rnames)
		if names == nil {
			names = rnames
		} else if !slices.Equal(names, rnames) {
			break
		}
		// The numbers every track has, and the contiguous tail of them.
		seen := map[uint64]int{}
		for _, tr := range run.Tracks {
			for _, s := range tr.Segments {
				seen[s.Number]++
			}
		}
		var common []uint64
		for n, c := range seen {
			if c == len(run.Tracks) {
				common = append(common, n)
			}
		}
		slices.Sort(common)
		if len(common) == 0 {
			break
		}
		from := len(common) - 1
		for from > 0 && common[from-1]+1 == common[from] {
			from--
		}
		tail := common[from:]
		whole := from == 0
		for _, tr := range run.Tracks {
			if len(tr.Segments) > 0 && tr.Segments[0].Number < tail[0] {
				whole = false
			}
		}
		k := kept{keys: map[historyFile]string{}}
		var runAST time.Time
		ok := true
		for _, tr := range run.Tracks {
			ts := tr.Track.Timescale
			if ts == 0 {
				ok = false
				break
			}
			ht := packager.HistoryTrack{Rendition: tr.Rendition, Audio: tr.Track.Audio, Timescale: ts, Codec: tr.Track.Codec,
				Width: tr.Track.Width, Height: tr.Track.Height, FrameRate: tr.Track.FrameRate, Bandwidth: tr.Track.Bandwidth,
				SampleRate: tr.Track.SampleRate, Channels: tr.Track.Channels}
			k.keys[historyFile{rendition: tr.Rendition}] = tr.InitKey
			for _, s := range tr.Segments {
				if s.Number < tail[0] || s.Number > tail[len(tail)-1] {
					continue
				}
				ht.Segments = append(ht.Segments, packager.HistorySegment{Number: s.Number, MediaStart: s.MediaStart,
					Duration: uint64(math.Round(s.DurationS * float64(ts))), Size: int(s.Size)})
				k.keys[historyFile{rendition: tr.Rendition, number: s.Number}] = s.Key
				if runAST.IsZero() && !s.Start.IsZero() {
					runAST = sessionStart(s.Start, s.MediaStart, ts)
				}
			}
			k.tracks = append(k.tracks, ht)
		}
		if !ok || runAST.IsZero() {
			break
		}
		if ast.IsZero() {
			ast = runAST
		} else if d := ast.Sub(runAST); d > 2*time.Millisecond || d < -2*time.Millisecond {
			break // another timeline: an owner that started its own
		}
		runs = append(runs, k)
		if !whole {
			break
		}
	}
	if len(runs) == 0 {
		return h, keys
	}
	h.AvailabilityStart = ast
	for i := len(runs) - 1; i >= 0; i-- {
		idx := len(h.Runs)
		h.Runs = append(h.Runs, packager.HistoryRun{Tracks: runs[i].tracks})
		for f, key := range runs[i].keys {
			f.run = idx
			keys[f] = key
		}
	}
	return h, keys
}

// sessionStart is the availabilityStartTime a segment implies: its program
// date time (truncated to the millisecond) less its media start, rounded up
// to the millisecond the packager truncated it to.
func sessionStart(start time.Time, mediaStart uint64, timescale uint32) time.Time {
	ts := uint64(timescale)
	offset := time.Duration(mediaStart/ts)*time.Second + time.Duration((mediaStart%ts)*uint64(time.Second)/ts)
	t := start.Add(-offset)
	if r := t.Truncate(time.Millisecond); !r.Equal(t) {
		return r.Add(time.Millisecond)
	}
	return t
}
