package live

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// segment is one entry of a media playlist.
type segment struct {
	Number   uint64
	URI      string
	Duration time.Duration
}

// mediaPlaylist is the part of an HLS media playlist the benchmark reads.
type mediaPlaylist struct {
	Map      string // EXT-X-MAP URI
	Segments []segment
}

// parseMedia parses a media playlist whose segment files are named {n}.m4s.
func parseMedia(body string) (mediaPlaylist, error) {
	var pl mediaPlaylist
	var dur time.Duration
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			if i := strings.Index(line, `URI="`); i >= 0 {
				rest := line[i+5:]
				if j := strings.IndexByte(rest, '"'); j >= 0 {
					pl.Map = rest[:j]
				}
			}
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "#EXTINF:"), ",")
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return pl, fmt.Errorf("parsing %q: %w", line, err)
			}
			dur = time.Duration(f * float64(time.Second))
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			base := strings.TrimSuffix(path.Base(line), ".m4s")
			n, err := strconv.ParseUint(base, 10, 64)
			if err != nil {
				return pl, fmt.Errorf("segment name %q is not {n}.m4s", line)
			}
			pl.Segments = append(pl.Segments, segment{Number: n, URI: line, Duration: dur})
		}
	}
	return pl, sc.Err()
}

func get(ctx context.Context, client *http.Client, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}
