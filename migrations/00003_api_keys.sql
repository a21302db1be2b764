-- +goose Up
CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL,
    -- The short visible part of the key ("dio_<prefix>_..."), used to find the row.
    prefix       text        NOT NULL,
    -- SHA-256 of the whole key; the key itself is never stored.
    secret_hash  bytea       NOT NULL,
    scope        text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_keys_prefix_key UNIQUE (prefix),
    CONSTRAINT api_keys_name_check CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT api_keys_scope_check CHECK (scope IN ('admin', 'read')),
    CONSTRAINT api_keys_secret_hash_check CHECK (octet_length(secret_hash) = 32)
);

-- +goose Down
DROP TABLE api_keys;
