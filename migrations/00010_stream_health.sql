-- The latest stream health a session's worker reported (docs/health.md): the
-- measurement as the worker sent it (job.HealthReport), the status the API
-- evaluated from it when it arrived, and when that was. The status shown is
-- evaluated again on read: a report older than 15 s is "unknown".

-- +goose Up
ALTER TABLE stream_sessions
    ADD COLUMN health            jsonb,       -- the last job.HealthReport; NULL: none yet
    ADD COLUMN health_status     text,        -- healthy, degraded, starving or unknown, as of health_updated_at
    ADD COLUMN health_updated_at timestamptz, -- when the report arrived
    ADD CONSTRAINT stream_sessions_health_status_check
        CHECK (health_status IN ('healthy', 'degraded', 'starving', 'unknown'));

-- +goose Down
ALTER TABLE stream_sessions
    DROP CONSTRAINT stream_sessions_health_status_check,
    DROP COLUMN health,
    DROP COLUMN health_status,
    DROP COLUMN health_updated_at;
