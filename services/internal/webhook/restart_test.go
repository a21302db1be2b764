package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/signature"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/pkg/testkit/harness"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/dbtest"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// No event is lost when the API process is killed (kill -9) while it is
// delivering: the real `dionysia api` binary sends a webhook.test event to a
// receiver that holds the request until the process is dead; another event
// is recorded while no API runs; a new API process delivers both.
func TestDeliveryOutlivesKill9(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the dionysia binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "dionysia")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/dionysia")
	build.Dir = filepath.Join(testkit.RepoRoot(t), "services")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building dionysia: %s", out)

	schema, pool := dbtest.Migrated(t)
	st := store.New(pool)
	_, key, err := st.CreateAPIKey(ctx, "kill9", store.ScopeAdmin)
	require.NoError(t, err)
	rdb := testkit.RedisPrefix(t)

	held := make(chan struct{})
	release := make(chan struct{})
	var holdOnce sync.Once
	rc := newReceiver(t, func(_ http.ResponseWriter, r *http.Request, n int) int {
		if n == 1 {
			holdOnce.Do(func() { close(held) })
			select { // the API dies meanwhile: this answer reaches nobody
			case <-release:
			case <-r.Context().Done():
			}
			return http.StatusOK
		}
		return http.StatusOK
	})

	addr := testkit.FreeAddr(t)
	apiURL := "http://" + addr
	env := []string{
		"DIONYSIA_DATABASE_URL=" + schema.URL,
		"DIONYSIA_REDIS_URL=" + testkit.RedisURL(),
		"DIONYSIA_REDIS_PREFIX=" + rdb.Prefix,
		"DIONYSIA_API_ADDR=" + addr,
		"DIONYSIA_ALLOW_PRIVATE_TARGETS=true",
		"DIONYSIA_WEBHOOK_TIMEOUT=5s", // a claim lasts the timeout + 5 s
		"DIONYSIA_WEBHOOK_POLL_INTERVAL=100ms",
		"DIONYSIA_LOG_LEVEL=debug",
	}
	start := func(name string) *harness.Proc {
		p, err := harness.StartProc(dir, name, env, bin, "api")
		require.NoError(t, err)
		t.Cleanup(func() { p.Stop(10 * time.Second) })
		require.NoError(t, harness.WaitHTTP(ctx, p, apiURL+"/readyz", time.Minute))
		return p
	}
	call := func(method, path string, body, v any) int {
		var buf bytes.Buffer
		if body != nil {
			require.NoError(t, json.NewEncoder(&buf).Encode(body))
		}
		req, err := http.NewRequestWithContext(ctx, method, apiURL+path, &buf)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		if v != nil {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
		}
		return resp.StatusCode
	}

	api := start("api-1")
	var w apiv1.WebhookWithSecret
	require.Equal(t, http.StatusCreated, call(http.MethodPost, "/api/v1/webhooks", apiv1.WebhookCreate{URL: rc.srv.URL + "/hook"}, &w))
	var sent apiv1.WebhookTestSent
	require.Equal(t, http.StatusAccepted, call(http.MethodPost, fmt.Sprintf("/api/v1/webhooks/%s/test", w.ID), nil, &sent))

	select {
	case <-held:
	case <-ctx.Done():
		t.Fatalf("the receiver got no request:\n%s", harness.Tail(api.LogPath, 30))
	}
	api.Kill() // kill -9 while the request is in flight
	killedAt := time.Now()
	close(release)

	// An event committed while no API process runs.
	sid := uuid.New()
	later, err := st.AppendEvent(ctx, store.NewEvent{Type: event.StreamLive, StreamID: &sid, Data: map[string]any{"id": sid}})
	require.NoError(t, err)

	start("api-2")
	var ds []apiv1.WebhookDelivery
	require.Eventually(t, func() bool {
		var page apiv1.List[apiv1.WebhookDelivery]
		if call(http.MethodGet, fmt.Sprintf("/api/v1/webhooks/%s/deliveries", w.ID), nil, &page) != http.StatusOK {
			return false
		}
		ds = page.Data
		return len(ds) == 2 && ds[0].Status == store.DeliveryDelivered && ds[1].Status == store.DeliveryDelivered
	}, wait, 100*time.Millisecond, "both events delivered after the restart")
	t.Logf("delivered %.1f s after the kill (a claim's lease is the 5 s timeout + 5 s)", time.Since(killedAt).Seconds())

	got := map[string]bool{}
	for _, r := range rc.requests()[1:] {
		require.NoError(t, signature.Verify(r.header.Get(signature.Header), r.body, signature.DefaultTolerance, w.Secret))
		got[r.header.Get(signature.EventIDHeader)] = true
	}
	require.True(t, got[sent.EventID.String()], "the webhook.test event in flight at the kill")
	require.True(t, got[later.ID.String()], "the event recorded while the API was down")
	require.Equal(t, sent.EventID.String(), rc.requests()[0].header.Get(signature.EventIDHeader))
}
