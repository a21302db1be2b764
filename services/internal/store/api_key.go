package store

import (
	"context"
	"fmt"
	"time"

	"github.com/dionysia/dionysia/services/internal/secret"
	"github.com/dionysia/dionysia/services/internal/store/internal/dbq"
	"github.com/google/uuid"
)

// API key scopes.
const (
	ScopeAdmin = "admin" // everything
	ScopeRead  = "read"  // GET requests only
)

// APIKey is a management API credential. The key itself is never stored.
type APIKey struct {
	ID         uuid.UUID
	Name       string
	Prefix     string // the visible part of the key: dio_<Prefix>_...
	Scope      string // ScopeAdmin or ScopeRead
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Revoked reports whether the key was revoked.
func (k APIKey) Revoked() bool { return k.RevokedAt != nil }

func apiKeyFromRow(r dbq.ApiKey) APIKey {
	return APIKey{ID: r.ID, Name: r.Name, Prefix: r.Prefix, Scope: r.Scope, CreatedAt: r.CreatedAt,
		LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt}
}

// CreateAPIKey generates and stores a key. The returned secret is the only
// copy of the key; it cannot be recovered later.
func (s *Store) CreateAPIKey(ctx context.Context, name, scope string) (APIKey, string, error) {
	k := secret.NewAPIKey()
	row, err := s.q.CreateAPIKey(ctx, dbq.CreateAPIKeyParams{ID: newID(), Name: name, Prefix: k.Prefix, SecretHash: k.Hash, Scope: scope})
	if err != nil {
		return APIKey{}, "", fmt.Errorf("creating api key %q: %w", name, interpretError(err))
	}
	return apiKeyFromRow(row), k.Key, nil
}

// GetAPIKey returns the key with id.
func (s *Store) GetAPIKey(ctx context.Context, id uuid.UUID) (APIKey, error) {
	row, err := s.q.GetAPIKey(ctx, id)
	if err != nil {
		return APIKey{}, fmt.Errorf("loading api key %s: %w", id, interpretError(err))
	}
	return apiKeyFromRow(row), nil
}

// APIKeyByPrefix returns the key with the visible prefix and its stored hash,
// for the caller to compare (secret.MatchAPIKey).
func (s *Store) APIKeyByPrefix(ctx context.Context, prefix string) (APIKey, []byte, error) {
	row, err := s.q.GetAPIKeyByPrefix(ctx, prefix)
	if err != nil {
		return APIKey{}, nil, fmt.Errorf("loading api key %s: %w", prefix, interpretError(err))
	}
	return apiKeyFromRow(row), row.SecretHash, nil
}

// ListAPIKeys returns a page of keys ordered by id and the cursor of the next
// page (nil on the last page).
func (s *Store) ListAPIKeys(ctx context.Context, page Page) ([]APIKey, *uuid.UUID, error) {
	rows, err := s.q.ListAPIKeys(ctx, dbq.ListAPIKeysParams{After: page.After, MaxRows: page.maxRows()})
	if err != nil {
		return nil, nil, fmt.Errorf("listing api keys: %w", interpretError(err))
	}
	out := make([]APIKey, len(rows))
	for i, r := range rows {
		out[i] = apiKeyFromRow(r)
	}
	items, next := paginate(out, page.Limit, func(k APIKey) uuid.UUID { return k.ID })
	return items, next, nil
}

// RevokeAPIKey revokes a key; revoking a revoked key keeps its first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, id uuid.UUID) (APIKey, error) {
	row, err := s.q.RevokeAPIKey(ctx, id)
	if err != nil {
		return APIKey{}, fmt.Errorf("revoking api key %s: %w", id, interpretError(err))
	}
	return apiKeyFromRow(row), nil
}

// TouchAPIKey records that the key was used, unless that was already recorded
// less than minInterval ago (so busy keys do not write on every request).
func (s *Store) TouchAPIKey(ctx context.Context, id uuid.UUID, minInterval time.Duration) error {
	if err := s.q.TouchAPIKey(ctx, dbq.TouchAPIKeyParams{ID: id, MinIntervalSeconds: minInterval.Seconds()}); err != nil {
		return fmt.Errorf("recording use of api key %s: %w", id, interpretError(err))
	}
	return nil
}
