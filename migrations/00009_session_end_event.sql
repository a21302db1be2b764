-- When session.ended was recorded for a session (docs/events.md, adr/0012).
--
-- A session is over for good when its worker's stop is claimed (at its end,
-- or when the reconnect grace passed without the publisher coming back), or
-- when it was superseded. A claim can be given back (UnclaimWorkerStop) and
-- claimed again, by this or another API replica: session.ended is recorded
-- only by the transaction that sets this column from NULL, so it is recorded
-- exactly once, and a session with it set is never resumed.

--
-- And the transaction of each event, so that a follower of the log
-- (GET /events?after=) never skips one: an event's seq is taken when it is
-- inserted, but it becomes visible when its transaction commits, so a
-- transaction can commit seq 6 while seq 5's is still open. A follower is
-- only shown events whose transaction is older than every transaction still
-- running (pg_snapshot_xmin): by then every smaller seq is committed or gone.

-- +goose Up
ALTER TABLE events
    ADD COLUMN xact bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint; -- the inserting transaction's id

ALTER TABLE stream_sessions
    ADD COLUMN end_recorded_at timestamptz; -- when session.ended was recorded; NULL: not yet

-- Sessions whose worker was told to stop before this migration are over.
UPDATE stream_sessions SET end_recorded_at = worker_stopped_at WHERE worker_stopped_at IS NOT NULL;

-- +goose Down
ALTER TABLE events
    DROP COLUMN xact;

ALTER TABLE stream_sessions
    DROP COLUMN end_recorded_at;
