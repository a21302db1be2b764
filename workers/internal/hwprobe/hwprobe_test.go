package hwprobe

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/job"
)

// TestProbeThisMachine runs the real probe: no NVIDIA driver here, so it must
// pick x264enc after a real test encode and say why NVENC was not used.
func TestProbeThisMachine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Probe(ctx, Options{MaxStreams: 3})
	require.NoError(t, err)
	require.Equal(t, job.ClassCPU, res.Class)
	require.Equal(t, ElemX264, res.Encoder)
	require.Equal(t, ElemAVDecH264, res.Decoder)
	require.Equal(t, ElemCPUScale, res.Scaler)
	require.Equal(t, 3, res.Capacity)
	require.Contains(t, res.Encoders, ElemX264)
	require.NotContains(t, res.Encoders, ElemNVH264)
	why := strings.Join(res.Reasons, "\n")
	t.Logf("reasons:\n%s", why)
	require.Contains(t, why, ElemNVH264)
	require.Contains(t, why, "NVIDIA driver")
	require.Contains(t, why, "x264enc passed a test encode")
}

// TestTestEncodeRejectsBrokenBackend proves the test encode is real: a
// backend naming an element that does not exist fails.
func TestTestEncodeRejectsBrokenBackend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := CPU()
	require.NoError(t, gstRegistry{}.TestEncode(ctx, b))
	b.Encoder = ElemNVH264
	require.Error(t, gstRegistry{}.TestEncode(ctx, b))
}

// fakeRegistry simulates an NVIDIA host: the only seam where the real part
// cannot run on this project's machines.
type fakeRegistry struct {
	HasElementFunc func(string) bool
	HasPluginFunc  func(string) bool
	TestEncodeFunc func(context.Context, Backend) error
}

func (f fakeRegistry) HasElement(n string) bool { return f.HasElementFunc(n) }
func (f fakeRegistry) HasPlugin(n string) bool  { return f.HasPluginFunc(n) }
func (f fakeRegistry) TestEncode(ctx context.Context, b Backend) error {
	return f.TestEncodeFunc(ctx, b)
}

func registryWith(elems ...string) fakeRegistry {
	set := map[string]bool{}
	for _, e := range elems {
		set[e] = true
	}
	return fakeRegistry{
		HasElementFunc: func(n string) bool { return set[n] },
		HasPluginFunc:  func(n string) bool { return n == pluginNVCodec },
		TestEncodeFunc: func(context.Context, Backend) error { return nil },
	}
}

func TestProbeSelection(t *testing.T) {
	cpuElems := []string{ElemX264, ElemAVDecH264, ElemCPUScale}
	allGPU := append([]string{ElemNVCUDAH264, ElemNVH264, ElemNVH264Dec, ElemCUDAUpload, ElemCUDAScale, ElemCUDAConv}, cpuElems...)
	noDriver := filepath.Join(t.TempDir(), "absent")

	tests := []struct {
		name     string
		reg      fakeRegistry
		opts     Options
		want     Backend
		capacity int
		reason   string
		wantErr  error
	}{
		{
			name: "full NVIDIA stack", reg: registryWith(allGPU...),
			want:     Backend{Class: job.ClassGPU, Decoder: ElemNVH264Dec, Encoder: ElemNVCUDAH264, Scaler: ElemCUDAScale, Upload: ElemCUDAUpload, Convert: ElemCUDAConv},
			capacity: 2, reason: "nvcudah264enc passed a test encode",
		},
		{
			name: "session bound with 3 rungs and a lower MaxStreams", reg: registryWith(allGPU...),
			opts:     Options{NVENCSessions: 8, RungsPerStream: 3, MaxStreams: 1},
			want:     Backend{Class: job.ClassGPU, Decoder: ElemNVH264Dec, Encoder: ElemNVCUDAH264, Scaler: ElemCUDAScale, Upload: ElemCUDAUpload, Convert: ElemCUDAConv},
			capacity: 1,
		},
		{
			name: "old nvh264enc only, no CUDA filters, no nvdec", reg: registryWith(append([]string{ElemNVH264}, cpuElems...)...),
			opts:     Options{NVENCSessions: 32, RungsPerStream: 4},
			want:     Backend{Class: job.ClassGPU, Decoder: ElemAVDecH264, Encoder: ElemNVH264, Scaler: ElemCPUScale},
			capacity: 8, reason: "scaling on the CPU",
		},
		{
			name: "GPU test encode fails: falls back to x264",
			reg: func() fakeRegistry {
				r := registryWith(allGPU...)
				r.TestEncodeFunc = func(_ context.Context, b Backend) error {
					if b.GPU() {
						return errors.New("OpenEncodeSessionEx failed: out of memory (10)")
					}
					return nil
				}
				return r
			}(),
			opts: Options{MaxStreams: 2}, want: CPU(), capacity: 2,
			reason: "nvcudah264enc registered but its test encode failed: OpenEncodeSessionEx failed",
		},
		{
			name: "no driver", reg: registryWith(cpuElems...), opts: Options{DriverVersionFile: noDriver, MaxStreams: 1},
			want: CPU(), capacity: 1, reason: "registers its elements only when an NVIDIA driver is loaded",
		},
		{
			name: "CPU only by configuration", reg: registryWith(allGPU...), opts: Options{CPUOnly: true, MaxStreams: 1},
			want: CPU(), capacity: 1, reason: "GPU probing disabled",
		},
		{
			name: "no x264enc", reg: registryWith(ElemAVDecH264), wantErr: ErrNoEncoder,
		},
		{
			name: "x264 test encode fails",
			reg: func() fakeRegistry {
				r := registryWith(cpuElems...)
				r.TestEncodeFunc = func(context.Context, Backend) error { return errors.New("not-negotiated") }
				return r
			}(),
			wantErr: ErrNoEncoder,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Registry = tt.reg
			if opts.DriverVersionFile == "" {
				opts.DriverVersionFile = noDriver
			}
			res, err := Probe(context.Background(), opts)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, res.Backend)
			require.Equal(t, tt.capacity, res.Capacity)
			if tt.reason != "" {
				require.Contains(t, strings.Join(res.Reasons, "\n"), tt.reason)
			}
		})
	}
}

func TestTestLaunch(t *testing.T) {
	gpu := Backend{Class: job.ClassGPU, Decoder: ElemNVH264Dec, Encoder: ElemNVCUDAH264, Scaler: ElemCUDAScale, Upload: ElemCUDAUpload, Convert: ElemCUDAConv}
	require.Equal(t,
		"videotestsrc num-buffers=30 pattern=smpte ! video/x-raw,width=640,height=360,framerate=30/1 ! "+
			"videoconvert ! video/x-raw,format=NV12 ! cudaupload ! cudascale ! video/x-raw(memory:CUDAMemory),width=320,height=240 ! "+
			"cudaconvert ! video/x-raw(memory:CUDAMemory),format=NV12 ! nvcudah264enc ! h264parse ! nvh264dec ! fakesink sync=false",
		TestLaunch(gpu))
	require.Contains(t, TestLaunch(CPU()), "video/x-raw,format=I420,width=320,height=240 ! x264enc")
}
