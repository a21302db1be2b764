package vod_test

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/services/internal/vod"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func fileStore(t *testing.T) storage.Store {
	t.Helper()
	st, err := storage.NewFile(t.TempDir())
	require.NoError(t, err)
	return st
}

// want is what a built asset must look like.
type want struct {
	periods       int     // Periods in the MPD
	discontinuity int     // EXT-X-DISCONTINUITY tags in the top rendition's playlist
	maps          int     // EXT-X-MAP tags in it
	mp4S          float64 // download.mp4's duration
}

// check verifies the VOD files of a built asset with ffprobe and ffmpeg.
func check(t *testing.T, st storage.Store, asset uuid.UUID, res vod.Result, w want) {
	t.Helper()
	prefix := job.AssetPrefix(asset)
	base := serve(t, st) + "/" + prefix

	// HLS: every playlist is a VOD playlist ffprobe plays.
	for _, r := range res.Renditions {
		text := readText(t, st, prefix+r.Name+"/index.m3u8")
		require.Contains(t, text, "#EXT-X-PLAYLIST-TYPE:VOD\n")
		require.True(t, strings.HasSuffix(text, "#EXT-X-ENDLIST\n"), "%s", text)
		// Every rendition has the same discontinuity sequence.
		require.Equal(t, w.discontinuity, strings.Count(text, "#EXT-X-DISCONTINUITY\n"), "%s: %s", r.Name, text)
		if r.Name == res.Renditions[0].Name {
			require.Equal(t, w.discontinuity, strings.Count(text, "#EXT-X-DISCONTINUITY\n"), "%s", text)
			require.Equal(t, w.maps, strings.Count(text, "#EXT-X-MAP:"), "%s", text)
			require.Equal(t, w.discontinuity+1, strings.Count(text, "#EXT-X-PROGRAM-DATE-TIME:"), "%s", text)
		}
	}
	out := probe(t, "-show_entries", "format=duration:stream=codec_type", "-of", "default=nw=1", base+"index.m3u8")
	require.Contains(t, out, "codec_type=video")
	require.Contains(t, out, "codec_type=audio")
	require.InDelta(t, res.DurationS, formatDuration(t, out), 0.5, "HLS duration; %s", out)
	if w.maps == 1 {
		// ffmpeg's HLS demuxer keeps the first EXT-X-MAP's parameter sets
		// across a map change, so it can only decode a single-init playlist
		// (players reinitialise at a discontinuity; download.mp4 below is
		// decoded in every case).
		decode(t, base+"360p/index.m3u8")
	}

	// DASH: a static MPD with a Period per run, that ffprobe opens.
	var m struct {
		Type     string `xml:"type,attr"`
		Duration string `xml:"mediaPresentationDuration,attr"`
		Periods  []struct {
			Start string `xml:"start,attr"`
			Sets  []struct {
				ContentType string `xml:"contentType,attr"`
				Reps        []struct {
					ID   string `xml:"id,attr"`
					List struct {
						PTO  uint64 `xml:"presentationTimeOffset,attr"`
						Init struct {
							URL string `xml:"sourceURL,attr"`
						} `xml:"Initialization"`
						S []struct {
							T uint64 `xml:"t,attr"`
							D uint64 `xml:"d,attr"`
						} `xml:"SegmentTimeline>S"`
						URLs []struct {
							Media string `xml:"media,attr"`
						} `xml:"SegmentURL"`
					} `xml:"SegmentList"`
				} `xml:"Representation"`
			} `xml:"AdaptationSet"`
		} `xml:"Period"`
	}
	mpdText := readText(t, st, prefix+"manifest.mpd")
	require.NoError(t, xml.Unmarshal([]byte(mpdText), &m))
	require.Equal(t, "static", m.Type)
	require.Len(t, m.Periods, w.periods, "%s", mpdText)
	require.Equal(t, "PT0S", m.Periods[0].Start)
	for _, p := range m.Periods {
		require.Len(t, p.Sets, 2)
		for _, set := range p.Sets {
			for _, rep := range set.Reps {
				require.Equal(t, len(rep.List.S), len(rep.List.URLs))
				require.Equal(t, rep.List.PTO, rep.List.S[0].T)
				_, err := st.Stat(t.Context(), prefix+rep.List.Init.URL)
				require.NoError(t, err, "Initialization of %s", rep.ID)
				for _, u := range rep.List.URLs {
					_, err := st.Stat(t.Context(), prefix+u.Media)
					require.NoError(t, err, "SegmentURL of %s", rep.ID)
				}
			}
		}
	}
	out = probe(t, "-show_entries", "stream=codec_type", "-of", "default=nw=1", base+"manifest.mpd")
	require.Contains(t, out, "codec_type=video")
	require.Contains(t, out, "codec_type=audio")

	// download.mp4: progressive, faststart, two streams, decodes cleanly.
	local := download(t, st, prefix+"download.mp4")
	require.Equal(t, []string{"ftyp", "moov", "mdat"}, topBoxes(t, local))
	f, err := mp4.ReadMP4File(local)
	require.NoError(t, err)
	require.False(t, f.IsFragmented())
	require.Len(t, f.Moov.Traks, 2)
	video := f.Moov.Traks[0].Mdia.Minf.Stbl
	require.NotNil(t, video.Stss, "the video track needs its sync samples")
	require.Len(t, video.Stsd.Children, 1)
	require.Nil(t, f.Moov.Traks[1].Mdia.Minf.Stbl.Stss, "every audio sample is a sync sample")
	out = probe(t, "-show_entries", "format=duration:stream=codec_type", "-of", "default=nw=1", local)
	require.Equal(t, 1, strings.Count(out, "codec_type=video"), "%s", out)
	require.Equal(t, 1, strings.Count(out, "codec_type=audio"), "%s", out)
	require.InDelta(t, w.mp4S, formatDuration(t, out), 0.2, "download.mp4 duration; %s", out)
	decode(t, local)

	// Audio and video start together (each track's edit list, if its
	// CMAF header had one, is kept).
	out = probe(t, "-show_entries", "stream=start_time", "-of", "default=nw=1:nk=1", local)
	starts := strings.Fields(out)
	require.Len(t, starts, 2)
	v0, err := strconv.ParseFloat(starts[0], 64)
	require.NoError(t, err)
	a0, err := strconv.ParseFloat(starts[1], 64)
	require.NoError(t, err)
	require.InDelta(t, v0, a0, 0.05, "start times %s", out)
	t.Logf("download.mp4 start times: video %v, audio %v", v0, a0)
}

