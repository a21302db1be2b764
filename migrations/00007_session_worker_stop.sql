-- When the worker of a session is told to stop. A session's end and its
-- worker's stop are apart when the publisher dropped: it may reconnect within
-- the reconnect grace and continue the same session, so the worker keeps
-- waiting for its source until worker_stop_at. Keeping the due time here, in
-- the session's row, rather than in Redis means a stop is never lost when
-- Redis loses its data, and an API replica that restarts carries it out.

-- +goose Up
ALTER TABLE stream_sessions
    ADD COLUMN worker_stop_at    timestamptz, -- when the worker is to be told to stop; NULL while the session is open
    ADD COLUMN worker_stopped_at timestamptz; -- when an API replica told it (claimed the stop)

-- Sessions that ended before this migration: their workers were told then.
UPDATE stream_sessions SET worker_stop_at = ended_at, worker_stopped_at = ended_at WHERE ended_at IS NOT NULL;

CREATE INDEX stream_sessions_worker_stop_due_idx ON stream_sessions (worker_stop_at) WHERE worker_stopped_at IS NULL;

-- +goose Down
DROP INDEX stream_sessions_worker_stop_due_idx;

ALTER TABLE stream_sessions
    DROP COLUMN worker_stop_at,
    DROP COLUMN worker_stopped_at;
