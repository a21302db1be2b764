-- name: CreateAPIKey :one
INSERT INTO api_keys (id, name, prefix, secret_hash, scope)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: GetAPIKey :one
SELECT * FROM api_keys WHERE id = $1;

-- name: GetAPIKeyByPrefix :one
SELECT * FROM api_keys WHERE prefix = $1;

-- name: ListAPIKeys :many
SELECT * FROM api_keys
WHERE sqlc.narg(after)::uuid IS NULL OR id > sqlc.narg(after)::uuid
ORDER BY id
LIMIT sqlc.arg(max_rows);

-- name: RevokeAPIKey :one
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
WHERE id = $1
RETURNING *;

-- name: TouchAPIKey :exec
UPDATE api_keys SET last_used_at = now()
WHERE id = sqlc.arg(id)
  AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => sqlc.arg(min_interval_seconds)::double precision));
