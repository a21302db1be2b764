package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/services/internal/dbtest"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/secret"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

type testBundle struct {
	st  *store.Store
	ctx context.Context
}

func setup(t *testing.T) testBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return testBundle{st: store.New(dbtest.New(t)), ctx: ctx}
}

func customLadder() ladder.Ladder {
	return ladder.Ladder{Renditions: []ladder.Rendition{{Name: "540p", Width: 960, Height: 540, VideoBitrateKbps: 1800}}}.WithDefaults()
}

func TestBuiltinProfilesMatchLadderPackage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	profiles, next, err := b.st.ListProfiles(b.ctx, store.Page{Limit: 50})
	require.NoError(t, err)
	require.Nil(t, next)
	got := map[string]ladder.Ladder{}
	for _, p := range profiles {
		require.True(t, p.Builtin, p.Name)
		require.NoError(t, p.Ladder.Validate(), p.Name)
		got[p.Name] = p.Ladder
	}
	require.Equal(t, ladder.Builtins(), got)
}

func TestProfileLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p, err := b.st.CreateProfile(b.ctx, store.NewProfile{Name: "sd", Description: "one rung", Ladder: customLadder()})
	require.NoError(t, err)
	require.Equal(t, byte(7), p.ID[6]>>4, "UUIDv7")
	require.False(t, p.Builtin)

	got, err := b.st.ResolveProfile(b.ctx, "sd")
	require.NoError(t, err)
	require.Equal(t, p.ID, got.ID)
	require.Equal(t, customLadder(), got.Ladder)
	got, err = b.st.ResolveProfile(b.ctx, p.ID.String())
	require.NoError(t, err)
	require.Equal(t, "sd", got.Name)

	_, err = b.st.CreateProfile(b.ctx, store.NewProfile{Name: "sd", Ladder: customLadder()})
	require.ErrorIs(t, err, store.ErrConflict)

	name := "sd2"
	l := customLadder()
	l.Audio.BitrateKbps = 96
	up, err := b.st.UpdateProfile(b.ctx, p.ID, store.ProfileUpdate{Name: &name, Ladder: &l})
	require.NoError(t, err)
	require.Equal(t, "sd2", up.Name)
	require.Equal(t, "one rung", up.Description)
	require.Equal(t, 96, up.Ladder.Audio.BitrateKbps)

	// In use by a stream: cannot be deleted.
	s, err := b.st.CreateStream(b.ctx, store.NewStream{Name: "x", ProfileID: p.ID})
	require.NoError(t, err)
	require.ErrorIs(t, b.st.DeleteProfile(b.ctx, p.ID), store.ErrInUse)
	require.NoError(t, b.st.DeleteStream(b.ctx, s.ID))
	require.NoError(t, b.st.DeleteProfile(b.ctx, p.ID))
	_, err = b.st.GetProfile(b.ctx, p.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, b.st.DeleteProfile(b.ctx, p.ID), store.ErrNotFound)
	_, err = b.st.UpdateProfile(b.ctx, p.ID, store.ProfileUpdate{Name: &name})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestBuiltinProfilesAreReadOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p, err := b.st.GetProfileByName(b.ctx, ladder.Builtin720p)
	require.NoError(t, err)
	name := "mine"
	_, err = b.st.UpdateProfile(b.ctx, p.ID, store.ProfileUpdate{Name: &name})
	require.ErrorIs(t, err, store.ErrBuiltin)
	require.ErrorIs(t, b.st.DeleteProfile(b.ctx, p.ID), store.ErrBuiltin)
	again, err := b.st.GetProfile(b.ctx, p.ID)
	require.NoError(t, err)
	require.Equal(t, p, again)
}

func TestStreamLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p720, err := b.st.GetProfileByName(b.ctx, ladder.Builtin720p)
	require.NoError(t, err)
	s, err := b.st.CreateStream(b.ctx, store.NewStream{Name: "news", ProfileID: p720.ID})
	require.NoError(t, err)
	require.Equal(t, byte(7), s.ID[6]>>4, "UUIDv7")
	require.True(t, secret.ValidStreamKey(s.StreamKey))
	require.Equal(t, "720p", s.ProfileName)
	require.Equal(t, []string{job.OutputHLS, job.OutputDASH}, s.Outputs)
	require.Equal(t, job.HardwareAuto, s.Hardware)
	require.Equal(t, store.PlaybackPublic, s.PlaybackPolicy)
	require.Equal(t, 2, s.SegmentDuration)
	require.Equal(t, 6, s.PlaylistWindowSize)
	require.Equal(t, store.StatusIdle, s.Status)
	require.NotContains(t, s.String(), s.StreamKey)

	byKey, err := b.st.GetStreamByKey(b.ctx, s.StreamKey)
	require.NoError(t, err)
	require.Equal(t, s, byKey)

	p1080, err := b.st.GetProfileByName(b.ctx, ladder.Builtin1080p)
	require.NoError(t, err)
	hw, seg, off := job.HardwareCPU, 4, true
	up, err := b.st.UpdateStream(b.ctx, s.ID, store.StreamUpdate{ProfileID: &p1080.ID, Hardware: &hw, SegmentDuration: &seg,
		Disabled: &off, Outputs: []string{job.OutputHLS}})
	require.NoError(t, err)
	require.Equal(t, "1080p", up.ProfileName)
	require.Equal(t, "news", up.Name)
	require.Equal(t, job.HardwareCPU, up.Hardware)
	require.Equal(t, 4, up.SegmentDuration)
	require.True(t, up.Disabled)
	require.Equal(t, []string{job.OutputHLS}, up.Outputs)
	require.Equal(t, s.StreamKey, up.StreamKey)

	bad := "tpu"
	_, err = b.st.UpdateStream(b.ctx, s.ID, store.StreamUpdate{Hardware: &bad})
	require.ErrorIs(t, err, store.ErrInvalid, "the CHECK constraint backs the API's validation")

	rot, err := b.st.RotateStreamKey(b.ctx, s.ID)
	require.NoError(t, err)
	require.NotEqual(t, s.StreamKey, rot.StreamKey)
	_, err = b.st.GetStreamByKey(b.ctx, s.StreamKey)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = b.st.GetStreamByKey(b.ctx, rot.StreamKey)
	require.NoError(t, err)

	_, err = b.st.CreateStream(b.ctx, store.NewStream{Name: "orphan", ProfileID: uuid.Must(uuid.NewV7())})
	require.ErrorIs(t, err, store.ErrInUse, "unknown profile violates the foreign key")

	require.NoError(t, b.st.DeleteStream(b.ctx, s.ID))
	_, err = b.st.GetStream(b.ctx, s.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, b.st.DeleteStream(b.ctx, s.ID), store.ErrNotFound)
	_, err = b.st.UpdateStream(b.ctx, s.ID, store.StreamUpdate{Disabled: &off})
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = b.st.RotateStreamKey(b.ctx, s.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestListStreamsPaginates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p, err := b.st.GetProfileByName(b.ctx, ladder.BuiltinPassthrough)
	require.NoError(t, err)
	var want []uuid.UUID
	for i := range 5 {
		s, err := b.st.CreateStream(b.ctx, store.NewStream{Name: string(rune('a' + i)), ProfileID: p.ID})
		require.NoError(t, err)
		want = append(want, s.ID)
	}
	var got []uuid.UUID
	page := store.Page{Limit: 2}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 3)
		items, next, err := b.st.ListStreams(b.ctx, page)
		require.NoError(t, err)
		for _, s := range items {
			got = append(got, s.ID)
		}
		if next == nil {
			break
		}
		page.After = next
	}
	require.Equal(t, want, got)
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	k, key, err := b.st.CreateAPIKey(b.ctx, "ops", store.ScopeAdmin)
	require.NoError(t, err)
	prefix, err := secret.ParseAPIKey(key)
	require.NoError(t, err)
	require.Equal(t, k.Prefix, prefix)

	got, hash, err := b.st.APIKeyByPrefix(b.ctx, prefix)
	require.NoError(t, err)
	require.Equal(t, k, got)
	require.True(t, secret.MatchAPIKey(key, hash))
	require.Nil(t, got.LastUsedAt)

	require.NoError(t, b.st.TouchAPIKey(b.ctx, k.ID, time.Minute))
	got, err = b.st.GetAPIKey(b.ctx, k.ID)
	require.NoError(t, err)
	require.NotNil(t, got.LastUsedAt)
	first := *got.LastUsedAt
	require.NoError(t, b.st.TouchAPIKey(b.ctx, k.ID, time.Minute))
	got, err = b.st.GetAPIKey(b.ctx, k.ID)
	require.NoError(t, err)
	require.Equal(t, first, *got.LastUsedAt, "a second use within the interval is not written")

	_, _, err = b.st.CreateAPIKey(b.ctx, "bad", "superuser")
	require.ErrorIs(t, err, store.ErrInvalid)

	r, err := b.st.RevokeAPIKey(b.ctx, k.ID)
	require.NoError(t, err)
	require.True(t, r.Revoked())
	r2, err := b.st.RevokeAPIKey(b.ctx, k.ID)
	require.NoError(t, err)
	require.Equal(t, r.RevokedAt, r2.RevokedAt)
	_, err = b.st.RevokeAPIKey(b.ctx, uuid.Must(uuid.NewV7()))
	require.ErrorIs(t, err, store.ErrNotFound)

	keys, next, err := b.st.ListAPIKeys(b.ctx, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Nil(t, next)
	require.Len(t, keys, 1)
}

