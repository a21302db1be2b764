-- name: InsertAsset :one
INSERT INTO assets (id, stream_id, delete_after_days)
VALUES ($1, $2, $3)
RETURNING *;

-- name: InsertAssetSession :exec
INSERT INTO asset_sessions (asset_id, session_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING;

-- name: GetAsset :one
SELECT * FROM assets WHERE id = $1;

-- name: LockAsset :one
SELECT * FROM assets WHERE id = $1 FOR UPDATE;

-- name: GetAssetOfSession :one
SELECT a.* FROM assets a JOIN asset_sessions s ON s.asset_id = a.id
WHERE s.session_id = $1;

-- name: ListAssetSessionIDs :many
SELECT asset_id, session_id FROM asset_sessions
WHERE asset_id = ANY(sqlc.arg(asset_ids)::uuid[])
ORDER BY session_id;

-- name: ListAssets :many
SELECT * FROM assets
WHERE (sqlc.narg(stream_id)::uuid IS NULL OR stream_id = sqlc.narg(stream_id)::uuid)
  AND (sqlc.narg(after)::uuid IS NULL OR id > sqlc.narg(after)::uuid)
ORDER BY id
LIMIT sqlc.arg(max_rows);

-- name: SetAssetReported :exec
-- A report was accepted from the lease with token; final reports mark it,
-- and make a processing asset due at once.
UPDATE assets SET
    last_token     = sqlc.arg(token)::bigint,
    final_token    = CASE WHEN sqlc.arg(final)::boolean THEN sqlc.arg(token)::bigint ELSE final_token END,
    finalize_after = CASE WHEN sqlc.arg(final)::boolean AND status = 'processing' THEN now() ELSE finalize_after END,
    updated_at     = now()
WHERE id = sqlc.arg(id);

-- name: InsertAssetObject :execrows
-- A key already registered adds nothing (a retried report).
INSERT INTO asset_objects (asset_id, kind, rendition, key, size, token, run, number, init, start,
                           duration_s, media_start, track, width, height)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (asset_id, key) DO NOTHING;

-- name: InsertAssetLostSegment :exec
INSERT INTO asset_lost_segments (asset_id, token, rendition, number, start, duration_s, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING;

-- name: ListAssetObjects :many
SELECT * FROM asset_objects WHERE asset_id = $1 ORDER BY seq;

-- name: ListAssetThumbnails :many
SELECT key, start FROM asset_objects WHERE asset_id = $1 AND kind = 'thumbnail' ORDER BY start, seq;

-- name: FirstAssetSegmentStart :one
-- The start of the asset's first segment; the epoch when it has none.
SELECT coalesce(min(start), 'epoch')::timestamptz AS first_start FROM asset_objects WHERE asset_id = $1 AND kind = 'segment';

-- name: ListAssetLostSegments :many
SELECT * FROM asset_lost_segments WHERE asset_id = $1 ORDER BY start, token, rendition, number;

-- name: EndAsset :one
-- The asset's session is over for good: the asset is built at once when the
-- last accepted lease already sent its final report, else after the delay.
UPDATE assets SET
    status         = 'processing',
    ended_at       = now(),
    finalize_after = CASE WHEN final_token IS NOT NULL AND final_token = last_token THEN now()
                          ELSE now() + sqlc.arg(delay_ms)::bigint * interval '1 millisecond' END,
    updated_at     = now()
WHERE id = sqlc.arg(id) AND status = 'recording'
RETURNING *;

-- name: ClaimDueAssets :many
-- Claims the processing assets due to be built. Several API replicas may run
-- this at once: each asset is claimed by one; a claim older than the build
-- timeout (a replica that died building) is taken over.
UPDATE assets SET build_claimed_at = now(), build_attempts = build_attempts + 1, updated_at = now()
WHERE id IN (SELECT due.id FROM assets due
             WHERE due.status = 'processing' AND due.finalize_after <= now()
               AND (due.build_claimed_at IS NULL
                    OR due.build_claimed_at < now() - sqlc.arg(timeout_ms)::bigint * interval '1 millisecond')
             ORDER BY due.finalize_after
             LIMIT sqlc.arg(max_rows)
             FOR UPDATE SKIP LOCKED)
RETURNING *;

-- name: ClaimAsset :one
-- Claims the build of one asset if it is due and not claimed (or its claim timed out).
UPDATE assets SET build_claimed_at = now(), build_attempts = build_attempts + 1, updated_at = now()
WHERE id = sqlc.arg(id) AND status = 'processing' AND finalize_after <= now()
  AND (build_claimed_at IS NULL OR build_claimed_at < now() - sqlc.arg(timeout_ms)::bigint * interval '1 millisecond')
RETURNING *;

-- name: SetAssetReady :one
UPDATE assets SET
    status         = 'ready',
    ready_at       = now(),
    failure_reason = NULL, -- a retried build's earlier error
    duration_s     = sqlc.arg(duration_s),
    size_bytes     = sqlc.arg(size_bytes),
    lost_s         = sqlc.arg(lost_s),
    renditions     = sqlc.arg(renditions),
    poster         = sqlc.narg(poster),
    delete_after   = CASE WHEN delete_after_days IS NULL THEN NULL ELSE now() + delete_after_days * interval '1 day' END,
    updated_at     = now()
WHERE id = sqlc.arg(id) AND status = 'processing'
RETURNING *;

-- name: SetAssetFailed :one
UPDATE assets SET
    status         = 'failed',
    failure_reason = sqlc.arg(failure_reason),
    lost_s         = sqlc.arg(lost_s),
    size_bytes     = sqlc.arg(size_bytes),
    delete_after   = CASE WHEN delete_after_days IS NULL THEN NULL ELSE now() + delete_after_days * interval '1 day' END,
    updated_at     = now()
WHERE id = sqlc.arg(id) AND status = 'processing'
RETURNING *;

-- name: SetAssetDeleted :one
UPDATE assets SET status = 'deleted', deleted_at = now(), delete_after = NULL, updated_at = now()
WHERE id = $1 AND status <> 'deleted'
RETURNING *;

-- name: DeleteAssetObjects :exec
DELETE FROM asset_objects WHERE asset_id = $1;

-- name: ListExpiredAssets :many
-- Ready or failed assets whose retention passed.
SELECT * FROM assets
WHERE status IN ('ready', 'failed') AND delete_after <= now()
ORDER BY delete_after
LIMIT sqlc.arg(max_rows);

-- name: EndStreamAssets :many
-- The stream is being deleted: its recording assets are built with what
-- they have (their sessions go with the stream, so no end is recorded).
UPDATE assets SET
    status         = 'processing',
    ended_at       = now(),
    finalize_after = now() + sqlc.arg(delay_ms)::bigint * interval '1 millisecond',
    updated_at     = now()
WHERE stream_id = sqlc.arg(stream_id) AND status = 'recording'
RETURNING id;

-- name: RetryAssetBuild :one
-- A build failed and is retried after the delay: the claim is given back
-- (reports are accepted again meanwhile) and the reason kept.
UPDATE assets SET
    build_claimed_at = NULL,
    finalize_after   = now() + sqlc.arg(delay_ms)::bigint * interval '1 millisecond',
    failure_reason   = sqlc.arg(failure_reason),
    updated_at       = now()
WHERE id = sqlc.arg(id) AND status = 'processing'
RETURNING *;
