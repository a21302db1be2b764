package vod

import (
	"github.com/dionysia/dionysia/pkg/job"
	"github.com/google/uuid"
)

// Input is what Build makes an asset's VOD files from.
type Input struct {
	AssetID uuid.UUID
	// Objects are the asset's accepted objects (inits, segments,
	// thumbnails), in accepted order, from every worker and packager run.
	Objects []job.RecordedObject
	// Lost are the segments the workers reported they will never upload.
	Lost []job.LostSegment
}

// Result describes the VOD files Build wrote.
type Result struct {
	// DurationS is the total duration of the top video rendition's
	// segments (of the audio's when there is no video), gaps excluded.
	DurationS float64
	// SizeBytes is the size of every object of the asset: the recorded
	// objects plus the files Build wrote.
	SizeBytes int64
	// Renditions are the recorded tracks: the video renditions highest
	// bandwidth first (the first is the top rendition), then the audio.
	Renditions []Rendition
	// Poster is the key of poster.jpg, or "" when there is no thumbnail.
	Poster string
	// LostS is the total duration of the lost segments (each segment
	// number counted once, however many renditions lost it).
	LostS float64
}

// Rendition is one recorded track of an asset.
type Rendition struct {
	Name          string
	Width, Height int // video only
	// Bandwidth is the measured peak bit rate (bits/s) of one segment.
	Bandwidth int
	Codec     string // RFC 6381, e.g. avc1.64001f, mp4a.40.2
	Audio     bool
}