func TestSessions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p, err := b.st.GetProfileByName(b.ctx, ladder.Builtin720p)
	require.NoError(t, err)
	s, err := b.st.CreateStream(b.ctx, store.NewStream{Name: "live", ProfileID: p.ID})
	require.NoError(t, err)

	edgeInfo := edgeapi.EdgeInfo{ID: "edge-1", PublicHost: "10.0.0.1", RTMPPort: 1935, KickURL: "http://10.0.0.1:9990/internal/v1/edge/kick"}
	src := store.SourceFromMedia("rtmp", edgeapi.Media{VideoCodec: "H264", Width: 1920, Height: 1080, AudioCodec: "MPEG-4 Audio", AudioChannels: 2})
	opened, err := b.st.OpenSession(b.ctx, store.NewSession{StreamID: s.ID, EdgeID: "edge-1", SourceID: "conn-1", Edge: edgeInfo, Source: src})
	require.NoError(t, err)
	require.True(t, opened.Created)
	require.Empty(t, opened.Superseded)
	first := opened.Session
	require.Equal(t, store.SessionLive, first.Status)
	require.Equal(t, "rtmp", *first.Source.Protocol)
	require.Equal(t, 1920, *first.Source.Width)
	require.Nil(t, first.Source.FrameRate, "unknown stays nil")
	require.Equal(t, edgeInfo, first.Edge)
	require.True(t, first.Open())
	live, err := b.st.GetStream(b.ctx, s.ID)
	require.NoError(t, err)
	require.Equal(t, store.StatusLive, live.Status)

	// The same publisher reported twice: the same session, nothing changed.
	again, err := b.st.OpenSession(b.ctx, store.NewSession{StreamID: s.ID, EdgeID: "edge-1", SourceID: "conn-1"})
	require.NoError(t, err)
	require.False(t, again.Created)
	require.Equal(t, first.ID, again.Session.ID)

	auth, err := b.st.PublishAuthByKey(b.ctx, s.StreamKey)
	require.NoError(t, err)
	require.Equal(t, s.ID, auth.StreamID)
	require.Equal(t, first.ID, *auth.SessionID)
	require.Equal(t, "edge-1", auth.SessionEdgeID)
	require.WithinDuration(t, first.StartedAt, auth.SessionSeenAt, time.Millisecond)

	seen := time.Now()
	bitrate := 4500
	require.NoError(t, b.st.UpdateSessionSource(b.ctx, first.ID, store.Source{BitrateKbps: &bitrate}, seen))
	got, err := b.st.GetSession(b.ctx, first.ID)
	require.NoError(t, err)
	require.Equal(t, 4500, *got.Source.BitrateKbps)
	require.Equal(t, 1920, *got.Source.Width, "fields not in the update are kept")

	kicked, err := b.st.RequestKick(b.ctx, first.ID, "disconnect")
	require.NoError(t, err)
	require.Equal(t, "disconnect", *kicked.KickReason)

	ended, didEnd, err := b.st.EndSessionBySource(b.ctx, "edge-1", "conn-1", edgeapi.EndPublisherDisconnected, "EOF", 0)
	require.NoError(t, err)
	require.True(t, didEnd)
	require.Equal(t, store.SessionEnded, ended.Status)
	require.NotNil(t, ended.EndedAt)
	require.Equal(t, edgeapi.EndPublisherDisconnected, *ended.EndReason)
	require.Equal(t, "EOF", *ended.EndDetail)
	_, didEnd, err = b.st.EndSession(b.ctx, first.ID, "again", "", 0)
	require.NoError(t, err)
	require.False(t, didEnd, "an ended session does not end twice")

	// Its worker's stop is due at once (no grace here): claimed once only,
	// and claimable again when given back.
	claimed, ok, err := b.st.ClaimWorkerStop(b.ctx, first.ID)
	require.NoError(t, err)
	require.True(t, ok)
	require.NotNil(t, claimed.WorkerStoppedAt)
	_, ok, err = b.st.ClaimWorkerStop(b.ctx, first.ID)
	require.NoError(t, err)
	require.False(t, ok, "a stop is claimed once")
	due, err := b.st.ClaimDueWorkerStops(b.ctx, 10)
	require.NoError(t, err)
	require.Empty(t, due)
	require.NoError(t, b.st.UnclaimWorkerStop(b.ctx, first.ID))
	due, err = b.st.ClaimDueWorkerStops(b.ctx, 10)
	require.NoError(t, err)
	require.Len(t, due, 1)
	require.Equal(t, first.ID, due[0].ID)
	idle, err := b.st.GetStream(b.ctx, s.ID)
	require.NoError(t, err)
	require.Equal(t, store.StatusIdle, idle.Status)
	_, err = b.st.RequestKick(b.ctx, first.ID, "disconnect")
	require.ErrorIs(t, err, store.ErrNotFound)

	// A second publisher connection supersedes an open session of the stream.
	second, err := b.st.OpenSession(b.ctx, store.NewSession{StreamID: s.ID, EdgeID: "edge-2", SourceID: "conn-2"})
	require.NoError(t, err)
	third, err := b.st.OpenSession(b.ctx, store.NewSession{StreamID: s.ID, EdgeID: "edge-1", SourceID: "conn-3"})
	require.NoError(t, err)
	require.Len(t, third.Superseded, 1)
	require.Equal(t, second.Session.ID, third.Superseded[0].ID)
	require.Equal(t, store.EndSuperseded, *third.Superseded[0].EndReason)
	open, err := b.st.OpenSessionOf(b.ctx, s.ID)
	require.NoError(t, err)
	require.Equal(t, third.Session.ID, open.ID)

	// A worker failure keeps the session open; a worker start makes it live again.
	failed, err := b.st.SetSessionError(b.ctx, open.ID, "w1", "encoder crashed", true)
	require.NoError(t, err)
	require.Equal(t, store.SessionFailed, failed.Status)
	require.True(t, failed.Open())
	require.Equal(t, "w1", *failed.WorkerID)
	restarted, err := b.st.SetSessionWorker(b.ctx, open.ID, "w2")
	require.NoError(t, err)
	require.Equal(t, store.SessionLive, restarted.Status)
	require.Equal(t, "encoder crashed", *restarted.LastError)

	edgeSessions, err := b.st.OpenEdgeSessions(b.ctx, "edge-1")
	require.NoError(t, err)
	require.Len(t, edgeSessions, 1)
	require.Equal(t, s.StreamKey, edgeSessions[0].StreamKey)
	n, err := b.st.CountLiveStreams(b.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	list, next, err := b.st.ListSessions(b.ctx, s.ID, store.Page{Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{third.Session.ID, second.Session.ID}, []uuid.UUID{list[0].ID, list[1].ID}, "newest first")
	require.NotNil(t, next)
	list, next, err = b.st.ListSessions(b.ctx, s.ID, store.Page{Limit: 2, After: next})
	require.NoError(t, err)
	require.Equal(t, first.ID, list[0].ID)
	require.Nil(t, next)

	_, err = b.st.OpenSession(b.ctx, store.NewSession{StreamID: uuid.Must(uuid.NewV7()), EdgeID: "e", SourceID: "c"})
	require.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, b.st.DeleteStream(b.ctx, s.ID))
	_, err = b.st.GetSession(b.ctx, first.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "sessions go with their stream")
}
