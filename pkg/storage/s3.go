package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Store keeps objects in one bucket of an S3-compatible service, each key
// under an optional prefix. S3 makes a PUT visible only once it completed
// (single request or multipart upload alike), so readers never see a
// partial object.
type s3Store struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string // "" or ends in "/"
	describe string // the canonical URL, without credentials
	region   string
}

// s3MaxRetries bounds minio-go's own retries of one request (its default is
// 10, with back-off). The caller's context bounds the whole call; the worker's
// upload queue retries on its own schedule.
const s3MaxRetries = 3

// awsEndpoint is where an s3:// URL without endpoint= goes.
const awsEndpoint = "s3.amazonaws.com"

// s3Params are the query parameters an s3:// URL may carry.
var s3Params = map[string]bool{"endpoint": true, "region": true, "path_style": true}

// bucketName follows the S3 rules for new buckets: 3–63 lowercase letters,
// digits, dots and hyphens, starting and ending with a letter or digit.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// regionName is what AWS and the compatible services use: "us-east-1", "auto".
var regionName = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// s3Config is what an s3:// URL says.
type s3Config struct {
	bucket, prefix string
	host           string // host[:port] of the endpoint
	secure         bool
	region         string
	lookup         minio.BucketLookupType
	describe       string
}

func parseS3(u *url.URL) (s3Config, error) {
	var c s3Config
	bad := func(format string, args ...any) (s3Config, error) {
		return s3Config{}, fmt.Errorf("%w: "+format, append([]any{ErrBadURL}, args...)...)
	}
	if u.Opaque != "" {
		return bad("s3 URL must look like s3://bucket/prefix")
	}
	c.bucket = u.Host
	if err := checkBucket(c.bucket); err != nil {
		return s3Config{}, err
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if err := CheckKey(p); err != nil {
			return bad("prefix %q: it must be a relative key (no empty, '.' or '..' segment, backslash or NUL)", p)
		}
		c.prefix = p + "/"
	}
	if u.Fragment != "" {
		return bad("s3 URL takes no fragment (#%s)", u.Fragment)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("query: %v", err)
	}
	var unknown []string
	for k, v := range q {
		if !s3Params[k] {
			unknown = append(unknown, k)
		} else if len(v) != 1 {
			return bad("query parameter %s given %d times", k, len(v))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return bad("unknown query parameter(s) %s: an s3 URL takes endpoint, region and path_style", strings.Join(unknown, ", "))
	}
	c.region = q.Get("region")
	if c.region != "" && !regionName.MatchString(c.region) {
		return bad("region %q: lowercase letters, digits and hyphens only (e.g. us-east-1)", c.region)
	}

	c.host, c.secure = awsEndpoint, true
	endpoint := q.Get("endpoint")
	if endpoint != "" {
		if c.host, c.secure, err = parseEndpoint(endpoint); err != nil {
			return s3Config{}, err
		}
		// An S3-compatible service (SeaweedFS, MinIO, R2…) rarely serves
		// buckets as host names, and minio-go would otherwise ask for the
		// bucket's location first.
		c.lookup = minio.BucketLookupPath
		if c.region == "" {
			c.region = "us-east-1"
		}
	}
	switch ps := q.Get("path_style"); ps {
	case "":
	case "true":
		c.lookup = minio.BucketLookupPath
	case "false":
		c.lookup = minio.BucketLookupDNS
	default:
		return bad("path_style=%q: use true or false", ps)
	}

	// The canonical form, for String(): never a credential (there is none in
	// the URL: Open refuses user info).
	var d []string
	if endpoint != "" {
		scheme := "https"
		if !c.secure {
			scheme = "http"
		}
		d = append(d, "endpoint="+scheme+"://"+c.host)
	}
	if r := q.Get("region"); r != "" {
		d = append(d, "region="+r)
	}
	if ps := q.Get("path_style"); ps != "" {
		d = append(d, "path_style="+ps)
	}
	c.describe = "s3://" + c.bucket + "/" + c.prefix
	if len(d) > 0 {
		c.describe += "?" + strings.Join(d, "&")
	}
	return c, nil
}

func checkBucket(b string) error {
	switch {
	case b == "":
		return fmt.Errorf("%w: s3 URL names no bucket: use s3://bucket/prefix", ErrBadURL)
	case !bucketName.MatchString(b):
		return fmt.Errorf("%w: bucket %q: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit", ErrBadURL, b)
	case strings.Contains(b, ".."):
		return fmt.Errorf("%w: bucket %q: no two adjacent dots", ErrBadURL, b)
	case net.ParseIP(b) != nil:
		return fmt.Errorf("%w: bucket %q: a bucket name is not an IP address", ErrBadURL, b)
	}
	return nil
}

// parseEndpoint takes "http://host:port", "https://host" or "host[:port]"
// (https) and returns host[:port] and whether it is https.
func parseEndpoint(raw string) (string, bool, error) {
	bad := func(why string) (string, bool, error) {
		return "", false, fmt.Errorf("%w: endpoint %q: %s (e.g. endpoint=http://127.0.0.1:8333)", ErrBadURL, raw, why)
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	e, err := url.Parse(raw)
	if err != nil {
		return bad(err.Error())
	}
	if e.Scheme != "http" && e.Scheme != "https" {
		return bad("scheme must be http or https")
	}
	if e.User != nil {
		return bad("credentials do not belong in the endpoint")
	}
	if e.Host == "" || e.Hostname() == "" {
		return bad("no host")
	}
	if e.Path != "" && e.Path != "/" || e.RawQuery != "" || e.Fragment != "" {
		return bad("an endpoint is scheme://host[:port] only, without path or query")
	}
	if p := e.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("port must be 1-65535")
		}
	}
	return e.Host, e.Scheme == "https", nil
}

