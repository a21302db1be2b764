// Package pipeline is the worker's GStreamer transcoder. One Pipeline pulls
// one live stream from the edge (RTMP or SRT; file:// for tests), decodes its
// video once, scales and encodes it into every rendition of the ladder with
// keyframes on the same timestamps in every rendition, encodes the audio once
// to stereo AAC, and hands the encoded access units to a media.Sink (the
// packager).
//
// Layout, with the CPU elements (GPU ones in brackets) and the attach points
// of branches (see below) marked ①②③④:
//
//	source ! demux ─┬─ queue ! h264parse ! avdec_h264 [nvh264dec] ② ! tee ─┬─ queue ! videorate ! caps(fps)
//	                │                                                     │   ! videoconvertscale ! caps(I420,WxH)
//	                │                                                     │   [cudaupload ! cudascale ! cudaconvert ! caps(NV12)]
//	                │                                                     │   ! x264enc [nvh264enc] ! caps(high) ! h264parse ③ ! appsink
//	                │                                                     ├─ ... one rendition per rung
//	                │                                                     └─ ① queue ! leg
//	                └─ queue ! avdec_aac ! audioconvert ! audioresample ! caps(2ch,48k) ! avenc_aac ④ ! appsink
//
// AAC that reaches the worker without its channel layout (a program config
// element the edge dropped) is repaired before it is decoded (aacsignal.go,
// aacfix.go). Audio that cannot be decoded is given up: the run goes on with
// video only, and a failure of the audio branch never stops the video.
//
// Renditions are decided when the source's video caps are known: rungs larger
// than the source are skipped, never upscaled. Every pad the demuxer exposes
// is linked, to a branch or to a fakesink, so no stream fails "not-linked".
//
// # Parts
//
// A Pipeline wires and supervises small parts, each in the file named for it,
// each with its own state and its own lock (or none). No part holds its lock
// while it calls another part; the graph's lock is the only one taken inside
// another (a leaf).
//
//   - graph (graph.go): the GStreamer pipeline object; creates and adds every
//     element (make, chain), links unused pads to fakesinks (drop).
//   - source (source.go): the source element and demuxer; routes the
//     demuxer's pads; knows when every stream was seen; fails a source
//     without usable video. Also AuthURL and the redactor of credentials.
//   - videoDecode (video.go): parser, decoder and the tee; builds the
//     renditions when the decoded caps are known.
//   - renditionSet and renditionBranch (rendition.go): the ladder planned
//     against the source (plan.go), one branch per rung from its queue to its
//     appsink (encoder settings in encoder.go).
//   - keyframePolicy (keyframe.go): forces IDR frames on the same timestamps
//     in every rendition; each rendition keeps its own keyframeClock.
//   - audioBranch (audio.go): the audio decode and AAC encode, held back,
//     repaired or given up as the stream requires.
//   - trackGate (gate.go): calls sink.Tracks once, when the renditions are
//     built and the audio is settled; appsink callbacks wait for it.
//   - bus and failure (bus.go): classifies the bus's errors into the Err*
//     values; records the run's first error.
//   - runStats (stats.go): the last-output time and the final Stats; Metrics
//     exports the Stats of every running pipeline.
//   - healthMeter (health.go): pad probes that read timestamps, flags and
//     sizes (never the media) of the parsed source video, the demuxed audio
//     and the first rendition's output; Pipeline.Health is its snapshot
//     (docs/health.md), exported by Metrics as the dionysia_worker_stream_*
//     series.
//
// # Adding a branch
//
// New features join the pipeline as a branch (branch.go) at one of four
// attach points, without changes to the other parts:
//
//   - ① pointDecoded: a leg of the decoded video's tee, beside the
//     renditions: raw frames at the source's size and rate. The thumbnailer
//     (thumbnail.go: one frame per interval ! videoconvertscale ! jpegenc !
//     appsink) joins here.
//   - ② pointFilter: inline between the decoder and the tee: what it outputs
//     is what every rendition scales. An overlay (textoverlay,
//     gdkpixbufoverlay) joins here. A second input is a filter too: its
//     build adds the second source's elements to the graph and mixes them in
//     with a compositor or input-selector it owns.
//   - ③ pointEncoded: a leg of a tee after one rendition's encoder, beside
//     its appsink: H.264 access units, once per rendition. An RTMP push
//     (queue ! flvmux ! rtmp2sink, with ④ for its audio) or a recorder joins
//     here.
//   - ④ pointAudio: a leg of a tee after the AAC encoder, beside the audio
//     appsink: AAC frames, once per run when the source's audio decodes.
//     When the audio branch fails, its legs are ended with it.
//
// A branch is a type implementing the branch interface (name, point, build)
// in its own file. Its build creates its elements with the graph it is
// given (so they are added to the run, counted by LiveObjects and released
// with it), links them in order and returns them; the pipeline links the
// attach point to the first one (through a queue of its own for a leg) and,
// for a filter, the last one to the tee, and starts them. build runs on a
// streaming thread while the part it joins holds its lock: it must not block
// or call back into the pipeline. A leg must keep up or drop (a leaky queue):
// a blocked leg stalls its tee and the renditions with it. Its errors reach
// the bus like any element's and fail the run; a branch whose failure must
// not stop the stream cuts itself off the way audioBranch.addFirewall does.
//
// Pipeline.attach adds a branch before Run. A feature that brings a branch
// gives Config a field for it and has New attach the branch when the field
// is set: the thumbnailer (thumbnail.go, Config.ThumbnailInterval) is one,
// at ①, behind a leaky queue of its own (queuedLeg). When no branch is attached the pipeline is exactly
// the layout above: the tees at ③ and ④ exist only when a leg asks for
// them. branch_test.go attaches a frame counter at each point of a real run.
package pipeline
