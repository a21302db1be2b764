// Package vod turns an asset's recorded objects into its VOD files
// (docs/recording.md): a multivariant and per-rendition HLS playlists
// (EXT-X-PLAYLIST-TYPE:VOD), a static MPD, a progressive MP4 (the top
// rendition with audio, remuxed) and a poster, under job.AssetPrefix.
package vod

import (
	"github.com/dionysia/dionysia/pkg/job"
	"github.com/google/uuid"
)

// Input is what Build needs about an asset.
type Input struct {
	AssetID uuid.UUID
	// Objects are the asset's objects in accepted order, from every
	// worker and packager run.
	Objects []job.RecordedObject
	// Lost are the segments the workers reported they will never upload.
	Lost []job.LostSegment
}

// Result is what Build made.
type Result struct {
	DurationS  float64
	SizeBytes  int64
	Renditions []Rendition
	Poster     string // key of the poster, "" when none was made
	LostS      float64
}

// Rendition is one rendition of the built asset.
type Rendition struct {
	Name                     string
	Width, Height, Bandwidth int
	Codec                    string
	Audio                    bool
}
