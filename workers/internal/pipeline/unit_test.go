package pipeline

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/workers/internal/hwprobe"
)

func TestAuthURL(t *testing.T) {
	tests := []struct {
		name    string
		src     job.Source
		want    string
		wantErr bool
	}{
		{name: "rtmp without credential", src: job.Source{URL: "rtmp://edge:1935/live/abc"}, want: "rtmp://edge:1935/live/abc"},
		{name: "rtmp with credential", src: job.Source{URL: "rtmp://edge:1935/live/abc", User: "w1", Password: "p&ss=?"},
			want: "rtmp://edge:1935/live/abc?pass=p%26ss%3D%3F&user=w1"},
		{name: "rtmp keeps its query", src: job.Source{URL: "rtmp://edge/live/abc?x=1", User: "u", Password: "p"},
			want: "rtmp://edge/live/abc?pass=p&user=u&x=1"},
		{name: "rtmp without stream", src: job.Source{URL: "rtmp://edge:1935/"}, wantErr: true},
		{name: "srt streamid", src: job.Source{URL: "srt://edge:8890?streamid=read:live/abc", User: "u", Password: "p"},
			want: "srt://edge:8890?streamid=read%3Alive%2Fabc%3Au%3Ap"},
		{name: "srt path becomes streamid", src: job.Source{URL: "srt://edge:8890/live/abc"},
			want: "srt://edge:8890?streamid=read%3Alive%2Fabc"},
		{name: "srt streamid already has a credential", src: job.Source{URL: "srt://edge:8890?streamid=read:live/abc:a:b", User: "u"}, wantErr: true},
		{name: "srt without stream", src: job.Source{URL: "srt://edge:8890"}, wantErr: true},
		{name: "rtsp with credential", src: job.Source{URL: "rtsp://edge:8554/live/abc", User: "w1", Password: "p@ss:/"},
			want: "rtsp://w1:p%40ss%3A%2F@edge:8554/live/abc"},
		{name: "rtsp without credential", src: job.Source{URL: "rtsp://edge:8554/live/abc"}, want: "rtsp://edge:8554/live/abc"},
		{name: "rtsp url already has a credential", src: job.Source{URL: "rtsp://a:b@edge:8554/live/abc", User: "u"}, wantErr: true},
		{name: "rtsp without stream", src: job.Source{URL: "rtsp://edge:8554/"}, wantErr: true},
		{name: "file", src: job.Source{URL: "file:///tmp/x.mp4"}, want: "file:///tmp/x.mp4"},
		{name: "file with credential", src: job.Source{URL: "file:///tmp/x.mp4", User: "u"}, wantErr: true},
		{name: "http", src: job.Source{URL: "http://edge/x"}, wantErr: true},
		{name: "garbage", src: job.Source{URL: "::"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AuthURL(tt.src)
			if tt.wantErr {
				require.Error(t, err)
				require.NotContains(t, err.Error(), "abc", "error leaks the stream key")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestPlan(t *testing.T) {
	l := ladder.Builtins()
	src1080p60 := sourceVideo{Codec: "video/x-h264", Width: 1920, Height: 1080, FPSNum: 60, FPSDen: 1}
	src720p30 := sourceVideo{Codec: "video/x-h264", Width: 1280, Height: 720, FPSNum: 30, FPSDen: 1}

	t.Run("1080p ladder on a 1080p60 source halves the frame rate", func(t *testing.T) {
		rungs, notes := plan(l[ladder.Builtin1080p].WithDefaults(), src1080p60)
		require.Empty(t, notes)
		require.Len(t, rungs, 4)
		require.Equal(t, [2]int{1920, 1080}, [2]int{rungs[0].Width, rungs[0].Height})
		for _, r := range rungs {
			require.Equal(t, [2]int{30, 1}, [2]int{r.FPSNum, r.FPSDen})
			require.Equal(t, 60, r.gopFrames())
		}
	})
	t.Run("1080p ladder on a 720p source skips 1080p", func(t *testing.T) {
		rungs, notes := plan(l[ladder.Builtin1080p].WithDefaults(), src720p30)
		require.Len(t, rungs, 3)
		require.Equal(t, "720p", rungs[0].Name)
		require.Len(t, notes, 1)
		require.Contains(t, notes[0], "1080p (1920x1080) skipped")
	})
	t.Run("passthrough keeps size and rate, rounded to even", func(t *testing.T) {
		rungs, _ := plan(l[ladder.BuiltinPassthrough].WithDefaults(), sourceVideo{Width: 1281, Height: 721, FPSNum: 30000, FPSDen: 1001})
		require.Len(t, rungs, 1)
		require.Equal(t, [4]int{1280, 720, 30000, 1001}, [4]int{rungs[0].Width, rungs[0].Height, rungs[0].FPSNum, rungs[0].FPSDen})
		require.Equal(t, 60, rungs[0].gopFrames()) // ceil(29.97*2)
	})
	t.Run("never faster than the source", func(t *testing.T) {
		lad := ladder.Ladder{Renditions: []ladder.Rendition{{Name: "a", Width: 640, Height: 360, VideoBitrateKbps: 800, FrameRate: 60}}}.WithDefaults()
		rungs, notes := plan(lad, sourceVideo{Width: 1280, Height: 720, FPSNum: 25, FPSDen: 1})
		require.Equal(t, [2]int{25, 1}, [2]int{rungs[0].FPSNum, rungs[0].FPSDen})
		require.Len(t, notes, 1)
	})
	t.Run("unknown source rate", func(t *testing.T) {
		rungs, notes := plan(l[ladder.BuiltinPassthrough].WithDefaults(), sourceVideo{Width: 640, Height: 360})
		require.Equal(t, [2]int{30, 1}, [2]int{rungs[0].FPSNum, rungs[0].FPSDen})
		require.Contains(t, notes[0], "frame rate unknown")
	})
	t.Run("every rung too large keeps the smallest at source size", func(t *testing.T) {
		rungs, notes := plan(l[ladder.Builtin720p].WithDefaults(), sourceVideo{Width: 320, Height: 180, FPSNum: 30, FPSDen: 1})
		require.Len(t, rungs, 1)
		require.Equal(t, "360p", rungs[0].Name)
		require.Equal(t, [2]int{320, 180}, [2]int{rungs[0].Width, rungs[0].Height})
		require.Len(t, notes, 4)
	})
}

func TestFraction(t *testing.T) {
	for in, want := range map[float64][2]int{
		30: {30, 1}, 60: {60, 1}, 29.97: {30000, 1001}, 59.94: {60000, 1001}, 23.976: {24000, 1001}, 12.5: {12500, 1000},
	} {
		n, d := fraction(in)
		require.Equal(t, want, [2]int{n, d}, "fps %g", in)
	}
}

func TestEncoderProps(t *testing.T) {
	r := rung{Rendition: ladder.Rendition{Name: "720p", VideoBitrateKbps: 2800, MaxBitrateKbps: 4200, Preset: "veryfast", KeyframeInterval: 2},
		Width: 1280, Height: 720, FPSNum: 30, FPSDen: 1}
	asMap := func(ps []prop) map[string]string {
		m := map[string]string{}
		for _, p := range ps {
			m[p.Name] = p.Value
		}
		return m
	}
	x := asMap(encoderProps(hwprobe.CPU(), r, 2))
	require.Equal(t, map[string]string{
		"bitrate": "2800", "vbv-buf-capacity": "1500", "speed-preset": "veryfast", "key-int-max": "60",
		"bframes": "0", "b-adapt": "false", "threads": "2", "sliced-threads": "false", "option-string": "scenecut=0:open-gop=0",
	}, x)

	gpu := hwprobe.Backend{Encoder: hwprobe.ElemNVH264}
	n := asMap(encoderProps(gpu, r, 2))
	require.Equal(t, "2800", n["bitrate"])
	require.Equal(t, "4200", n["max-bitrate"])
	require.Equal(t, "vbr", n["rc-mode"])
	require.Equal(t, "hp", n["preset"])
	require.Equal(t, "60", n["gop-size"])
	require.Equal(t, "0", n["bframes"])

	gpu.Encoder = hwprobe.ElemNVCUDAH264
	c := asMap(encoderProps(gpu, r, 2))
	require.Equal(t, "0", c["b-frames"])
	require.Equal(t, "60", c["gop-size"])
	require.Equal(t, "4200", c["max-bitrate"])

	for x264, nv := range map[string]string{"ultrafast": "hp", "veryfast": "hp", "faster": "default", "medium": "default", "slow": "hq", "veryslow": "hq"} {
		require.Equal(t, nv, nvencPreset(x264))
	}
	require.Equal(t, 1, encoderThreads(2, 4))
	require.Equal(t, 2, encoderThreads(2, 1))
	require.Equal(t, 4, encoderThreads(32, 2))
}

func TestCrosses(t *testing.T) {
	s := time.Second
	require.True(t, crosses(1966*time.Millisecond, 2*s, 2*s))
	require.True(t, crosses(1998*time.Millisecond, 2002*time.Millisecond, 2*s))
	require.False(t, crosses(1999*time.Millisecond+500*time.Microsecond, 2033*time.Millisecond, 2*s)) // 1999.5 ms already counted as 2 s
	require.False(t, crosses(2*s, 2033*time.Millisecond, 2*s))
	require.False(t, crosses(s, 1033*time.Millisecond, 2*s))
	require.True(t, crosses(3966*time.Millisecond, 4*s, 4*s))
	require.False(t, crosses(s, 2*s, 0))
}

func TestAudioSpecificConfig(t *testing.T) {
	require.Equal(t, []byte{0x11, 0x90}, AudioSpecificConfig(48000, 2))
	require.Equal(t, []byte{0x12, 0x10}, AudioSpecificConfig(44100, 2))
	require.Equal(t, []byte{0x11, 0x88}, AudioSpecificConfig(48000, 1))
}

func TestUnpositionedMask(t *testing.T) {
	m, ok := unpositionedMask("audio/x-raw, format=(string)F32LE, layout=(string)non-interleaved, rate=(int)48000, channels=(int)6, channel-mask=(bitmask)0x0000000000000000")
	require.True(t, ok)
	require.Equal(t, uint64(0x3f), m)
	_, ok = unpositionedMask("audio/x-raw, rate=(int)48000, channels=(int)6, channel-mask=(bitmask)0x000000000000003f")
	require.False(t, ok)
	_, ok = unpositionedMask("audio/x-raw, rate=(int)48000, channels=(int)2")
	require.False(t, ok)
}

// TestRungSpecs checks the element chain of a rendition on each backend. The
// GPU chains cannot run here (no NVIDIA driver): this is their only test.
func TestRungSpecs(t *testing.T) {
	r := rung{Rendition: ladder.Rendition{Name: "720p", VideoBitrateKbps: 2800, MaxBitrateKbps: 4200, Preset: "veryfast", KeyframeInterval: 2},
		Width: 1280, Height: 720, FPSNum: 30, FPSDen: 1}
	layout := func(b hwprobe.Backend) ([]string, int) {
		specs, enc := rungSpecs(b, r, 1)
		var out []string
		for _, s := range specs {
			e := s.factory
			for _, p := range s.props {
				if p.Name == "caps" {
					e += "[" + p.Value + "]"
				}
			}
			out = append(out, e)
		}
		return out, enc
	}
	cpu, enc := layout(hwprobe.CPU())
	require.Equal(t, []string{
		"queue", "videorate", "capsfilter[video/x-raw,framerate=30/1]", "videoconvertscale",
		"capsfilter[video/x-raw,format=I420,width=1280,height=720,pixel-aspect-ratio=1/1,colorimetry=bt709]",
		"x264enc", "capsfilter[video/x-h264,profile=high,stream-format=byte-stream,alignment=au]", "h264parse",
		"appsink[video/x-h264,stream-format=byte-stream,alignment=au]",
	}, cpu)
	require.Equal(t, "x264enc", cpu[enc])

	gpu, enc := layout(hwprobe.Backend{Class: job.ClassGPU, Decoder: hwprobe.ElemNVH264Dec, Encoder: hwprobe.ElemNVCUDAH264,
		Scaler: hwprobe.ElemCUDAScale, Upload: hwprobe.ElemCUDAUpload, Convert: hwprobe.ElemCUDAConv})
	require.Equal(t, []string{
		"queue", "videorate", "capsfilter[video/x-raw(memory:CUDAMemory),framerate=30/1; video/x-raw,framerate=30/1]",
		"cudaupload", "cudascale", "capsfilter[video/x-raw(memory:CUDAMemory),width=1280,height=720,pixel-aspect-ratio=1/1]",
		"cudaconvert", "capsfilter[video/x-raw(memory:CUDAMemory),format=NV12]",
		"nvcudah264enc", "capsfilter[video/x-h264,profile=high,stream-format=byte-stream,alignment=au]", "h264parse",
		"appsink[video/x-h264,stream-format=byte-stream,alignment=au]",
	}, gpu)
	require.Equal(t, "nvcudah264enc", gpu[enc])

	cpuScale, _ := layout(hwprobe.Backend{Class: job.ClassGPU, Decoder: hwprobe.ElemAVDecH264, Encoder: hwprobe.ElemNVH264, Scaler: hwprobe.ElemCPUScale})
	require.Contains(t, cpuScale, "capsfilter[video/x-raw,format=NV12,width=1280,height=720,pixel-aspect-ratio=1/1,colorimetry=bt709]")
	require.Contains(t, cpuScale, "nvh264enc")
}
