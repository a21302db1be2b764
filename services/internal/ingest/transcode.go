package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/dispatch"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
)

// Transcodes builds transcode payloads from the database. It implements
// dispatch.Sessions.
type Transcodes struct {
	Store      *store.Store
	EdgeSecret string // keys the worker read credential
}

var _ dispatch.Sessions = Transcodes{}

// Transcode returns the payload of a session that wants a worker: open and
// not failed. ok is false for any other session.
func (t Transcodes) Transcode(ctx context.Context, sessionID uuid.UUID) (job.Transcode, bool, error) {
	sess, err := t.Store.GetSession(ctx, sessionID)
	if errors.Is(err, store.ErrNotFound) {
		return job.Transcode{}, false, nil
	}
	if err != nil {
		return job.Transcode{}, false, err
	}
	if !sess.Open() || sess.Status == store.SessionFailed {
		return job.Transcode{StreamID: sess.StreamID, SessionID: sess.ID}, false, nil
	}
	st, err := t.Store.GetStream(ctx, sess.StreamID)
	if err != nil {
		return job.Transcode{}, false, err
	}
	out, err := t.build(ctx, st, sess)
	return out, err == nil, err
}

// Wanted lists the open, not failed sessions with their stream's playback
// policy.
func (t Transcodes) Wanted(ctx context.Context) ([]dispatch.Want, error) {
	open, err := t.Store.OpenSessionPolicies(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]dispatch.Want, 0, len(open))
	for _, s := range open {
		if s.Status != store.SessionFailed {
			out = append(out, dispatch.Want{StreamID: s.StreamID, SessionID: s.SessionID, Policy: s.PlaybackPolicy})
		}
	}
	return out, nil
}

// build is the payload of a session of st: references (stream, session and,
// when it records, its asset) and a snapshot of the stream's profile,
// outputs, DVR window and thumbnail interval. It holds no credential:
// the worker fetches where to pull from (Source) from the API.
func (t Transcodes) build(ctx context.Context, st store.Stream, sess store.Session) (job.Transcode, error) {
	p, err := t.Store.GetProfile(ctx, st.ProfileID)
	if err != nil {
		return job.Transcode{}, err
	}
	if _, err := t.source(st, sess); err != nil {
		return job.Transcode{}, err
	}
	tr := job.Transcode{
		StreamID: st.ID, SessionID: sess.ID,
		ProfileID:   p.ID,
		ProfileName: p.Name,
		Ladder:      p.Ladder,
		Outputs:     st.Outputs, SegmentDuration: float64(st.SegmentDuration), PlaylistWindowSize: st.PlaylistWindowSize,
		Hardware: st.Hardware, PlaybackPolicy: st.PlaybackPolicy,
		DVRWindowS: st.DVRWindowS, ThumbnailIntervalS: st.ThumbnailIntervalS,
	}
	// A recording session keeps its asset whichever worker runs it (a
	// re-dispatch after a failover continues the same asset).
	a, err := t.Store.AssetOfSession(ctx, sess.ID)
	switch {
	case err == nil:
		if a.Status == job.AssetRecording {
			tr.Recording = &job.Recording{AssetID: a.ID}
		}
	case !errors.Is(err, store.ErrNotFound):
		return job.Transcode{}, err
	}
	if err := tr.Validate(); err != nil {
		return job.Transcode{}, err
	}
	return tr, nil
}

// source is where a worker pulls an open session of st from, with its read
// credential: the session's edge (it moves when a publisher resumes the
// session on another edge) and the stream's current key.
func (t Transcodes) source(st store.Stream, sess store.Session) (job.Source, error) {
	proto := readProtocol(sess.Edge, sess.Source)
	url := sess.Edge.SourceURL(proto, st.StreamKey)
	if sess.Edge.PublicHost == "" || url == "" {
		return job.Source{}, fmt.Errorf("session %s: its edge %q reported no address to pull from", sess.ID, sess.EdgeID)
	}
	return job.Source{URL: url, User: WorkerUser, Password: WorkerPassword(t.EdgeSecret, st.ID, sess.ID)}, nil
}

// readProtocol is how a worker reads a session from its edge (ADR 0015):
// RTMP, the proven path (first frame in ~0.4 s), when the source's codecs
// survive legacy FLV (H.264 with AAC, MP3 or no audio); RTSP (TCP
// interleaved), which carries every codec the edge accepts (H.265, Opus,
// AC-3, ...), for any other source or one whose codecs are not known yet.
// An edge without the listener the choice needs falls back to what it has:
// RTMP, then RTSP, then SRT.
func readProtocol(e edgeapi.EdgeInfo, src store.Source) string {
	flvSafe := deref(src.VideoCodec) == "H264"
	switch deref(src.AudioCodec) {
	case "", "MPEG-4 Audio", "MPEG-1/2 Audio":
	default:
		flvSafe = false
	}
	switch {
	case flvSafe && e.RTMPPort != 0:
		return edgeapi.ProtocolRTMP
	case e.RTSPPort != 0:
		return edgeapi.ProtocolRTSP
	case e.RTMPPort != 0:
		return edgeapi.ProtocolRTMP
	default:
		return edgeapi.ProtocolSRT
	}
}
