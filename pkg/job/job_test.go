package job_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/testkit"
)

func validPayload(t *testing.T) job.Transcode {
	t.Helper()
	l, err := ladder.Builtin(ladder.Builtin720p)
	require.NoError(t, err)
	return job.Transcode{
		StreamID:           uuid.Must(uuid.NewV7()),
		SessionID:          uuid.Must(uuid.NewV7()),
		Ladder:             l,
		Outputs:            []string{job.OutputHLS, job.OutputDASH},
		SegmentDuration:    2,
		PlaylistWindowSize: 6,
		Hardware:           job.HardwareAuto,
		PlaybackPolicy:     job.PolicyPublic,
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	p := validPayload(t)
	b, err := p.Marshal()
	require.NoError(t, err)
	got, err := job.Unmarshal(b)
	require.NoError(t, err)
	require.Equal(t, p.StreamID, got.StreamID)
	require.Equal(t, p.Ladder, got.Ladder)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		mutate func(*job.Transcode)
		want   string
	}{
		"no stream":       {func(p *job.Transcode) { p.StreamID = uuid.Nil }, "stream_id"},
		"no session":      {func(p *job.Transcode) { p.SessionID = uuid.Nil }, "session_id"},
		"segment too big": {func(p *job.Transcode) { p.SegmentDuration = 11 }, "segment_duration"},
		"tiny window":     {func(p *job.Transcode) { p.PlaylistWindowSize = 2 }, "playlist_window_size"},
		"no outputs":      {func(p *job.Transcode) { p.Outputs = nil }, "output"},
		"bad output":      {func(p *job.Transcode) { p.Outputs = []string{"smooth"} }, "smooth"},
		"bad policy":      {func(p *job.Transcode) { p.PlaybackPolicy = "" }, "playback_policy"},
		"bad ladder":      {func(p *job.Transcode) { p.Ladder.Renditions[0].Width = 641 }, "renditions[0].width"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := validPayload(t)
			tt.mutate(&p)
			b, err := p.Marshal()
			require.NoError(t, err)
			_, err = job.Unmarshal(b)
			require.ErrorIs(t, err, job.ErrInvalidPayload)
			require.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := job.Unmarshal([]byte("{not json"))
	require.ErrorIs(t, err, job.ErrInvalidPayload)
}

func TestPayloadCarriesNoCredential(t *testing.T) {
	t.Parallel()
	p := validPayload(t)
	b, err := p.Marshal()
	require.NoError(t, err)
	require.NotContains(t, string(b), "source")
	require.NotContains(t, string(b), "password")
	require.Equal(t, "/internal/v1/sessions/"+p.SessionID.String()+"/source", job.SourcePath(p.SessionID))
}

func TestSourceNeverPrintsKeyOrPassword(t *testing.T) {
	t.Parallel()
	s := job.Source{URL: "srt://edge:8890?streamid=read:live/sk_abc:worker:pw", User: "worker", Password: "pw"}
	for _, out := range []string{s.String(), s.LogValue().String()} {
		require.NotContains(t, out, "sk_abc")
		require.NotContains(t, out, "pw")
		require.True(t, strings.HasPrefix(out, "srt://edge:8890"), out)
	}
}

func TestQueueAndTaskID(t *testing.T) {
	t.Parallel()
	require.Equal(t, job.QueueGPU, job.QueueFor(job.ClassGPU))
	require.Equal(t, job.QueueCPU, job.QueueFor(job.ClassCPU))
	id := uuid.Must(uuid.NewV7())
	require.Equal(t, job.TaskID(id), job.TaskID(id))
	require.NotEqual(t, job.TaskID(id), job.TaskID(uuid.Must(uuid.NewV7())))
}

func TestStopSignal(t *testing.T) {
	t.Parallel()
	r := testkit.RedisPrefix(t)
	rdb := r.Client
	sig := job.StopSignal{Redis: rdb, Prefix: r.Prefix, PollInterval: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("requested while watching arrives through pub/sub", func(t *testing.T) {
		id := uuid.Must(uuid.NewV7())
		other := uuid.Must(uuid.NewV7())
		ch := sig.Watch(ctx, id)
		// Wait for the subscription to be live, then stop another session first:
		// it must not stop ours.
		require.Eventually(t, func() bool {
			n, _ := rdb.PubSubNumSub(ctx, sig.Prefix+"session-stop").Result()
			return n[sig.Prefix+"session-stop"] > 0
		}, 30*time.Second, 10*time.Millisecond)
		require.NoError(t, sig.Request(ctx, other, "other"))
		require.NoError(t, sig.Request(ctx, id, "publisher_disconnected"))
		select {
		case r := <-ch:
			require.Equal(t, "publisher_disconnected", r)
		case <-ctx.Done():
			t.Fatal("no stop delivered")
		}
	})

	t.Run("requested before watching is seen in the key", func(t *testing.T) {
		id := uuid.Must(uuid.NewV7())
		require.NoError(t, sig.Request(ctx, id, "stream_disabled"))
		reason, ok, err := sig.Requested(ctx, id)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "stream_disabled", reason)
		select {
		case r := <-sig.Watch(ctx, id):
			require.Equal(t, "stream_disabled", r)
		case <-ctx.Done():
			t.Fatal("no stop delivered")
		}
	})

	t.Run("watch ends without a reason when the context ends", func(t *testing.T) {
		wctx, wcancel := context.WithCancel(ctx)
		ch := sig.Watch(wctx, uuid.Must(uuid.NewV7()))
		wcancel()
		_, ok := <-ch
		require.False(t, ok)
	})
}
