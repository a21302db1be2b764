package pipeline

import (
	"math"
	"strconv"

	"github.com/dionysia/dionysia/workers/internal/hwprobe"
)

// prop is one element property, set by its string form the way gst-launch
// does (gst_util_set_object_arg), so enums take their nick.
type prop struct{ Name, Value string }

// encoderProps returns the properties of the H.264 encoder of rendition r.
//
// x264enc (CPU): x264's ABR with its VBV. The element ties vbv-maxrate to
// "bitrate" (its option-string cannot override it), so the rung's average
// bitrate is also its VBV rate and MaxBitrateKbps sets the VBV buffer:
// vbv-buf-capacity = 1000 ms × max/avg, i.e. a buffer of one second at the
// peak rate, which bounds how far a burst can go above the average. B-frames
// are off and tune=zerolatency is not used: zerolatency also removes the
// lookahead and mb-tree and forces sliced threads, costing quality per bit
// to save a few frames of latency that 2–6 s segments do not notice. Without
// B-frames PTS equals DTS, as on the NVENC path (b-frames 0), so the
// packager never sees composition offsets or negative DTS. scenecut=0 stops
// x264 from inserting keyframes of its own, and key-int-max is the
// rendition's keyframe interval in frames, so every rung's IDRs fall on the
// same timestamps; keyframes are also forced at those timestamps (see
// keyframer).
//
// nvh264enc / nvcudah264enc (GPU): VBR at the average bitrate with
// max-bitrate as peak, gop-size in frames, no B-frames, and the x264 speed
// preset mapped to NVENC's hp/default/hq presets. Not run on this project's
// machines (no NVENC): the mapping is unit-tested only.
func encoderProps(b hwprobe.Backend, r rung, threads int) []prop {
	gop := strconv.Itoa(r.gopFrames())
	switch b.Encoder {
	case hwprobe.ElemX264:
		capacity := 1000
		if r.VideoBitrateKbps > 0 && r.MaxBitrateKbps > r.VideoBitrateKbps {
			capacity = int(math.Round(1000 * float64(r.MaxBitrateKbps) / float64(r.VideoBitrateKbps)))
		}
		return []prop{
			{"bitrate", strconv.Itoa(r.VideoBitrateKbps)},
			{"vbv-buf-capacity", strconv.Itoa(min(capacity, 10000))},
			{"speed-preset", r.Preset},
			{"key-int-max", gop},
			{"bframes", "0"},
			{"b-adapt", "false"},
			{"threads", strconv.Itoa(threads)},
			{"sliced-threads", "false"},
			{"option-string", "scenecut=0:open-gop=0"},
		}
	case hwprobe.ElemNVH264:
		return []prop{
			{"bitrate", strconv.Itoa(r.VideoBitrateKbps)},
			{"max-bitrate", strconv.Itoa(r.MaxBitrateKbps)},
			{"rc-mode", "vbr"},
			{"preset", nvencPreset(r.Preset)},
			{"gop-size", gop},
			{"bframes", "0"},
			{"zerolatency", "true"},
			{"aud", "false"},
		}
	case hwprobe.ElemNVCUDAH264:
		return []prop{
			{"bitrate", strconv.Itoa(r.VideoBitrateKbps)},
			{"max-bitrate", strconv.Itoa(r.MaxBitrateKbps)},
			{"rc-mode", "vbr"},
			{"preset", nvencPreset(r.Preset)},
			{"gop-size", gop},
			{"b-frames", "0"},
			{"zero-reorder-delay", "true"},
			{"aud", "false"},
			{"repeat-sequence-header", "true"},
		}
	default:
		return nil
	}
}

// nvencPreset maps an x264 speed preset onto NVENC's legacy presets, which
// both of GStreamer 1.22's NVENC elements accept: the three fastest x264
// presets to hp (high performance), the middle ones to default, the slow ones
// to hq.
func nvencPreset(x264 string) string {
	switch x264 {
	case "ultrafast", "superfast", "veryfast":
		return "hp"
	case "slow", "slower", "veryslow":
		return "hq"
	default:
		return "default"
	}
}

// encoderThreads sizes x264's frame threads: the renditions already encode
// in parallel (one streaming thread each), so the cores are shared among
// them; at least 1, at most 4.
func encoderThreads(cores, renditions int) int {
	if renditions < 1 {
		renditions = 1
	}
	return min(4, max(1, cores/renditions))
}
