// Package signature signs and verifies Dionysia's webhook requests.
//
// Every webhook request carries a Dionysia-Signature header:
//
//	Dionysia-Signature: t=1767225600,v1=5257a869e7ec...
//
// where t is the Unix time (seconds) the request was signed at and v1 is the
// hex HMAC-SHA256 of t + "." + body under the endpoint's secret. While a
// secret rotation's grace period runs the header has two v1 values, one per
// secret (the new one first), and a receiver configured with either secret
// accepts the request. Receivers should refuse a timestamp older than a few
// minutes (DefaultTolerance) so that a captured request cannot be replayed
// later, and dedupe by the Dionysia-Event-Id header (delivery is at least
// once). docs/webhooks.md shows the same check with crypto/hmac and openssl.
//
// It has no dependencies beyond the standard library, so a receiver written
// in Go can import it.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of a webhook request.
const (
	Header          = "Dionysia-Signature"
	EventIDHeader   = "Dionysia-Event-Id"
	EventTypeHeader = "Dionysia-Event-Type"
)

// DefaultTolerance is the replay window receivers should allow: a request
// signed longer ago than this is refused.
const DefaultTolerance = 5 * time.Minute

// maxSignatures bounds the v1 values a header may carry (the platform sends
// at most two); more is malformed.
const maxSignatures = 8

// Sentinel errors of Verify and Parse. Each error they return matches one of
// these with errors.Is.
var (
	// ErrMissing: the request has no signature header.
	ErrMissing = errors.New("no " + Header + " header")
	// ErrMalformed: the header is not t=<unix seconds>,v1=<hex>[,v1=<hex>].
	ErrMalformed = errors.New("malformed " + Header + " header")
	// ErrExpired: the timestamp is further from now than the tolerance.
	ErrExpired = errors.New("signature timestamp outside the tolerance")
	// ErrMismatch: no v1 value is the HMAC of the body under any of the secrets.
	ErrMismatch = errors.New("signature does not match the body")
	// ErrNoSecret: Verify was given no secret to check with.
	ErrNoSecret = errors.New("no secret to verify with")
)

// Compute returns the hex HMAC-SHA256 of t + "." + body under secret: one v1
// value.
func Compute(secret string, t time.Time, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(t.Unix(), 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Sign returns the Dionysia-Signature header value for body signed at t,
// with one v1 value per secret, in the order given (during a rotation's
// grace: the new secret, then the old one).
func Sign(t time.Time, body []byte, secrets ...string) string {
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(strconv.FormatInt(t.Unix(), 10))
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(Compute(s, t, body))
	}
	return b.String()
}

// Signed is a parsed Dionysia-Signature header.
type Signed struct {
	Timestamp  time.Time
	Signatures [][]byte // the decoded v1 values (32 bytes each)
}

// Parse parses a Dionysia-Signature header value. Unknown keys (a future v2)
// are ignored; a header without t or without any v1 is malformed.
func Parse(header string) (Signed, error) {
	var s Signed
	if strings.TrimSpace(header) == "" {
		return s, ErrMissing
	}
	haveT := false
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Signed{}, fmt.Errorf("%w: %q is not key=value", ErrMalformed, part)
		}
		switch k {
		case "t":
			if haveT {
				return Signed{}, fmt.Errorf("%w: t appears twice", ErrMalformed)
			}
			sec, err := strconv.ParseInt(v, 10, 64)
			if err != nil || sec < 0 || len(v) > 12 {
				return Signed{}, fmt.Errorf("%w: t=%q is not a Unix time in seconds", ErrMalformed, v)
			}
			s.Timestamp, haveT = time.Unix(sec, 0), true
		case "v1":
			mac, err := hex.DecodeString(v)
			if err != nil || len(mac) != sha256.Size {
				return Signed{}, fmt.Errorf("%w: v1 is not %d hex characters", ErrMalformed, 2*sha256.Size)
			}
			if len(s.Signatures) == maxSignatures {
				return Signed{}, fmt.Errorf("%w: more than %d v1 values", ErrMalformed, maxSignatures)
			}
			s.Signatures = append(s.Signatures, mac)
		}
	}
	if !haveT {
		return Signed{}, fmt.Errorf("%w: no t= timestamp", ErrMalformed)
	}
	if len(s.Signatures) == 0 {
		return Signed{}, fmt.Errorf("%w: no v1= signature", ErrMalformed)
	}
	return s, nil
}

// Verifier checks signatures. The zero value uses DefaultTolerance and the
// system clock.
type Verifier struct {
	// Tolerance is the largest accepted distance between the timestamp and
	// now (either way: clocks drift); 0 means DefaultTolerance, a negative
	// value disables the check.
	Tolerance time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Verify checks header against body and returns nil when one of its v1
// values is the HMAC of the body under one of secrets and its timestamp is
// within the tolerance. The comparison is constant-time.
func (v Verifier) Verify(header string, body []byte, secrets ...string) error {
	if len(secrets) == 0 {
		return ErrNoSecret
	}
	s, err := Parse(header)
	if err != nil {
		return err
	}
	tol := v.Tolerance
	if tol == 0 {
		tol = DefaultTolerance
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if d := now().Sub(s.Timestamp).Abs(); tol > 0 && d > tol {
		return fmt.Errorf("%w: signed at %s, %s from now, tolerance %s", ErrExpired,
			s.Timestamp.UTC().Format(time.RFC3339), d.Truncate(time.Second), tol)
	}
	match := 0
	for _, secret := range secrets {
		want, _ := hex.DecodeString(Compute(secret, s.Timestamp, body))
		for _, got := range s.Signatures {
			if hmac.Equal(got, want) {
				match = 1
			}
		}
	}
	if match == 0 {
		return ErrMismatch
	}
	return nil
}

// Verify is Verifier{Tolerance: tolerance}.Verify(header, body, secrets...).
func Verify(header string, body []byte, tolerance time.Duration, secrets ...string) error {
	return Verifier{Tolerance: tolerance}.Verify(header, body, secrets...)
}
