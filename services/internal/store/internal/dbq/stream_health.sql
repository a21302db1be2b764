-- name: LockSessionForHealth :one
-- A session with what evaluating its health needs, locked until the
-- transaction ends so concurrent reports change its status one at a time.
SELECT ss.id, ss.stream_id, ss.ended_at, ss.health_status, s.segment_duration
FROM stream_sessions ss JOIN streams s ON s.id = ss.stream_id
WHERE ss.id = $1
FOR UPDATE OF ss;

-- name: SetSessionHealth :exec
-- The latest health report of an open session and the source as the worker
-- measures it; zero measurements keep the column.
UPDATE stream_sessions SET
    health              = sqlc.arg(health),
    health_status       = sqlc.arg(health_status),
    health_updated_at   = sqlc.arg(health_updated_at),
    source_frame_rate   = coalesce(sqlc.narg(frame_rate), source_frame_rate),
    source_width        = coalesce(sqlc.narg(width), source_width),
    source_height       = coalesce(sqlc.narg(height), source_height),
    source_bitrate_kbps = coalesce(sqlc.narg(bitrate_kbps), source_bitrate_kbps)
WHERE id = sqlc.arg(id) AND ended_at IS NULL;

-- name: ListOpenSessionHealth :many
-- The health status of every open session, for the dionysia_stream_health
-- metric.
SELECT stream_id, health_status, health_updated_at
FROM stream_sessions
WHERE ended_at IS NULL;