func openS3(ctx context.Context, u *url.URL, opts Options) (Store, error) {
	c, err := parseS3(u)
	if err != nil {
		return nil, err
	}
	if (opts.AccessKeyID == "") != (opts.SecretAccessKey == "") {
		return nil, fmt.Errorf("%w: set both DIONYSIA_STORAGE_ACCESS_KEY_ID and DIONYSIA_STORAGE_SECRET_ACCESS_KEY, or neither (anonymous)", ErrBadURL)
	}
	creds := credentials.NewStatic("", "", "", credentials.SignatureAnonymous)
	if opts.AccessKeyID != "" {
		creds = credentials.NewStaticV4(opts.AccessKeyID, opts.SecretAccessKey, "")
	}
	transport, err := minio.DefaultTransport(c.secure)
	if err != nil {
		return nil, fmt.Errorf("s3 transport: %w", err)
	}
	client, err := minio.New(c.host, &minio.Options{
		Creds:        creds,
		Secure:       c.secure,
		Transport:    transport,
		Region:       c.region,
		BucketLookup: c.lookup,
		MaxRetries:   s3MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadURL, c.describe, err)
	}
	client.SetAppInfo("dionysia", "1")
	return &s3Store{
		client: client, core: minio.Core{Client: client},
		bucket: c.bucket, prefix: c.prefix, describe: c.describe,
		region: c.region,
	}, nil
}

func (s *s3Store) String() string { return s.describe }

// object returns the object name of a key.
func (s *s3Store) object(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// s3Error turns a NoSuchKey into ErrNotFound and names the store and key in
// every other error.
func (s *s3Store) s3Error(activity, key string, err error) error {
	if err == nil {
		return nil
	}
	r := minio.ToErrorResponse(err)
	switch {
	case r.Code == minio.NoSuchKey:
		return fmt.Errorf("%s: %w", key, ErrNotFound)
	case r.Code == minio.NoSuchBucket:
		return fmt.Errorf("%s %s: %w", activity, key, s.missingBucket())
	}
	return fmt.Errorf("%s %s in %s: %w", activity, key, s.describe, err)
}

// ErrNoBucket: the s3:// URL's bucket does not exist (Ping, and any
// operation that finds it missing). Production never creates it.
var ErrNoBucket = errors.New("bucket does not exist")

func (s *s3Store) missingBucket() error {
	return fmt.Errorf("%w: %q at %s (create it, or check DIONYSIA_STORAGE_URL)", ErrNoBucket, s.bucket, s.describe)
}

func (s *s3Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if size == 0 {
		// minio-go would read r to learn it is empty; a 0-byte object is
		// one empty PUT.
		r = bytes.NewReader(nil)
	}
	_, err = s.client.PutObject(ctx, s.bucket, name, r, size, minio.PutObjectOptions{
		ContentType: contentType,
		// Recording objects are a few MiB at most: a single PUT when the
		// size is known; an unknown size streams in 16 MiB parts.
		PartSize: 16 << 20,
	})
	return s.s3Error("storing", key, err)
}

func (s *s3Store) info(key string, o minio.ObjectInfo) Info {
	return Info{Key: key, Size: o.Size, ContentType: o.ContentType, ModTime: o.LastModified, ETag: o.ETag}
}

func (s *s3Store) Stat(ctx context.Context, key string) (Info, error) {
	name, err := s.object(key)
	if err != nil {
		return Info{}, err
	}
	o, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.s3Error("reading", key, err)
	}
	return s.info(key, o), nil
}

