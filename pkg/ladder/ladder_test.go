package ladder_test

import (
	"testing"

	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/stretchr/testify/require"
)

func TestBuiltinsAreValid(t *testing.T) {
	t.Parallel()
	for name, l := range ladder.Builtins() {
		require.NoError(t, l.Validate(), name)
		require.Equal(t, l, l.WithDefaults(), "%s: built-ins must be stored fully specified", name)
	}
	_, err := ladder.Builtin("4k")
	require.ErrorIs(t, err, ladder.ErrUnknownPreset)
}

func TestValidateNamesTheField(t *testing.T) {
	t.Parallel()
	base := func() ladder.Ladder {
		l, err := ladder.Builtin(ladder.Builtin720p)
		require.NoError(t, err)
		return l
	}
	tests := map[string]struct {
		mutate func(*ladder.Ladder)
		field  string
	}{
		"odd width":          {func(l *ladder.Ladder) { l.Renditions[0].Width = 1279 }, "renditions[0].width"},
		"odd height":         {func(l *ladder.Ladder) { l.Renditions[1].Height = 481 }, "renditions[1].height"},
		"zero bitrate":       {func(l *ladder.Ladder) { l.Renditions[0].VideoBitrateKbps = 0 }, "renditions[0].video_bitrate_kbps"},
		"absurd bitrate":     {func(l *ladder.Ladder) { l.Renditions[0].VideoBitrateKbps = 10_000_000 }, "renditions[0].video_bitrate_kbps"},
		"max below average":  {func(l *ladder.Ladder) { l.Renditions[0].MaxBitrateKbps = 100 }, "renditions[0].max_bitrate_kbps"},
		"duplicate name":     {func(l *ladder.Ladder) { l.Renditions[1].Name = l.Renditions[0].Name }, "renditions[1].name"},
		"reserved name":      {func(l *ladder.Ladder) { l.Renditions[0].Name = "audio" }, "renditions[0].name"},
		"bad name":           {func(l *ladder.Ladder) { l.Renditions[0].Name = "../x" }, "renditions[0].name"},
		"bad codec":          {func(l *ladder.Ladder) { l.Renditions[0].Codec = "vp9" }, "renditions[0].codec"},
		"bad preset":         {func(l *ladder.Ladder) { l.Renditions[0].Preset = "warp" }, "renditions[0].preset"},
		"fps too high":       {func(l *ladder.Ladder) { l.Renditions[0].FrameRate = 240 }, "renditions[0].frame_rate"},
		"keyframe too long":  {func(l *ladder.Ladder) { l.Renditions[0].KeyframeInterval = 60 }, "renditions[0].keyframe_interval"},
		"no renditions":      {func(l *ladder.Ladder) { l.Renditions = nil }, "renditions"},
		"audio channels":     {func(l *ladder.Ladder) { l.Audio.Channels = 6 }, "audio.channels"},
		"audio sample rate":  {func(l *ladder.Ladder) { l.Audio.SampleRate = 8000 }, "audio.sample_rate"},
		"audio codec":        {func(l *ladder.Ladder) { l.Audio.Codec = "opus" }, "audio.codec"},
		"more than 8 rungs":  {func(l *ladder.Ladder) { l.Renditions = nineRungs(l.Renditions[0]) }, "renditions"},
		"width without size": {func(l *ladder.Ladder) { l.Renditions[0].Height = 0 }, "renditions[0].height"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := base()
			tt.mutate(&l)
			err := l.Validate()
			var verr *ladder.ValidationError
			require.ErrorAs(t, err, &verr)
			fields := make([]string, len(verr.Fields))
			for i, f := range verr.Fields {
				fields[i] = f.Field
			}
			require.Contains(t, fields, tt.field)
		})
	}
}

func nineRungs(r ladder.Rendition) []ladder.Rendition {
	out := make([]ladder.Rendition, 9)
	for i := range out {
		out[i] = r
		out[i].Name = string(rune('a' + i))
	}
	return out
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	l := ladder.Ladder{Renditions: []ladder.Rendition{{Name: "720p", Width: 1280, Height: 720, VideoBitrateKbps: 2000}}}.WithDefaults()
	require.NoError(t, l.Validate())
	r := l.Renditions[0]
	require.Equal(t, ladder.CodecH264, r.Codec)
	require.Equal(t, 3000, r.MaxBitrateKbps)
	require.Equal(t, 2.0, r.KeyframeInterval)
	require.Equal(t, 48000, l.Audio.SampleRate)
}
