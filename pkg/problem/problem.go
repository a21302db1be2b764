// Package problem writes RFC 9457 problem details (application/problem+json),
// the one error format of every Dionysia HTTP server: the API, the router and
// the worker's origin.
package problem

import (
	"encoding/json"
	"net/http"
)

// ContentType is the media type of a Problem.
const ContentType = "application/problem+json"

// Problem is a problem details document. Type is always "about:blank": the
// status and Detail say what was wrong.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}

// FieldError names one invalid field of a request, as a JSON path such as
// "renditions[1].width".
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// New returns the problem for status with its standard title.
func New(status int, detail string) Problem {
	return Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

// Write sends p with its status, as application/problem+json that caches
// must not store. Headers set before (Allow, Retry-After, CORS) are kept.
// The body is left out for HEAD requests by net/http.
func Write(w http.ResponseWriter, p Problem) {
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Error is Write(w, New(status, detail)).
func Error(w http.ResponseWriter, status int, detail string) {
	Write(w, New(status, detail))
}
