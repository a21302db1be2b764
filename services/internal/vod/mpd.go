package vod

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
)

const (
	mpdNamespace          = "urn:mpeg:dash:schema:mpd:2011"
	mpdProfile            = "urn:mpeg:dash:profile:isoff-main:2011" // SegmentList is not in the live profile
	audioChannelConfigURN = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
)

// The MPD elements Build writes, in schema order (ISO/IEC 23009-1).
type (
	mpdXML struct {
		XMLName                   xml.Name    `xml:"MPD"`
		Xmlns                     string      `xml:"xmlns,attr"`
		Profiles                  string      `xml:"profiles,attr"`
		Type                      string      `xml:"type,attr"`
		MediaPresentationDuration string      `xml:"mediaPresentationDuration,attr"`
		MinBufferTime             string      `xml:"minBufferTime,attr"`
		MaxSegmentDuration        string      `xml:"maxSegmentDuration,attr"`
		Periods                   []periodXML `xml:"Period"`
	}
	periodXML struct {
		ID             string             `xml:"id,attr"`
		Start          string             `xml:"start,attr"`
		Duration       string             `xml:"duration,attr"`
		AdaptationSets []adaptationSetXML `xml:"AdaptationSet"`
	}
	adaptationSetXML struct {
		ID               int                 `xml:"id,attr"`
		ContentType      string              `xml:"contentType,attr"`
		MimeType         string              `xml:"mimeType,attr"`
		Lang             string              `xml:"lang,attr,omitempty"`
		SegmentAlignment bool                `xml:"segmentAlignment,attr"`
		StartWithSAP     int                 `xml:"startWithSAP,attr"`
		MaxWidth         int                 `xml:"maxWidth,attr,omitempty"`
		MaxHeight        int                 `xml:"maxHeight,attr,omitempty"`
		Representations  []representationXML `xml:"Representation"`
	}
	representationXML struct {
		ID                        string          `xml:"id,attr"`
		Bandwidth                 int             `xml:"bandwidth,attr"`
		Codecs                    string          `xml:"codecs,attr"`
		Width                     int             `xml:"width,attr,omitempty"`
		Height                    int             `xml:"height,attr,omitempty"`
		FrameRate                 string          `xml:"frameRate,attr,omitempty"`
		AudioSamplingRate         int             `xml:"audioSamplingRate,attr,omitempty"`
		AudioChannelConfiguration *descriptorXML  `xml:"AudioChannelConfiguration"`
		SegmentList               *segmentListXML `xml:"SegmentList"`
	}
	descriptorXML struct {
		SchemeIDURI string `xml:"schemeIdUri,attr"`
		Value       string `xml:"value,attr"`
	}
	segmentListXML struct {
		Timescale              uint32        `xml:"timescale,attr"`
		PresentationTimeOffset uint64        `xml:"presentationTimeOffset,attr"`
		Initialization         urlXML        `xml:"Initialization"`
		SegmentTimeline        timelineXML   `xml:"SegmentTimeline"`
		SegmentURLs            []segmentURLX `xml:"SegmentURL"`
	}
	urlXML struct {
		SourceURL string `xml:"sourceURL,attr"`
	}
	timelineXML struct {
		S []sXML `xml:"S"`
	}
	sXML struct {
		T uint64 `xml:"t,attr"`
		D uint64 `xml:"d,attr"`
	}
	segmentURLX struct {
		Media string `xml:"media,attr"`
	}
)

// period is one DASH Period: a contiguous block of the top track (one run,
// no gap), and the segments of every track that belong to it.
type period struct {
	run       string
	first     uint64 // the top track's first segment number in it
	durationS float64
	startS    float64 // sum of the previous Periods' durations
	segs      map[*track][]*segment
}

// periods splits the asset into Periods along the top track's blocks, then
// gives every other track's segment to the Period of its run whose first
// number is the highest one not above the segment's (a segment the top track
// lacks stays in the Period before it). Segments of a run the top track
// does not have are left out of the MPD.
func periods(a *asset) []*period {
	top := a.top()
	var ps []*period
	var start float64
	for _, s := range top.segs {
		if s.disc {
			if n := len(ps); n > 0 {
				start += ps[n-1].durationS
			}
			ps = append(ps, &period{run: s.run, first: s.Number, startS: start, segs: map[*track][]*segment{}})
		}
		p := ps[len(ps)-1]
		p.durationS += s.DurationS
		p.segs[top] = append(p.segs[top], s)
	}
	for _, t := range a.tracks() {
		if t == top {
			continue
		}
		for _, s := range t.segs {
			var into *period
			for _, p := range ps {
				if p.run != s.run {
					continue
				}
				if into == nil || p.first <= s.Number {
					into = p
				}
			}
			if into != nil {
				into.segs[t] = append(into.segs[t], s)
			}
		}
	}
	return ps
}

