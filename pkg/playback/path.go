package playback

import (
	"errors"
	"regexp"
	"strings"

	"github.com/google/uuid"
)

// Prefix is the path prefix of every playback URL.
const Prefix = "/live/"

// TokenSegment is the reserved path segment introducing a token.
const TokenSegment = "t"

// WorkerHeader names the worker that served a playback request (or that the
// router redirected it to).
const WorkerHeader = "X-Dionysia-Worker"

// ErrBadPath is returned by ParsePath for any path that is not a well-formed
// playback path. Servers answer 404 (or 400) without touching the disk.
var ErrBadPath = errors.New("bad playback path")

// Limits of a file path inside a stream directory.
const (
	MaxPathLen   = 512
	MaxPathDepth = 6
)

var (
	segRE   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
)

// Path is a parsed playback path.
type Path struct {
	StreamID string // canonical lowercase UUID
	Token    string // empty when the URL carries no token
	File     string // relative file path, e.g. "720p/init.mp4"
}

// ParsePath parses an escaped URL path (http.Request.URL.EscapedPath) of the
// form /live/{stream_id}[/t/{token}]/{file}. It accepts only what the
// packager writes: every file path segment starts with a letter, digit or
// underscore and holds only [A-Za-z0-9._-], so "..", hidden files, percent
// encodings (%2e, %2f, %00, ...), backslashes, NUL bytes, empty segments and
// absolute paths are all rejected before any file system access.
func ParsePath(escaped string) (Path, error) {
	id, tok, file, err := parse(Prefix, escaped)
	if err != nil {
		return Path{}, err
	}
	return Path{StreamID: id, Token: tok, File: file}, nil
}

// parse splits prefix{uuid}[/t/{token}]/{file}, with ParsePath's rules.
func parse(prefix, escaped string) (id, token, file string, err error) {
	rest, ok := strings.CutPrefix(escaped, prefix)
	if !ok || len(escaped) > MaxPathLen+MaxTokenLen+64 {
		return "", "", "", ErrBadPath
	}
	idStr, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return "", "", "", ErrBadPath
	}
	u, err := uuid.Parse(idStr)
	if err != nil || u.String() != idStr {
		return "", "", "", ErrBadPath
	}
	if tail, ok := strings.CutPrefix(rest, TokenSegment+"/"); ok {
		tok, f, ok := strings.Cut(tail, "/")
		if !ok || len(tok) > MaxTokenLen || !tokenRE.MatchString(tok) {
			return "", "", "", ErrBadPath
		}
		token, rest = tok, f
	}
	if err := checkFile(rest); err != nil {
		return "", "", "", err
	}
	return u.String(), token, rest, nil
}

func checkFile(file string) error {
	if file == "" || len(file) > MaxPathLen {
		return ErrBadPath
	}
	segs := strings.Split(file, "/")
	if len(segs) > MaxPathDepth {
		return ErrBadPath
	}
	for _, s := range segs {
		if !segRE.MatchString(s) {
			return ErrBadPath
		}
	}
	return nil
}

// URLPath builds the playback path of file in streamID, with the token prefix
// when token is not empty.
func URLPath(streamID, token, file string) string {
	if token == "" {
		return Prefix + streamID + "/" + file
	}
	return Prefix + streamID + "/" + TokenSegment + "/" + token + "/" + file
}

// VODPrefix is the path prefix of every VOD (recorded asset) URL.
const VODPrefix = "/vod/"

// VODPath is a parsed VOD path.
type VODPath struct {
	AssetID string // canonical lowercase UUID
	Token   string // empty when the URL carries no token
	File    string // relative object path inside the asset, e.g. "720p/index.m3u8"
}

// ParseVODPath parses an escaped URL path of the form
// /vod/{asset_id}[/t/{token}]/{file} with exactly ParsePath's rules: the
// file is a relative path of at most MaxPathDepth segments, each starting
// with a letter, digit or underscore and holding only [A-Za-z0-9._-], so
// nothing that is not an object of the asset (.., hidden names, percent
// encodings, empty segments) gets past it. A token, as for live playback, is
// a token minted for the asset's stream.
func ParseVODPath(escaped string) (VODPath, error) {
	id, tok, file, err := parse(VODPrefix, escaped)
	if err != nil {
		return VODPath{}, err
	}
	return VODPath{AssetID: id, Token: tok, File: file}, nil
}

// VODURLPath builds the VOD path of file in assetID, with the token prefix
// when token is not empty.
func VODURLPath(assetID, token, file string) string {
	if token == "" {
		return VODPrefix + assetID + "/" + file
	}
	return VODPrefix + assetID + "/" + TokenSegment + "/" + token + "/" + file
}
