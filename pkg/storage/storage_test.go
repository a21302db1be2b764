package storage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/pkg/testkit"
)

// The conformance suite: every case runs against the file store and against
// the S3 store on a real SeaweedFS (one server for the whole suite, one
// prefix per case, so that each case starts from an empty store).
func TestConformance(t *testing.T) {
	t.Parallel()
	t.Run("file", func(t *testing.T) {
		t.Parallel()
		runConformance(t, func(t *testing.T) storage.Store {
			s, err := storage.Open(t.Context(), "file://"+filepath.Join(t.TempDir(), "store"), storage.Options{})
			require.NoError(t, err)
			return s
		})
	})
	t.Run("s3", func(t *testing.T) {
		t.Parallel()
		weed := testkit.SeaweedFS(t) // skipped outside CI without bin/weed
		runConformance(t, func(t *testing.T) storage.Store {
			return openS3(t, weed, "conformance/"+strings.ReplaceAll(t.Name(), "/", "_"))
		})
	})
}

func runConformance(t *testing.T, open func(t *testing.T) storage.Store) {
	for _, c := range conformance {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, open(t))
		})
	}
}

func openS3(t *testing.T, weed *testkit.S3Server, prefix string) storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), weed.PrefixURL(prefix), storage.Options{AccessKeyID: weed.AccessKey, SecretAccessKey: weed.SecretKey})
	require.NoError(t, err)
	require.NoError(t, s.Ping(t.Context()))
	return s
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func put(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	require.NoError(t, s.Put(ctx(t), key, bytes.NewReader(data), int64(len(data)), "application/octet-stream"), "put %s", key)
}

func get(t *testing.T, s storage.Store, key string, offset, length int64) ([]byte, storage.Info) {
	t.Helper()
	r, info, err := s.Get(ctx(t), key, offset, length)
	require.NoError(t, err, "get %s", key)
	defer r.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b, info
}

