package storage

import (
	"context"
	"fmt"
	"net/url"
)

// openS3 is implemented by the storage helper's branch (minio-go); until it
// lands, s3:// URLs are refused with a clear error.
func openS3(ctx context.Context, u *url.URL, opts Options) (Store, error) {
	return nil, fmt.Errorf("%w: the s3 backend is not built into this binary yet", ErrBadURL)
}
