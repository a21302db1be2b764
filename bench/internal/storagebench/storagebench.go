// Package storagebench measures recording uploads: segment-sized objects put
// through pkg/storage (the code a worker uploads with) into a real SeaweedFS
// S3 API and into the file store, next to references on the same targets: a
// plain signed PUT loop (net/http, no SDK) to the same SeaweedFS, and plain
// os.WriteFile calls into the same disk.
package storagebench

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/pkg/testkit/harness"
)

// Result is one target's load: requests are objects, bytes their payload.
type Result = harness.LoadResult

// Setup is a running SeaweedFS and the stores under test.
type Setup struct {
	S3     *testkit.S3Server
	S3Put  storage.Store // pkg/storage on the SeaweedFS bucket
	File   storage.Store // pkg/storage on a local directory
	RefDir string        // the reference's directory, on the same disk
	object []byte
}

// Start starts SeaweedFS (weed) in work and opens both stores. objectSize is
// the size of every object put (a 2 s segment of a 4 Mbit/s rung is ~1 MB).
func Start(ctx context.Context, weed, work string, objectSize int) (*Setup, error) {
	s3, err := testkit.StartSeaweedFS(ctx, testkit.S3Options{Weed: weed, Dir: filepath.Join(work, "weed")})
	if err != nil {
		return nil, fmt.Errorf("starting SeaweedFS: %w", err)
	}
	s := &Setup{S3: s3, RefDir: filepath.Join(work, "ref"), object: make([]byte, objectSize)}
	_, _ = rand.Read(s.object)
	if s.S3Put, err = storage.Open(ctx, s3.PrefixURL("bench"), storage.Options{AccessKeyID: s3.AccessKey, SecretAccessKey: s3.SecretKey}); err != nil {
		s.Close()
		return nil, err
	}
	if s.File, err = storage.NewFile(filepath.Join(work, "files")); err != nil {
		s.Close()
		return nil, err
	}
	if err := os.MkdirAll(s.RefDir, 0o755); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops SeaweedFS.
func (s *Setup) Close() {
	if s != nil && s.S3 != nil {
		s.S3.Stop()
	}
}

// key is the i-th object of client c of run, shaped like a segment's key.
func key(run string, c, i int) string {
	return "assets/" + run + "/720p/" + strconv.Itoa(c) + "-" + strconv.Itoa(i) + ".m4s"
}

// PutStore puts objects through st with concurrency clients for d.
func (s *Setup) PutStore(ctx context.Context, st storage.Store, run string, concurrency int, d time.Duration) Result {
	return harness.RunLoad(ctx, concurrency, d, func(ctx context.Context, c, i int) (int64, error) {
		err := st.Put(ctx, key(run, c, i), bytes.NewReader(s.object), int64(len(s.object)), "video/iso.segment")
		return int64(len(s.object)), err
	})
}

// PutReferenceS3 PUTs the same objects to the same bucket with a plain
// signed net/http request each (testkit.SignS3, unsigned payload).
func (s *Setup) PutReferenceS3(ctx context.Context, run string, concurrency int, d time.Duration) Result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	return harness.RunLoad(ctx, concurrency, d, func(ctx context.Context, c, i int) (int64, error) {
		req, err := s.S3.NewRequest(ctx, http.MethodPut, "/"+s.S3.Bucket+"/ref/"+key(run, c, i), bytes.NewReader(s.object), int64(len(s.object)))
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, &harness.StatusError{URL: req.URL.String(), Status: resp.Status}
		}
		return int64(len(s.object)), nil
	})
}

// PutReferenceFile writes the same objects with os.WriteFile (no temporary
// file, no rename, no fsync) into RefDir.
func (s *Setup) PutReferenceFile(ctx context.Context, run string, concurrency int, d time.Duration) Result {
	return harness.RunLoad(ctx, concurrency, d, func(ctx context.Context, c, i int) (int64, error) {
		p := filepath.Join(s.RefDir, run+"-"+strconv.Itoa(c)+"-"+strconv.Itoa(i)+".m4s")
		return int64(len(s.object)), os.WriteFile(p, s.object, 0o644)
	})
}
