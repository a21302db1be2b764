// Package cors sets the CORS headers of the playback servers (the router and
// the worker's origin), so that browser players on any origin can fetch the
// streams and read their answers, errors included.
package cors

import (
	"net/http"
	"strconv"
	"time"

	"github.com/dionysia/dionysia/pkg/playback"
)

// ExposeHeaders are the response headers a player's script may read: the
// ones hls.js and dash.js use for byte ranges and caching, Retry-After of a
// 503 during failover, and the worker that served.
const ExposeHeaders = "Content-Length, Content-Range, ETag, Last-Modified, Age, Retry-After, " + playback.WorkerHeader

// Methods and RequestHeaders are what a preflight allows.
const (
	Methods        = "GET, HEAD, OPTIONS"
	RequestHeaders = "Range, If-None-Match, If-Modified-Since"
)

// MaxAge is how long a browser may cache a preflight's answer.
const MaxAge = 24 * time.Hour

// Set sets the headers every playback response carries.
func Set(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", ExposeHeaders)
}

// Preflight answers a preflight (OPTIONS) request: 204 with Set's headers
// and the allowed methods and request headers.
func Preflight(w http.ResponseWriter) {
	h := w.Header()
	Set(h)
	h.Set("Access-Control-Allow-Methods", Methods)
	h.Set("Access-Control-Allow-Headers", RequestHeaders)
	h.Set("Access-Control-Max-Age", strconv.Itoa(int(MaxAge.Seconds())))
	w.WriteHeader(http.StatusNoContent)
}
