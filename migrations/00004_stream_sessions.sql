-- One row per live session of a stream, written by the edge and the workers.

-- +goose Up
CREATE TABLE stream_sessions (
    id                  uuid        PRIMARY KEY, -- UUIDv7
    stream_id           uuid        NOT NULL,
    status              text        NOT NULL DEFAULT 'starting',
    edge_id             text        NOT NULL,
    worker_id           text,
    started_at          timestamptz NOT NULL DEFAULT now(),
    ended_at            timestamptz,
    end_reason          text,
    -- What the publisher sends, as probed by the edge; unknown until probed.
    source_protocol     text,
    source_video_codec  text,
    source_width        integer,
    source_height       integer,
    source_frame_rate   double precision, -- frames per second
    source_bitrate_kbps integer,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stream_sessions_stream_id_fkey FOREIGN KEY (stream_id) REFERENCES streams (id) ON DELETE CASCADE,
    CONSTRAINT stream_sessions_status_check CHECK (status IN ('starting', 'live', 'ended', 'failed')),
    CONSTRAINT stream_sessions_ended_check CHECK ((ended_at IS NULL) = (status IN ('starting', 'live')))
);

CREATE INDEX stream_sessions_stream_id_idx ON stream_sessions (stream_id, id DESC);

-- +goose Down
DROP TABLE stream_sessions;
