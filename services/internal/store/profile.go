package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/services/internal/store/internal/dbq"
	"github.com/google/uuid"
)

// Profile is a named ABR ladder. Built-in profiles are seeded by a migration and
// cannot be modified or deleted.
type Profile struct {
	ID          uuid.UUID
	Name        string
	Description string
	Builtin     bool
	Ladder      ladder.Ladder
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// NewProfile is what CreateProfile needs; the ladder is stored as given (the
// caller applies defaults and validates).
type NewProfile struct {
	Name        string
	Description string
	Ladder      ladder.Ladder
}

// ProfileUpdate lists the fields to change; nil fields are kept.
type ProfileUpdate struct {
	Name        *string
	Description *string
	Ladder      *ladder.Ladder
}

func profileFromRow(r dbq.Profile) Profile {
	return Profile{ID: r.ID, Name: r.Name, Description: r.Description, Builtin: r.Builtin, Ladder: r.Ladder,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// CreateProfile inserts a profile. A taken name is an ErrConflict.
func (s *Store) CreateProfile(ctx context.Context, p NewProfile) (Profile, error) {
	row, err := s.q.CreateProfile(ctx, dbq.CreateProfileParams{ID: newID(), Name: p.Name, Description: p.Description, Ladder: p.Ladder})
	if err != nil {
		return Profile{}, fmt.Errorf("creating profile %q: %w", p.Name, interpretError(err))
	}
	return profileFromRow(row), nil
}

// GetProfile returns the profile with id.
func (s *Store) GetProfile(ctx context.Context, id uuid.UUID) (Profile, error) {
	row, err := s.q.GetProfile(ctx, id)
	if err != nil {
		return Profile{}, fmt.Errorf("loading profile %s: %w", id, interpretError(err))
	}
	return profileFromRow(row), nil
}

// GetProfileByName returns the profile named name.
func (s *Store) GetProfileByName(ctx context.Context, name string) (Profile, error) {
	row, err := s.q.GetProfileByName(ctx, name)
	if err != nil {
		return Profile{}, fmt.Errorf("loading profile %q: %w", name, interpretError(err))
	}
	return profileFromRow(row), nil
}

// ResolveProfile returns the profile whose id or name is ref.
func (s *Store) ResolveProfile(ctx context.Context, ref string) (Profile, error) {
	if id, err := uuid.Parse(ref); err == nil {
		p, err := s.GetProfile(ctx, id)
		if !errors.Is(err, ErrNotFound) {
			return p, err
		}
	}
	return s.GetProfileByName(ctx, ref)
}

// ListProfiles returns a page of profiles ordered by id and the cursor of the
// next page (nil on the last page).
func (s *Store) ListProfiles(ctx context.Context, page Page) ([]Profile, *uuid.UUID, error) {
	rows, err := s.q.ListProfiles(ctx, dbq.ListProfilesParams{After: page.After, MaxRows: page.maxRows()})
	if err != nil {
		return nil, nil, fmt.Errorf("listing profiles: %w", interpretError(err))
	}
	out := make([]Profile, len(rows))
	for i, r := range rows {
		out[i] = profileFromRow(r)
	}
	items, next := paginate(out, page.Limit, func(p Profile) uuid.UUID { return p.ID })
	return items, next, nil
}

// UpdateProfile changes a custom profile. A built-in one gives ErrBuiltin.
func (s *Store) UpdateProfile(ctx context.Context, id uuid.UUID, u ProfileUpdate) (Profile, error) {
	params := dbq.UpdateProfileParams{ID: id, Name: u.Name, Description: u.Description}
	if u.Ladder != nil {
		b, err := json.Marshal(u.Ladder)
		if err != nil {
			return Profile{}, fmt.Errorf("encoding ladder: %w", err)
		}
		params.Ladder = b
	}
	var out Profile
	err := s.tx(ctx, func(q *dbq.Queries) error {
		row, err := q.UpdateProfile(ctx, params)
		if err == nil {
			out = profileFromRow(row)
			return nil
		}
		if err := interpretError(err); !errors.Is(err, ErrNotFound) {
			return err
		}
		return builtinOrMissing(ctx, q, id)
	})
	if err != nil {
		return Profile{}, fmt.Errorf("updating profile %s: %w", id, err)
	}
	return out, nil
}

// DeleteProfile deletes a custom profile. A built-in one gives ErrBuiltin, one
// used by a stream ErrInUse.
func (s *Store) DeleteProfile(ctx context.Context, id uuid.UUID) error {
	err := s.tx(ctx, func(q *dbq.Queries) error {
		n, err := q.DeleteProfile(ctx, id)
		if err != nil {
			return interpretError(err)
		}
		if n == 0 {
			return builtinOrMissing(ctx, q, id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting profile %s: %w", id, err)
	}
	return nil
}

// builtinOrMissing explains why a statement guarded by "NOT builtin" touched no row.
func builtinOrMissing(ctx context.Context, q *dbq.Queries, id uuid.UUID) error {
	row, err := q.GetProfile(ctx, id)
	if err != nil {
		return interpretError(err)
	}
	if row.Builtin {
		return ErrBuiltin
	}
	return ErrNotFound // deleted concurrently
}
