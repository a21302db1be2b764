package live

import (
	"github.com/dionysia/dionysia/pkg/testkit"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFindBeeps encodes 20 s of the publisher's beep track to AAC (as the
// clip carries it), decodes it, and checks every beep is found at its second
// with its index: a misread index would shift every latency by seconds. The
// beep at 0 s has no quiet before it and is skipped by design (decoded audio
// may start inside a beep).
func TestFindBeeps(t *testing.T) {
	testkit.FFmpeg(t)
	f := t.TempDir() + "/beeps.m4a"
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
		"-i", "aevalsrc=exprs='"+beepExprFmt+"':s=48000:c=stereo", "-t", "20", "-c:a", "aac", "-b:a", "128k", f).CombinedOutput()
	require.NoError(t, err, string(out))
	pcm, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", f, "-ac", "1", "-ar", "48000", "-f", "s16le", "-").Output()
	require.NoError(t, err)
	beeps := findBeeps(pcm)
	require.Len(t, beeps, 19)
	for i, b := range beeps {
		k := i + 1
		require.Equal(t, k%beepModulo, b.Index, "beep %d", k)
		require.InDelta(t, float64(k), b.At.Seconds(), 0.03, "beep %d onset", k)
	}
}

func TestParseMedia(t *testing.T) {
	pl, err := parseMedia("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:897612960\n" +
		"#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000,\n897612960.m4s\n#EXTINF:1.967,\n897612961.m4s\n")
	require.NoError(t, err)
	require.Equal(t, "init.mp4", pl.Map)
	require.Equal(t, []segment{
		{Number: 897612960, URI: "897612960.m4s", Duration: 2 * time.Second},
		{Number: 897612961, URI: "897612961.m4s", Duration: 1967 * time.Millisecond},
	}, pl.Segments)
	_, err = parseMedia("#EXTINF:2,\nsegment-a.m4s\n")
	require.Error(t, err)
}
