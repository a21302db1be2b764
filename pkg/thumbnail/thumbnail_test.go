package thumbnail_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"github.com/dionysia/dionysia/pkg/thumbnail"
	"github.com/stretchr/testify/require"
)

// frame is a w×h JPEG whose left half is red and right half blue.
func frame(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{R: 220, G: 20, B: 20, A: 255}
			if x >= w/2 {
				c = color.RGBA{R: 20, G: 20, B: 220, A: 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}))
	return b.Bytes()
}

func TestScale(t *testing.T) {
	t.Parallel()
	src := frame(t, 1280, 720)
	cases := map[string]struct{ width, wantW, wantH int }{
		"quarter":        {320, 320, 180},
		"odd":            {333, 333, 187},
		"narrowest":      {16, 16, 9},
		"default":        {0, 1280, 720},
		"capped":         {4000, 1280, 720},
		"source is less": {1279, 1279, 719},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, err := thumbnail.Scale(src, tc.width)
			require.NoError(t, err)
			img, err := jpeg.Decode(bytes.NewReader(out))
			require.NoError(t, err)
			require.Equal(t, image.Pt(tc.wantW, tc.wantH), img.Bounds().Size())
			// The picture survives: red on the left, blue on the right.
			r, _, b, _ := img.At(tc.wantW/4, tc.wantH/2).RGBA()
			require.Greater(t, r>>8, uint32(180), "left quarter is red")
			require.Less(t, b>>8, uint32(70))
			r, _, b, _ = img.At(3*tc.wantW/4, tc.wantH/2).RGBA()
			require.Greater(t, b>>8, uint32(180), "right quarter is blue")
			require.Less(t, r>>8, uint32(70))
		})
	}
}

func TestScaleNeverUpscalesNorReencodes(t *testing.T) {
	t.Parallel()
	src := frame(t, 640, 360)
	for _, w := range []int{0, 640, 1000} {
		out, err := thumbnail.Scale(src, w)
		require.NoError(t, err)
		require.Equal(t, src, out, "width %d", w)
	}
}

func TestScaleRefusesWhatIsNotAJPEG(t *testing.T) {
	t.Parallel()
	src := frame(t, 64, 36)
	for name, in := range map[string][]byte{
		"empty":     nil,
		"text":      []byte("hello"),
		"truncated": src[:len(src)/2],
	} {
		_, err := thumbnail.Scale(in, 32)
		require.ErrorIs(t, err, thumbnail.ErrNotJPEG, name)
	}
}

func TestParseWidth(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{"": 0, "16": 16, "320": 320, "1280": 1280, "99999": 1280} {
		got, err := thumbnail.ParseWidth(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"0", "15", "-320", "abc", "320px", "3.5", " 320"} {
		_, err := thumbnail.ParseWidth(in)
		require.ErrorIs(t, err, thumbnail.ErrBadWidth, in)
	}
}

func FuzzScale(f *testing.F) {
	f.Add(frame(f, 64, 36), 32)
	f.Add([]byte("\xff\xd8\xff"), 16)
	f.Fuzz(func(t *testing.T, src []byte, width int) {
		out, err := thumbnail.Scale(src, width)
		if err != nil {
			return
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(out))
		require.NoError(t, err)
		require.LessOrEqual(t, cfg.Width, thumbnail.MaxWidth)
	})
}

// BenchmarkScale: a 1280×720 frame to a 320-wide tile (the live thumbnail's
// usual request).
func BenchmarkScale(b *testing.B) {
	src := frame(b, 1280, 720)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := thumbnail.Scale(src, 320); err != nil {
			b.Fatal(err)
		}
	}
}
