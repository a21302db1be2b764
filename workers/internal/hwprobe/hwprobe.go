// Package hwprobe finds out, once at worker start, which H.264 pipeline this
// host can run: the NVIDIA path (NVDEC decode, CUDA scaling, NVENC encode) or
// the CPU path (avdec_h264, videoconvertscale, x264enc). An element being in
// the GStreamer registry is not enough: each candidate must also pass a short
// real test encode. The result sets the worker's hardware class (which asynq
// queue it serves) and its capacity (how many streams it runs at once).
package hwprobe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
)

// Element names of the two pipelines.
const (
	ElemX264       = "x264enc"
	ElemAVDecH264  = "avdec_h264"
	ElemCPUScale   = "videoconvertscale"
	ElemNVCUDAH264 = "nvcudah264enc" // GStreamer 1.22's new NVENC encoder (CUDA memory)
	ElemNVH264     = "nvh264enc"     // the older NVENC encoder
	ElemNVH264Dec  = "nvh264dec"
	ElemCUDAUpload = "cudaupload"
	ElemCUDAScale  = "cudascale"
	ElemCUDAConv   = "cudaconvert"
	pluginNVCodec  = "nvcodec"
)

// nvencCandidates are the NVENC H.264 encoders, preferred first.
var nvencCandidates = []string{ElemNVCUDAH264, ElemNVH264}

// Backend names the elements a transcode pipeline is built from.
type Backend struct {
	Class   string // job.ClassGPU or job.ClassCPU
	Decoder string // H.264 decoder: nvh264dec or avdec_h264
	Encoder string // H.264 encoder: nvcudah264enc, nvh264enc or x264enc
	// Scaler resizes decoded frames: cudascale (CUDA memory) or
	// videoconvertscale (system memory).
	Scaler string
	// Upload moves frames into CUDA memory before Scaler; empty on the CPU path.
	Upload string
	// Convert converts the pixel format on the GPU (to NV12 for NVENC); empty
	// on the CPU path, where videoconvertscale converts and scales at once.
	Convert string
}

// CPU returns the CPU backend, which every worker can run.
func CPU() Backend {
	return Backend{Class: job.ClassCPU, Decoder: ElemAVDecH264, Encoder: ElemX264, Scaler: ElemCPUScale}
}

// GPU reports whether b encodes on an NVIDIA GPU.
func (b Backend) GPU() bool { return b.Class == job.ClassGPU }

// Registry is what Probe needs from GStreamer. The default is the real
// registry and real test pipelines; tests replace it only to simulate an
// NVIDIA host, which cannot run here.
type Registry interface {
	// HasElement reports whether an element factory is registered.
	HasElement(name string) bool
	// HasPlugin reports whether a plugin is installed (it may register no
	// elements, as nvcodec does without a driver).
	HasPlugin(name string) bool
	// TestEncode encodes about one second of generated video through b's
	// upload, scaler, encoder and decoder, and returns why it failed.
	TestEncode(ctx context.Context, b Backend) error
}

// Options configure Probe. The zero value probes the real registry and uses
// the defaults documented on each field.
type Options struct {
	// MaxStreams caps the number of concurrent streams. 0 means the default:
	// on a CPU host one stream per two cores (at least 1); on a GPU host the
	// NVENC bound below.
	MaxStreams int
	// NVENCSessions is how many encode sessions the GPU allows at once.
	// Consumer GeForce cards are capped at 8 (since 2024); datacenter cards
	// with NVENC are not capped but are bounded by throughput. 0 means 8.
	NVENCSessions int
	// RungsPerStream is how many renditions one stream encodes, i.e. how many
	// NVENC sessions it holds. 0 means 4 (the largest built-in ladder).
	RungsPerStream int
	// CPUOnly skips the GPU candidates (a worker configured for the CPU queue).
	CPUOnly bool
	// TestTimeout bounds each test encode. 0 means 15 s.
	TestTimeout time.Duration
	// DriverVersionFile is read to explain a missing NVENC element. Empty means
	// /proc/driver/nvidia/version.
	DriverVersionFile string
	Logger            *slog.Logger
	Registry          Registry // nil means the real GStreamer registry
}

// Result is what Probe found.
type Result struct {
	Backend
	Encoders []string // H.264 encoders registered (NVENC and x264enc)
	Decoders []string // H.264 decoders registered
	// Reasons explains each choice, e.g. why the GPU path was not taken.
	Reasons  []string
	Capacity int // streams this worker runs at once
}

// ErrNoEncoder means not even x264enc works: the worker cannot transcode.
var ErrNoEncoder = errors.New("no working H.264 encoder")

