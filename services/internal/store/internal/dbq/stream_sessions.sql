-- name: CreateStreamSession :one
INSERT INTO stream_sessions (id, stream_id, edge_id, source_protocol)
VALUES ($1, $2, $3, $4)
RETURNING *;

-- name: GetStreamSession :one
SELECT * FROM stream_sessions WHERE id = $1;

-- name: ListStreamSessions :many
SELECT * FROM stream_sessions
WHERE stream_id = sqlc.arg(stream_id)
  AND (sqlc.narg(before)::uuid IS NULL OR id < sqlc.narg(before)::uuid)
ORDER BY id DESC
LIMIT sqlc.arg(max_rows);

-- name: EndStreamSession :one
UPDATE stream_sessions SET
    status     = sqlc.arg(status),
    end_reason = sqlc.arg(end_reason),
    ended_at   = now(),
    updated_at = now()
WHERE id = sqlc.arg(id) AND ended_at IS NULL
RETURNING *;
