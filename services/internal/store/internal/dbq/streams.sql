-- Mutations return the id; the store then reads the stream with its profile's
-- name (GetStream) in the same transaction.

-- name: CreateStream :one
INSERT INTO streams (id, name, stream_key, profile_id, outputs, hardware, playback_policy,
                     segment_duration, playlist_window_size, disabled, recording_mode,
                     recording_delete_after_days, dvr_window_s, thumbnail_interval_s)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
RETURNING id;

-- name: GetStream :one
SELECT sqlc.embed(s), p.name AS profile_name
FROM streams s JOIN profiles p ON p.id = s.profile_id
WHERE s.id = $1;

-- name: GetStreamByKey :one
SELECT sqlc.embed(s), p.name AS profile_name
FROM streams s JOIN profiles p ON p.id = s.profile_id
WHERE s.stream_key = $1;

-- name: ListStreams :many
SELECT sqlc.embed(s), p.name AS profile_name
FROM streams s JOIN profiles p ON p.id = s.profile_id
WHERE sqlc.narg(after)::uuid IS NULL OR s.id > sqlc.narg(after)::uuid
ORDER BY s.id
LIMIT sqlc.arg(max_rows);

-- name: UpdateStream :one
UPDATE streams SET
    name                 = coalesce(sqlc.narg(name), name),
    profile_id           = coalesce(sqlc.narg(profile_id), profile_id),
    outputs              = coalesce(sqlc.narg(outputs)::text[], outputs),
    hardware             = coalesce(sqlc.narg(hardware), hardware),
    playback_policy      = coalesce(sqlc.narg(playback_policy), playback_policy),
    segment_duration     = coalesce(sqlc.narg(segment_duration), segment_duration),
    playlist_window_size = coalesce(sqlc.narg(playlist_window_size), playlist_window_size),
    disabled             = coalesce(sqlc.narg(disabled), disabled),
    recording_mode       = coalesce(sqlc.narg(recording_mode), recording_mode),
    recording_delete_after_days = CASE WHEN sqlc.arg(set_delete_after_days)::boolean
                                       THEN sqlc.narg(recording_delete_after_days)::integer
                                       ELSE recording_delete_after_days END,
    dvr_window_s         = coalesce(sqlc.narg(dvr_window_s), dvr_window_s),
    thumbnail_interval_s = coalesce(sqlc.narg(thumbnail_interval_s), thumbnail_interval_s),
    updated_at           = now()
WHERE id = sqlc.arg(id)
RETURNING id;

-- name: RotateStreamKey :one
UPDATE streams SET stream_key = sqlc.arg(stream_key), updated_at = now()
WHERE id = sqlc.arg(id)
RETURNING id;

-- name: DeleteStream :execrows
DELETE FROM streams WHERE id = $1;

-- name: LockStream :one
SELECT id, stream_key, disabled FROM streams WHERE id = $1 FOR UPDATE;

-- name: RefreshStreamStatus :exec
-- live while the stream has an open session, idle otherwise.
UPDATE streams SET status = CASE
    WHEN EXISTS (SELECT 1 FROM stream_sessions ss WHERE ss.stream_id = streams.id AND ss.ended_at IS NULL) THEN 'live'
    ELSE 'idle' END
WHERE streams.id = $1;

-- name: GetPublishAuth :one
-- Everything a publish decision needs, in one indexed lookup.
SELECT s.id, s.disabled, ss.id AS session_id, ss.edge_id AS session_edge_id,
       ss.started_at AS session_started_at, ss.last_seen_at AS session_seen_at
FROM streams s LEFT JOIN stream_sessions ss ON ss.stream_id = s.id AND ss.ended_at IS NULL
WHERE s.stream_key = $1;

-- name: CountLiveStreams :one
SELECT count(*) FROM streams WHERE status = 'live';