func formatDuration(t *testing.T, out string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(line, "duration="); ok {
			d, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return d
		}
	}
	t.Fatalf("no duration in %q", out)
	return 0
}

func readText(t *testing.T, st storage.Store, key string) string {
	t.Helper()
	rc, _, err := st.Get(t.Context(), key, 0, 0)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(b)
}

// topBoxes lists the top-level box types of an MP4 file.
func topBoxes(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var types []string
	var hdr [16]byte
	for {
		if _, err := io.ReadFull(f, hdr[:8]); err == io.EOF {
			return types
		} else {
			require.NoError(t, err)
		}
		size := uint64(binary.BigEndian.Uint32(hdr[:4]))
		skip := size - 8
		if size == 1 {
			_, err := io.ReadFull(f, hdr[8:16])
			require.NoError(t, err)
			size = binary.BigEndian.Uint64(hdr[8:16])
			skip = size - 16
		}
		types = append(types, string(hdr[4:8]))
		_, err := f.Seek(int64(skip), io.SeekCurrent)
		require.NoError(t, err)
	}
}

// pairedDuration is the duration of the top rendition's segments the
// audio has too: what download.mp4 holds.
func pairedDuration(objs []job.RecordedObject, top string) float64 {
	audio := map[string]bool{}
	for _, o := range objs {
		if o.Kind == job.ObjectSegment && o.Rendition == "audio" {
			audio[filepath.Base(o.Init)+"/"+strconv.FormatUint(o.Number, 10)] = true
		}
	}
	var d float64
	for _, o := range objs {
		if o.Kind == job.ObjectSegment && o.Rendition == top && audio[filepath.Base(o.Init)+"/"+strconv.FormatUint(o.Number, 10)] {
			d += o.DurationS
		}
	}
	return d
}