func keys(infos []storage.Info) []string {
	out := []string{}
	for _, i := range infos {
		out = append(out, i.Key)
	}
	return out
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

var conformance = []struct {
	name string
	run  func(t *testing.T, s storage.Store)
}{
	{"PutGetStat", func(t *testing.T, s storage.Store) {
		before := time.Now().Add(-time.Minute)
		data := []byte("a CMAF segment, or near enough")
		require.NoError(t, s.Put(ctx(t), "assets/a1/720p/t-1.m4s", bytes.NewReader(data), int64(len(data)), "video/iso.segment"))
		got, info := get(t, s, "assets/a1/720p/t-1.m4s", 0, 0)
		require.Equal(t, data, got)
		require.Equal(t, "assets/a1/720p/t-1.m4s", info.Key)
		require.EqualValues(t, len(data), info.Size)

		st, err := s.Stat(ctx(t), "assets/a1/720p/t-1.m4s")
		require.NoError(t, err)
		require.EqualValues(t, len(data), st.Size)
		require.Equal(t, "assets/a1/720p/t-1.m4s", st.Key)
		require.True(t, st.ModTime.After(before), "mod time %s is recent", st.ModTime)

		// A content type both backends agree on (the file store guesses it
		// from the name).
		put(t, s, "assets/a1/poster.jpg", []byte("\xff\xd8\xff"))
		require.NoError(t, s.Put(ctx(t), "assets/a1/poster.jpg", bytes.NewReader([]byte("\xff\xd8\xff")), 3, "image/jpeg"))
		st, err = s.Stat(ctx(t), "assets/a1/poster.jpg")
		require.NoError(t, err)
		require.Equal(t, "image/jpeg", st.ContentType)

		// Names with spaces and non-ASCII letters are keys too.
		put(t, s, "odd names/été 1+1=2.txt", []byte("x"))
		got, _ = get(t, s, "odd names/été 1+1=2.txt", 0, 0)
		require.Equal(t, []byte("x"), got)
	}},
	{"Overwrite", func(t *testing.T, s storage.Store) {
		put(t, s, "k/v", []byte("first, and longer"))
		put(t, s, "k/v", []byte("second"))
		got, info := get(t, s, "k/v", 0, 0)
		require.Equal(t, "second", string(got))
		require.EqualValues(t, 6, info.Size)
	}},
	{"Missing", func(t *testing.T, s storage.Store) {
		_, err := s.Stat(ctx(t), "no/such.m4s")
		require.ErrorIs(t, err, storage.ErrNotFound)
		_, _, err = s.Get(ctx(t), "no/such.m4s", 0, 0)
		require.ErrorIs(t, err, storage.ErrNotFound)
		_, _, err = s.Get(ctx(t), "no/such.m4s", 10, 5)
		require.ErrorIs(t, err, storage.ErrNotFound)
		require.NoError(t, s.Delete(ctx(t), "no/such.m4s"), "deleting a missing key is not an error")
		n, err := s.DeletePrefix(ctx(t), "no/")
		require.NoError(t, err)
		require.Zero(t, n)
		l, err := s.List(ctx(t), "no/")
		require.NoError(t, err)
		require.Empty(t, l)
	}},
	{"Range", func(t *testing.T, s storage.Store) {
		data := []byte("0123456789abcdefghij") // 20 bytes
		put(t, s, "r/obj", data)
		for _, c := range []struct {
			offset, length int64
			want           string
		}{
			{0, 0, string(data)},
			{0, -1, string(data)},
			{-5, 0, string(data)}, // a negative offset is 0
			{10, 0, "abcdefghij"},
			{3, 4, "3456"},
			{0, 1, "0"},
			{19, 1, "j"},
			{17, 10, "hij"}, // cut at the end
			{20, 0, ""},     // at the end
			{20, 5, ""},
			{25, 5, ""}, // past the end
			{25, 0, ""},
		} {
			got, info := get(t, s, "r/obj", c.offset, c.length)
			require.Equal(t, c.want, string(got), "offset %d length %d", c.offset, c.length)
			require.EqualValues(t, len(data), info.Size, "Info.Size is the whole object's, offset %d length %d", c.offset, c.length)
		}
	}},
	{"List", func(t *testing.T, s storage.Store) {
		all := []string{"a/2.m4s", "a/10.m4s", "a/1.m4s", "a/sub/x", "ab/y", "b", "a-z/w"}
		for _, k := range all {
			put(t, s, k, []byte(k))
		}
		l, err := s.List(ctx(t), "")
		require.NoError(t, err)
		require.Equal(t, []string{"a-z/w", "a/1.m4s", "a/10.m4s", "a/2.m4s", "a/sub/x", "ab/y", "b"}, keys(l), "everything, recursively, in lexical order")
		for _, i := range l {
			require.EqualValues(t, len(i.Key), i.Size, "%s's size", i.Key)
		}
		l, err = s.List(ctx(t), "a/")
		require.NoError(t, err)
		require.Equal(t, []string{"a/1.m4s", "a/10.m4s", "a/2.m4s", "a/sub/x"}, keys(l), "a prefix ends at its slash: not ab/ nor a-z/")
		l, err = s.List(ctx(t), "a/sub/")
		require.NoError(t, err)
		require.Equal(t, []string{"a/sub/x"}, keys(l))
		for _, bad := range []string{"a", "/a/", "a//", "../", "a/../", ".hidden/"} {
			_, err := s.List(ctx(t), bad)
			require.ErrorIs(t, err, storage.ErrBadKey, "prefix %q", bad)
		}
	}},
	{"Delete", func(t *testing.T, s storage.Store) {
		put(t, s, "d/1", []byte("1"))
		put(t, s, "d/2", []byte("2"))
		require.NoError(t, s.Delete(ctx(t), "d/1"))
		_, err := s.Stat(ctx(t), "d/1")
		require.ErrorIs(t, err, storage.ErrNotFound)
		l, err := s.List(ctx(t), "")
		require.NoError(t, err)
		require.Equal(t, []string{"d/2"}, keys(l))
		require.NoError(t, s.Delete(ctx(t), "d/1"), "twice")
	}},
	{"DeletePrefix", func(t *testing.T, s storage.Store) {
		for _, k := range []string{"assets/x/720p/1.m4s", "assets/x/720p/2.m4s", "assets/x/index.m3u8", "assets/xy/keep", "assets/keep"} {
			put(t, s, k, []byte(k))
		}
		n, err := s.DeletePrefix(ctx(t), "assets/x/")
		require.NoError(t, err)
		require.Equal(t, 3, n)
		l, err := s.List(ctx(t), "")
		require.NoError(t, err)
		require.Equal(t, []string{"assets/keep", "assets/xy/keep"}, keys(l))
		for _, bad := range []string{"", "assets/x", "/assets/", "assets/../", "assets//"} {
			_, err := s.DeletePrefix(ctx(t), bad)
			require.ErrorIs(t, err, storage.ErrBadKey, "prefix %q", bad)
		}
		l, err = s.List(ctx(t), "")
		require.NoError(t, err)
		require.Len(t, l, 2, "a refused prefix deletes nothing")
	}},
	{"BadKeys", func(t *testing.T, s storage.Store) { checkBadKeys(t, s) }},
	{"ZeroBytes", func(t *testing.T, s storage.Store) {
		require.NoError(t, s.Put(ctx(t), "z/empty", bytes.NewReader(nil), 0, "application/octet-stream"))
		got, info := get(t, s, "z/empty", 0, 0)
		require.Empty(t, got)
		require.Zero(t, info.Size)
		got, _ = get(t, s, "z/empty", 0, 10)
		require.Empty(t, got)
		st, err := s.Stat(ctx(t), "z/empty")
		require.NoError(t, err)
		require.Zero(t, st.Size)
		l, err := s.List(ctx(t), "z/")
		require.NoError(t, err)
		require.Equal(t, []string{"z/empty"}, keys(l))
	}},
	{"Large", func(t *testing.T, s storage.Store) {
		data := random(t, 8<<20+123)
		put(t, s, "big/8MiB", data)
		got, info := get(t, s, "big/8MiB", 0, 0)
		require.EqualValues(t, len(data), info.Size)
		require.Equal(t, sha256.Sum256(data), sha256.Sum256(got), "8 MiB read back whole")
		got, _ = get(t, s, "big/8MiB", 4<<20-7, 1<<20)
		require.Equal(t, data[4<<20-7:5<<20-7], got, "a range in the middle")
	}},
	{"UnknownSize", func(t *testing.T, s storage.Store) {
		data := random(t, 300<<10)
		require.NoError(t, s.Put(ctx(t), "u/x", io.MultiReader(bytes.NewReader(data[:1000]), bytes.NewReader(data[1000:])), -1, "application/octet-stream"))
		got, _ := get(t, s, "u/x", 0, 0)
		require.Equal(t, data, got)
	}},
	{"ShortReader", func(t *testing.T, s storage.Store) {
		// The reader ends before the announced size: the Put fails and
		// stores nothing.
		err := s.Put(ctx(t), "short/x", bytes.NewReader([]byte("12345")), 10, "application/octet-stream")
		require.Error(t, err)
		_, err = s.Stat(ctx(t), "short/x")
		require.ErrorIs(t, err, storage.ErrNotFound)
	}},
	{"ConcurrentPuts", func(t *testing.T, s storage.Store) {
		const writers = 12
		var wg sync.WaitGroup
		contents := make([][]byte, writers)
		errs := make([]error, 2*writers)
		for i := range writers {
			contents[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10+i)
			wg.Go(func() {
				// Distinct keys, and all writers on one shared key.
				errs[i] = s.Put(ctx(t), fmt.Sprintf("c/own-%02d", i), bytes.NewReader(contents[i]), int64(len(contents[i])), "")
				errs[writers+i] = s.Put(ctx(t), "c/shared", bytes.NewReader(contents[i]), int64(len(contents[i])), "")
			})
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		for i := range writers {
			got, _ := get(t, s, fmt.Sprintf("c/own-%02d", i), 0, 0)
			require.Equal(t, contents[i], got)
		}
		got, _ := get(t, s, "c/shared", 0, 0)
		require.Contains(t, contents, got, "the shared key holds one writer's whole object")
		l, err := s.List(ctx(t), "c/")
		require.NoError(t, err)
		require.Len(t, l, writers+1)
	}},
	{"NoPartialObjectWhileWriting", func(t *testing.T, s storage.Store) {
		// A Put whose body arrives slowly: until it returns, readers see
		// no object (then the old one), never the bytes so far.
		pr, pw := io.Pipe()
		data := random(t, 1<<20)
		done := make(chan error, 1)
		go func() { done <- s.Put(ctx(t), "p/slow", pr, int64(len(data)), "") }()
		_, err := pw.Write(data[:len(data)/2])
		require.NoError(t, err)
		time.Sleep(300 * time.Millisecond) // let the half travel
		_, err = s.Stat(ctx(t), "p/slow")
		require.ErrorIs(t, err, storage.ErrNotFound, "half an object is not visible")
		l, err := s.List(ctx(t), "p/")
		require.NoError(t, err)
		require.Empty(t, l, "nor listed")
		_, err = pw.Write(data[len(data)/2:])
		require.NoError(t, err)
		require.NoError(t, pw.Close())
		require.NoError(t, <-done)
		got, _ := get(t, s, "p/slow", 0, 0)
		require.Equal(t, data, got)
	}},
	{"ReaderNeverSeesPartialObject", func(t *testing.T, s storage.Store) {
		// One writer replaces an object over and over with objects of
		// different sizes, each of one repeated byte; readers check that
		// every read is one whole object.
		ctx := ctx(t)
		const rounds = 25
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var readErr error
		var mu sync.Mutex
		reads := 0
		for range 2 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					r, info, err := s.Get(ctx, "w/obj", 0, 0)
					if errors.Is(err, storage.ErrNotFound) {
						continue
					}
					if err == nil {
						var b []byte
						b, err = io.ReadAll(r)
						_ = r.Close()
						if err == nil {
							err = wholeObject(b, info.Size)
						}
					}
					mu.Lock()
					reads++
					if err != nil && readErr == nil {
						readErr = err
					}
					mu.Unlock()
				}
			})
		}
		for i := range rounds {
			b := bytes.Repeat([]byte{byte(i)}, 100<<10+i*7919)
			require.NoError(t, s.Put(ctx, "w/obj", bytes.NewReader(b), int64(len(b)), ""))
		}
		close(stop)
		wg.Wait()
		require.NoError(t, readErr)
		require.Positive(t, reads)
		t.Logf("%d reads during %d replacements", reads, rounds)
	}},
	{"Cancelled", func(t *testing.T, s storage.Store) {
		c, cancel := context.WithCancel(t.Context())
		cancel()
		require.ErrorIs(t, s.Put(c, "x/y", bytes.NewReader([]byte("1")), 1, ""), context.Canceled)
		_, err := s.Stat(ctx(t), "x/y")
		require.ErrorIs(t, err, storage.ErrNotFound)
	}},
	{"Ping", func(t *testing.T, s storage.Store) {
		require.NoError(t, s.Ping(ctx(t)))
		require.NoError(t, storage.EnsureBucket(ctx(t), s))
		l, err := s.List(ctx(t), "")
		require.NoError(t, err)
		require.Empty(t, l, "Ping leaves nothing behind")
	}},
}

