-- When a webhook delivery was (re)queued: retries run until queued_at plus
-- DIONYSIA_WEBHOOK_RETRY_FOR. It is created_at for a new delivery, and is
-- moved to now() by a redelivery (POST /events/{id}/redeliver) and when an
-- operator re-enables a disabled endpoint, so that an old event redelivered
-- gets the whole retry window (docs/webhooks.md).

--
-- And each endpoint's failed attempts since its last successful one (any
-- delivery's): the dionysia_webhook_endpoint_consecutive_failures gauge,
-- which alerts long before deliveries fail for good (consecutive_failures,
-- which disables the endpoint).

-- +goose Up
ALTER TABLE webhook_deliveries ADD COLUMN queued_at timestamptz NOT NULL DEFAULT now();
UPDATE webhook_deliveries SET queued_at = created_at;
ALTER TABLE webhooks ADD COLUMN consecutive_failed_attempts integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE webhooks DROP COLUMN consecutive_failed_attempts;
ALTER TABLE webhook_deliveries DROP COLUMN queued_at;
