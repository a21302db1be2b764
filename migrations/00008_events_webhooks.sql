-- The event log (a transactional outbox) and the webhook endpoints it is
-- delivered to (docs/events.md, adr/0012).
--
-- An event is inserted in the same transaction as the change it records, so
-- it exists if and only if the change was committed. A trigger on events fans
-- each new event out into one delivery per matching enabled webhook, in that
-- same transaction, and notifies the delivery workers (LISTEN
-- dionysia_deliveries; NOTIFY is sent at commit). No event can be lost between
-- the change and its delivery: a process killed at any point leaves either
-- nothing or the event with its pending deliveries.

-- +goose Up
CREATE TABLE events (
    id         uuid        PRIMARY KEY,                -- UUIDv7: orders events by creation
    seq        bigint      NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE, -- insertion order, for per-stream delivery order
    type       text        NOT NULL,                   -- e.g. stream.live (docs/events.md)
    stream_id  uuid,                                   -- the stream it is about, if any; no FK: events outlive streams
    webhook_id uuid,                                   -- set only for webhook.test: delivered to that endpoint alone
    created_at timestamptz NOT NULL DEFAULT now(),
    data       jsonb       NOT NULL,                   -- the resource as it is after the change
    CONSTRAINT events_type_check CHECK (type ~ '^[a-z_]+(\.[a-z_]+)+$')
);

CREATE INDEX events_created_at_idx ON events (created_at);
CREATE INDEX events_stream_id_idx ON events (stream_id, id DESC) WHERE stream_id IS NOT NULL;
CREATE INDEX events_type_idx ON events (type text_pattern_ops, id DESC);

CREATE TABLE webhooks (
    id                   uuid        PRIMARY KEY,      -- UUIDv7
    url                  text        NOT NULL,
    description          text        NOT NULL DEFAULT '',
    -- Exact event types or "prefix.*" patterns; empty: every event.
    event_types          text[]      NOT NULL DEFAULT '{}',
    stream_id            uuid,                         -- only this stream's events; NULL: all
    enabled              boolean     NOT NULL DEFAULT true,
    -- The signing secret. It must be readable to sign, so it is stored as
    -- is (like a stream key); the API shows it once, at creation or rotation.
    secret               text        NOT NULL,
    -- The secret before the last rotation, still used to sign (a second v1=)
    -- until previous_secret_expires_at.
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    consecutive_failures integer     NOT NULL DEFAULT 0, -- deliveries failed for good in a row
    disabled_reason      text,                         -- why the platform disabled it (NULL: enabled, or by an operator)
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id               uuid        PRIMARY KEY,          -- UUIDv7
    webhook_id       uuid        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         uuid        NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    event_seq        bigint      NOT NULL,             -- events.seq, for ordering per (webhook, stream)
    stream_id        uuid,                             -- events.stream_id
    status           text        NOT NULL DEFAULT 'pending',
    attempts         integer     NOT NULL DEFAULT 0,
    -- When the next attempt is due. A delivery worker claims a due delivery
    -- by moving this past its request timeout, so a worker killed
    -- mid-request leaves the delivery due again shortly after.
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    failed_at        timestamptz,
    CONSTRAINT webhook_deliveries_status_check CHECK (status IN ('pending', 'delivered', 'failed')),
    CONSTRAINT webhook_deliveries_event_key UNIQUE (webhook_id, event_id)
);

CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (webhook_id, stream_id, event_seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id DESC);

-- Every attempt of a delivery, for GET /webhooks/{id}/deliveries.
CREATE TABLE webhook_attempts (
    id           uuid        PRIMARY KEY,              -- UUIDv7
    delivery_id  uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    status_code  integer,                              -- NULL: no answer (error says why)
    latency_ms   integer     NOT NULL,
    error        text
);

CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

-- The workers the platform has seen, so that worker.up and worker.lost are
-- recorded once however many API replicas watch the fleet.
CREATE TABLE workers_seen (
    id            text        PRIMARY KEY,             -- the worker's id
    up_at         timestamptz NOT NULL DEFAULT now(),  -- when it was last seen joining
    lost_at       timestamptz,                         -- when it was declared lost; NULL: up
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- +goose StatementBegin
-- A UUIDv7 for a row made inside the database: the time part from ts, the
-- rest random (gen_random_uuid's version 4 bits replaced by 7).
CREATE FUNCTION uuidv7_from(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM ts) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1), 'hex')::uuid;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION events_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_seq, stream_id)
    SELECT uuidv7_from(NEW.created_at), w.id, NEW.id, NEW.seq, NEW.stream_id
    FROM webhooks w
    WHERE w.enabled
      AND (NEW.webhook_id IS NULL OR w.id = NEW.webhook_id)
      AND (NEW.webhook_id IS NOT NULL OR NEW.type <> 'webhook.test')
      AND (w.stream_id IS NULL OR w.stream_id = NEW.stream_id OR NEW.webhook_id IS NOT NULL)
      AND (cardinality(w.event_types) = 0
           OR NEW.webhook_id IS NOT NULL
           OR NEW.type = ANY (w.event_types)
           OR EXISTS (SELECT 1 FROM unnest(w.event_types) AS p(pattern)
                      WHERE p.pattern LIKE '%.*' AND NEW.type LIKE left(p.pattern, -1) || '%'));
    IF FOUND THEN
        PERFORM pg_notify('dionysia_deliveries', '');
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER events_fan_out AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_fan_out();

-- +goose Down
DROP TRIGGER events_fan_out ON events;
DROP FUNCTION events_fan_out();
DROP FUNCTION uuidv7_from(timestamptz);
DROP TABLE workers_seen;
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
DROP TABLE events;
