package origin_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/workers/internal/origin"
	"github.com/stretchr/testify/require"
)

// llPlaylist is an LL-HLS media playlist as the packager writes it: segments
// 100..(100+complete-1) with media sequence numbers from 50, then parts of
// the open segment and a preload hint for the next part.
func llPlaylist(complete, openParts int) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n")
	b.WriteString("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5,CAN-SKIP-UNTIL=6\n")
	b.WriteString("#EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-MEDIA-SEQUENCE:50\n#EXT-X-MAP:URI=\"init.mp4\"\n")
	for i := range complete {
		n := 100 + i
		fmt.Fprintf(&b, "#EXT-X-PART:DURATION=0.5,URI=\"%d.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.5,URI=\"%d.1.m4s\"\n", n, n)
		fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:2026-12-02T12:00:%02d.000Z\n#EXTINF:1.000,\n%d.m4s\n", i, n)
	}
	open := 100 + complete
	for k := range openParts {
		fmt.Fprintf(&b, "#EXT-X-PART:DURATION=0.5,URI=\"%d.%d.m4s\"\n", open, k)
	}
	next, part := open, openParts
	if part == 2 {
		next, part = open+1, 0
	}
	fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%d.%d.m4s\"\n", next, part)
	fmt.Fprintf(&b, "#EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=%d,LAST-PART=%d\n", 50+complete, openParts-1)
	return b.String()
}

func TestLLHLSBlockingReload(t *testing.T) {
	t.Parallel()
	bc := origin.NewBroadcast()
	b := setup(t, func(c *origin.Config) { c.Changes = bc })
	rend := filepath.Join(b.dir, b.stream, "720p")
	write(t, filepath.Join(rend, "index.m3u8"), llPlaylist(3, 1)) // last complete MSN 52; 53 has part 0
	write(t, filepath.Join(rend, origin.SkipPlaylistName), "#EXTM3U\n#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n")
	base := "/live/" + b.stream + "/720p/index.m3u8"

	// What is already there is answered at once.
	res, body := b.get(t, base+"?_HLS_msn=53&_HLS_part=0", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, body, `URI="103.0.m4s"`)
	require.Equal(t, "public, max-age=6", res.Header.Get("Cache-Control"), "a blocking answer may be cached by a CDN")

	// The next part: held until the packager publishes it.
	type answer struct {
		status int
		body   string
	}
	done := make(chan answer, 1)
	go func() {
		res, body := b.get(t, base+"?_HLS_msn=53&_HLS_part=1", nil)
		done <- answer{res.StatusCode, body}
	}()
	select {
	case a := <-done:
		t.Fatalf("answered before the part existed: %d %s", a.status, a.body)
	case <-time.After(300 * time.Millisecond):
	}
	write(t, filepath.Join(rend, "index.m3u8"), llPlaylist(3, 2))
	bc.Notify(b.stream)
	select {
	case a := <-done:
		require.Equal(t, http.StatusOK, a.status)
		require.Contains(t, a.body, `URI="103.1.m4s"`)
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking request was not answered after the part was published")
	}

	// The whole next segment counts once it is listed.
	res, _ = b.get(t, base+"?_HLS_msn=53", nil)
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "segment 53 never completed within three target durations")
	require.Equal(t, "1", res.Header.Get("Retry-After"))
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))

	// Too far ahead, or malformed: 400 at once.
	for _, q := range []string{"?_HLS_msn=56", "?_HLS_msn=53&_HLS_part=9", "?_HLS_part=1", "?_HLS_msn=x", "?_HLS_skip=maybe"} {
		res, body := b.get(t, base+q, nil)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, q)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), q)
		require.Contains(t, body, "_HLS_", q)
	}

	// A delta update.
	res, body = b.get(t, base+"?_HLS_msn=52&_HLS_skip=YES", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, body, "#EXT-X-SKIP:SKIPPED-SEGMENTS=2")

	// A stream that moves away while a request waits: not held.
	go func() {
		res, _ := b.get(t, base+"?_HLS_msn=54", nil)
		done <- answer{status: res.StatusCode}
	}()
	time.Sleep(100 * time.Millisecond)
	b.held.Store(false)
	bc.Notify(b.stream)
	select {
	case a := <-done:
		require.Equal(t, http.StatusNotFound, a.status)
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting request outlived the stream's ownership")
	}
}

