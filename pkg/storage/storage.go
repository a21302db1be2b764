// Package storage is the one object store recordings live in
// (docs/recording.md): a local directory (file:///path, the default) or any
// S3-compatible service (s3://bucket/prefix?endpoint=…&region=…). Workers
// write the segments of a recording as they complete, the API writes the VOD
// manifests and the MP4, and routers read them for VOD playback.
//
// Keys are slash-separated relative paths ("assets/{id}/720p/3-17.m4s"). Every
// backend rejects a key that is empty, absolute, has an empty segment or one
// starting with "." (".", "..", and hidden names, which the file store keeps
// for its temporary files), a backslash or a NUL, or is longer than MaxKeyLen
// (CheckKey), before any I/O, so a key can never leave the store's root or
// prefix, and a key valid on one backend is valid on every other.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// MaxKeyLen bounds a key's length in bytes.
const MaxKeyLen = 900

// Errors of every backend.
var (
	// ErrNotFound: no object has that key.
	ErrNotFound = errors.New("object not found")
	// ErrBadKey: the key is not a valid relative object key.
	ErrBadKey = errors.New("invalid object key")
	// ErrBadURL: DIONYSIA_STORAGE_URL cannot be used.
	ErrBadURL = errors.New("invalid storage URL")
)

// Info describes a stored object.
type Info struct {
	Key         string
	Size        int64
	ContentType string // may be empty (the file store guesses from the name)
	ModTime     time.Time
	ETag        string // may be empty
}

// Store is an object store. Implementations are safe for concurrent use.
type Store interface {
	// Put stores size bytes read from r under key, replacing any object
	// there. A reader never sees a partial object. size may be -1 when
	// unknown (the backend then buffers or streams as it can).
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Get opens the object. With length > 0 it reads at most length bytes
	// from offset; with length <= 0 it reads from offset to the end. An
	// offset at or past the end is an error wrapping ErrNotFound only when
	// the object does not exist; otherwise an empty reader.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, Info, error)
	// Stat returns the object's Info or an error wrapping ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// DeletePrefix removes every object whose key starts with prefix (which
	// must be a valid key ending in "/") and returns how many it removed.
	DeletePrefix(ctx context.Context, prefix string) (int, error)
	// List returns the objects under prefix ("" or a valid key ending in
	// "/"), in lexical key order, recursively.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Ping checks the store is reachable and usable (the bucket exists, the
	// directory is writable).
	Ping(ctx context.Context) error
	// String describes the store for logs and errors, never with a credential.
	String() string
}

// CheckKey reports whether key is a valid object key.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeyLen || strings.HasPrefix(key, "/") || strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || strings.HasPrefix(seg, ".") {
			return fmt.Errorf("%w: %q (no empty segment, and none starting with '.')", ErrBadKey, key)
		}
	}
	return nil
}

// checkPrefix validates a prefix for List and DeletePrefix: "" (everything,
// List only) or a valid key ending in "/".
func checkPrefix(prefix string, allowEmpty bool) error {
	if prefix == "" && allowEmpty {
		return nil
	}
	if !strings.HasSuffix(prefix, "/") || CheckKey(strings.TrimSuffix(prefix, "/")) != nil {
		return fmt.Errorf("%w: prefix %q", ErrBadKey, prefix)
	}
	return nil
}

// Options are what Open needs besides the URL.
type Options struct {
	// AccessKeyID and SecretAccessKey are the S3 credentials
	// (DIONYSIA_STORAGE_ACCESS_KEY_ID, DIONYSIA_STORAGE_SECRET_ACCESS_KEY);
	// empty means anonymous requests. They are never part of the URL.
	AccessKeyID     string
	SecretAccessKey string
}

// Open returns the store a URL names:
//
//	file:///var/lib/dionysia/recordings   a local directory (created if missing)
//	s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1[&path_style=true]
//
// A URL that carries a user or password is refused: credentials go in Options.
func Open(ctx context.Context, raw string, opts Options) (Store, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: credentials do not belong in the URL; set DIONYSIA_STORAGE_ACCESS_KEY_ID and DIONYSIA_STORAGE_SECRET_ACCESS_KEY", ErrBadURL)
	}
	switch u.Scheme {
	case "file":
		return openFile(u)
	case "s3":
		return openS3(ctx, u, opts)
	default:
		return nil, fmt.Errorf("%w: scheme %q: use file:///path or s3://bucket/prefix", ErrBadURL, u.Scheme)
	}
}

// EnsureBucket makes store usable for tests and `just dev`: it creates an
// S3 store's bucket when it is missing, then Pings the store. Production
// never calls it: there a missing bucket is an operator's error that Ping
// reports (ErrNoBucket), not something to paper over.
func EnsureBucket(ctx context.Context, store Store) error {
	if s, ok := store.(*s3Store); ok {
		if err := s.ensureBucket(ctx); err != nil {
			return err
		}
	}
	return store.Ping(ctx)
}

// Redact returns a storage URL fit for a log line: user info and any query
// parameter that looks like a credential (a key, secret, token, signature or
// password) are replaced by "REDACTED". Open refuses URLs with credentials;
// Redact is for reporting such a URL (or any other) without leaking them.
// An unparseable URL is reported by its scheme only.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		scheme, _, ok := strings.Cut(raw, "://")
		if !ok || strings.ContainsAny(scheme, "/@?#") {
			return "(unparseable storage URL)"
		}
		return scheme + "://(unparseable storage URL)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = "REDACTED"
		} else {
			redacted := false
			for k := range q {
				if secretParam(k) {
					q[k], redacted = []string{"REDACTED"}, true
				}
			}
			if redacted {
				u.RawQuery = q.Encode()
			}
		}
	}
	return u.String()
}

func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"key", "secret", "token", "signature", "password", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
