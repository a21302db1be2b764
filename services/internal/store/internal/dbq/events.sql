-- name: InsertEvent :one
INSERT INTO events (id, type, stream_id, webhook_id, data)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: GetEvent :one
SELECT * FROM events WHERE id = $1;

-- Newest first; the cursor is the last id of the previous page.
-- name: ListEvents :many
SELECT * FROM events
WHERE (sqlc.narg(before)::uuid IS NULL OR id < sqlc.narg(before)::uuid)
  AND (sqlc.narg(type_prefix)::text IS NULL OR type LIKE sqlc.narg(type_prefix)::text || '%')
  AND (sqlc.narg(stream_id)::uuid IS NULL OR stream_id = sqlc.narg(stream_id)::uuid)
  AND webhook_id IS NULL
ORDER BY id DESC
LIMIT sqlc.arg(max_rows);

-- name: PruneEvents :execrows
DELETE FROM events WHERE id IN (
    SELECT e.id FROM events e WHERE e.created_at < sqlc.arg(older_than)::timestamptz ORDER BY e.created_at LIMIT sqlc.arg(max_rows)
);

-- Events after a cursor whose transactions are older than every transaction
-- still running, oldest first: a follower never skips an event whose
-- transaction commits after a later one's (migration 00009).
-- name: ListSettledEventsAfter :many
SELECT * FROM events
WHERE seq > sqlc.arg(after_seq)
  AND xact < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
  AND (sqlc.narg(type_prefix)::text IS NULL OR type LIKE sqlc.narg(type_prefix)::text || '%')
  AND (sqlc.narg(stream_id)::uuid IS NULL OR stream_id = sqlc.narg(stream_id)::uuid)
  AND webhook_id IS NULL
ORDER BY seq
LIMIT sqlc.arg(max_rows);
