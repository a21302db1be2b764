package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/services/internal/api"
)

// The OpenAPI document, loaded and validated once per test binary.
var (
	specOnce   sync.Once
	specDoc    *openapi3.T
	specRouter routers.Router
	specErr    error
)

func loadSpec() (*openapi3.T, routers.Router, error) {
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		specDoc, specErr = loader.LoadFromData(api.OpenAPI())
		if specErr != nil {
			specErr = fmt.Errorf("loading openapi.json: %w", specErr)
			return
		}
		if specErr = specDoc.Validate(context.Background()); specErr != nil {
			specErr = fmt.Errorf("openapi.json is not a valid OpenAPI document: %w", specErr)
			return
		}
		// Route on paths alone: the document's server is "/", the test
		// servers listen on 127.0.0.1:<random port>.
		routing := *specDoc
		routing.Servers = nil
		specRouter, specErr = legacy.NewRouter(&routing)
	})
	return specDoc, specRouter, specErr
}

// TestOpenAPIDocumentIsValid checks the document itself with kin-openapi.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	doc, _, err := loadSpec()
	require.NoError(t, err)
	require.Equal(t, "3.1.0", doc.OpenAPI)
}

// specClient returns an HTTP client whose every exchange is checked against
// openapi.json: the response must be one the document describes for the
// route (status, headers, body schema), and a request the document rejects
// must have been answered with a 4xx. A mismatch fails t.
func specClient(t testing.TB) *http.Client {
	t.Helper()
	_, router, err := loadSpec()
	require.NoError(t, err)
	return &http.Client{Transport: &specTransport{t: t, router: router, base: http.DefaultTransport}}
}

type specTransport struct {
	t      testing.TB
	router routers.Router
	base   http.RoundTripper
}

func (s *specTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := s.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	respBody, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if msg := s.check(req, reqBody, resp, respBody); msg != "" {
		// t.Errorf is safe on any goroutine; require is not.
		s.t.Errorf("OpenAPI mismatch: %s %s → %d: %s\nresponse body: %s", req.Method, req.URL.Path, resp.StatusCode, msg, truncate(respBody))
	}
	return resp, nil
}

func (s *specTransport) check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) string {
	// The router matches on a copy, so that the request keeps its body.
	probe := req.Clone(context.Background())
	probe.Body = io.NopCloser(bytes.NewReader(reqBody))
	if len(reqBody) > 0 {
		// The API reads a body as JSON whatever its Content-Type says, as
		// the document's description states.
		probe.Header.Set("Content-Type", "application/json")
	}
	route, params, err := s.router.FindRoute(probe)
	if err != nil {
		// A route the document does not have: the API must not serve it either.
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return ""
		}
		return "the route is not in openapi.json: " + err.Error()
	}
	in := &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && resp.StatusCode < 400 {
		return fmt.Sprintf("the API accepted a request openapi.json rejects: %v", err)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return err.Error()
	}
	return ""
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}
