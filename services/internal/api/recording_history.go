package api

import (
	"cmp"
	"errors"
	"net/http"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/labstack/echo/v5"
)

// sessionRecordingHistory answers a worker that takes over a recording
// stream with the recorded segments of the last window_s seconds
// (job.RecordingHistory), so it can resume the DVR window.
func (s *Server) sessionRecordingHistory(c *echo.Context) error {
	ctx := c.Request().Context()
	id, err := pathID(c, "session")
	if err != nil {
		return err
	}
	window, err := strconv.Atoi(c.QueryParam("window_s"))
	if err != nil || window < 1 || window > job.MaxDVRWindowS {
		return badRequest("window_s must be a whole number of seconds from 1 to %d, not %q",
			job.MaxDVRWindowS, c.QueryParam("window_s"))
	}
	a, err := s.store.AssetOfSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("session %s is unknown or records no asset", id)
	}
	if err != nil {
		return err
	}
	objs, err := s.store.AssetObjects(ctx, a.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, recordingHistory(a.ID, objs, time.Duration(window)*time.Second))
}

// recordingHistory groups the segments that end within window of the
// newest segment's end by run (the CMAF header they need names the worker's
// lease token and run: "{rendition}/init-{token}-{run}.mp4"), oldest first.
func recordingHistory(assetID uuid.UUID, objs []job.RecordedObject, window time.Duration) job.RecordingHistory {
	h := job.RecordingHistory{AssetID: assetID, Runs: []job.RecordedRun{}}
	inits := map[string]job.RecordedObject{}
	var newest time.Time
	for _, o := range objs {
		switch o.Kind {
		case job.ObjectInit:
			inits[o.Key] = o
		case job.ObjectSegment:
			if end := segmentEnd(o); end.After(newest) {
				newest = end
			}
		}
	}
	type runKey = string // "init-{token}-{run}.mp4"
	runs := map[runKey]map[string]*job.RecordedRunTrack{}
	first := map[runKey]time.Time{}
	for _, o := range objs {
		init, ok := inits[o.Init]
		if o.Kind != job.ObjectSegment || !ok || init.Track == nil || !segmentEnd(o).After(newest.Add(-window)) {
			continue
		}
		k := path.Base(o.Init)
		if runs[k] == nil {
			runs[k] = map[string]*job.RecordedRunTrack{}
		}
		tr := runs[k][o.Rendition]
		if tr == nil {
			tr = &job.RecordedRunTrack{Rendition: o.Rendition, InitKey: init.Key, Track: *init.Track}
			runs[k][o.Rendition] = tr
		}
		tr.Segments = append(tr.Segments, job.RecordedSegment{Key: o.Key, Number: o.Number, Start: o.Start,
			MediaStart: o.MediaStart, DurationS: o.DurationS, Size: o.Size})
		if f, ok := first[k]; !ok || o.Start.Before(f) {
			first[k] = o.Start
		}
	}
	keys := make([]runKey, 0, len(runs))
	for k := range runs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b runKey) int { return first[a].Compare(first[b]) })
	for _, k := range keys {
		var run job.RecordedRun
		for _, tr := range runs[k] {
			slices.SortFunc(tr.Segments, func(a, b job.RecordedSegment) int { return cmp.Compare(a.Number, b.Number) })
			run.Tracks = append(run.Tracks, *tr)
		}
		// Video renditions by name, the audio last.
		slices.SortFunc(run.Tracks, func(a, b job.RecordedRunTrack) int {
			if a.Track.Audio != b.Track.Audio {
				if a.Track.Audio {
					return 1
				}
				return -1
			}
			return cmp.Compare(a.Rendition, b.Rendition)
		})
		h.Runs = append(h.Runs, run)
	}
	return h
}

func segmentEnd(o job.RecordedObject) time.Time {
	return o.Start.Add(time.Duration(o.DurationS * float64(time.Second)))
}
