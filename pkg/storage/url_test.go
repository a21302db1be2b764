package storage_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/storage"
)

// Opening an s3:// URL does no I/O: these run without a server.
func TestOpenS3URL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url, want string
	}{
		{"s3://recordings", "s3://recordings/"},
		{"s3://recordings/", "s3://recordings/"},
		{"s3://recordings/dionysia/prod/?region=eu-west-3", "s3://recordings/dionysia/prod/?region=eu-west-3"},
		{"s3://my.bucket-1/p?endpoint=http://127.0.0.1:8333&region=us-east-1", "s3://my.bucket-1/p/?endpoint=http://127.0.0.1:8333&region=us-east-1"},
		{"s3://b12/p?endpoint=127.0.0.1:8333", "s3://b12/p/?endpoint=https://127.0.0.1:8333"},
		{"s3://b12/p?endpoint=https://acct.r2.cloudflarestorage.com&region=auto", "s3://b12/p/?endpoint=https://acct.r2.cloudflarestorage.com&region=auto"},
		{"s3://b12?endpoint=http://minio.local:9000/&path_style=false", "s3://b12/?endpoint=http://minio.local:9000&path_style=false"},
		{"s3://b12?path_style=true", "s3://b12/?path_style=true"},
	} {
		s, err := storage.Open(t.Context(), c.url, storage.Options{AccessKeyID: "AKIDSECRETLOOKING", SecretAccessKey: "shh-very-secret"})
		require.NoError(t, err, c.url)
		require.Equal(t, c.want, s.String(), c.url)
		require.NotContains(t, s.String(), "shh-very-secret")
		require.NotContains(t, s.String(), "AKIDSECRETLOOKING")
	}
}

func TestOpenRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ url, says string }{
		{"s3://", "names no bucket"},
		{"s3:///prefix", "names no bucket"},
		{"s3://ab", "bucket \"ab\""},
		{"s3://Recordings", "bucket \"Recordings\""},
		{"s3://under_score", "bucket"},
		{"s3://-dash", "bucket"},
		{"s3://dash-", "bucket"},
		{"s3://a..b", "adjacent dots"},
		{"s3://192.168.1.1", "IP address"},
		{"s3://" + strings.Repeat("b", 64), "bucket"},
		{"s3://b12:9000", "bucket"},
		{"s3://user:pass@b12", "credentials do not belong"},
		{"s3://b12/a/../b", "prefix"},
		{"s3://b12/a//b", "prefix"},
		{"s3://b12/.hidden", "prefix"},
		{"s3://b12?endpoint=http://h&endpoint=http://g", "endpoint given 2 times"},
		{"s3://b12?bucket=x", "unknown query parameter(s) bucket"},
		{"s3://b12?access_key=AK&secret=SK", "unknown query parameter(s) access_key, secret"},
		{"s3://b12?region=US_EAST", "region"},
		{"s3://b12?path_style=yes", "path_style"},
		{"s3://b12?endpoint=ftp://h", "http or https"},
		{"s3://b12?endpoint=http://", "no host"},
		{"s3://b12?endpoint=http://h/path", "without path"},
		{"s3://b12?endpoint=http://u:p@h", "credentials"},
		{"s3://b12?endpoint=http://h:99999", "port"},
		{"s3://b12#frag", "fragment"},
		{"s3:b12", "s3://bucket/prefix"},
		{"gs://b12", "scheme"},
		{"file://host/dir", "host"},
	} {
		_, err := storage.Open(t.Context(), c.url, storage.Options{})
		require.ErrorIs(t, err, storage.ErrBadURL, c.url)
		require.Contains(t, err.Error(), c.says, c.url)
	}
	_, err := storage.Open(t.Context(), "s3://b12", storage.Options{SecretAccessKey: "s"})
	require.ErrorIs(t, err, storage.ErrBadURL, "a secret without its key")
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"s3://b12/p?endpoint=http://127.0.0.1:8333&region=us-east-1", "s3://b12/p?endpoint=http://127.0.0.1:8333&region=us-east-1"},
		{"s3://AKID:supersecret@b12/p", "s3://REDACTED@b12/p"},
		{"s3://b12/p?secret_key=supersecret&region=x", "s3://b12/p?region=x&secret_key=REDACTED"},
		{"s3://b12/p?X-Amz-Signature=supersecret", "s3://b12/p?X-Amz-Signature=REDACTED"},
		{"file:///var/lib/rec", "file:///var/lib/rec"},
		{"s3://AKID:super secret%zz@b12", "s3://(unparseable storage URL)"},
		{"::supersecret", "(unparseable storage URL)"},
	} {
		got := storage.Redact(c.in)
		require.Equal(t, c.want, got, c.in)
		require.NotContains(t, got, "supersecret")
	}
}

func TestFileURL(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "rec")
	s, err := storage.Open(t.Context(), "file://"+dir, storage.Options{})
	require.NoError(t, err)
	require.Equal(t, "file://"+dir, s.String())
	require.NoError(t, storage.EnsureBucket(t.Context(), s), "a file store has no bucket: EnsureBucket only pings it")
}

// FuzzCheckKey: a key CheckKey accepts never leaves the store's directory.
func FuzzCheckKey(f *testing.F) {
	for _, k := range append([]string{"assets/a/720p/1.m4s", "a", "a b/c", "é/ü"}, badKeys...) {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if storage.CheckKey(key) != nil {
			return
		}
		root := "/srv/store"
		p := filepath.Join(root, filepath.FromSlash(key))
		if !strings.HasPrefix(p, root+"/") {
			t.Fatalf("key %q leaves the root: %s", key, p)
		}
		if filepath.ToSlash(strings.TrimPrefix(p, root+"/")) != key {
			t.Fatalf("key %q is not in its clean form (%s)", key, p)
		}
	})
}

// FuzzOpenURL: Open never panics, and what it opens never shows the
// credentials it was given.
func FuzzOpenURL(f *testing.F) {
	for _, u := range []string{"s3://b12/p?endpoint=http://127.0.0.1:8333&region=us-east-1", "s3://a:b@c", "file:///x", "s3://b12?path_style=true"} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if strings.HasPrefix(raw, "file:") {
			return // creates directories
		}
		s, err := storage.Open(t.Context(), raw, storage.Options{AccessKeyID: "AKFUZZKEYID", SecretAccessKey: "fuzz-secret-value"})
		if err != nil {
			return
		}
		if d := s.String(); strings.Contains(d, "AKFUZZKEYID") || strings.Contains(d, "fuzz-secret-value") {
			t.Fatalf("%q describes itself as %q", raw, d)
		}
	})
}
