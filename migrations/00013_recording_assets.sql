-- Recording (docs/recording.md): a stream's recording mode, its retention,
-- its DVR window and thumbnail interval; and the assets its sessions become.
--
-- An asset outlives its stream: assets.stream_id keeps the id of a deleted
-- stream (no foreign key), its objects stay in the store until the asset is
-- deleted (DELETE /api/v1/assets/{id}) or its retention passes. The rows of
-- asset_sessions likewise keep the ids of sessions deleted with their stream.

-- +goose Up
ALTER TABLE streams
    ADD COLUMN recording_mode              text             NOT NULL DEFAULT 'off', -- off or automatic
    ADD COLUMN recording_delete_after_days integer,                                 -- NULL: keep assets
    ADD COLUMN dvr_window_s                integer          NOT NULL DEFAULT 0,     -- 0: the playlist window only
    ADD COLUMN thumbnail_interval_s        double precision NOT NULL DEFAULT 10,    -- seconds
    ADD CONSTRAINT streams_recording_mode_check CHECK (recording_mode IN ('off', 'automatic')),
    ADD CONSTRAINT streams_recording_delete_after_days_check CHECK (recording_delete_after_days BETWEEN 1 AND 3650),
    ADD CONSTRAINT streams_dvr_window_s_check CHECK (dvr_window_s BETWEEN 0 AND 21600),
    ADD CONSTRAINT streams_thumbnail_interval_s_check CHECK (thumbnail_interval_s BETWEEN 1 AND 3600);

CREATE TABLE assets (
    id                uuid             PRIMARY KEY, -- UUIDv7
    stream_id         uuid             NOT NULL,    -- no foreign key: an asset outlives its stream
    status            text             NOT NULL DEFAULT 'recording',
    created_at        timestamptz      NOT NULL DEFAULT now(),
    ended_at          timestamptz,     -- when its session ended for good (status processing)
    ready_at          timestamptz,
    -- A processing asset is built when finalize_after passes: at once after
    -- the final report of its last accepted lease, else 60 s after the end.
    finalize_after    timestamptz,
    -- When a replica claimed the build (NULL: not claimed). A claim older than
    -- the build timeout is taken over; reports are refused once it is claimed.
    build_claimed_at  timestamptz,
    build_attempts    integer          NOT NULL DEFAULT 0, -- claims so far; a failed build is retried a few times
    duration_s        double precision NOT NULL DEFAULT 0,
    size_bytes        bigint           NOT NULL DEFAULT 0,
    lost_s            double precision NOT NULL DEFAULT 0,
    failure_reason    text,
    renditions        jsonb            NOT NULL DEFAULT '[]',
    poster            text,            -- key of the poster, inside the asset's prefix
    delete_after_days integer,         -- the stream's recording_delete_after_days when it started
    delete_after      timestamptz,     -- ready_at (or the failure) plus delete_after_days
    deleted_at        timestamptz,
    last_token        bigint,          -- fencing token of the last accepted report
    final_token       bigint,          -- token of the last final report
    updated_at        timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT assets_status_check CHECK (status IN ('recording', 'processing', 'ready', 'failed', 'deleted'))
);

CREATE INDEX assets_stream_id_idx ON assets (stream_id, id);
CREATE INDEX assets_finalize_idx ON assets (finalize_after) WHERE status = 'processing';
CREATE INDEX assets_delete_after_idx ON assets (delete_after) WHERE status IN ('ready', 'failed');

-- The sessions an asset records: one today (a reconnect within the grace
-- continues the session, hence the asset).
CREATE TABLE asset_sessions (
    asset_id   uuid NOT NULL,
    session_id uuid NOT NULL,
    CONSTRAINT asset_sessions_pkey PRIMARY KEY (asset_id, session_id),
    CONSTRAINT asset_sessions_session_id_key UNIQUE (session_id),
    CONSTRAINT asset_sessions_asset_id_fkey FOREIGN KEY (asset_id) REFERENCES assets (id) ON DELETE CASCADE
);

-- The objects workers stored and reported (job.RecordedObject), in accepted
-- order (seq). A key is registered once: a retried report adds nothing.
CREATE TABLE asset_objects (
    seq         bigserial        PRIMARY KEY,
    asset_id    uuid             NOT NULL,
    kind        text             NOT NULL,
    rendition   text             NOT NULL DEFAULT '',
    key         text             NOT NULL,
    size        bigint           NOT NULL,
    token       bigint           NOT NULL, -- the reporting lease's fencing token
    run         integer          NOT NULL DEFAULT 0,
    number      bigint           NOT NULL DEFAULT 0,
    init        text             NOT NULL DEFAULT '',
    start       timestamptz,
    duration_s  double precision NOT NULL DEFAULT 0,
    media_start bigint           NOT NULL DEFAULT 0,
    track       jsonb,
    width       integer          NOT NULL DEFAULT 0,
    height      integer          NOT NULL DEFAULT 0,
    created_at  timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT asset_objects_asset_id_key_key UNIQUE (asset_id, key),
    CONSTRAINT asset_objects_asset_id_fkey FOREIGN KEY (asset_id) REFERENCES assets (id) ON DELETE CASCADE,
    CONSTRAINT asset_objects_kind_check CHECK (kind IN ('init', 'segment', 'thumbnail'))
);

CREATE INDEX asset_objects_asset_id_idx ON asset_objects (asset_id, seq);

-- Segments a worker produced but will never upload (job.LostSegment).
CREATE TABLE asset_lost_segments (
    asset_id   uuid             NOT NULL,
    token      bigint           NOT NULL,
    rendition  text             NOT NULL,
    number     bigint           NOT NULL,
    start      timestamptz,
    duration_s double precision NOT NULL,
    reason     text             NOT NULL,
    created_at timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT asset_lost_segments_pkey PRIMARY KEY (asset_id, token, rendition, number),
    CONSTRAINT asset_lost_segments_asset_id_fkey FOREIGN KEY (asset_id) REFERENCES assets (id) ON DELETE CASCADE
);

-- +goose Down
DROP TABLE asset_lost_segments;
DROP TABLE asset_objects;
DROP TABLE asset_sessions;
DROP TABLE assets;
ALTER TABLE streams
    DROP CONSTRAINT streams_thumbnail_interval_s_check,
    DROP CONSTRAINT streams_dvr_window_s_check,
    DROP CONSTRAINT streams_recording_delete_after_days_check,
    DROP CONSTRAINT streams_recording_mode_check,
    DROP COLUMN thumbnail_interval_s,
    DROP COLUMN dvr_window_s,
    DROP COLUMN recording_delete_after_days,
    DROP COLUMN recording_mode;
