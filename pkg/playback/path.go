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
	rest, ok := strings.CutPrefix(escaped, Prefix)
	if !ok || len(escaped) > MaxPathLen+MaxTokenLen+64 {
		return Path{}, ErrBadPath
	}
	idStr, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return Path{}, ErrBadPath
	}
	id, err := uuid.Parse(idStr)
	if err != nil || id.String() != idStr {
		return Path{}, ErrBadPath
	}
	p := Path{StreamID: id.String()}
	if tail, ok := strings.CutPrefix(rest, TokenSegment+"/"); ok {
		tok, file, ok := strings.Cut(tail, "/")
		if !ok || len(tok) > MaxTokenLen || !tokenRE.MatchString(tok) {
			return Path{}, ErrBadPath
		}
		p.Token, rest = tok, file
	}
	if err := checkFile(rest); err != nil {
		return Path{}, err
	}
	p.File = rest
	return p, nil
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
