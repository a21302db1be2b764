package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/stretchr/testify/require"
)

func TestWebhooksCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)

	// create prints the secret alone on stdout, with the warning on stderr.
	out, errOut, err := b.run("", "webhooks", "create", "--url", "https://93.184.216.34/hook", "--event-types", "stream.*,session.ended",
		"--description", "ops")
	require.NoError(t, err, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	secret := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(secret, "whsec_"), out)
	require.Contains(t, errOut, "shown only this once")
	require.Contains(t, out, "stream.*,session.ended")

	var list []apiv1.Webhook
	require.NoError(t, json.Unmarshal([]byte(b.ok("webhooks", "list", "-o", "json")), &list))
	require.Len(t, list, 1)
	id := list[0].ID.String()
	table := b.ok("webhooks", "list")
	require.Regexp(t, `(?m)^ID\s+URL\s+EVENT TYPES\s+ENABLED\s+FAILURES\s+CREATED$`, table)
	require.NotContains(t, table, secret)
	require.NotContains(t, b.ok("webhooks", "get", id), secret)

	var w apiv1.Webhook
	require.NoError(t, json.Unmarshal([]byte(b.ok("webhooks", "update", id, "--enabled=false", "--event-types", "", "-o", "json")), &w))
	require.False(t, w.Enabled)
	require.Empty(t, w.EventTypes)
	_, _, err = b.run("", "webhooks", "test", id)
	require.ErrorContains(t, err, "disabled")
	b.ok("webhooks", "update", id, "--enabled")

	out, errOut, err = b.run("", "webhooks", "rotate-secret", id, "--grace", "1h")
	require.NoError(t, err, errOut)
	require.Contains(t, errOut, "the old secret still signs until")
	require.NotContains(t, out, secret)
	require.Contains(t, out, "whsec_")

	var sent apiv1.WebhookTestSent
	require.NoError(t, json.Unmarshal([]byte(b.ok("webhooks", "test", id, "-o", "json")), &sent))
	deliveries := b.ok("webhooks", "deliveries", id)
	require.Regexp(t, `(?m)^`+sent.EventID.String()+`\s+webhook.test\s+pending\s+0\s+-`, deliveries)

	require.Contains(t, b.ok("events", "redeliver", sent.EventID.String()), "queued again to 1 webhook endpoint(s)")
	_, _, err = b.run("", "events", "redeliver", "0193a0d2-0000-7000-8000-000000000000")
	require.ErrorContains(t, err, "no event with id")

	_, _, err = b.run("", "webhooks", "create", "--url", "http://127.0.0.1:9000/")
	require.ErrorContains(t, err, "DIONYSIA_ALLOW_PRIVATE_TARGETS")
	_, _, err = b.run("", "webhooks", "update", id)
	require.ErrorContains(t, err, "nothing to update")

	require.Contains(t, b.ok("webhooks", "delete", id), "deleted webhook "+id)
	_, _, err = b.run("", "webhooks", "get", id)
	require.ErrorContains(t, err, "no webhook with id")
}
