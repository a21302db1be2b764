// Package secret generates, parses and hashes the secrets Dionysia hands out:
// stream keys (the publishing credential of a stream) and API keys (the bearer
// credential of the management API).
//
// Both are base62 text drawn uniformly from crypto/rand. A stream key is stored
// as is, because the edge looks streams up by it; an API key is stored only as
// its SHA-256 hash next to a short visible prefix used to find the row.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomLen is the length of the random part of every secret: 43 base62
// characters carry 256 bits.
const randomLen = 43

// Stream keys are StreamKeyPrefix followed by 43 base62 characters.
const StreamKeyPrefix = "sk_"

// API keys are "dio_" + an 8-character visible prefix + "_" + 43 base62 characters.
const (
	APIKeyPrefix     = "dio_"
	VisiblePrefixLen = 8
	apiKeyLen        = len(APIKeyPrefix) + VisiblePrefixLen + 1 + randomLen
)

// ErrMalformed is returned for text that is not an API key of this format.
var ErrMalformed = errors.New("malformed api key")

// random returns n characters drawn uniformly from alphabet.
func random(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		// crypto/rand.Read never returns an error (Go ≥ 1.24).
		_, _ = rand.Read(buf)
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62: reject to keep the distribution uniform
				continue
			}
			out = append(out, alphabet[b%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out)
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(alphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// NewStreamKey returns a fresh stream key.
func NewStreamKey() string { return StreamKeyPrefix + random(randomLen) }

// ValidStreamKey reports whether s has the form of a stream key. The edge uses
// it to reject garbage before looking a key up.
func ValidStreamKey(s string) bool {
	rest, ok := strings.CutPrefix(s, StreamKeyPrefix)
	return ok && len(rest) == randomLen && isBase62(rest)
}

// WebhookSecretPrefix starts every webhook signing secret.
const WebhookSecretPrefix = "whsec_"

// NewWebhookSecret returns a fresh webhook signing secret: WebhookSecretPrefix
// followed by 43 base62 characters. It is stored as is (it must be readable to
// sign, adr/0013) and shown to the operator only at creation and rotation.
func NewWebhookSecret() string { return WebhookSecretPrefix + random(randomLen) }

// APIKey is a freshly generated API key. Key is shown to its owner once and
// never stored; Prefix and Hash are stored.
type APIKey struct {
	Key    string
	Prefix string
	Hash   []byte
}

// NewAPIKey generates an API key.
func NewAPIKey() APIKey {
	prefix := random(VisiblePrefixLen)
	key := APIKeyPrefix + prefix + "_" + random(randomLen)
	return APIKey{Key: key, Prefix: prefix, Hash: HashAPIKey(key)}
}

// ParseAPIKey checks the form of key and returns its visible prefix.
func ParseAPIKey(key string) (prefix string, err error) {
	rest, ok := strings.CutPrefix(key, APIKeyPrefix)
	if !ok || len(key) != apiKeyLen || rest[VisiblePrefixLen] != '_' {
		return "", ErrMalformed
	}
	prefix, random := rest[:VisiblePrefixLen], rest[VisiblePrefixLen+1:]
	if !isBase62(prefix) || !isBase62(random) {
		return "", ErrMalformed
	}
	return prefix, nil
}

// HashAPIKey returns the SHA-256 of key, the form in which it is stored.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// MatchAPIKey reports, in constant time, whether key hashes to hash.
func MatchAPIKey(key string, hash []byte) bool {
	return subtle.ConstantTimeCompare(HashAPIKey(key), hash) == 1
}
