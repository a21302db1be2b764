package worker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// Sources retries what may pass (network, 5xx) and nothing else, and tells a
// session that is over (404, 409) and a paused one (503 + Retry-After) apart.
func TestSourcesAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		statuses []int // answered in turn; the last one repeats
		retry    bool  // 503 with Retry-After
		want     error
		calls    int32
	}{
		{name: "ok", statuses: []int{http.StatusOK}, calls: 1},
		{name: "transient then ok", statuses: []int{http.StatusBadGateway, http.StatusInternalServerError, http.StatusOK}, calls: 3},
		{name: "unknown session", statuses: []int{http.StatusNotFound}, want: ErrSessionOver, calls: 1},
		{name: "session over", statuses: []int{http.StatusConflict}, want: ErrSessionOver, calls: 1},
		{name: "paused", statuses: []int{http.StatusServiceUnavailable}, retry: true, want: errSourcePaused, calls: 1},
		{name: "wrong secret", statuses: []int{http.StatusUnauthorized}, calls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			session := uuid.New()
			var calls atomic.Int32
			var badRequests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1))
				if r.Header.Get("Authorization") != "Bearer s" || r.URL.Path != job.SourcePath(session) || r.Method != http.MethodGet {
					badRequests.Add(1)
				}
				status := tc.statuses[min(n, len(tc.statuses))-1]
				if status == http.StatusOK {
					_ = json.NewEncoder(w).Encode(job.Source{URL: "rtmp://edge/live/sk_x", User: "worker", Password: "pw"})
					return
				}
				if tc.retry {
					w.Header().Set("Retry-After", "1")
				}
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(status)
				_, _ = w.Write([]byte(`{"status":0,"detail":"why"}`))
			}))
			defer srv.Close()
			src, err := (&Sources{APIURL: srv.URL, Secret: "s"}).Fetch(context.Background(), session)
			require.Zero(t, badRequests.Load(), "method, path and secret")
			require.Equal(t, tc.calls, calls.Load())
			switch {
			case tc.want != nil:
				require.ErrorIs(t, err, tc.want)
				require.ErrorContains(t, err, "why", "the API's detail is kept")
			case tc.statuses[len(tc.statuses)-1] == http.StatusOK:
				require.NoError(t, err)
				require.Equal(t, job.Source{URL: "rtmp://edge/live/sk_x", User: "worker", Password: "pw"}, src)
			default:
				require.Error(t, err)
				require.False(t, errors.Is(err, ErrSessionOver) || errors.Is(err, errSourcePaused))
			}
		})
	}
}
