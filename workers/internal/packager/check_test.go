package packager

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/hls-m3u8/m3u8"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/stretchr/testify/require"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

// readMediaPlaylist parses a media playlist with hls-m3u8's strict reader.
func readMediaPlaylist(t *testing.T, path string) *m3u8.MediaPlaylist {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	pl, typ, err := m3u8.DecodeFrom(f, true)
	require.NoError(t, err, path)
	require.Equal(t, m3u8.MEDIA, typ, path)
	return pl.(*m3u8.MediaPlaylist)
}

func readMasterPlaylist(t *testing.T, path string) *m3u8.MasterPlaylist {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	pl, typ, err := m3u8.DecodeFrom(f, true)
	require.NoError(t, err, path)
	require.Equal(t, m3u8.MASTER, typ, path)
	return pl.(*m3u8.MasterPlaylist)
}

type plSegment struct {
	uri           string
	dur           float64
	discontinuity bool
	mapURI        string
	pdt           time.Time
}

func playlistSegments(pl *m3u8.MediaPlaylist) []plSegment {
	var out []plSegment
	m := pl.Map // the reader keeps an EXT-X-MAP before the first segment at playlist level
	for _, s := range pl.GetAllSegments() {
		if s.Map != nil {
			m = s.Map
		}
		ps := plSegment{uri: s.URI, dur: s.Duration, discontinuity: s.Discontinuity, pdt: s.ProgramDateTime}
		if m != nil {
			ps.mapURI = m.URI
		}
		out = append(out, ps)
	}
	return out
}

type segInfo struct {
	uri        string
	start, dur float64 // seconds, from tfdt and trun
}

type segFacts struct {
	start, dur float64
	firstSync  bool
	samples    int
}

// inspectSegment decodes an init + media segment with mp4ff and returns the
// fragment's decode time span and whether its first sample is a sync sample.
func inspectSegment(t *testing.T, segPath, initPath string) segFacts {
	t.Helper()
	initFile, err := mp4.ReadMP4File(initPath)
	require.NoError(t, err)
	timescale := initFile.Init.Moov.Trak.Mdia.Mdhd.Timescale
	f, err := os.Open(segPath)
	require.NoError(t, err)
	defer f.Close()
	file, err := mp4.DecodeFile(f)
	require.NoError(t, err, segPath)
	require.Len(t, file.Segments, 1)
	require.NotNil(t, file.Segments[0].Styp, "CMAF segment starts with styp")
	require.Len(t, file.Segments[0].Fragments, 1)
	frag := file.Segments[0].Fragments[0]
	samples, err := frag.GetFullSamples(nil)
	require.NoError(t, err)
	require.NotEmpty(t, samples)
	var dur uint64
	for _, s := range samples {
		dur += uint64(s.Dur)
	}
	return segFacts{
		start:     float64(samples[0].DecodeTime) / float64(timescale),
		dur:       float64(dur) / float64(timescale),
		firstSync: samples[0].IsSync(),
		samples:   len(samples),
	}
}

