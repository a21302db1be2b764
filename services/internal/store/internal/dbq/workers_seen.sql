-- name: MarkWorkersUp :many
-- The workers of ids that were not up: new ones, or ones lost before. Each
-- row is returned by one caller only, however many API replicas run this.
INSERT INTO workers_seen (id) SELECT unnest(sqlc.arg(ids)::text[])
ON CONFLICT (id) DO UPDATE SET up_at = now(), lost_at = NULL, updated_at = now()
WHERE workers_seen.lost_at IS NOT NULL
RETURNING *;

-- name: MarkWorkersLost :many
-- The workers that were up and are not among alive. Each row is returned by
-- one caller only.
UPDATE workers_seen SET lost_at = now(), updated_at = now()
WHERE lost_at IS NULL AND NOT (id = ANY(sqlc.arg(alive)::text[]))
RETURNING *;
