package pipeline

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/dionysia/dionysia/pkg/job"
)

// AuthURL returns the URL the pipeline pulls from, with the edge read
// credential of src added the way mediamtx expects it:
//
//   - rtmp://host/live/KEY  → rtmp://host/live/KEY?user=U&pass=P (query on the
//     stream name; other query parameters are kept)
//   - srt://host:port?streamid=read:live/KEY → streamid read:live/KEY:U:P
//     (mediamtx's "action:path:user:pass" form)
//   - file:///path (tests and benchmarks): returned unchanged; a credential
//     is an error.
//
// Without a User the URL is returned unchanged. The result holds secrets:
// never log it (log src, whose String redacts).
func AuthURL(src job.Source) (string, error) {
	u, err := url.Parse(src.URL)
	if err != nil {
		return "", fmt.Errorf("parsing source url %s: %w", src, err)
	}
	switch u.Scheme {
	case "rtmp", "rtmps":
		if u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return "", fmt.Errorf("source url %s: rtmp needs a host and a stream path", src)
		}
		if src.User == "" {
			return src.URL, nil
		}
		q := u.Query()
		q.Set("user", src.User)
		q.Set("pass", src.Password)
		u.RawQuery = q.Encode()
		return u.String(), nil
	case "srt":
		if u.Host == "" {
			return "", fmt.Errorf("source url %s: srt needs a host and port", src)
		}
		q := u.Query()
		sid := q.Get("streamid")
		if sid == "" {
			// srt://host:port/live/KEY is accepted too: the path becomes the
			// stream id.
			p := strings.Trim(u.Path, "/")
			if p == "" {
				return "", fmt.Errorf("source url %s: srt needs a streamid=read:live/<key> parameter", src)
			}
			sid = "read:" + p
			u.Path = ""
		}
		if src.User != "" {
			if strings.Count(sid, ":") > 1 {
				return "", fmt.Errorf("source url %s: streamid already holds a credential", src)
			}
			sid += ":" + src.User + ":" + src.Password
		}
		q.Set("streamid", sid)
		u.RawQuery = q.Encode()
		return u.String(), nil
	case "file":
		if src.User != "" {
			return "", fmt.Errorf("source url %s: a file source takes no credential", src)
		}
		if u.Path == "" {
			return "", fmt.Errorf("source url %s: file url needs a path", src)
		}
		return src.URL, nil
	default:
		return "", fmt.Errorf("source url %s: %w %q (want rtmp, srt or file)", src, ErrUnsupportedScheme, u.Scheme)
	}
}