func m4sNumbers(t *testing.T, dir string) []uint64 {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*.m4s"))
	require.NoError(t, err)
	var out []uint64
	for _, m := range matches {
		n, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(m), ".m4s"), 10, 64)
		require.NoError(t, err)
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ffprobe output, the parts the tests look at.
type probeResult struct {
	Streams []probeStream `json:"streams"`
	Format  struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

type probeStream struct {
	CodecType string `json:"codec_type"`
	CodecName string `json:"codec_name"`
	Profile   string `json:"profile"`
	Level     int    `json:"level"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

func (p probeResult) videoStream(t *testing.T) probeStream {
	t.Helper()
	for _, s := range p.Streams {
		if s.CodecType == "video" {
			return s
		}
	}
	t.Fatalf("no video stream in %+v", p.Streams)
	return probeStream{}
}

func (p probeResult) videoSizes() []string {
	var out []string
	for _, s := range p.Streams {
		if s.CodecType == "video" {
			size := strconv.Itoa(s.Width) + "x" + strconv.Itoa(s.Height)
			if !slices.Contains(out, size) {
				out = append(out, size)
			}
		}
	}
	return out
}

func (p probeResult) hasAudio(codec string) bool {
	return slices.ContainsFunc(p.Streams, func(s probeStream) bool { return s.CodecType == "audio" && s.CodecName == codec })
}

func (p probeResult) duration(t *testing.T) float64 {
	t.Helper()
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	require.NoError(t, err)
	return d
}

// ffprobeFirstSegment runs ffprobe on the first segment of a media playlist,
// concatenated with its CMAF header.
func ffprobeFirstSegment(t *testing.T, playlist string) probeResult {
	t.Helper()
	dir := filepath.Dir(playlist)
	segs := playlistSegments(readMediaPlaylist(t, playlist))
	init, err := os.ReadFile(filepath.Join(dir, segs[0].mapURI))
	require.NoError(t, err)
	seg, err := os.ReadFile(filepath.Join(dir, segs[0].uri))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "probe.mp4")
	require.NoError(t, os.WriteFile(path, append(init, seg...), 0o644))
	return ffprobeJSON(t, path)
}

// ffprobeJSON runs ffprobe on path and fails on any error it reports.
func ffprobeJSON(t *testing.T, path string) probeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "ffprobe %s: %s", path, stderr.String())
	require.Empty(t, strings.TrimSpace(stderr.String()), "ffprobe %s reported errors", path)
	var res probeResult
	require.NoError(t, json.Unmarshal(out, &res))
	return res
}

// xMPD is an MPD read with encoding/xml, independently of the library that
// wrote it.
type xMPD struct {
	XMLName                    xml.Name `xml:"urn:mpeg:dash:schema:mpd:2011 MPD"`
	Type                       string   `xml:"type,attr"`
	Profiles                   string   `xml:"profiles,attr"`
	AvailabilityStartTime      string   `xml:"availabilityStartTime,attr"`
	PublishTime                string   `xml:"publishTime,attr"`
	MediaPresentationDuration  string   `xml:"mediaPresentationDuration,attr"`
	MinimumUpdatePeriod        string   `xml:"minimumUpdatePeriod,attr"`
	TimeShiftBufferDepth       string   `xml:"timeShiftBufferDepth,attr"`
	SuggestedPresentationDelay string   `xml:"suggestedPresentationDelay,attr"`
	MinBufferTime              string   `xml:"minBufferTime,attr"`
	Periods                    []struct {
		ID             string `xml:"id,attr"`
		Start          string `xml:"start,attr"`
		AdaptationSets []struct {
			ContentType      string `xml:"contentType,attr"`
			MimeType         string `xml:"mimeType,attr"`
			SegmentAlignment string `xml:"segmentAlignment,attr"`
			StartWithSAP     string `xml:"startWithSAP,attr"`
			Reps             []struct {
				ID        string `xml:"id,attr"`
				Codecs    string `xml:"codecs,attr"`
				Bandwidth int    `xml:"bandwidth,attr"`
				ST        xST    `xml:"SegmentTemplate"`
			} `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
	UTCTiming []struct {
		Scheme string `xml:"schemeIdUri,attr"`
		Value  string `xml:"value,attr"`
	} `xml:"UTCTiming"`
}

type xST struct {
	Timescale   uint64 `xml:"timescale,attr"`
	StartNumber uint64 `xml:"startNumber,attr"`
	PTO         uint64 `xml:"presentationTimeOffset,attr"`
	Media       string `xml:"media,attr"`
	Init        string `xml:"initialization,attr"`
	S           []struct {
		T *uint64 `xml:"t,attr"`
		D uint64  `xml:"d,attr"`
		R int     `xml:"r,attr"`
	} `xml:"SegmentTimeline>S"`
}

type tlEntry struct {
	number uint64
	t, d   uint64
}

func (st xST) expand() []tlEntry {
	var out []tlEntry
	n, t := st.StartNumber, uint64(0)
	for _, s := range st.S {
		if s.T != nil {
			t = *s.T
		}
		for range s.R + 1 {
			out = append(out, tlEntry{number: n, t: t, d: s.D})
			n++
			t += s.D
		}
	}
	return out
}

func readMPD(t *testing.T, path string) xMPD {
	t.Helper()
	var m xMPD
	require.NoError(t, xml.Unmarshal([]byte(readFile(t, path)), &m), path)
	require.Equal(t, "urn:mpeg:dash:profile:isoff-live:2011", m.Profiles)
	return m
}

// checkTimelines verifies that every Representation's SegmentTimeline lists
// exactly the segment files on disk with the times found inside them.
func checkTimelines(t *testing.T, dir string, m xMPD, segs map[string][]segInfo) {
	t.Helper()
	for _, per := range m.Periods {
		for _, as := range per.AdaptationSets {
			require.Contains(t, []string{"video/mp4", "audio/mp4"}, as.MimeType)
			for _, rep := range as.Reps {
				require.NotEmpty(t, rep.Codecs)
				require.Positive(t, rep.Bandwidth)
				entries := rep.ST.expand()
				require.Equal(t, m4sNumbers(t, filepath.Join(dir, rep.ID)), numbersOf(entries), rep.ID)
				init := strings.ReplaceAll(rep.ST.Init, "$RepresentationID$", rep.ID)
				require.FileExists(t, filepath.Join(dir, init))
				for i, e := range entries {
					want := segs[rep.ID][i]
					require.Equal(t, strconv.FormatUint(e.number, 10)+".m4s", want.uri)
					require.InDelta(t, want.start, float64(e.t)/float64(rep.ST.Timescale), 1e-6, rep.ID)
					require.InDelta(t, want.dur, float64(e.d)/float64(rep.ST.Timescale), 1e-6, rep.ID)
				}
			}
		}
	}
}

func numbersOf(es []tlEntry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.number)
	}
	return out
}
