package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestStreamRecordingFlags(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var s apiv1.Stream
	require.NoError(t, json.Unmarshal([]byte(b.ok("streams", "create", "--name", "rec", "--record", "automatic",
		"--delete-after-days", "7", "--dvr-window", "600", "--thumbnail-interval", "2.5", "-o", "json")), &s))
	require.Equal(t, "automatic", s.Recording.Mode)
	require.Equal(t, 7, *s.Recording.DeleteAfterDays)
	require.Equal(t, 600, s.DVRWindowS)
	require.Equal(t, 2.5, s.ThumbnailIntervalS)

	out := b.ok("streams", "get", s.ID.String())
	require.Regexp(t, `recording\s+automatic, kept 7 days`, out)
	require.Regexp(t, `dvr window\s+600 s`, out)

	require.NoError(t, json.Unmarshal([]byte(b.ok("streams", "update", s.ID.String(), "--record", "off", "-o", "json")), &s))
	require.Equal(t, apiv1.Recording{Mode: "off"}, s.Recording)
	require.Equal(t, 600, s.DVRWindowS, "other fields are kept")

	_, _, err := b.run("", "streams", "update", s.ID.String(), "--dvr-window", "99999")
	require.ErrorContains(t, err, "dvr_window_s")
	_, _, err = b.run("", "streams", "update", s.ID.String(), "--delete-after-days", "3")
	require.ErrorContains(t, err, "--delete-after-days needs --record")
	_, _, err = b.run("", "streams", "update", s.ID.String(), "--record", "sometimes")
	require.ErrorContains(t, err, "recording.mode")
}

func TestAssetsCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	streamID := uuid.New()
	recording, err := b.st.CreateSessionAsset(ctx, streamID, uuid.New(), nil)
	require.NoError(t, err)
	sessionID := uuid.New()
	ready, err := b.st.CreateSessionAsset(ctx, uuid.New(), sessionID, nil)
	require.NoError(t, err)
	_, err = b.st.AddRecorded(ctx, store.Recorded{AssetID: ready.ID, Token: 1, Objects: []job.RecordedObject{{Kind: job.ObjectSegment,
		Rendition: "720p", Key: job.AssetPrefix(ready.ID) + "720p/1-1.m4s", Size: 10, DurationS: 2, Start: time.Now()}}})
	require.NoError(t, err)
	_, _, err = b.st.EndSessionAsset(ctx, sessionID, 0)
	require.NoError(t, err)
	_, ok, err := b.st.ClaimAsset(ctx, ready.ID, time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, err = b.st.SetAssetReady(ctx, ready.ID, store.AssetBuilt{DurationS: 2, SizeBytes: 10})
	require.NoError(t, err)
	require.True(t, ok)

	table := b.ok("assets", "list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	require.Len(t, lines, 3, table)
	require.Regexp(t, `^ID\s+STREAM\s+STATUS\s+DURATION\s+BYTES\s+CREATED\s+READY$`, lines[0])
	require.Regexp(t, `^`+recording.ID.String()+`\s+`+streamID.String()+`\s+recording\s+0.0 s\s+0\s+`, lines[1])
	var list []apiv1.Asset
	require.NoError(t, json.Unmarshal([]byte(b.ok("assets", "list", "--stream", streamID.String(), "-o", "json")), &list))
	require.Len(t, list, 1)
	require.Equal(t, recording.ID, list[0].ID)

	out := b.ok("assets", "get", ready.ID.String())
	require.Regexp(t, `status\s+ready`, out)
	require.Contains(t, out, "/vod/"+ready.ID.String()+"/index.m3u8")

	_, _, err = b.run("", "assets", "delete", recording.ID.String())
	require.ErrorContains(t, err, "is recording")
	require.Contains(t, b.ok("assets", "delete", ready.ID.String()), "deleted asset "+ready.ID.String())
	var got apiv1.Asset
	require.NoError(t, json.Unmarshal([]byte(b.ok("assets", "get", ready.ID.String(), "-o", "json")), &got))
	require.Equal(t, job.AssetDeleted, got.Status)
	_, _, err = b.run("", "assets", "get", uuid.NewString())
	require.ErrorContains(t, err, "no asset with id")
}
