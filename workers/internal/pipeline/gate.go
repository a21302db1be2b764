package pipeline

import (
	"fmt"
	"sync"

	"github.com/dionysia/dionysia/workers/internal/media"
)

// trackGate announces the tracks to the sink, once, when the renditions are
// built and the audio is settled, and holds every appsink callback back
// until then: the sink sees Tracks before its first frame.
type trackGate struct {
	sink       media.Sink // set by Run before the pipeline starts
	source     *source
	renditions *renditionSet
	audio      *audioBranch
	failure    *failure
	stopping   <-chan struct{} // closed on teardown: releases blocked callbacks

	once  sync.Once
	ready chan struct{} // closed once sink.Tracks succeeded
}

// maybeOpen opens the gate if the renditions are built and the audio is
// settled (see audioBranch.settled).
func (g *trackGate) maybeOpen() {
	if built, _ := g.renditions.isBuilt(); !built {
		return
	}
	if g.audio.settled(g.source.allSeen()) {
		g.open()
	}
}

// open calls sink.Tracks with the video tracks and the audio track, if
// any; it does something only the first time.
func (g *trackGate) open() {
	g.once.Do(func() {
		audio := g.audio.seal()
		video := g.renditions.videoTracks()
		if err := g.sink.Tracks(video, audio); err != nil {
			g.failure.fail(fmt.Errorf("%w: tracks: %w", ErrSink, err))
			return
		}
		close(g.ready)
	})
}

// isOpen reports whether frames flow to the sink.
func (g *trackGate) isOpen() bool {
	select {
	case <-g.ready:
		return true
	default:
		return false
	}
}

// wait blocks a streaming thread until Tracks was called; false means the
// run is over.
func (g *trackGate) wait() bool {
	select {
	case <-g.ready:
		return true
	case <-g.failure.done:
		return false
	case <-g.stopping:
		return false
	}
}
