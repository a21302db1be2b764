package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Fetched is one file fetched while walking a playlist tree.
type Fetched struct {
	URL         string
	Status      int
	ContentType string
	Header      http.Header
	Body        []byte
}

var uriAttr = regexp.MustCompile(`URI="([^"]+)"`)

// Get fetches a URL with a timeout.
func Get(t testing.TB, u string) Fetched {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", u, err)
	}
	return Fetched{URL: u, Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Header: resp.Header, Body: b}
}

// WalkHLS fetches a multivariant playlist and, recursively, every URI in it
// (media playlists, init segments, media segments), and returns every fetch.
func WalkHLS(t testing.TB, root string) []Fetched {
	t.Helper()
	var out []Fetched
	seen := map[string]bool{}
	var walk func(u string)
	walk = func(u string) {
		if seen[u] {
			return
		}
		seen[u] = true
		f := Get(t, u)
		out = append(out, f)
		if f.Status != http.StatusOK || !strings.HasSuffix(strings.SplitN(u, "?", 2)[0], ".m3u8") {
			return
		}
		base, _ := url.Parse(u)
		sc := bufio.NewScanner(strings.NewReader(string(f.Body)))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			var refs []string
			switch {
			case line == "":
			case strings.HasPrefix(line, "#"):
				for _, m := range uriAttr.FindAllStringSubmatch(line, -1) {
					refs = append(refs, m[1])
				}
			default:
				refs = append(refs, line)
			}
			for _, r := range refs {
				ref, err := url.Parse(r)
				if err != nil {
					t.Fatalf("bad URI %q in %s", r, u)
				}
				walk(base.ResolveReference(ref).String())
			}
		}
	}
	walk(root)
	return out
}

// WantContentType is the Content-Type each kind of playback file must have.
func WantContentType(u string) string {
	p := strings.SplitN(u, "?", 2)[0]
	switch {
	case strings.HasSuffix(p, ".m3u8"):
		return "application/vnd.apple.mpegurl"
	case strings.HasSuffix(p, ".mpd"):
		return "application/dash+xml"
	case strings.Contains(p, "/audio/") && (strings.HasSuffix(p, ".mp4") || strings.HasSuffix(p, ".m4s")):
		return "audio/mp4"
	case strings.HasSuffix(p, ".m4s"):
		return "video/iso.segment"
	case strings.HasSuffix(p, ".mp4"):
		return "video/mp4"
	}
	return fmt.Sprintf("unknown file type %s", p)
}
