// Package packager turns the encoded output of one live session (H.264 access
// units per rendition and one AAC track) into CMAF fragmented-MP4 segments that
// are written once and referenced both by HLS playlists and by a DASH MPD.
//
// On-disk layout, relative to Config.Dir ({data_dir}/{stream_id}):
//
//	index.m3u8            HLS multivariant playlist
//	manifest.mpd          DASH MPD (dynamic while live, static once ended)
//	{rendition}/index.m3u8 HLS media playlist of one video rendition
//	{rendition}/init.mp4  CMAF header (init-{run}.mp4 after a restart changed it)
//	{rendition}/{n}.m4s   CMAF segment number n
//	audio/index.m3u8, audio/init.mp4, audio/{n}.m4s  the shared audio track
//
// Segments are cut at keyframes: segment boundaries are decided once per
// session by the first rendition that reaches a keyframe at or after the
// previous boundary plus the target duration, and every other rendition and the
// audio track cut at the same presentation time, so segment n covers the same
// time span in every rendition. Segment numbers start at
// floor(unix time / segment duration) when the session starts and then grow by
// one per segment, across pipeline restarts too.
//
// Every file is written to a temporary file in the same directory and renamed,
// so a reader never sees a partial file. See adr/0004-cmaf-packaging.md.
package packager
