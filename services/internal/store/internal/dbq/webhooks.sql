-- name: CreateWebhook :one
INSERT INTO webhooks (id, url, description, event_types, stream_id, enabled, secret)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING *;

-- name: GetWebhook :one
SELECT * FROM webhooks WHERE id = $1;

-- name: ListWebhooks :many
SELECT * FROM webhooks
WHERE sqlc.narg(after)::uuid IS NULL OR id > sqlc.narg(after)::uuid
ORDER BY id
LIMIT sqlc.arg(max_rows);

-- Enabling a disabled endpoint clears the platform's failure count and
-- reason, and gives its waiting deliveries a new retry window.
-- name: UpdateWebhook :one
UPDATE webhooks SET
    url                  = coalesce(sqlc.narg(url), url),
    description          = coalesce(sqlc.narg(description), description),
    event_types          = coalesce(sqlc.narg(event_types)::text[], event_types),
    stream_id            = CASE WHEN sqlc.arg(set_stream_id)::boolean THEN sqlc.narg(stream_id)::uuid ELSE stream_id END,
    enabled              = coalesce(sqlc.narg(enabled), enabled),
    consecutive_failures = CASE WHEN sqlc.narg(enabled)::boolean THEN 0 ELSE consecutive_failures END,
    consecutive_failed_attempts = CASE WHEN sqlc.narg(enabled)::boolean THEN 0 ELSE consecutive_failed_attempts END,
    disabled_reason      = CASE WHEN sqlc.narg(enabled)::boolean THEN NULL ELSE disabled_reason END,
    updated_at           = now()
WHERE id = sqlc.arg(id)
RETURNING *;

-- name: RequeueWebhookDeliveries :exec
UPDATE webhook_deliveries SET queued_at = now(), next_attempt_at = now()
WHERE webhook_id = $1 AND status = 'pending';

-- name: DeleteWebhook :execrows
DELETE FROM webhooks WHERE id = $1;

-- The current secret becomes the previous one, still signed with until the
-- grace ends.
-- name: RotateWebhookSecret :one
UPDATE webhooks SET
    previous_secret            = secret,
    previous_secret_expires_at = now() + make_interval(secs => sqlc.arg(grace_seconds)::double precision),
    secret                     = sqlc.arg(secret),
    updated_at                 = now()
WHERE id = sqlc.arg(id)
RETURNING *;

-- name: StreamExists :one
SELECT EXISTS (SELECT 1 FROM streams WHERE id = $1);