// Probe inspects the registry, test-encodes through the best candidate and
// falls back to the CPU path. It fails only when x264enc does not work either.
func Probe(ctx context.Context, opts Options) (Result, error) {
	reg := opts.Registry
	if reg == nil {
		reg = gstRegistry{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	testTimeout := opts.TestTimeout
	if testTimeout <= 0 {
		testTimeout = 15 * time.Second
	}
	var res Result
	for _, e := range append(append([]string{}, nvencCandidates...), ElemX264) {
		if reg.HasElement(e) {
			res.Encoders = append(res.Encoders, e)
		}
	}
	for _, d := range []string{ElemNVH264Dec, ElemAVDecH264} {
		if reg.HasElement(d) {
			res.Decoders = append(res.Decoders, d)
		}
	}
	test := func(b Backend) error {
		tctx, cancel := context.WithTimeout(ctx, testTimeout)
		defer cancel()
		return reg.TestEncode(tctx, b)
	}

	if opts.CPUOnly {
		res.Reasons = append(res.Reasons, "GPU probing disabled by configuration")
	} else if gpu, ok := gpuBackend(reg, &res, opts.DriverVersionFile); ok {
		if err := test(gpu); err != nil {
			res.Reasons = append(res.Reasons, fmt.Sprintf("%s registered but its test encode failed: %v", gpu.Encoder, err))
		} else {
			res.Backend = gpu
			res.Reasons = append(res.Reasons, fmt.Sprintf("%s passed a test encode (decoder %s, scaler %s)", gpu.Encoder, gpu.Decoder, gpu.Scaler))
		}
	}
	if res.Class == "" {
		cpu := CPU()
		if !reg.HasElement(ElemX264) {
			return res, fmt.Errorf("%w: %s is not registered (install gstreamer1.0-plugins-ugly)", ErrNoEncoder, ElemX264)
		}
		if !reg.HasElement(ElemAVDecH264) {
			return res, fmt.Errorf("%w: %s is not registered (install gstreamer1.0-libav)", ErrNoEncoder, ElemAVDecH264)
		}
		if err := test(cpu); err != nil {
			return res, fmt.Errorf("%w: %s test encode: %v", ErrNoEncoder, ElemX264, err)
		}
		res.Backend = cpu
		res.Reasons = append(res.Reasons, ElemX264+" passed a test encode: using the CPU path")
	}
	res.Capacity = capacity(res.Backend, opts)
	log.Info("hardware probed", "class", res.Class, "encoder", res.Encoder, "decoder", res.Decoder,
		"scaler", res.Scaler, "capacity", res.Capacity, "reasons", res.Reasons)
	return res, nil
}

// gpuBackend picks the NVIDIA elements present, or explains why there is no
// GPU candidate.
func gpuBackend(reg Registry, res *Result, driverFile string) (Backend, bool) {
	b := Backend{Class: job.ClassGPU}
	for _, e := range nvencCandidates {
		if reg.HasElement(e) {
			b.Encoder = e
			break
		}
	}
	if b.Encoder == "" {
		res.Reasons = append(res.Reasons, fmt.Sprintf("no NVENC encoder registered (%s, %s): %s",
			ElemNVCUDAH264, ElemNVH264, whyNoNVCodec(reg, driverFile)))
		return b, false
	}
	// Frames stay in GPU memory only when upload, scale and convert all exist;
	// otherwise scale on the CPU and let the encoder upload system memory.
	if reg.HasElement(ElemCUDAUpload) && reg.HasElement(ElemCUDAScale) && reg.HasElement(ElemCUDAConv) {
		b.Upload, b.Scaler, b.Convert = ElemCUDAUpload, ElemCUDAScale, ElemCUDAConv
	} else {
		b.Scaler = ElemCPUScale
		res.Reasons = append(res.Reasons, fmt.Sprintf("%s/%s/%s missing: scaling on the CPU", ElemCUDAUpload, ElemCUDAScale, ElemCUDAConv))
	}
	if reg.HasElement(ElemNVH264Dec) {
		b.Decoder = ElemNVH264Dec
	} else {
		b.Decoder = ElemAVDecH264
		res.Reasons = append(res.Reasons, ElemNVH264Dec+" not registered: decoding on the CPU")
	}
	return b, true
}

func whyNoNVCodec(reg Registry, driverFile string) string {
	if !reg.HasPlugin(pluginNVCodec) {
		return "the nvcodec plugin is not installed (gstreamer1.0-plugins-bad)"
	}
	if driverFile == "" {
		driverFile = "/proc/driver/nvidia/version"
	}
	if _, err := os.Stat(driverFile); err != nil {
		return "the nvcodec plugin is installed but registers its elements only when an NVIDIA driver is loaded, and none is (" + driverFile + " is absent)"
	}
	return "an NVIDIA driver is loaded but nvcodec registered no encoder: this GPU has no NVENC (e.g. A100/H100) or the driver lacks libnvidia-encode"
}

// capacity is how many streams the worker accepts. On a GPU each rendition
// holds one NVENC session, so the session limit divided by the rungs per
// stream bounds it; MaxStreams lowers it further. On a CPU the default is one
// stream per two cores: a 1080p four-rung ladder at x264 veryfast needs
// about that.
func capacity(b Backend, opts Options) int {
	if b.GPU() {
		sessions := opts.NVENCSessions
		if sessions <= 0 {
			sessions = 8
		}
		rungs := opts.RungsPerStream
		if rungs <= 0 {
			rungs = 4
		}
		n := max(1, sessions/rungs)
		if opts.MaxStreams > 0 {
			n = min(n, opts.MaxStreams)
		}
		return n
	}
	if opts.MaxStreams > 0 {
		return opts.MaxStreams
	}
	return max(1, runtime.NumCPU()/2)
}