// wholeObject checks b is one object of the ReaderNeverSeesPartialObject
// writer: info.Size bytes, all the same.
func wholeObject(b []byte, size int64) error {
	if int64(len(b)) != size {
		return fmt.Errorf("read %d bytes of an object of %d", len(b), size)
	}
	if (len(b)-100<<10)%7919 != 0 {
		return fmt.Errorf("read %d bytes: not the size of any object written", len(b))
	}
	if len(b) > 0 && bytes.Count(b, b[:1]) != len(b) {
		return fmt.Errorf("read %d bytes mixing two objects", len(b))
	}
	return nil
}

var badKeys = []string{
	"", "/", "/abs/key", "..", "../escape", "a/../../escape", "a/..", "a/./b", ".", "./a",
	"a//b", "a/", "a\\b", "..\\escape", "a\x00b", ".hidden", "a/.tmp", ".git/config",
	strings.Repeat("k", storage.MaxKeyLen+1),
}

// checkBadKeys: every operation refuses each bad key with ErrBadKey.
func checkBadKeys(t *testing.T, s storage.Store) {
	t.Helper()
	for _, k := range badKeys {
		require.ErrorIs(t, s.Put(ctx(t), k, bytes.NewReader([]byte("x")), 1, ""), storage.ErrBadKey, "Put %q", k)
		_, _, err := s.Get(ctx(t), k, 0, 0)
		require.ErrorIs(t, err, storage.ErrBadKey, "Get %q", k)
		_, err = s.Stat(ctx(t), k)
		require.ErrorIs(t, err, storage.ErrBadKey, "Stat %q", k)
		require.ErrorIs(t, s.Delete(ctx(t), k), storage.ErrBadKey, "Delete %q", k)
		_, err = s.DeletePrefix(ctx(t), k+"/")
		require.ErrorIs(t, err, storage.ErrBadKey, "DeletePrefix %q", k+"/")
	}
	require.NoError(t, storage.CheckKey(strings.Repeat("k", storage.MaxKeyLen)))
}