func (s *s3Store) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, Info, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, Info{}, err
	}
	offset = max(offset, 0)
	var opts minio.GetObjectOptions
	switch {
	case length > 0:
		err = opts.SetRange(offset, offset+length-1)
	case offset > 0:
		err = opts.SetRange(offset, 0)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("reading %s: %w", key, err)
	}
	body, o, h, err := s.core.GetObject(ctx, s.bucket, name, opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == minio.InvalidRange || minio.ToErrorResponse(err).StatusCode == http.StatusRequestedRangeNotSatisfiable {
			// The offset is at or past the end: an empty reader when the
			// object exists.
			info, serr := s.Stat(ctx, key)
			if serr != nil {
				return nil, Info{}, serr
			}
			return io.NopCloser(bytes.NewReader(nil)), info, nil
		}
		return nil, Info{}, s.s3Error("reading", key, err)
	}
	info := s.info(key, o)
	if total, ok := contentRangeTotal(h.Get("Content-Range")); ok {
		info.Size = total // Content-Length is the range's
	}
	return body, info, nil
}

// contentRangeTotal returns the complete length of "bytes a-b/total".
func contentRangeTotal(cr string) (int64, bool) {
	_, total, ok := strings.Cut(cr, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil
}

func (s *s3Store) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	return s.s3Error("deleting", key, s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}))
}

func (s *s3Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if err := checkPrefix(prefix, false); err != nil {
		return 0, err
	}
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	ch := make(chan minio.ObjectInfo, len(objs))
	for _, o := range objs {
		ch <- minio.ObjectInfo{Key: s.prefix + o.Key}
	}
	close(ch)
	failed := 0
	var first error
	for e := range s.client.RemoveObjects(ctx, s.bucket, ch, minio.RemoveObjectsOptions{}) {
		if e.Err != nil && minio.ToErrorResponse(e.Err).Code == minio.NoSuchKey {
			continue // gone already
		}
		failed++
		if first == nil {
			first = fmt.Errorf("%s: %w", strings.TrimPrefix(e.ObjectName, s.prefix), e.Err)
		}
	}
	if first != nil {
		return len(objs) - failed, fmt.Errorf("deleting %s in %s: %d of %d objects failed, first: %w", prefix, s.describe, failed, len(objs), first)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("deleting %s: %w", prefix, err)
	}
	return len(objs), nil
}

func (s *s3Store) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := checkPrefix(prefix, true); err != nil {
		return nil, err
	}
	var out []Info
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, s.s3Error("listing", prefix, o.Err)
		}
		key := strings.TrimPrefix(o.Key, s.prefix)
		// Skip what no Put of ours makes: directory markers ("a/"), keys
		// outside the rules.
		if CheckKey(key) != nil {
			continue
		}
		out = append(out, s.info(key, o))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	// S3 lists in UTF-8 binary order already; sort in case a compatible
	// service does not.
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *s3Store) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("reaching %s: %w", s.describe, err)
	}
	if !ok {
		return s.missingBucket()
	}
	return nil
}

// ensureBucket creates the bucket when it is missing (EnsureBucket).
func (s *s3Store) ensureBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("reaching %s: %w", s.describe, err)
	}
	if ok {
		return nil
	}
	if err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region}); err != nil {
		if c := minio.ToErrorResponse(err).Code; c == "BucketAlreadyOwnedByYou" || c == "BucketAlreadyExists" {
			return nil
		}
		return fmt.Errorf("creating bucket %q at %s: %w", s.bucket, s.describe, err)
	}
	return nil
}
