-- Claims up to max_rows due deliveries by moving next_attempt_at
-- lease_seconds ahead: a process killed mid-request leaves them due again then. A
-- delivery waits while an older one of the same webhook and stream is
-- pending (per-stream order); events without a stream are not ordered.
-- Deliveries of disabled endpoints wait until they are enabled again.
-- name: ClaimDueDeliveries :many
WITH due AS (
    SELECT d.id FROM webhook_deliveries d
    JOIN webhooks w ON w.id = d.webhook_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.enabled
      AND (d.stream_id IS NULL OR NOT EXISTS (
          SELECT 1 FROM webhook_deliveries o
          WHERE o.webhook_id = d.webhook_id AND o.stream_id = d.stream_id
            AND o.status = 'pending' AND o.event_seq < d.event_seq))
    -- next_attempt_at alone, so that the due index is read in order and
    -- the scan stops at max_rows (the order condition is an index probe per
    -- row): a claim costs ~0.1 ms whatever the backlog.
    ORDER BY d.next_attempt_at
    LIMIT sqlc.arg(max_rows)
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => sqlc.arg(lease_seconds)::double precision)
FROM due, webhooks w, events e
WHERE d.id = due.id AND w.id = d.webhook_id AND e.id = d.event_id
RETURNING d.id, d.webhook_id, d.event_id, d.attempts, d.queued_at, d.next_attempt_at AS lease_until,
    w.url, w.secret, w.previous_secret, w.previous_secret_expires_at,
    e.type AS event_type, e.stream_id AS event_stream_id, e.created_at AS event_created_at, e.data AS event_data;

-- Records an attempt's outcome, unless the claim was lost (the lease ran
-- out and another process claimed the delivery again).
-- name: FinishAttempt :one
UPDATE webhook_deliveries SET
    status           = sqlc.arg(status),
    attempts         = attempts + 1,
    last_status_code = sqlc.narg(status_code),
    last_error       = sqlc.narg(error),
    next_attempt_at  = sqlc.arg(next_attempt_at)::timestamptz,
    delivered_at     = CASE WHEN sqlc.arg(status) = 'delivered' THEN now() END,
    failed_at        = CASE WHEN sqlc.arg(status) = 'failed' THEN now() END
WHERE id = sqlc.arg(id) AND status = 'pending' AND next_attempt_at = sqlc.arg(lease_until)::timestamptz
RETURNING id;

-- name: InsertAttempt :exec
INSERT INTO webhook_attempts (id, delivery_id, attempted_at, status_code, latency_ms, error)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: ResetWebhookFailures :exec
UPDATE webhooks SET consecutive_failures = 0, consecutive_failed_attempts = 0
WHERE id = $1 AND (consecutive_failures <> 0 OR consecutive_failed_attempts <> 0);

-- name: CountFailedAttempt :exec
UPDATE webhooks SET consecutive_failed_attempts = consecutive_failed_attempts + 1 WHERE id = $1;

-- name: CountWebhookFailure :one
UPDATE webhooks SET consecutive_failures = consecutive_failures + 1,
    consecutive_failed_attempts = consecutive_failed_attempts + 1
WHERE id = $1
RETURNING consecutive_failures, enabled;

-- name: DisableWebhook :one
UPDATE webhooks SET enabled = false, disabled_reason = sqlc.arg(reason), updated_at = now()
WHERE id = sqlc.arg(id) AND enabled
RETURNING *;

-- name: CountPendingDeliveries :one
SELECT count(*) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
WHERE d.status = 'pending' AND w.enabled;

-- Newest first; the cursor is the last id of the previous page.
-- name: ListDeliveries :many
SELECT d.*, e.type AS event_type FROM webhook_deliveries d
JOIN events e ON e.id = d.event_id
WHERE d.webhook_id = sqlc.arg(webhook_id)
  AND (sqlc.narg(before)::uuid IS NULL OR d.id < sqlc.narg(before)::uuid)
ORDER BY d.id DESC
LIMIT sqlc.arg(max_rows);

-- name: ListAttempts :many
SELECT * FROM webhook_attempts WHERE delivery_id = ANY(sqlc.arg(delivery_ids)::uuid[])
ORDER BY delivery_id, id;

-- Queues an event again to every matching enabled webhook (the trigger's
-- matching, migration 00008): an existing delivery is reset to pending,
-- a missing one inserted.
-- name: RedeliverEvent :many
INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_seq, stream_id)
SELECT uuidv7_from(now()), w.id, e.id, e.seq, e.stream_id
FROM events e, webhooks w
WHERE e.id = sqlc.arg(event_id)
  AND w.enabled
  AND webhook_matches(w.id, w.stream_id, w.event_types, e.type, e.stream_id, e.webhook_id)
ON CONFLICT (webhook_id, event_id) DO UPDATE SET
    status = 'pending', next_attempt_at = now(), queued_at = now(), delivered_at = NULL, failed_at = NULL
RETURNING webhook_id;

-- name: NotifyDeliveries :exec
SELECT pg_notify('dionysia_deliveries', '');

-- name: ListWebhookFailures :many
SELECT id, consecutive_failed_attempts FROM webhooks ORDER BY id;

-- name: ListenDeliveries :exec
LISTEN dionysia_deliveries;
