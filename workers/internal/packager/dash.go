package packager

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
)

const (
	dashMedia              = "$RepresentationID$/$Number$.m4s"
	utcTimingDirect        = "urn:mpeg:dash:utc:direct:2014"
	audioChannelConfigURN  = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
	dashDateTimeLayout     = "2006-01-02T15:04:05.000Z"
	suggestedDelaySegments = 3
)

// periodView is one Period's listed segments per rendition.
type periodView struct {
	per   *period
	video []repView
	audio *repView
}

type repView struct {
	rd   *rendition
	segs []segmentRecord
}

// writeMPD rewrites the DASH MPD: one Period per pipeline run that still has
// segments in the window, a SegmentTemplate with a SegmentTimeline per
// Representation. While live the MPD is dynamic; after Close(true) it is static.
func (p *Packager) writeMPD() error {
	if p.cfg.DisableDASH || p.ast.IsZero() || p.held {
		return nil
	}
	views := p.periodViews()
	if len(views) == 0 {
		return nil
	}
	now := p.cfg.Clock()
	static := p.ended
	T := p.cfg.SegmentDuration

	var m *mpd.MPD
	var base time.Duration // static: media time that becomes presentation time 0
	if static {
		m = mpd.NewMPD(mpd.STATIC_TYPE)
		base = time.Duration(1<<63 - 1)
		for _, v := range views[0].all() {
			base = min(base, v.segs[0].startTime())
		}
		var end time.Duration
		for _, pv := range views {
			for _, v := range pv.all() {
				last := v.segs[len(v.segs)-1]
				end = max(end, last.startTime()+last.duration())
			}
		}
		m.MediaPresentationDuration = durPtr(end - base)
	} else {
		m = mpd.NewMPD(mpd.DYNAMIC_TYPE)
		m.AvailabilityStartTime = mpd.DateTime(p.ast.UTC().Format(dashDateTimeLayout))
		m.PublishTime = mpd.DateTime(now.UTC().Format(dashDateTimeLayout))
		m.MinimumUpdatePeriod = durPtr(T)
		m.TimeShiftBufferDepth = durPtr(time.Duration(p.cfg.WindowSize) * T)
		m.SuggestedPresentationDelay = durPtr(suggestedDelaySegments * T)
		m.UTCTimings = []*mpd.DescriptorType{{
			SchemeIdUri: utcTimingDirect,
			Value:       now.UTC().Format(dashDateTimeLayout),
		}}
	}
	m.Profiles = mpd.PROFILE_LIVE
	m.MinBufferTime = durPtr(T)
	var maxSeg time.Duration
	for _, pv := range views {
		for _, v := range pv.all() {
			for _, s := range v.segs {
				maxSeg = max(maxSeg, s.duration())
			}
		}
	}
	m.MaxSegmentDuration = durPtr(maxSeg.Round(time.Millisecond))

	for _, pv := range views {
		effective := max(pv.per.offset, base)
		per := mpd.NewPeriod()
		per.Id = strconv.Itoa(pv.per.index)
		per.Start = durPtr(effective - base)
		if len(pv.video) > 0 {
			as := mpd.NewAdaptationSetWithParams("video", "video/mp4", true, 1)
			as.Id = mpd.Ptr(uint32(0))
			for _, v := range pv.video {
				d := v.rd.desc
				peak := d.maxBitrate
				if peak <= 0 {
					peak = d.bitrate
				}
				bw, _ := v.rd.bandwidth(peak, d.bitrate)
				rep := mpd.NewRepresentationWithID(v.rd.name, d.codec, "", bw)
				rep.Width, rep.Height = uint32(d.width), uint32(d.height)
				if fr := frameRateAttr(d); fr != "" {
					rep.FrameRate = mpd.FrameRateType(fr)
				}
				rep.SegmentTemplate = segmentTemplate(v, effective)
				as.MaxWidth = max(as.MaxWidth, rep.Width)
				as.MaxHeight = max(as.MaxHeight, rep.Height)
				as.Representations = append(as.Representations, rep)
			}
			per.AdaptationSets = append(per.AdaptationSets, as)
		}
		if v := pv.audio; v != nil {
			d := v.rd.desc
			fallback := d.bitrate
			if fallback <= 0 {
				fallback = 128_000
			}
			as := mpd.NewAdaptationSetWithParams("audio", "audio/mp4", true, 1)
			as.Id = mpd.Ptr(uint32(1))
			as.Lang = "und"
			bw, _ := v.rd.bandwidth(fallback, fallback)
			rep := mpd.NewRepresentationWithID(AudioName, d.codec, "", bw)
			rate := mpd.UIntVectorType(strconv.Itoa(d.sampleRate))
			rep.AudioSamplingRate = &rate
			rep.AudioChannelConfigurations = []*mpd.DescriptorType{{
				SchemeIdUri: audioChannelConfigURN,
				Value:       strconv.Itoa(d.channels),
			}}
			rep.SegmentTemplate = segmentTemplate(*v, effective)
			as.Representations = append(as.Representations, rep)
			per.AdaptationSets = append(per.AdaptationSets, as)
		}
		m.Periods = append(m.Periods, per)
	}

	var buf bytes.Buffer
	if _, err := m.Write(&buf, "  ", true); err != nil {
		return fmt.Errorf("encoding MPD: %w", err)
	}
	if err := WriteFileAtomic(filepath.Join(p.cfg.Dir, ManifestName), buf.Bytes()); err != nil {
		return fmt.Errorf("writing MPD: %w", err)
	}
	return nil
}

