package worker

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestReporterRetriesServerErrorsButNotRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status   int
		attempts int32
	}{
		{http.StatusServiceUnavailable, 5}, // transient: retried up to 5 times
		{http.StatusUnauthorized, 1},       // wrong secret: never succeeds, not retried
		{http.StatusNotFound, 1},           // unknown session: not retried
		{http.StatusNoContent, 1},          // accepted
	} {
		var calls, badAuth atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The handler runs off the test goroutine: count, assert below.
			calls.Add(1)
			if r.Header.Get("Authorization") != "Bearer s" {
				badAuth.Add(1)
			}
			w.WriteHeader(tc.status)
		}))
		r := &Reporter{APIURL: srv.URL, Secret: "s", Logger: slog.New(slog.DiscardHandler)}
		r.Report(context.Background(), job.SessionEvent{SessionID: uuid.New(), Type: job.EventStarted})
		srv.Close()
		require.Equal(t, tc.attempts, calls.Load(), "status %d", tc.status)
		require.Zero(t, badAuth.Load(), "every call carries the worker secret")
	}
}