func sumDurations(objs []job.RecordedObject, rendition string) float64 {
	var d float64
	for _, o := range objs {
		if o.Kind == job.ObjectSegment && o.Rendition == rendition {
			d += o.DurationS
		}
	}
	return d
}

// One run, one worker: the whole asset, twice (Build is idempotent).
func TestBuildOneRun(t *testing.T) {
	t.Parallel()
	c := makeClip(t, "veryfast", 8)
	st := fileStore(t)
	asset := uuid.New()
	objs := record(t, st, asset, c, run{token: 5, start: t0})
	objs = append(objs,
		thumbnail(t, st, asset, t0, "red"),
		thumbnail(t, st, asset, t0.Add(800*time.Millisecond), "green"), // nearest 10% of 8 s
		thumbnail(t, st, asset, t0.Add(4*time.Second), "blue"))
	in := vod.Input{AssetID: asset, Objects: objs}

	res, err := vod.Build(t.Context(), st, in)
	require.NoError(t, err)
	require.InDelta(t, sumDurations(objs, "360p"), res.DurationS, 1e-9)
	require.InDelta(t, 8.0, res.DurationS, 0.05)
	require.Equal(t, job.AssetPrefix(asset)+"poster.jpg", res.Poster)
	require.Equal(t, readText(t, st, objs[len(objs)-2].Key), readText(t, st, res.Poster), "the poster is the thumbnail nearest 0.8 s")
	require.Zero(t, res.LostS)
	var names []string
	for _, r := range res.Renditions {
		names = append(names, r.Name)
	}
	require.Equal(t, []string{"360p", "180p", "audio"}, names)
	require.Equal(t, vod.Rendition{Name: "360p", Width: 640, Height: 360, Bandwidth: res.Renditions[0].Bandwidth,
		Codec: objs[0].Track.Codec}, res.Renditions[0])
	require.True(t, res.Renditions[2].Audio)
	require.Greater(t, res.Renditions[0].Bandwidth, res.Renditions[1].Bandwidth)

	listed, err := st.List(t.Context(), job.AssetPrefix(asset))
	require.NoError(t, err)
	var total int64
	for _, info := range listed {
		total += info.Size
	}
	require.Equal(t, total, res.SizeBytes, "SizeBytes is every object of the asset")

	check(t, st, asset, res, want{periods: 1, discontinuity: 0, maps: 1, mp4S: pairedDuration(objs, "360p")})

	first := readText(t, st, job.AssetPrefix(asset)+"download.mp4")
	again, err := vod.Build(t.Context(), st, in)
	require.NoError(t, err)
	require.Equal(t, res, again)
	require.Equal(t, first, readText(t, st, job.AssetPrefix(asset)+"download.mp4"), "rebuilding writes the same file")
}

// Two runs on two workers (an ownership failover): the second has its own
// token and init and starts 3 s after the first ended, its media time back
// at 0.
func TestBuildTwoRuns(t *testing.T) {
	t.Parallel()
	c := makeClip(t, "veryfast", 8)
	st := fileStore(t)
	asset := uuid.New()
	objs := record(t, st, asset, c, run{token: 5, start: t0})
	firstS := sumDurations(objs, "360p")
	second := t0.Add(time.Duration(firstS*float64(time.Second)) + 3*time.Second)
	objs = append(objs, record(t, st, asset, c, run{token: 9, run: 2, start: second})...)

	res, err := vod.Build(t.Context(), st, vod.Input{AssetID: asset, Objects: objs})
	require.NoError(t, err)
	require.InDelta(t, 16.0, res.DurationS, 0.1)
	require.Empty(t, res.Poster)

	text := readText(t, st, job.AssetPrefix(asset)+"360p/index.m3u8")
	require.Contains(t, text, "5-3.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-9-2.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:"+second.Format("2006-01-02T15:04:05.000Z")+"\n")
	check(t, st, asset, res, want{periods: 2, discontinuity: 1, maps: 2, mp4S: pairedDuration(objs, "360p")})
	require.InDelta(t, 16.0, pairedDuration(objs, "360p"), 0.1)

	mpd := readText(t, st, job.AssetPrefix(asset)+"manifest.mpd")
	require.Contains(t, mpd, fmt.Sprintf(`<Period id="1" start="PT%gS"`, math.Round(firstS*1000)/1000))
}

