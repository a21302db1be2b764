package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/signature"
	"github.com/stretchr/testify/require"
)

func TestSignMatchesPlainHMAC(t *testing.T) {
	t.Parallel()
	ts := time.Unix(1767225600, 0)
	body := []byte(`{"id":"x"}`)
	mac := hmac.New(sha256.New, []byte("whsec_a"))
	mac.Write([]byte("1767225600." + string(body)))
	require.Equal(t, "t=1767225600,v1="+hex.EncodeToString(mac.Sum(nil)), signature.Sign(ts, body, "whsec_a"))

	two := signature.Sign(ts, body, "whsec_new", "whsec_old")
	require.Equal(t, 2, strings.Count(two, "v1="))
	require.True(t, strings.HasPrefix(two, "t=1767225600,v1="+signature.Compute("whsec_new", ts, body)+","))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1767225600, 0)
	body := []byte(`{"type":"stream.live"}`)
	fresh := signature.Sign(now.Add(-time.Minute), body, "whsec_new", "whsec_old")
	tests := []struct {
		name    string
		header  string
		body    []byte
		secrets []string
		want    error
	}{
		{"valid", fresh, body, []string{"whsec_new"}, nil},
		{"valid with the old secret during a rotation", fresh, body, []string{"whsec_old"}, nil},
		{"valid with several candidate secrets", fresh, body, []string{"whsec_other", "whsec_old"}, nil},
		{"tampered body", fresh, []byte(`{"type":"stream.idle"}`), []string{"whsec_new"}, signature.ErrMismatch},
		{"wrong secret", fresh, body, []string{"whsec_other"}, signature.ErrMismatch},
		{"missing", "", body, []string{"whsec_new"}, signature.ErrMissing},
		{"no secret", fresh, body, nil, signature.ErrNoSecret},
		{"too old", signature.Sign(now.Add(-6*time.Minute), body, "whsec_new"), body, []string{"whsec_new"}, signature.ErrExpired},
		{"too far ahead", signature.Sign(now.Add(6*time.Minute), body, "whsec_new"), body, []string{"whsec_new"}, signature.ErrExpired},
		{"no timestamp", "v1=" + strings.Repeat("ab", 32), body, []string{"whsec_new"}, signature.ErrMalformed},
		{"no v1", "t=1767225600", body, []string{"whsec_new"}, signature.ErrMalformed},
		{"short v1", "t=1767225600,v1=abcd", body, []string{"whsec_new"}, signature.ErrMalformed},
		{"not hex", "t=1767225600,v1=" + strings.Repeat("zz", 32), body, []string{"whsec_new"}, signature.ErrMalformed},
		{"bad timestamp", "t=soon,v1=" + strings.Repeat("ab", 32), body, []string{"whsec_new"}, signature.ErrMalformed},
		{"two timestamps", "t=1,t=2,v1=" + strings.Repeat("ab", 32), body, []string{"whsec_new"}, signature.ErrMalformed},
		{"not key=value", "t=1767225600,garbage", body, []string{"whsec_new"}, signature.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := signature.Verifier{Now: func() time.Time { return now }}.Verify(tt.header, tt.body, tt.secrets...)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestVerifyIgnoresUnknownSchemes(t *testing.T) {
	t.Parallel()
	now := time.Now()
	body := []byte("{}")
	h := signature.Sign(now, body, "s") + ",v2=whatever"
	require.NoError(t, signature.Verify(h, body, 0, "s"))
	// A negative tolerance disables the timestamp check.
	old := signature.Sign(now.Add(-24*time.Hour), body, "s")
	require.ErrorIs(t, signature.Verify(old, body, 0, "s"), signature.ErrExpired)
	require.NoError(t, signature.Verify(old, body, -1, "s"))
}

func FuzzParse(f *testing.F) {
	f.Add(signature.Sign(time.Unix(1767225600, 0), []byte("{}"), "a", "b"))
	f.Add("t=1,v1=")
	f.Add("t=-1,v1=00")
	f.Add(",,,=")
	f.Add("t=99999999999999999999,v1=" + strings.Repeat("0", 64))
	f.Fuzz(func(t *testing.T, header string) {
		s, err := signature.Parse(header)
		if err != nil {
			require.Empty(t, s.Signatures)
			return
		}
		require.NotEmpty(t, s.Signatures)
		for _, sig := range s.Signatures {
			require.Len(t, sig, sha256.Size)
		}
		// A parsed header verifies or fails with a sentinel, never panics.
		err = signature.Verify(header, []byte("body"), -1, "secret")
		if err != nil {
			require.ErrorIs(t, err, signature.ErrMismatch)
		}
	})
}