// manifest is the static DASH MPD: one Period per contiguous block, a video
// AdaptationSet (a Representation per rendition) and an audio one, each
// Representation with a SegmentList naming its init and segments and a
// SegmentTimeline of their media times (presentationTimeOffset is the
// Period's first media time, so each Period starts at 0).
func manifest(a *asset) ([]byte, error) {
	ps := periods(a)
	var total, longest float64
	for _, p := range ps {
		total += p.durationS
	}
	for _, t := range a.tracks() {
		for _, s := range t.segs {
			longest = max(longest, s.DurationS)
		}
	}
	m := mpdXML{
		Xmlns: mpdNamespace, Profiles: mpdProfile, Type: "static",
		MediaPresentationDuration: isoDuration(total),
		MinBufferTime:             isoDuration(math.Ceil(longest)),
		MaxSegmentDuration:        isoDuration(longest),
	}
	for i, p := range ps {
		px := periodXML{ID: strconv.Itoa(i), Start: isoDuration(p.startS), Duration: isoDuration(p.durationS)}
		video := adaptationSetXML{ID: 0, ContentType: "video", MimeType: "video/mp4", SegmentAlignment: true, StartWithSAP: 1}
		for _, t := range a.video {
			segs := p.segs[t]
			if len(segs) == 0 {
				continue
			}
			r := representationXML{
				ID: t.name, Bandwidth: t.bandwidth(), Codecs: t.desc.Codec,
				Width: t.desc.Width, Height: t.desc.Height, SegmentList: a.segmentList(segs),
			}
			if frameRate(t.desc.FrameRate) > 0 {
				r.FrameRate = t.desc.FrameRate
			}
			video.MaxWidth, video.MaxHeight = max(video.MaxWidth, r.Width), max(video.MaxHeight, r.Height)
			video.Representations = append(video.Representations, r)
		}
		if len(video.Representations) > 0 {
			px.AdaptationSets = append(px.AdaptationSets, video)
		}
		audio := adaptationSetXML{ID: 1, ContentType: "audio", MimeType: "audio/mp4", Lang: "und", SegmentAlignment: true, StartWithSAP: 1}
		for _, t := range a.audio {
			segs := p.segs[t]
			if len(segs) == 0 {
				continue
			}
			r := representationXML{
				ID: t.name, Bandwidth: t.bandwidth(), Codecs: t.desc.Codec,
				AudioSamplingRate: t.desc.SampleRate, SegmentList: a.segmentList(segs),
			}
			if t.desc.Channels > 0 {
				r.AudioChannelConfiguration = &descriptorXML{SchemeIDURI: audioChannelConfigURN, Value: strconv.Itoa(t.desc.Channels)}
			}
			audio.Representations = append(audio.Representations, r)
		}
		if len(audio.Representations) > 0 {
			px.AdaptationSets = append(px.AdaptationSets, audio)
		}
		m.Periods = append(m.Periods, px)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encoding MPD: %w", err)
	}
	buf.WriteString("\n")
	return buf.Bytes(), nil
}

// segmentList describes one Representation's segments in one Period. URLs
// are relative to the MPD (the asset's top).
func (a *asset) segmentList(segs []*segment) *segmentListXML {
	first := segs[0]
	scale := a.inits[first.Init].Track.Timescale
	if scale == 0 {
		scale = 1000
	}
	l := &segmentListXML{
		Timescale:              scale,
		PresentationTimeOffset: first.MediaStart,
		Initialization:         urlXML{SourceURL: relative(a.prefix, first.Init)},
	}
	for _, s := range segs {
		l.SegmentTimeline.S = append(l.SegmentTimeline.S, sXML{T: s.MediaStart, D: uint64(math.Round(s.DurationS * float64(scale)))})
		l.SegmentURLs = append(l.SegmentURLs, segmentURLX{Media: relative(a.prefix, s.Key)})
	}
	return l
}

// isoDuration writes seconds as an xs:duration with millisecond precision.
func isoDuration(s float64) string {
	return "PT" + strconv.FormatFloat(math.Round(s*1000)/1000, 'f', -1, 64) + "S"
}
