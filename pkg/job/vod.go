package job

import "github.com/google/uuid"

// VODPlaybackPath is the API path a router asks an asset's playback facts
// from: GET {api}/internal/v1/assets/{asset_id}/playback with
// "Authorization: Bearer <worker secret>". Answers: 200 VODPlayback, 404
// problem+json when the asset is unknown.
func VODPlaybackPath(assetID uuid.UUID) string {
	return "/internal/v1/assets/" + assetID.String() + "/playback"
}

// Asset statuses (docs/recording.md).
const (
	AssetRecording  = "recording"
	AssetProcessing = "processing"
	AssetReady      = "ready"
	AssetFailed     = "failed"
	AssetDeleted    = "deleted"
)

// VODPlayback is what a router needs to serve /vod/{asset_id}[/t/{token}]/{file}:
// the asset's stream (a signed token minted for that stream authorizes its
// assets), its status (only ready assets have VOD files), the stream's current
// playback policy ("public" or "signed"), and its recorded thumbnails so that
// /vod/{asset_id}/thumbnail.jpg?time=s can pick the nearest one.
type VODPlayback struct {
	AssetID        uuid.UUID      `json:"asset_id"`
	StreamID       uuid.UUID      `json:"stream_id"`
	Status         string         `json:"status"`
	PlaybackPolicy string         `json:"playback_policy"`
	DurationS      float64        `json:"duration_s"`
	Thumbnails     []VODThumbnail `json:"thumbnails"`
}

// VODThumbnail is one recorded thumbnail: OffsetS seconds after the asset's
// start, stored at Key (inside AssetPrefix).
type VODThumbnail struct {
	OffsetS float64 `json:"offset_s"`
	Key     string  `json:"key"`
}
