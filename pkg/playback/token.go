// Package playback defines how viewers address live streams and how signed
// playback is authorised.
//
// URLs have the form
//
//	/live/{stream_id}/{file}              public streams
//	/live/{stream_id}/t/{token}/{file}    signed streams (also accepted for public ones)
//
// where file is a relative path inside the stream's output directory, e.g.
// index.m3u8, 720p/index.m3u8, 720p/init.mp4, 720p/123.m4s or manifest.mpd.
// Because playlists and the MPD use relative URIs, a player that opened a URL
// carrying the token prefix resolves every variant playlist, init segment and
// media segment under the same prefix: the token reaches every request
// without rewriting playlists. "t" is therefore a reserved first path segment.
//
// Recorded assets are played the same way under /vod/{asset_id}[/t/{token}]/{file}
// (ParseVODPath); the token there is one minted for the asset's stream.
//
// A token is "{kid}.{claims}.{mac}", both parts base64url without padding:
// claims hold the stream id, the expiry and an optional viewer IP, and mac is
// HMAC-SHA256 over the kid and the claims with the key named kid. Several keys
// can be accepted at once (rotation: sign with the newest, accept all).
package playback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Playback policies of a stream.
const (
	PolicyPublic = "public"
	PolicySigned = "signed"
)

// MaxTokenLen bounds the length of a token accepted by Verify.
const MaxTokenLen = 256

// MinKeyLen is the shortest signing key accepted, in bytes.
const MinKeyLen = 16

// Verification failures. All of them mean 403 to a viewer.
var (
	ErrMissing      = errors.New("playback token missing")
	ErrMalformed    = errors.New("playback token malformed")
	ErrBadSignature = errors.New("playback token signature invalid")
	ErrExpired      = errors.New("playback token expired")
	ErrWrongStream  = errors.New("playback token is for another stream")
	ErrWrongIP      = errors.New("playback token is bound to another address")
)

// ErrInvalidKeys is returned for an unusable key configuration.
var ErrInvalidKeys = errors.New("invalid playback signing keys")

const claimsVersion = 1

var (
	kidRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	b64   = base64.RawURLEncoding.Strict()
)

// Signer mints and verifies tokens. Keys maps key ids to secrets; Current is
// the key id new tokens are signed with. Every key in Keys is accepted.
type Signer struct {
	Keys    map[string][]byte
	Current string
}

// Validate checks the key configuration.
func (s *Signer) Validate() error {
	if s == nil || len(s.Keys) == 0 {
		return fmt.Errorf("%w: no keys", ErrInvalidKeys)
	}
	for kid, k := range s.Keys {
		if !kidRE.MatchString(kid) {
			return fmt.Errorf("%w: key id %q must be 1-32 of [A-Za-z0-9_-]", ErrInvalidKeys, kid)
		}
		if len(k) < MinKeyLen {
			return fmt.Errorf("%w: key %q is %d bytes, want at least %d", ErrInvalidKeys, kid, len(k), MinKeyLen)
		}
	}
	if _, ok := s.Keys[s.Current]; !ok {
		return fmt.Errorf("%w: current key %q is not configured", ErrInvalidKeys, s.Current)
	}
	return nil
}

// ParseKeys parses "kid1:base64secret,kid2:base64secret" (standard or URL
// base64, padded or not). The first key is the current one.
func ParseKeys(spec string) (*Signer, error) {
	s := &Signer{Keys: map[string][]byte{}}
	for i, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		kid, secret, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf("%w: item %d is not kid:base64secret", ErrInvalidKeys, i+1)
		}
		key, err := decodeAnyBase64(secret)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrInvalidKeys, kid, err)
		}
		if _, dup := s.Keys[kid]; dup {
			return nil, fmt.Errorf("%w: key id %q given twice", ErrInvalidKeys, kid)
		}
		s.Keys[kid] = key
		if s.Current == "" {
			s.Current = kid
		}
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func decodeAnyBase64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// Claims are the signed contents of a token.
type Claims struct {
	StreamID uuid.UUID
	Expiry   time.Time  // second precision
	IP       netip.Addr // zero: not bound to an address
}

// Mint returns a token for streamID valid for ttl, bound to ip unless ip is
// empty.
func (s *Signer) Mint(streamID string, ttl time.Duration, ip string) (string, error) {
	return s.MintAt(streamID, time.Now().Add(ttl), ip)
}

