-- Profiles are ABR ladders (pkg/ladder): the renditions a stream is transcoded
-- into and the audio shared by all of them.

-- +goose Up
CREATE TABLE profiles (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    builtin     boolean     NOT NULL DEFAULT false,
    -- ladder.Ladder as JSON: {"renditions": [...], "audio": {...}}, validated by the API.
    ladder      jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT profiles_name_key UNIQUE (name),
    CONSTRAINT profiles_name_check CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    CONSTRAINT profiles_ladder_check CHECK (jsonb_typeof(ladder -> 'renditions') = 'array'
                                            AND jsonb_typeof(ladder -> 'audio') = 'object')
);

-- +goose Down
DROP TABLE profiles;