func TestLLHLSPartsStillBeingMade(t *testing.T) {
	t.Parallel()
	bc := origin.NewBroadcast()
	b := setup(t, func(c *origin.Config) { c.Changes = bc })
	rend := filepath.Join(b.dir, b.stream, "720p")
	write(t, filepath.Join(rend, "index.m3u8"), llPlaylist(3, 1)) // hint: 103.1.m4s
	dir := "/live/" + b.stream + "/720p/"

	done := make(chan int, 1)
	var got string
	go func() {
		res, body := b.get(t, dir+"103.1.m4s", nil)
		got = body
		done <- res.StatusCode
	}()
	select {
	case s := <-done:
		t.Fatalf("the preload hint was answered before it was written: %d", s)
	case <-time.After(300 * time.Millisecond):
	}
	write(t, filepath.Join(rend, "103.1.m4s"), "part-bytes")
	bc.Notify(b.stream)
	select {
	case s := <-done:
		require.Equal(t, http.StatusOK, s)
		require.Equal(t, "part-bytes", got)
	case <-time.After(10 * time.Second):
		t.Fatal("the preload hint was not served once written")
	}

	// Neither the hint nor the open segment: a plain 404 at once.
	res, _ := b.get(t, dir+"90.m4s", nil)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	res, _ = b.get(t, dir+"105.0.m4s", nil)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

func TestStandardPlaylistIgnoresNothing(t *testing.T) {
	t.Parallel()
	// Without Changes (or a standard playlist) blocking parameters are
	// answered at once with the current playlist.
	b := setup(t, nil)
	res, body := b.get(t, "/live/"+b.stream+"/720p/index.m3u8?_HLS_msn=5", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, body, "1.m4s")
}

func TestLLSegmentStreamedWhileMade(t *testing.T) {
	t.Parallel()
	bc := origin.NewBroadcast()
	b := setup(t, func(c *origin.Config) { c.Changes = bc })
	rend := filepath.Join(b.dir, b.stream, "720p")
	write(t, filepath.Join(rend, "index.m3u8"), llPlaylist(3, 1)) // segment 103 open, part 0 out
	write(t, filepath.Join(rend, "103.0.m4s"), "AAAA")

	res, err := b.server.Client().Get(b.server.URL + "/live/" + b.stream + "/720p/103.m4s")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "1", res.Header.Get(origin.StreamingHeader))
	require.Equal(t, int64(-1), res.ContentLength, "streamed: the length is not known yet")
	read := func(n int) string {
		buf := make([]byte, n)
		_, err := io.ReadFull(res.Body, buf)
		require.NoError(t, err)
		return string(buf)
	}
	require.Equal(t, "AAAA", read(4), "the first part comes before the segment is complete")
	write(t, filepath.Join(rend, "103.1.m4s"), "BBBB")
	write(t, filepath.Join(rend, "index.m3u8"), llPlaylist(3, 2))
	bc.Notify(b.stream)
	require.Equal(t, "BBBB", read(4))
	write(t, filepath.Join(rend, "103.m4s"), "AAAABBBBCC")
	write(t, filepath.Join(rend, "index.m3u8"), llPlaylist(4, 0))
	bc.Notify(b.stream)
	rest, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, "CC", string(rest), "then the rest of the finished segment, and the end")

	// A finished segment is an ordinary file again.
	res2, body := b.get(t, "/live/"+b.stream+"/720p/103.m4s", nil)
	require.Equal(t, http.StatusOK, res2.StatusCode)
	require.Empty(t, res2.Header.Get(origin.StreamingHeader))
	require.Equal(t, "AAAABBBBCC", body)
}
