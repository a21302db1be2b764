package signature_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/dionysia/dionysia/pkg/signature"
)

// A receiver checks every request before it trusts the body, and dedupes by
// the event id (delivery is at least once).
func ExampleVerify() {
	const secret = "whsec_example"
	seen := map[string]bool{}
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "reading the body", http.StatusBadRequest)
			return
		}
		if err := signature.Verify(r.Header.Get(signature.Header), body, signature.DefaultTolerance, secret); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		id := r.Header.Get(signature.EventIDHeader)
		if !seen[id] {
			seen[id] = true
			fmt.Println("received", r.Header.Get(signature.EventTypeHeader), string(body))
		}
		w.WriteHeader(http.StatusNoContent)
	})

	// What the platform sends.
	body := `{"id":"0193","type":"webhook.test","data":{}}`
	for range 2 { // a retry of the same event
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
		req.Header.Set(signature.Header, signature.Sign(time.Now(), []byte(body), secret))
		req.Header.Set(signature.EventIDHeader, "0193")
		req.Header.Set(signature.EventTypeHeader, "webhook.test")
		rec := httptest.NewRecorder()
		receiver.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}

	// A tampered body is refused.
	req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(`{"id":"0193","type":"stream.deleted"}`))
	req.Header.Set(signature.Header, signature.Sign(time.Now(), []byte(body), secret))
	rec := httptest.NewRecorder()
	receiver.ServeHTTP(rec, req)
	fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	// Output:
	// received webhook.test {"id":"0193","type":"webhook.test","data":{}}
	// 204
	// 204
	// 401 signature does not match the body
}
