package worker

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
)

// apiCall sends one request to the control plane's internal worker endpoint
// path (job.SessionEventPath, job.SourcePath), authenticated with the worker
// secret, and returns the answer's status, header and body (the first 64 KiB).
// A network failure is err; any status is the caller's to judge.
func apiCall(ctx context.Context, client *http.Client, apiURL, secret, method, path string, body []byte) (int, http.Header, []byte, error) {
	return apiCallLimit(ctx, client, apiURL, secret, method, path, body, 64<<10)
}

// apiCallLimit is apiCall reading at most limit bytes of the answer.
func apiCallLimit(ctx context.Context, client *http.Client, apiURL, secret, method, path string, body []byte, limit int64) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(apiURL, "/")+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	return resp.StatusCode, resp.Header, b, nil
}
