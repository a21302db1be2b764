-- name: CreateProfile :one
INSERT INTO profiles (id, name, description, ladder)
VALUES ($1, $2, $3, $4)
RETURNING *;

-- name: GetProfile :one
SELECT * FROM profiles WHERE id = $1;

-- name: GetProfileByName :one
SELECT * FROM profiles WHERE name = $1;

-- name: ListProfiles :many
SELECT * FROM profiles
WHERE sqlc.narg(after)::uuid IS NULL OR id > sqlc.narg(after)::uuid
ORDER BY id
LIMIT sqlc.arg(max_rows);

-- name: UpdateProfile :one
UPDATE profiles SET
    name        = coalesce(sqlc.narg(name), name),
    description = coalesce(sqlc.narg(description), description),
    ladder      = coalesce(sqlc.narg(ladder)::jsonb, ladder),
    updated_at  = now()
WHERE id = sqlc.arg(id) AND NOT builtin
RETURNING *;

-- name: DeleteProfile :execrows
DELETE FROM profiles WHERE id = $1 AND NOT builtin;
