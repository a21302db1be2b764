// Package ladder defines adaptive-bitrate ladders: the renditions a live stream is
// transcoded into and the audio shared by all of them. The same types are stored
// by the management API, snapshotted into every transcode job and read by the
// worker's pipeline, so they live in this leaf package.
package ladder

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Limits enforced by Validate.
const (
	MaxRenditions   = 8
	MinDimension    = 16
	MaxWidth        = 7680
	MaxHeight       = 4320
	MinVideoKbps    = 50
	MaxVideoKbps    = 100_000
	MaxFrameRate    = 120.0
	MinKeyframeSecs = 0.5
	MaxKeyframeSecs = 10.0
)

// Codec names.
const (
	CodecH264 = "h264"
	CodecAAC  = "aac"
)

// Presets are the x264 speed presets, fastest first. GPU encoders map them to their
// own preset scale (see the worker's encoder selection).
var Presets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}

// ReservedName cannot name a rendition: the packager writes the shared audio
// track under it.
const ReservedName = "audio"

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Rendition is one rung of the ladder.
//
// Width and Height are in pixels and must be even. Both zero means "the source's
// size" (the passthrough-size rung); a rung larger than the source is skipped by the
// worker, never upscaled.
type Rendition struct {
	Name             string  `json:"name"`
	Width            int     `json:"width"`
	Height           int     `json:"height"`
	VideoBitrateKbps int     `json:"video_bitrate_kbps"`
	MaxBitrateKbps   int     `json:"max_bitrate_kbps"`
	FrameRate        float64 `json:"frame_rate"`        // frames per second; 0 keeps the source's (capped at MaxFrameRate)
	Codec            string  `json:"codec"`             // "h264"
	Preset           string  `json:"preset"`            // x264 speed preset, see Presets
	KeyframeInterval float64 `json:"keyframe_interval"` // seconds between keyframes
}

// Audio is the single audio encoding shared by every rendition.
type Audio struct {
	Codec       string `json:"codec"` // "aac"
	BitrateKbps int    `json:"bitrate_kbps"`
	Channels    int    `json:"channels"`    // 1 or 2; multichannel sources are downmixed
	SampleRate  int    `json:"sample_rate"` // Hz: 44100 or 48000
}

// Ladder is a profile's content: its renditions, highest first, and its audio.
type Ladder struct {
	Renditions []Rendition `json:"renditions"`
	Audio      Audio       `json:"audio"`
}

// FieldError says which field of a ladder is invalid and why. Field is a JSON path
// such as "renditions[1].width".
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// ValidationError collects every FieldError found.
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return "invalid ladder: " + strings.Join(parts, "; ")
}

// WithDefaults returns a copy with unset optional fields filled in.
func (l Ladder) WithDefaults() Ladder {
	out := Ladder{Audio: l.Audio, Renditions: make([]Rendition, len(l.Renditions))}
	for i, r := range l.Renditions {
		if r.Codec == "" {
			r.Codec = CodecH264
		}
		if r.Preset == "" {
			r.Preset = "veryfast"
		}
		if r.KeyframeInterval == 0 {
			r.KeyframeInterval = 2
		}
		if r.MaxBitrateKbps == 0 {
			r.MaxBitrateKbps = r.VideoBitrateKbps * 3 / 2
		}
		out.Renditions[i] = r
	}
	if out.Audio.Codec == "" {
		out.Audio.Codec = CodecAAC
	}
	if out.Audio.BitrateKbps == 0 {
		out.Audio.BitrateKbps = 128
	}
	if out.Audio.Channels == 0 {
		out.Audio.Channels = 2
	}
	if out.Audio.SampleRate == 0 {
		out.Audio.SampleRate = 48000
	}
	return out
}