func (pv periodView) all() []repView {
	out := append([]repView(nil), pv.video...)
	if pv.audio != nil {
		out = append(out, *pv.audio)
	}
	return out
}

// periodViews groups each rendition's listed segments by run. Periods and
// Representations without listed segments are left out.
func (p *Packager) periodViews() []periodView {
	var views []periodView
	for _, per := range p.periods {
		pv := periodView{per: per}
		for _, rd := range per.video {
			if segs := runSegments(rd.window(p.cfg.WindowSize), per.index); len(segs) > 0 {
				pv.video = append(pv.video, repView{rd: rd, segs: segs})
			}
		}
		if rd := per.audio; rd != nil {
			if segs := runSegments(rd.window(p.cfg.WindowSize), per.index); len(segs) > 0 {
				pv.audio = &repView{rd: rd, segs: segs}
			}
		}
		if len(pv.video) > 0 || pv.audio != nil {
			views = append(views, pv)
		}
	}
	return views
}

func runSegments(segs []segmentRecord, run int) []segmentRecord {
	var out []segmentRecord
	for _, s := range segs {
		if s.run == run {
			out = append(out, s)
		}
	}
	return out
}

// segmentTemplate describes a Representation's segments in one Period.
// Segment times are on the session timeline (ticks since
// availabilityStartTime), so presentationTimeOffset is the Period's start.
func segmentTemplate(v repView, periodStart time.Duration) *mpd.SegmentTemplateType {
	st := &mpd.SegmentTemplateType{
		Media:          dashMedia,
		Initialization: "$RepresentationID$/" + v.segs[0].init,
	}
	st.StartNumber = mpd.Ptr(uint32(v.segs[0].number))
	st.SetTimescale(v.segs[0].scale)
	st.PresentationTimeOffset = mpd.Ptr(uint64(max(ticks(periodStart, v.segs[0].scale), 0)))
	tl := &mpd.SegmentTimelineType{}
	var prevEnd uint64
	for i, s := range v.segs {
		if n := len(tl.S); n > 0 && s.start == prevEnd && tl.S[n-1].D == s.dur {
			tl.S[n-1].R++
		} else {
			e := &mpd.S{D: s.dur}
			if i == 0 || s.start != prevEnd {
				e.T = mpd.Ptr(s.start)
			}
			tl.S = append(tl.S, e)
		}
		prevEnd = s.start + s.dur
	}
	st.SegmentTimeline = tl
	return st
}

func frameRateAttr(d trackDesc) string {
	switch {
	case d.frameRateNum > 0 && d.frameRateDen == 1:
		return strconv.Itoa(d.frameRateNum)
	case d.frameRateNum > 0 && d.frameRateDen > 0:
		return strconv.Itoa(d.frameRateNum) + "/" + strconv.Itoa(d.frameRateDen)
	case d.frameRate > 0 && d.frameRate == math.Trunc(d.frameRate):
		return strconv.Itoa(int(d.frameRate))
	case d.frameRate > 0:
		return strconv.Itoa(int(math.Round(d.frameRate*1000))) + "/1000"
	}
	return ""
}

func durPtr(d time.Duration) *mpd.Duration {
	v := mpd.Duration(d)
	return &v
}
