-- Ingest lifecycle: a session is opened when the edge reports a publisher live
-- and closed when it leaves. A session is identified on its edge by the
-- publisher's connection id (source_id), which makes the edge's events
-- idempotent; a stream has at most one open session.
--
-- Statuses: live (open: the publisher is on the edge), ended (closed), failed
-- (the transcode gave up; open or closed). Whether a worker runs the session
-- shows in worker_id.

-- +goose Up
ALTER TABLE stream_sessions
    DROP CONSTRAINT stream_sessions_status_check,
    DROP CONSTRAINT stream_sessions_ended_check,
    ALTER COLUMN status SET DEFAULT 'live',
    ADD COLUMN source_id                text,          -- the edge's connection id of the publisher
    ADD COLUMN edge                     jsonb NOT NULL DEFAULT '{}', -- edgeapi.EdgeInfo: how to reach the edge
    ADD COLUMN end_detail               text,
    ADD COLUMN source_video_profile     text,
    ADD COLUMN source_audio_codec       text,
    ADD COLUMN source_audio_channels    integer,
    ADD COLUMN source_audio_sample_rate integer,       -- Hz
    ADD COLUMN last_error               text,          -- the worker's last failure
    ADD COLUMN kick_reason              text,          -- a disconnect was requested (e.g. "disconnect")
    ADD COLUMN last_seen_at             timestamptz;   -- last time the edge listed the publisher

UPDATE stream_sessions SET status = 'live' WHERE status = 'starting';

ALTER TABLE stream_sessions
    ADD CONSTRAINT stream_sessions_status_check CHECK (status IN ('live', 'ended', 'failed')),
    ADD CONSTRAINT stream_sessions_ended_check CHECK (CASE status
        WHEN 'live'  THEN ended_at IS NULL
        WHEN 'ended' THEN ended_at IS NOT NULL
        ELSE true END);

CREATE UNIQUE INDEX stream_sessions_edge_source_key ON stream_sessions (edge_id, source_id);
CREATE UNIQUE INDEX stream_sessions_open_key ON stream_sessions (stream_id) WHERE ended_at IS NULL;
CREATE INDEX stream_sessions_open_edge_idx ON stream_sessions (edge_id) WHERE ended_at IS NULL;

-- +goose Down
DROP INDEX stream_sessions_open_edge_idx;
DROP INDEX stream_sessions_open_key;
DROP INDEX stream_sessions_edge_source_key;

UPDATE stream_sessions SET ended_at = now() WHERE status = 'failed' AND ended_at IS NULL;

ALTER TABLE stream_sessions
    DROP CONSTRAINT stream_sessions_status_check,
    DROP CONSTRAINT stream_sessions_ended_check,
    ALTER COLUMN status SET DEFAULT 'starting',
    DROP COLUMN source_id,
    DROP COLUMN edge,
    DROP COLUMN end_detail,
    DROP COLUMN source_video_profile,
    DROP COLUMN source_audio_codec,
    DROP COLUMN source_audio_channels,
    DROP COLUMN source_audio_sample_rate,
    DROP COLUMN last_error,
    DROP COLUMN kick_reason,
    DROP COLUMN last_seen_at,
    ADD CONSTRAINT stream_sessions_status_check CHECK (status IN ('starting', 'live', 'ended', 'failed')),
    ADD CONSTRAINT stream_sessions_ended_check CHECK ((ended_at IS NULL) = (status IN ('starting', 'live')));