// Validate checks the ladder (after WithDefaults) and returns a *ValidationError
// naming every offending field, or nil.
func (l Ladder) Validate() error {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	switch n := len(l.Renditions); {
	case n == 0:
		add("renditions", "at least one rendition is required")
	case n > MaxRenditions:
		add("renditions", "at most %d renditions are allowed, got %d", MaxRenditions, n)
	}
	seen := map[string]bool{}
	for i, r := range l.Renditions {
		p := fmt.Sprintf("renditions[%d].", i)
		if !nameRE.MatchString(r.Name) {
			add(p+"name", "must be 1-32 characters of a-z, 0-9, '_' or '-', starting with a letter or digit")
		} else if r.Name == ReservedName {
			add(p+"name", "%q is reserved for the audio track", ReservedName)
		} else if seen[r.Name] {
			add(p+"name", "duplicate rendition name %q", r.Name)
		}
		seen[r.Name] = true
		source := r.Width == 0 && r.Height == 0
		if !source {
			checkDim(add, p+"width", r.Width, MaxWidth)
			checkDim(add, p+"height", r.Height, MaxHeight)
		}
		if r.VideoBitrateKbps < MinVideoKbps || r.VideoBitrateKbps > MaxVideoKbps {
			add(p+"video_bitrate_kbps", "must be between %d and %d, got %d", MinVideoKbps, MaxVideoKbps, r.VideoBitrateKbps)
		}
		if r.MaxBitrateKbps < r.VideoBitrateKbps || r.MaxBitrateKbps > 2*MaxVideoKbps {
			add(p+"max_bitrate_kbps", "must be at least video_bitrate_kbps (%d) and at most %d, got %d", r.VideoBitrateKbps, 2*MaxVideoKbps, r.MaxBitrateKbps)
		}
		if r.FrameRate < 0 || r.FrameRate > MaxFrameRate {
			add(p+"frame_rate", "must be between 0 (keep the source's) and %g, got %g", MaxFrameRate, r.FrameRate)
		}
		if r.Codec != CodecH264 {
			add(p+"codec", "must be %q, got %q", CodecH264, r.Codec)
		}
		if !validPreset(r.Preset) {
			add(p+"preset", "must be one of %s, got %q", strings.Join(Presets, ", "), r.Preset)
		}
		if r.KeyframeInterval < MinKeyframeSecs || r.KeyframeInterval > MaxKeyframeSecs {
			add(p+"keyframe_interval", "must be between %g and %g seconds, got %g", MinKeyframeSecs, MaxKeyframeSecs, r.KeyframeInterval)
		}
	}
	a := l.Audio
	if a.Codec != CodecAAC {
		add("audio.codec", "must be %q, got %q", CodecAAC, a.Codec)
	}
	if a.BitrateKbps < 16 || a.BitrateKbps > 512 {
		add("audio.bitrate_kbps", "must be between 16 and 512, got %d", a.BitrateKbps)
	}
	if a.Channels != 1 && a.Channels != 2 {
		add("audio.channels", "must be 1 or 2, got %d", a.Channels)
	}
	if a.SampleRate != 44100 && a.SampleRate != 48000 {
		add("audio.sample_rate", "must be 44100 or 48000, got %d", a.SampleRate)
	}
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}

func checkDim(add func(string, string, ...any), field string, v, limit int) {
	switch {
	case v < MinDimension || v > limit:
		add(field, "must be between %d and %d pixels, got %d", MinDimension, limit, v)
	case v%2 != 0:
		add(field, "must be even (4:2:0 video), got %d", v)
	}
}

func validPreset(p string) bool {
	for _, x := range Presets {
		if p == x {
			return true
		}
	}
	return false
}

// ErrUnknownPreset is returned by Builtin for a name that is not a built-in profile.
var ErrUnknownPreset = errors.New("unknown built-in profile")

// Builtin profile names. They are seeded by a migration and cannot be deleted.
const (
	Builtin1080p       = "1080p"
	Builtin720p        = "720p"
	BuiltinPassthrough = "passthrough"
)

var stereo = Audio{Codec: CodecAAC, BitrateKbps: 128, Channels: 2, SampleRate: 48000}

func rung(name string, w, h, kbps int, fps float64) Rendition {
	return Rendition{Name: name, Width: w, Height: h, VideoBitrateKbps: kbps, MaxBitrateKbps: kbps * 3 / 2,
		FrameRate: fps, Codec: CodecH264, Preset: "veryfast", KeyframeInterval: 2}
}

// Builtins returns the built-in profiles by name.
func Builtins() map[string]Ladder {
	return map[string]Ladder{
		Builtin1080p: {Audio: stereo, Renditions: []Rendition{
			rung("1080p", 1920, 1080, 5000, 30), rung("720p", 1280, 720, 2800, 30),
			rung("480p", 854, 480, 1400, 30), rung("360p", 640, 360, 800, 30),
		}},
		Builtin720p: {Audio: stereo, Renditions: []Rendition{
			rung("720p", 1280, 720, 2800, 30), rung("480p", 854, 480, 1400, 30), rung("360p", 640, 360, 800, 30),
		}},
		BuiltinPassthrough: {Audio: stereo, Renditions: []Rendition{rung("source", 0, 0, 4500, 0)}},
	}
}

// Builtin returns one built-in profile.
func Builtin(name string) (Ladder, error) {
	l, ok := Builtins()[name]
	if !ok {
		return Ladder{}, fmt.Errorf("%w: %q", ErrUnknownPreset, name)
	}
	return l, nil
}