// Bad keys are refused before any I/O: against stores that cannot do any
// (nothing listens at the S3 endpoint; the file store's directory is gone),
// every answer is still ErrBadKey, not a connection or file error, and
// nothing is written outside the file store's directory.
func TestBadKeysRefusedBeforeIO(t *testing.T) {
	t.Parallel()
	dead, err := storage.Open(t.Context(), fmt.Sprintf("s3://bucket/p?endpoint=http://%s", testkit.FreeAddr(t)), storage.Options{AccessKeyID: "a", SecretAccessKey: "b"})
	require.NoError(t, err)
	checkBadKeys(t, dead)

	parent := t.TempDir()
	dir := filepath.Join(parent, "store")
	fs, err := storage.NewFile(dir)
	require.NoError(t, err)
	checkBadKeys(t, fs)
	require.NoError(t, os.RemoveAll(dir))
	checkBadKeys(t, fs)
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing escaped the store")
}

// The S3 backend's own behaviour, on one SeaweedFS: credentials, a missing
// bucket, prefixes sharing a bucket, and a restart of the server.
func TestS3(t *testing.T) {
	t.Parallel()
	weed := testkit.SeaweedFS(t)
	creds := storage.Options{AccessKeyID: weed.AccessKey, SecretAccessKey: weed.SecretKey}

	t.Run("Credentials", func(t *testing.T) {
		for name, opts := range map[string]storage.Options{
			"anonymous":    {},
			"wrong secret": {AccessKeyID: weed.AccessKey, SecretAccessKey: "not-" + weed.SecretKey},
			"unknown key":  {AccessKeyID: "AKNOBODY", SecretAccessKey: weed.SecretKey},
		} {
			s, err := storage.Open(ctx(t), weed.URL(), opts)
			require.NoError(t, err, name)
			require.Error(t, s.Ping(ctx(t)), name)
			require.Error(t, s.Put(ctx(t), "auth/x", bytes.NewReader([]byte("x")), 1, ""), name)
			_, err = s.List(ctx(t), "")
			require.Error(t, err, name)
		}
		_, err := storage.Open(ctx(t), weed.URL(), storage.Options{AccessKeyID: weed.AccessKey})
		require.ErrorIs(t, err, storage.ErrBadURL, "a key without its secret")

		s, err := storage.Open(ctx(t), weed.URL(), creds)
		require.NoError(t, err)
		require.NoError(t, s.Ping(ctx(t)))
		require.NotContains(t, s.String(), weed.SecretKey)
		require.NotContains(t, s.String(), weed.AccessKey)
		_, err = s.Stat(ctx(t), "auth/x")
		require.ErrorIs(t, err, storage.ErrNotFound, "the refused Puts stored nothing")
	})

	t.Run("MissingBucket", func(t *testing.T) {
		u := strings.Replace(weed.URL(), "s3://"+weed.Bucket+"/", fmt.Sprintf("s3://no-such-bucket-%d/", time.Now().UnixNano()), 1)
		s, err := storage.Open(ctx(t), u, creds)
		require.NoError(t, err)
		err = s.Ping(ctx(t))
		require.ErrorIs(t, err, storage.ErrNoBucket)
		require.Contains(t, err.Error(), "no-such-bucket-", "the error names the bucket")
		err = s.Put(ctx(t), "x", bytes.NewReader([]byte("x")), 1, "")
		require.ErrorIs(t, err, storage.ErrNoBucket, "a Put does not create it either")
		require.ErrorIs(t, s.Ping(ctx(t)), storage.ErrNoBucket)

		require.NoError(t, storage.EnsureBucket(ctx(t), s), "tests and just dev create it")
		require.NoError(t, s.Ping(ctx(t)))
		require.NoError(t, storage.EnsureBucket(ctx(t), s), "twice")
		put(t, s, "x", []byte("x"))
	})

	t.Run("Prefixes", func(t *testing.T) {
		one := openS3(t, weed, "prefixes/one")
		two := openS3(t, weed, "prefixes/one-two")
		root := openS3(t, weed, "")
		put(t, one, "k", []byte("1"))
		put(t, two, "k", []byte("2"))
		got, _ := get(t, one, "k", 0, 0)
		require.Equal(t, "1", string(got))
		l, err := one.List(ctx(t), "")
		require.NoError(t, err)
		require.Equal(t, []string{"k"}, keys(l), "keys are relative to the prefix, and one/ is not one-two/")
		l, err = root.List(ctx(t), "prefixes/")
		require.NoError(t, err)
		require.Equal(t, []string{"prefixes/one-two/k", "prefixes/one/k"}, keys(l))
		n, err := one.DeletePrefix(ctx(t), "k/")
		require.NoError(t, err)
		require.Zero(t, n)
		require.NoError(t, one.Delete(ctx(t), "k"))
		_, err = two.Stat(ctx(t), "k")
		require.NoError(t, err, "the other prefix keeps its object")
	})

	// Last: the server goes away and comes back on the same directory.
	t.Run("Restart", func(t *testing.T) {
		s := openS3(t, weed, "restart")
		data := random(t, 3<<20)
		put(t, s, "seg/1.m4s", data)
		weed.Stop()
		c, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		err := s.Put(c, "seg/2.m4s", bytes.NewReader(data), int64(len(data)), "")
		require.Error(t, err, "a Put to a stopped store fails, within its context")
		require.NoError(t, weed.Start(t.Context()))
		got, _ := get(t, s, "seg/1.m4s", 0, 0)
		require.Equal(t, sha256.Sum256(data), sha256.Sum256(got), "the object survived the restart")
		put(t, s, "seg/2.m4s", data)
		l, err := s.List(ctx(t), "")
		require.NoError(t, err)
		require.Equal(t, []string{"seg/1.m4s", "seg/2.m4s"}, keys(l))
	})
}
