package edge_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/services/internal/edge"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
)

// TestClassifyClose: how mediamtx's close reasons end a session. A clean
// WHIP DELETE ("terminated" on a WebRTC session) is the publisher leaving,
// like an RTMP close or an RTSP TEARDOWN.
func TestClassifyClose(t *testing.T) {
	tests := []struct{ reason, protocol, want string }{
		{"terminated", edgeapi.ProtocolWebRTC, edgeapi.EndPublisherDisconnected},
		{"terminated", edgeapi.ProtocolRTMP, edgeapi.EndError},
		{"EOF", edgeapi.ProtocolRTMP, edgeapi.EndPublisherDisconnected},
		{"torn down by 127.0.0.1:41234", edgeapi.ProtocolRTSP, edgeapi.EndPublisherDisconnected},
		{"read tcp 127.0.0.1:1935->127.0.0.1:5000: i/o timeout", edgeapi.ProtocolRTMP, edgeapi.EndPublisherTimeout},
		{"deadline exceeded while reading", edgeapi.ProtocolWebRTC, edgeapi.EndPublisherTimeout},
		{"peer connection closed", edgeapi.ProtocolWebRTC, edgeapi.EndPublisherDisconnected},
	}
	for _, tt := range tests {
		t.Run(tt.protocol+" "+tt.reason, func(t *testing.T) {
			require.Equal(t, tt.want, edge.ClassifyClose(tt.reason, tt.protocol))
		})
	}
}
