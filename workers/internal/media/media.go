// Package media holds the types that cross from the GStreamer pipeline into the
// Go packager: encoded access units and the descriptions of the tracks they
// belong to. It has no cgo and no dependencies so both sides, and their tests,
// can use it freely.
package media

import "time"

// VideoTrack describes one encoded rendition.
type VideoTrack struct {
	Name          string // rendition name, also its directory name
	Width, Height int    // pixels, as encoded
	FrameRateNum  int    // frame rate as a fraction, e.g. 30000/1001
	FrameRateDen  int
	BitrateBps    int // target (average) bitrate
	MaxBitrateBps int // peak bitrate (VBV max rate)
}

// AudioTrack describes the single AAC track shared by every rendition.
type AudioTrack struct {
	SampleRate int
	Channels   int
	BitrateBps int
	// Config is the MPEG-4 AudioSpecificConfig (the codec_data of GStreamer's
	// audio/mpeg,stream-format=raw caps).
	Config []byte
}

// VideoAU is one H.264 access unit in Annex-B byte-stream format (start codes),
// as x264enc/nvh264enc emit it with alignment=au. Keyframes carry SPS and PPS
// in-band. Timestamps are on the pipeline's running time, so PTS and DTS of
// every track share one clock.
type VideoAU struct {
	PTS, DTS time.Duration
	Duration time.Duration // may be 0 when unknown
	Keyframe bool
	Data     []byte
}

// AudioFrame is one raw AAC frame (no ADTS header).
type AudioFrame struct {
	PTS      time.Duration
	Duration time.Duration // may be 0 when unknown (1024 samples is typical)
	Data     []byte
}

// Sink receives the encoded output of one pipeline run. The packager implements
// it. Tracks is called once per pipeline (re)start, before any sample of that
// run; a restart within the same session calls Tracks again. WriteVideo and
// WriteAudio are called concurrently from GStreamer streaming threads (one
// goroutine per rendition plus one for audio), so implementations must be safe
// for concurrent use. track indexes the video slice given to Tracks. audio is nil
// when the source has no audio.
type Sink interface {
	Tracks(video []VideoTrack, audio *AudioTrack) error
	WriteVideo(track int, au VideoAU) error
	WriteAudio(f AudioFrame) error
}