// A second run whose encoder made other parameter sets (another x264
// preset): the manifests have both runs, download.mp4 only the run with
// most segments, since one track keeps one sample entry.
func TestBuildOtherParameterSets(t *testing.T) {
	t.Parallel()
	a, b := makeClip(t, "veryfast", 8), makeClip(t, "ultrafast", 4)
	st := fileStore(t)
	asset := uuid.New()
	first := record(t, st, asset, a, run{token: 5, start: t0})
	second := record(t, st, asset, b, run{token: 9, start: t0.Add(20 * time.Second)})
	objs := append(first, second...)

	res, err := vod.Build(t.Context(), st, vod.Input{AssetID: asset, Objects: objs})
	require.NoError(t, err)
	require.InDelta(t, 12.0, res.DurationS, 0.1)
	check(t, st, asset, res, want{periods: 2, discontinuity: 1, maps: 2, mp4S: pairedDuration(first, "360p")})
}

// A segment the top rendition lost: a discontinuity in its playlist, LostS
// counts it once, and download.mp4 leaves that span out of both tracks.
func TestBuildLostSegment(t *testing.T) {
	t.Parallel()
	c := makeClip(t, "veryfast", 8)
	st := fileStore(t)
	asset := uuid.New()
	objs := record(t, st, asset, c, run{token: 5, start: t0, rendition: map[string]bool{"180p": true, "audio": true}})
	objs = append(objs, record(t, st, asset, c, run{token: 5, start: t0, rendition: map[string]bool{"360p": true}, skipNums: map[uint64]bool{1: true}})...)
	lost := []job.LostSegment{
		{Rendition: "360p", Number: 1, DurationS: 2, Reason: "queue full"},
		{Rendition: "180p", Number: 1, DurationS: 2, Reason: "queue full"}, // the same span: counted once
	}
	res, err := vod.Build(t.Context(), st, vod.Input{AssetID: asset, Objects: objs, Lost: lost})
	require.NoError(t, err)
	require.Equal(t, 2.0, res.LostS)
	require.InDelta(t, 6.0, res.DurationS, 0.05)
	check(t, st, asset, res, want{periods: 2, discontinuity: 1, maps: 1, mp4S: pairedDuration(objs, "360p")})
	require.InDelta(t, 6.0, pairedDuration(objs, "360p"), 0.05)
}

