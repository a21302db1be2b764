package worker

import (
	"fmt"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/stretchr/testify/require"
)

// recordedRun is a run of 2 s segments numbered from..to in each named
// track, on the timeline of ast; skip leaves numbers out of one track.
func recordedRun(ast time.Time, token int64, from, to uint64, tracks []string, skip map[string][]uint64) job.RecordedRun {
	var run job.RecordedRun
	for _, name := range tracks {
		ts := uint32(90000)
		if name == "audio" {
			ts = 48000
		}
		tr := job.RecordedRunTrack{Rendition: name, InitKey: fmt.Sprintf("assets/a/%s/init-%d-0.mp4", name, token),
			Track: job.RecordedTrack{Audio: name == "audio", Codec: "avc1.64001f", Timescale: ts}}
		for n := from; n <= to; n++ {
			if containsNumber(skip[name], n) {
				continue
			}
			at := time.Duration(n) * 2 * time.Second
			tr.Segments = append(tr.Segments, job.RecordedSegment{Key: fmt.Sprintf("assets/a/%s/%d-%d.m4s", name, token, n),
				Number: n, Start: ast.Add(at).Truncate(time.Millisecond), MediaStart: uint64(at.Seconds() * float64(ts)),
				DurationS: 2, Size: 100})
		}
		run.Tracks = append(run.Tracks, tr)
	}
	return run
}

func containsNumber(s []uint64, n uint64) bool {
	for _, v := range s {
		if v == n {
			return true
		}
	}
	return false
}

func TestHistoryOf(t *testing.T) {
	ast := time.Date(2026, 12, 2, 12, 0, 0, 123_000_000, time.UTC)
	both := []string{"360p", "audio"}
	numbers := func(h job.RecordingHistory) [][]uint64 {
		hist, keys := historyOf(h)
		var out [][]uint64
		for i, r := range hist.Runs {
			var ns []uint64
			for _, s := range r.Tracks[0].Segments {
				ns = append(ns, s.Number)
				for _, tr := range r.Tracks {
					require.NotEmpty(t, keys[historyFile{i, tr.Rendition, s.Number}], "key of %s %d", tr.Rendition, s.Number)
				}
			}
			for _, tr := range r.Tracks {
				require.Len(t, tr.Segments, len(ns), "every track of run %d lists the same segments", i)
				require.NotEmpty(t, keys[historyFile{i, tr.Rendition, 0}], "key of the CMAF header")
			}
			out = append(out, ns)
		}
		if len(hist.Runs) > 0 {
			require.True(t, ast.Equal(hist.AvailabilityStart), "availabilityStartTime %s", hist.AvailabilityStart)
		}
		return out
	}

	require.Equal(t, [][]uint64{{1, 2, 3}, {10, 11}}, numbers(job.RecordingHistory{Runs: []job.RecordedRun{
		recordedRun(ast, 1, 1, 3, both, nil), recordedRun(ast, 2, 10, 11, both, nil)}}), "whole")
	require.Equal(t, [][]uint64{{10, 11}}, numbers(job.RecordingHistory{Runs: []job.RecordedRun{
		recordedRun(ast, 1, 1, 3, both, nil), recordedRun(ast, 2, 9, 11, both, map[string][]uint64{"audio": {9}})}}),
		"a segment one track lacks ends the history")
	require.Equal(t, [][]uint64{{4, 5}}, numbers(job.RecordingHistory{Runs: []job.RecordedRun{
		recordedRun(ast, 1, 1, 6, both, map[string][]uint64{"360p": {3}, "audio": {6}})}}),
		"a hole in a run: only the contiguous tail; a newest segment one track lacks is left out")
	require.Equal(t, [][]uint64{{10, 11}}, numbers(job.RecordingHistory{Runs: []job.RecordedRun{
		recordedRun(ast, 1, 1, 3, []string{"360p", "720p", "audio"}, nil), recordedRun(ast, 2, 10, 11, both, nil)}}),
		"a run with other renditions ends the history")
	require.Equal(t, [][]uint64{{10, 11}}, numbers(job.RecordingHistory{Runs: []job.RecordedRun{
		recordedRun(ast.Add(-time.Minute), 1, 1, 3, both, nil), recordedRun(ast, 2, 10, 11, both, nil)}}),
		"a run on another timeline ends the history")
	require.Empty(t, numbers(job.RecordingHistory{}), "nothing recorded")
}