// MintAt returns a token for streamID that expires at exp.
func (s *Signer) MintAt(streamID string, exp time.Time, ip string) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	id, err := uuid.Parse(streamID)
	if err != nil {
		return "", fmt.Errorf("minting token: stream id: %w", err)
	}
	c := Claims{StreamID: id, Expiry: exp}
	if ip != "" {
		if c.IP, err = netip.ParseAddr(ip); err != nil {
			return "", fmt.Errorf("minting token: viewer ip: %w", err)
		}
		c.IP = c.IP.Unmap()
	}
	payload := b64.EncodeToString(c.marshal())
	mac := sign(s.Keys[s.Current], s.Current, payload)
	return s.Current + "." + payload + "." + b64.EncodeToString(mac), nil
}

// Verify checks token for streamID, requested from ip (empty: skip any IP
// binding check only if the token has none) at time now. It returns nil or
// one of the sentinel errors (wrapped).
func (s *Signer) Verify(token, streamID, ip string, now time.Time) error {
	c, err := s.Parse(token)
	if err != nil {
		return err
	}
	if c.StreamID.String() != strings.ToLower(streamID) {
		return ErrWrongStream
	}
	if !now.Before(c.Expiry) {
		return fmt.Errorf("%w at %s", ErrExpired, c.Expiry.UTC().Format(time.RFC3339))
	}
	if c.IP.IsValid() {
		got, err := netip.ParseAddr(ip)
		if err != nil || got.Unmap() != c.IP {
			return ErrWrongIP
		}
	}
	return nil
}

// Unbound returns a token with the claims of token minus its viewer address,
// signed with the same key (so every verifier that accepted token accepts it).
// A proxy that verified a viewer's token, address included, passes this one
// on to an upstream that sees the proxy's address instead of the viewer's.
// A token without an address is returned as it is.
func (s *Signer) Unbound(token string) (string, error) {
	c, err := s.Parse(token)
	if err != nil {
		return "", err
	}
	if !c.IP.IsValid() {
		return token, nil
	}
	kid, _, _ := strings.Cut(token, ".")
	c.IP = netip.Addr{}
	payload := b64.EncodeToString(c.marshal())
	return kid + "." + payload + "." + b64.EncodeToString(sign(s.Keys[kid], kid, payload)), nil
}

// Parse checks the token's signature and returns its claims, without
// checking expiry, stream or address.
func (s *Signer) Parse(token string) (Claims, error) {
	if token == "" {
		return Claims{}, ErrMissing
	}
	if s == nil || len(token) > MaxTokenLen {
		return Claims{}, ErrMalformed
	}
	kid, rest, ok := strings.Cut(token, ".")
	if !ok {
		return Claims{}, ErrMalformed
	}
	payload, macB64, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(macB64, ".") {
		return Claims{}, ErrMalformed
	}
	mac, err := b64.DecodeString(macB64)
	if err != nil || len(mac) != sha256.Size {
		return Claims{}, ErrMalformed
	}
	key, ok := s.Keys[kid]
	if !ok {
		return Claims{}, fmt.Errorf("%w: unknown key id", ErrBadSignature)
	}
	if !hmac.Equal(mac, sign(key, kid, payload)) {
		return Claims{}, ErrBadSignature
	}
	raw, err := b64.DecodeString(payload)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	c, err := unmarshalClaims(raw)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	return c, nil
}

func sign(key []byte, kid, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("dionysia-playback-v1\x00"))
	m.Write([]byte(kid))
	m.Write([]byte{'.'})
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// marshal: version, 16-byte stream id, uvarint expiry (unix s), ip length
// (0, 4 or 16), ip bytes.
func (c Claims) marshal() []byte {
	b := make([]byte, 0, 1+16+binary.MaxVarintLen64+1+16)
	b = append(b, claimsVersion)
	b = append(b, c.StreamID[:]...)
	b = binary.AppendUvarint(b, uint64(max(c.Expiry.Unix(), 0)))
	if c.IP.IsValid() {
		ip := c.IP.AsSlice()
		b = append(b, byte(len(ip)))
		b = append(b, ip...)
	} else {
		b = append(b, 0)
	}
	return b
}

func unmarshalClaims(b []byte) (Claims, error) {
	var c Claims
	if len(b) < 1+16+1+1 || b[0] != claimsVersion {
		return c, ErrMalformed
	}
	copy(c.StreamID[:], b[1:17])
	exp, n := binary.Uvarint(b[17:])
	if n <= 0 || exp > 1<<40 {
		return c, ErrMalformed
	}
	c.Expiry = time.Unix(int64(exp), 0)
	rest := b[17+n:]
	if len(rest) < 1 {
		return c, ErrMalformed
	}
	l := int(rest[0])
	rest = rest[1:]
	if len(rest) != l || (l != 0 && l != 4 && l != 16) {
		return c, ErrMalformed
	}
	if l > 0 {
		ip, _ := netip.AddrFromSlice(rest)
		c.IP = ip.Unmap()
	}
	return c, nil
}
