package ingest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/ingest"
	"github.com/dionysia/dionysia/services/internal/store"
)

// TestReadProtocol: a worker reads over RTMP what legacy FLV carries and
// over RTSP everything else (ADR 0015), falling back to the listeners the
// edge has.
func TestReadProtocol(t *testing.T) {
	all := edgeapi.EdgeInfo{RTMPPort: 1935, SRTPort: 8890, RTSPPort: 8554}
	noRTSP := edgeapi.EdgeInfo{RTMPPort: 1935, SRTPort: 8890}
	srtOnly := edgeapi.EdgeInfo{SRTPort: 8890}
	src := func(video, audio string) store.Source {
		s := store.Source{}
		if video != "" {
			s.VideoCodec = &video
		}
		if audio != "" {
			s.AudioCodec = &audio
		}
		return s
	}
	tests := []struct {
		name string
		edge edgeapi.EdgeInfo
		src  store.Source
		want string
	}{
		{"H.264 and AAC: RTMP", all, src("H264", "MPEG-4 Audio"), edgeapi.ProtocolRTMP},
		{"H.264 and MP3: RTMP", all, src("H264", "MPEG-1/2 Audio"), edgeapi.ProtocolRTMP},
		{"H.264 alone: RTMP", all, src("H264", ""), edgeapi.ProtocolRTMP},
		{"H.264 and Opus (WHIP): RTSP", all, src("H264", "Opus"), edgeapi.ProtocolRTSP},
		{"H.265 and AAC: RTSP", all, src("H265", "MPEG-4 Audio"), edgeapi.ProtocolRTSP},
		{"H.264 and AC-3: RTSP", all, src("H264", "AC-3"), edgeapi.ProtocolRTSP},
		{"codecs unknown: RTSP", all, src("", ""), edgeapi.ProtocolRTSP},
		{"no RTSP listener: RTMP", noRTSP, src("H265", "Opus"), edgeapi.ProtocolRTMP},
		{"SRT only", srtOnly, src("H264", "MPEG-4 Audio"), edgeapi.ProtocolSRT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, ingest.ReadProtocol(tt.edge, tt.src))
		})
	}
}
