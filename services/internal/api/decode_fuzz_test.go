package api

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/stretchr/testify/require"
)

// requireDecodeOutcome checks the contract of decodeJSON: nil, or a 400/422
// problem that says something, or a MaxBytesError.
func requireDecodeOutcome(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var pe *problemError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &pe):
		require.Contains(t, []int{http.StatusBadRequest, http.StatusUnprocessableEntity}, pe.status)
		require.NotEmpty(t, pe.detail)
		if pe.status == http.StatusUnprocessableEntity {
			require.NotEmpty(t, pe.fields, "a 422 names its field")
		}
	case errors.As(err, &mbe):
	default:
		t.Fatalf("unexpected error type %T: %v", err, err)
	}
}

func FuzzStreamCreate(f *testing.F) {
	for _, s := range []string{
		`{"name":"news"}`, `{"name":""}`, `{"name":"a","hardware":"tpu"}`, `{"name":"a","outputs":["hls","dash","hls"]}`,
		`{"name":"a","segment_duration":1e400}`, `{"name":"a","profile":"720p","disabled":true}`, `{"name":"\u0000"}`,
		`{"name":"a"}{}`, `[]`, `null`, `{"name":1}`, `{"nam`, `{"name":"a","outputs":null}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req apiv1.StreamCreate
		err := decodeJSON(http.MaxBytesReader(nil, readCloser{bytes.NewReader(data)}, 1<<16), &req)
		requireDecodeOutcome(t, err)
		if err != nil {
			return
		}
		errs := validateStreamCreate(req)
		for _, e := range errs {
			require.NotEmpty(t, e.Field)
			require.NotEmpty(t, e.Detail)
		}
		if len(errs) == 0 {
			// What passes validation satisfies the database's constraints.
			require.NotEmpty(t, req.Name)
			if req.SegmentDuration != nil {
				require.True(t, *req.SegmentDuration >= 1 && *req.SegmentDuration <= 10)
			}
			if req.Hardware != nil {
				require.Contains(t, hardwareValues, *req.Hardware)
			}
			if req.Outputs != nil {
				require.NotEmpty(t, req.Outputs)
			}
		}
	})
}

func FuzzProfileCreate(f *testing.F) {
	for _, s := range []string{
		`{"name":"p","renditions":[{"name":"a","width":640,"height":360,"video_bitrate_kbps":800}]}`,
		`{"name":"p","renditions":[{"name":"a","width":641,"height":360,"video_bitrate_kbps":0}]}`,
		`{"name":"p","renditions":[{"name":"a","width":0,"height":0,"video_bitrate_kbps":800,"frame_rate":-1}],"audio":{"channels":6}}`,
		`{"name":"p","renditions":[{"name":"a","bogus":1}]}`, `{"name":"p","renditions":[]}`, `{"renditions":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req apiv1.ProfileCreate
		err := decodeJSON(bytes.NewReader(data), &req)
		requireDecodeOutcome(t, err)
		if err != nil {
			return
		}
		l, errs := validateProfileCreate(req)
		for _, e := range errs {
			require.NotEmpty(t, e.Field)
			require.NotEmpty(t, e.Detail)
		}
		if len(errs) == 0 {
			require.NoError(t, l.Validate(), "an accepted ladder is valid")
		}
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
