package store

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/secret"
	"github.com/dionysia/dionysia/services/internal/store/internal/dbq"
	"github.com/google/uuid"
)

// Stream statuses. Later states are added by extending the streams_status_check
// constraint in a migration.
const (
	StatusIdle = "idle"
	StatusLive = "live"
)

// Playback policies.
const (
	PlaybackPublic = "public" // anyone with the playback URL can watch
	PlaybackSigned = "signed" // playback needs a signed token
)

// Stream defaults, applied by CreateStream to zero fields of NewStream.
const (
	DefaultProfile            = "720p"
	DefaultSegmentDuration    = 2    // seconds
	DefaultPlaylistWindowSize = 6    // segments
	DefaultThumbnailInterval  = 10.0 // seconds
)

// Recording modes (docs/recording.md).
const (
	RecordingOff       = "off"       // sessions are not recorded
	RecordingAutomatic = "automatic" // every session becomes an asset
)

// DefaultOutputs are the outputs of a stream created without any.
func DefaultOutputs() []string { return []string{job.OutputHLS, job.OutputDASH} }

// Stream is a live channel: what a publisher pushes to with its stream key and
// how it is transcoded and packaged.
type Stream struct {
	ID                 uuid.UUID // UUIDv7, also the public playback id
	Name               string
	StreamKey          string // publishing secret; never log it
	ProfileID          uuid.UUID
	ProfileName        string
	Outputs            []string // job.OutputHLS and/or job.OutputDASH
	Hardware           string   // job.HardwareAuto, HardwareGPU or HardwareCPU
	PlaybackPolicy     string   // PlaybackPublic or PlaybackSigned
	SegmentDuration    int      // seconds
	PlaylistWindowSize int      // segments
	Disabled           bool
	Status             string // StatusIdle or StatusLive
	// RecordingMode is RecordingOff or RecordingAutomatic; DeleteAfterDays
	// is how long a ready asset is kept (nil: until deleted).
	RecordingMode      string
	DeleteAfterDays    *int
	DVRWindowS         int     // seconds of live history; 0: the playlist window only
	ThumbnailIntervalS float64 // seconds between live thumbnails
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// String describes the stream without its key, so that printing a Stream never leaks it.
func (s Stream) String() string { return fmt.Sprintf("stream %s (%q)", s.ID, s.Name) }

// LogValue implements slog.LogValuer, without the stream key.
func (s Stream) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", s.ID.String()), slog.String("name", s.Name))
}

// Records reports whether the stream's sessions are recorded.
func (s Stream) Records() bool { return s.RecordingMode == RecordingAutomatic }

// NewStream is what CreateStream needs. Zero fields take their defaults
// (DefaultOutputs, job.HardwareAuto, PlaybackPublic, DefaultSegmentDuration,
// DefaultPlaylistWindowSize, RecordingOff, DefaultThumbnailInterval); values
// are checked by the caller.
type NewStream struct {
	Name               string
	ProfileID          uuid.UUID
	Outputs            []string
	Hardware           string
	PlaybackPolicy     string
	SegmentDuration    int
	PlaylistWindowSize int
	Disabled           bool
	RecordingMode      string
	DeleteAfterDays    *int
	DVRWindowS         int
	ThumbnailIntervalS float64
}

// StreamUpdate lists the fields to change; nil fields are kept.
type StreamUpdate struct {
	Name               *string
	ProfileID          *uuid.UUID
	Outputs            []string
	Hardware           *string
	PlaybackPolicy     *string
	SegmentDuration    *int
	PlaylistWindowSize *int
	Disabled           *bool
	// Recording, when set, replaces the mode and the retention together.
	Recording          *RecordingSettings
	DVRWindowS         *int
	ThumbnailIntervalS *float64
}

// RecordingSettings are a stream's recording mode and retention.
type RecordingSettings struct {
	Mode            string
	DeleteAfterDays *int // nil: keep assets until deleted
}

