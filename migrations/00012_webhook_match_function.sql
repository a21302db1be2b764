-- Which webhooks an event goes to, said once: the fan-out trigger (00008)
-- and POST /events/{id}/redeliver both ask webhook_matches.

-- +goose Up
-- +goose StatementBegin
-- webhook_matches reports whether an event goes to a webhook (its enabled
-- flag aside): a webhook.test event only to the webhook it names; any other
-- event to every webhook whose stream filter and event types take it (exact
-- types or "prefix.*" patterns; no types: every event).
CREATE FUNCTION webhook_matches(w_id uuid, w_stream_id uuid, w_event_types text[],
                                e_type text, e_stream_id uuid, e_webhook_id uuid)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN e_webhook_id IS NOT NULL THEN w_id = e_webhook_id
        WHEN e_type = 'webhook.test' THEN false
        ELSE (w_stream_id IS NULL OR w_stream_id = e_stream_id)
         AND (cardinality(w_event_types) = 0
              OR e_type = ANY (w_event_types)
              OR EXISTS (SELECT 1 FROM unnest(w_event_types) AS p(pattern)
                         WHERE p.pattern LIKE '%.*' AND e_type LIKE left(p.pattern, -1) || '%'))
    END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION events_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_seq, stream_id)
    SELECT uuidv7_from(NEW.created_at), w.id, NEW.id, NEW.seq, NEW.stream_id
    FROM webhooks w
    WHERE w.enabled
      AND webhook_matches(w.id, w.stream_id, w.event_types, NEW.type, NEW.stream_id, NEW.webhook_id);
    IF FOUND THEN
        PERFORM pg_notify('dionysia_deliveries', '');
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION events_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
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

DROP FUNCTION webhook_matches(uuid, uuid, text[], text, uuid, uuid);
