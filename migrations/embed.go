// Package migrations holds Dionysia's PostgreSQL schema as numbered up/down SQL
// migrations in goose's format, embedded so the dionysia binary carries them
// (`dionysia migrate up|down|status`). Each file has a "-- +goose Up" and a
// "-- +goose Down" section; files are applied in the order of their number.
package migrations

import "embed"

// FS holds every migration file (*.sql) at its root.
//
//go:embed *.sql
var FS embed.FS