// The same on the S3 store (a real SeaweedFS).
func TestBuildS3(t *testing.T) {
	t.Parallel()
	c := makeClip(t, "veryfast", 8)
	weed := testkit.SeaweedFS(t)
	st, err := storage.Open(t.Context(), weed.PrefixURL("vod"), storage.Options{AccessKeyID: weed.AccessKey, SecretAccessKey: weed.SecretKey})
	require.NoError(t, err)
	asset := uuid.New()
	objs := record(t, st, asset, c, run{token: 5, start: t0})
	objs = append(objs, thumbnail(t, st, asset, t0.Add(time.Second), "red"))
	res, err := vod.Build(t.Context(), st, vod.Input{AssetID: asset, Objects: objs})
	require.NoError(t, err)
	require.NotEmpty(t, res.Poster)
	check(t, st, asset, res, want{periods: 1, discontinuity: 0, maps: 1, mp4S: pairedDuration(objs, "360p")})
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	c := makeClip(t, "veryfast", 8)
	st := fileStore(t)
	asset := uuid.New()
	objs := record(t, st, asset, c, run{token: 5, start: t0})

	t.Run("no segments", func(t *testing.T) {
		var inits []job.RecordedObject
		for _, o := range objs {
			if o.Kind == job.ObjectInit {
				inits = append(inits, o)
			}
		}
		_, err := vod.Build(t.Context(), st, vod.Input{AssetID: asset, Objects: inits})
		require.ErrorIs(t, err, vod.ErrNoSegments)
		require.ErrorContains(t, err, "asset has no segments")
	})
	t.Run("missing object", func(t *testing.T) {
		other := uuid.New()
		objs := record(t, st, other, c, run{token: 5, start: t0})
		gone := objs[3].Key
		require.NoError(t, st.Delete(t.Context(), gone))
		_, err := vod.Build(t.Context(), st, vod.Input{AssetID: other, Objects: objs})
		require.ErrorIs(t, err, storage.ErrNotFound)
		require.ErrorContains(t, err, gone)
	})
	t.Run("object of another asset", func(t *testing.T) {
		_, err := vod.Build(t.Context(), st, vod.Input{AssetID: uuid.New(), Objects: objs})
		require.ErrorContains(t, err, objs[0].Key)
	})
	t.Run("a key a playlist would have to quote", func(t *testing.T) {
		bad := append([]job.RecordedObject(nil), objs...)
		bad[1].Key = job.AssetPrefix(asset) + "360p/5-0.m4s\n#EXT-X-ENDLIST"
		_, err := vod.Build(t.Context(), st, vod.Input{AssetID: asset, Objects: bad})
		require.ErrorContains(t, err, "is not a key inside")
	})
	t.Run("bad rendition name", func(t *testing.T) {
		bad := append([]job.RecordedObject(nil), objs...)
		bad[1].Rendition = "../x"
		_, err := vod.Build(t.Context(), st, vod.Input{AssetID: asset, Objects: bad})
		require.ErrorContains(t, err, `invalid rendition "../x"`)
	})
	t.Run("unknown init", func(t *testing.T) {
		bad := append([]job.RecordedObject(nil), objs[1:]...) // the 360p init left out
		_, err := vod.Build(t.Context(), st, vod.Input{AssetID: asset, Objects: bad})
		require.ErrorContains(t, err, objs[0].Key)
	})
	require.True(t, bytes.HasPrefix([]byte(objs[0].Key), []byte(job.AssetPrefix(asset))))
}

// A recording without audio: no audio group, no audio AdaptationSet, and
// download.mp4 has the video alone.
func TestBuildVideoOnly(t *testing.T) {
	t.Parallel()
	c := makeClip(t, "veryfast", 8)
	st := fileStore(t)
	asset := uuid.New()
	objs := record(t, st, asset, c, run{token: 5, start: t0, rendition: map[string]bool{"360p": true, "180p": true}})
	res, err := vod.Build(t.Context(), st, vod.Input{AssetID: asset, Objects: objs})
	require.NoError(t, err)
	require.Len(t, res.Renditions, 2)
	prefix := job.AssetPrefix(asset)
	top := readText(t, st, prefix+"index.m3u8")
	require.NotContains(t, top, "AUDIO")
	require.Contains(t, top, `CODECS="`+objs[0].Track.Codec+`",RESOLUTION=640x360`)
	require.NotContains(t, readText(t, st, prefix+"manifest.mpd"), `contentType="audio"`)
	base := serve(t, st) + "/" + prefix
	out := probe(t, "-show_entries", "stream=codec_type", "-of", "default=nw=1", base+"manifest.mpd")
	require.Contains(t, out, "codec_type=video")
	require.NotContains(t, out, "codec_type=audio")
	local := download(t, st, prefix+"download.mp4")
	out = probe(t, "-show_entries", "format=duration:stream=codec_type", "-of", "default=nw=1", local)
	require.Equal(t, "codec_type=video", strings.TrimSpace(strings.Split(out, "\n")[0]), "%s", out)
	require.NotContains(t, out, "codec_type=audio")
	require.InDelta(t, res.DurationS, formatDuration(t, out), 0.2)
	decode(t, local)
}
