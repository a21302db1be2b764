-- name: InsertStreamSession :one
-- A duplicate (edge_id, source_id) inserts nothing and returns no row.
INSERT INTO stream_sessions (id, stream_id, edge_id, source_id, edge, source_protocol,
                             source_video_codec, source_video_profile, source_width, source_height,
                             source_frame_rate, source_bitrate_kbps, source_audio_codec,
                             source_audio_channels, source_audio_sample_rate, started_at, last_seen_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
ON CONFLICT (edge_id, source_id) DO NOTHING
RETURNING *;

-- name: GetStreamSession :one
SELECT * FROM stream_sessions WHERE id = $1;

-- name: GetStreamSessionBySource :one
SELECT * FROM stream_sessions WHERE edge_id = $1 AND source_id = $2;

-- name: GetOpenStreamSession :one
SELECT * FROM stream_sessions WHERE stream_id = $1 AND ended_at IS NULL;

-- name: ListOpenStreamSessionsOf :many
SELECT * FROM stream_sessions WHERE stream_id = ANY(sqlc.arg(stream_ids)::uuid[]) AND ended_at IS NULL;

-- name: ListOpenStreamSessions :many
SELECT * FROM stream_sessions WHERE ended_at IS NULL ORDER BY id;

-- name: ListOpenEdgeSessions :many
-- The open sessions of an edge with what a sync checks: the stream's current
-- key and whether it is disabled.
SELECT sqlc.embed(ss), s.stream_key, s.disabled
FROM stream_sessions ss JOIN streams s ON s.id = ss.stream_id
WHERE ss.edge_id = $1 AND ss.ended_at IS NULL
ORDER BY ss.id;

-- name: ListStreamSessions :many
SELECT * FROM stream_sessions
WHERE stream_id = sqlc.arg(stream_id)
  AND (sqlc.narg(before)::uuid IS NULL OR id < sqlc.narg(before)::uuid)
ORDER BY id DESC
LIMIT sqlc.arg(max_rows);

-- name: EndStreamSession :one
-- Closes an open session; a failed one stays failed. Its worker is to be told
-- to stop stop_after_ms from now (the reconnect grace), or at once.
UPDATE stream_sessions SET
    status         = CASE WHEN status = 'failed' THEN 'failed' ELSE 'ended' END,
    end_reason     = sqlc.arg(end_reason),
    end_detail     = sqlc.narg(end_detail),
    ended_at       = now(),
    worker_stop_at = now() + sqlc.arg(stop_after_ms)::bigint * interval '1 millisecond',
    updated_at     = now()
WHERE id = sqlc.arg(id) AND ended_at IS NULL
RETURNING *;

-- name: EndOpenStreamSessions :many
UPDATE stream_sessions SET
    status         = CASE WHEN status = 'failed' THEN 'failed' ELSE 'ended' END,
    end_reason     = sqlc.arg(end_reason),
    ended_at       = now(),
    worker_stop_at = now(),
    updated_at     = now()
WHERE stream_id = sqlc.arg(stream_id) AND ended_at IS NULL
RETURNING *;

-- name: ClaimDueWorkerStops :many
-- Claims the ended sessions whose worker is due to be told to stop. Several
-- API replicas may run this at once: each session is claimed by one.
UPDATE stream_sessions SET worker_stopped_at = now()
WHERE id IN (SELECT due.id FROM stream_sessions due
             WHERE due.worker_stopped_at IS NULL AND due.worker_stop_at <= now()
             ORDER BY due.worker_stop_at
             LIMIT sqlc.arg(max_rows)
             FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: ClaimWorkerStop :one
-- Claims the stop of one session's worker if it is due and not claimed yet.
UPDATE stream_sessions SET worker_stopped_at = now()
WHERE id = sqlc.arg(id) AND worker_stopped_at IS NULL AND worker_stop_at <= now()
RETURNING *;

-- name: UnclaimWorkerStop :exec
-- Gives a claimed stop back (telling the worker failed), to be retried.
UPDATE stream_sessions SET worker_stopped_at = NULL
WHERE id = sqlc.arg(id);

-- name: UpdateStreamSessionSource :exec
-- What a sync reports about a live publisher; zero values keep the column.
UPDATE stream_sessions SET
    last_seen_at             = sqlc.arg(seen_at),
    source_bitrate_kbps      = coalesce(sqlc.narg(bitrate_kbps), source_bitrate_kbps),
    source_video_codec       = coalesce(sqlc.narg(video_codec), source_video_codec),
    source_video_profile     = coalesce(sqlc.narg(video_profile), source_video_profile),
    source_width             = coalesce(sqlc.narg(width), source_width),
    source_height            = coalesce(sqlc.narg(height), source_height),
    source_frame_rate        = coalesce(sqlc.narg(frame_rate), source_frame_rate),
    source_audio_codec       = coalesce(sqlc.narg(audio_codec), source_audio_codec),
    source_audio_channels    = coalesce(sqlc.narg(audio_channels), source_audio_channels),
    source_audio_sample_rate = coalesce(sqlc.narg(audio_sample_rate), source_audio_sample_rate),
    updated_at               = now()
WHERE id = sqlc.arg(id) AND ended_at IS NULL;

-- name: SetStreamSessionKick :one
UPDATE stream_sessions SET kick_reason = sqlc.arg(kick_reason), updated_at = now()
WHERE id = sqlc.arg(id) AND ended_at IS NULL
RETURNING *;

-- name: SetStreamSessionWorker :one
-- A worker started the session: an open failed session is live again.
UPDATE stream_sessions SET
    worker_id  = sqlc.arg(worker_id),
    status     = CASE WHEN ended_at IS NULL THEN 'live' ELSE status END,
    updated_at = now()
WHERE id = sqlc.arg(id)
RETURNING *;

-- name: SetStreamSessionError :one
UPDATE stream_sessions SET
    last_error = sqlc.arg(last_error),
    worker_id  = coalesce(sqlc.narg(worker_id), worker_id),
    status     = CASE WHEN sqlc.arg(failed)::boolean THEN 'failed' ELSE status END,
    updated_at = now()
WHERE id = sqlc.arg(id)
RETURNING *;

-- name: ResumeStreamSession :one
-- Reopens the stream's latest session when its publisher dropped (disconnected
-- or timed out) after ended_after and no session started since: a publisher
-- reconnecting within the grace window continues the same session.
UPDATE stream_sessions SET
    ended_at       = NULL,
    worker_stop_at = NULL,
    end_reason     = NULL,
    end_detail     = NULL,
    kick_reason    = NULL,
    status         = 'live',
    edge_id        = sqlc.arg(edge_id),
    source_id      = sqlc.arg(source_id),
    edge           = sqlc.arg(edge),
    last_seen_at   = now(),
    updated_at     = now()
WHERE stream_sessions.id = (SELECT latest.id FROM stream_sessions latest
                            WHERE latest.stream_id = sqlc.arg(stream_id)
                            ORDER BY latest.id DESC LIMIT 1)
  AND stream_sessions.ended_at IS NOT NULL
  AND stream_sessions.ended_at > sqlc.arg(ended_after)
  AND stream_sessions.status = 'ended'
  AND stream_sessions.end_reason IN ('publisher_disconnected', 'publisher_timeout')
  AND stream_sessions.worker_stopped_at IS NULL -- its worker was not told to stop yet
  AND stream_sessions.end_recorded_at IS NULL   -- and session.ended was not recorded: it is not over
RETURNING *;

-- name: ListOpenStreamSessionPolicies :many
-- The open sessions with their stream's current playback policy: what the
-- dispatcher keeps the live view in Redis in line with.
SELECT ss.id, ss.stream_id, ss.status, s.playback_policy
FROM stream_sessions ss JOIN streams s ON s.id = ss.stream_id
WHERE ss.ended_at IS NULL
ORDER BY ss.id;

-- name: LockStreamSession :one
-- The session, locked until the end of the transaction.
SELECT * FROM stream_sessions WHERE id = $1 FOR UPDATE;

-- name: RecordStreamSessionEnd :one
-- Marks that session.ended is being recorded for an ended session; no row when
-- it was recorded already (or the session is open).
UPDATE stream_sessions SET end_recorded_at = now()
WHERE id = sqlc.arg(id) AND ended_at IS NOT NULL AND end_recorded_at IS NULL
RETURNING *;