func streamFromRow(r dbq.Stream, profileName string) Stream {
	return Stream{ID: r.ID, Name: r.Name, StreamKey: r.StreamKey, ProfileID: r.ProfileID, ProfileName: profileName,
		Outputs: r.Outputs, Hardware: r.Hardware, PlaybackPolicy: r.PlaybackPolicy,
		SegmentDuration: int(r.SegmentDuration), PlaylistWindowSize: int(r.PlaylistWindowSize),
		Disabled: r.Disabled, Status: r.Status, RecordingMode: r.RecordingMode, DeleteAfterDays: intPtr(r.RecordingDeleteAfterDays),
		DVRWindowS: int(r.DvrWindowS), ThumbnailIntervalS: r.ThumbnailIntervalS,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func int32Ptr(p *int) *int32 {
	if p == nil {
		return nil
	}
	v := int32(*p)
	return &v
}

func getStream(ctx context.Context, q *dbq.Queries, id uuid.UUID) (Stream, error) {
	row, err := q.GetStream(ctx, id)
	if err != nil {
		return Stream{}, interpretError(err)
	}
	return streamFromRow(row.Stream, row.ProfileName), nil
}

// CreateStream inserts a stream with a fresh id and stream key. An unknown
// ProfileID is an ErrInUse on streams_profile_id_fkey.
func (s *Store) CreateStream(ctx context.Context, n NewStream) (Stream, error) {
	outputs := n.Outputs
	if len(outputs) == 0 {
		outputs = DefaultOutputs()
	}
	params := dbq.CreateStreamParams{
		ID: newID(), Name: n.Name, StreamKey: secret.NewStreamKey(), ProfileID: n.ProfileID, Outputs: outputs,
		Hardware:                 cmp.Or(n.Hardware, job.HardwareAuto),
		PlaybackPolicy:           cmp.Or(n.PlaybackPolicy, PlaybackPublic),
		SegmentDuration:          int32(cmp.Or(n.SegmentDuration, DefaultSegmentDuration)),
		PlaylistWindowSize:       int32(cmp.Or(n.PlaylistWindowSize, DefaultPlaylistWindowSize)),
		Disabled:                 n.Disabled,
		RecordingMode:            cmp.Or(n.RecordingMode, RecordingOff),
		RecordingDeleteAfterDays: int32Ptr(n.DeleteAfterDays),
		DvrWindowS:               int32(n.DVRWindowS),
		ThumbnailIntervalS:       cmp.Or(n.ThumbnailIntervalS, DefaultThumbnailInterval),
	}
	var out Stream
	err := s.tx(ctx, func(q *dbq.Queries) error {
		id, err := q.CreateStream(ctx, params)
		if err != nil {
			return interpretError(err)
		}
		out, err = getStream(ctx, q, id)
		return err
	})
	if err != nil {
		return Stream{}, fmt.Errorf("creating stream %q: %w", n.Name, err)
	}
	return out, nil
}

// GetStream returns the stream with id.
func (s *Store) GetStream(ctx context.Context, id uuid.UUID) (Stream, error) {
	st, err := getStream(ctx, s.q, id)
	if err != nil {
		return Stream{}, fmt.Errorf("loading stream %s: %w", id, err)
	}
	return st, nil
}

// GetStreamByKey returns the stream whose stream key is key. The error never
// contains the key.
func (s *Store) GetStreamByKey(ctx context.Context, key string) (Stream, error) {
	row, err := s.q.GetStreamByKey(ctx, key)
	if err != nil {
		return Stream{}, fmt.Errorf("loading stream by key: %w", interpretError(err))
	}
	return streamFromRow(row.Stream, row.ProfileName), nil
}

// ListStreams returns a page of streams ordered by id and the cursor of the
// next page (nil on the last page).
func (s *Store) ListStreams(ctx context.Context, page Page) ([]Stream, *uuid.UUID, error) {
	rows, err := s.q.ListStreams(ctx, dbq.ListStreamsParams{After: page.After, MaxRows: page.maxRows()})
	if err != nil {
		return nil, nil, fmt.Errorf("listing streams: %w", interpretError(err))
	}
	out := make([]Stream, len(rows))
	for i, r := range rows {
		out[i] = streamFromRow(r.Stream, r.ProfileName)
	}
	items, next := paginate(out, page.Limit, func(s Stream) uuid.UUID { return s.ID })
	return items, next, nil
}

// UpdateStream changes the given fields of a stream.
func (s *Store) UpdateStream(ctx context.Context, id uuid.UUID, u StreamUpdate) (Stream, error) {
	params := dbq.UpdateStreamParams{
		ID: id, Name: u.Name, ProfileID: u.ProfileID, Outputs: u.Outputs, Hardware: u.Hardware,
		PlaybackPolicy: u.PlaybackPolicy, SegmentDuration: int32Ptr(u.SegmentDuration),
		PlaylistWindowSize: int32Ptr(u.PlaylistWindowSize), Disabled: u.Disabled,
		DvrWindowS: int32Ptr(u.DVRWindowS), ThumbnailIntervalS: u.ThumbnailIntervalS,
	}
	if u.Recording != nil {
		params.RecordingMode = &u.Recording.Mode
		params.SetDeleteAfterDays = true
		params.RecordingDeleteAfterDays = int32Ptr(u.Recording.DeleteAfterDays)
	}
	var out Stream
	err := s.tx(ctx, func(q *dbq.Queries) error {
		if _, err := q.UpdateStream(ctx, params); err != nil {
			return interpretError(err)
		}
		var err error
		out, err = getStream(ctx, q, id)
		return err
	})
	if err != nil {
		return Stream{}, fmt.Errorf("updating stream %s: %w", id, err)
	}
	return out, nil
}

// RotateStreamKey gives the stream a fresh stream key; the old one stops
// working for new publishes at once.
func (s *Store) RotateStreamKey(ctx context.Context, id uuid.UUID) (Stream, error) {
	var out Stream
	err := s.tx(ctx, func(q *dbq.Queries) error {
		if _, err := q.RotateStreamKey(ctx, dbq.RotateStreamKeyParams{ID: id, StreamKey: secret.NewStreamKey()}); err != nil {
			return interpretError(err)
		}
		var err error
		out, err = getStream(ctx, q, id)
		return err
	})
	if err != nil {
		return Stream{}, fmt.Errorf("rotating the key of stream %s: %w", id, err)
	}
	return out, nil
}

// DeleteStream deletes a stream and its sessions. Its assets stay (they
// outlive their stream, migration 00013).
func (s *Store) DeleteStream(ctx context.Context, id uuid.UUID) error {
	n, err := s.q.DeleteStream(ctx, id)
	if err != nil {
		return fmt.Errorf("deleting stream %s: %w", id, interpretError(err))
	}
	if n == 0 {
		return fmt.Errorf("deleting stream %s: %w", id, ErrNotFound)
	}
	return nil
}
