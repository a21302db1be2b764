-- +goose Up
CREATE TABLE streams (
    id                   uuid        PRIMARY KEY, -- UUIDv7, also the public playback id
    name                 text        NOT NULL,
    -- The publishing secret: random, rotatable, separate from the id. The edge
    -- looks streams up by it, hence the unique index. Never logged.
    stream_key           text        NOT NULL,
    profile_id           uuid        NOT NULL,
    outputs              text[]      NOT NULL DEFAULT '{hls,dash}',
    hardware             text        NOT NULL DEFAULT 'auto',
    playback_policy      text        NOT NULL DEFAULT 'public',
    segment_duration     integer     NOT NULL DEFAULT 2, -- seconds
    playlist_window_size integer     NOT NULL DEFAULT 6, -- segments
    disabled             boolean     NOT NULL DEFAULT false,
    status               text        NOT NULL DEFAULT 'idle',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT streams_stream_key_key UNIQUE (stream_key),
    CONSTRAINT streams_profile_id_fkey FOREIGN KEY (profile_id) REFERENCES profiles (id) ON DELETE RESTRICT,
    CONSTRAINT streams_name_check CHECK (char_length(name) BETWEEN 1 AND 200),
    CONSTRAINT streams_outputs_check CHECK (cardinality(outputs) >= 1 AND outputs <@ ARRAY['hls', 'dash']::text[]),
    CONSTRAINT streams_hardware_check CHECK (hardware IN ('auto', 'gpu', 'cpu')),
    CONSTRAINT streams_playback_policy_check CHECK (playback_policy IN ('public', 'signed')),
    CONSTRAINT streams_segment_duration_check CHECK (segment_duration BETWEEN 1 AND 10),
    CONSTRAINT streams_playlist_window_size_check CHECK (playlist_window_size BETWEEN 3 AND 100),
    -- Later issues extend this list by dropping and re-adding the named constraint.
    CONSTRAINT streams_status_check CHECK (status IN ('idle', 'live'))
);

CREATE INDEX streams_profile_id_idx ON streams (profile_id);

-- +goose Down
DROP TABLE streams;
