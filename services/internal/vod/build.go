package vod

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/storage"
)

// Build writes the asset's multivariant playlist (index.m3u8) and returns
// what it holds. This is the control plane's first version; the vodbuild
// branch replaces this file with the full build (media playlists, MPD, MP4,
// poster).
func Build(ctx context.Context, st storage.Store, in Input) (Result, error) {
	var res Result
	durations := map[string]float64{}
	var tracks []string
	byName := map[string]*Rendition{}
	for _, o := range in.Objects {
		res.SizeBytes += o.Size
		switch o.Kind {
		case job.ObjectSegment:
			durations[o.Rendition] += o.DurationS
		case job.ObjectInit:
			if o.Track == nil || byName[o.Rendition] != nil {
				continue
			}
			r := &Rendition{Name: o.Rendition, Width: o.Track.Width, Height: o.Track.Height, Bandwidth: o.Track.Bandwidth,
				Codec: o.Track.Codec, Audio: o.Track.Audio}
			byName[o.Rendition] = r
			tracks = append(tracks, o.Rendition)
		}
	}
	if len(durations) == 0 {
		return Result{}, errors.New("no segment was recorded")
	}
	for _, d := range durations {
		res.DurationS = max(res.DurationS, d)
	}
	lost := map[string]float64{}
	for _, l := range in.Lost {
		lost[l.Rendition] += l.DurationS
	}
	for _, d := range lost {
		res.LostS = max(res.LostS, d)
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	for _, name := range tracks {
		r := byName[name]
		res.Renditions = append(res.Renditions, *r)
		if r.Audio {
			continue
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,RESOLUTION=%dx%d,CODECS=\"%s\"\n%s/index.m3u8\n",
			max(r.Bandwidth, 1), r.Width, r.Height, r.Codec, r.Name)
	}
	slices.SortStableFunc(res.Renditions, func(a, b Rendition) int { return b.Height - a.Height })
	key := job.AssetPrefix(in.AssetID) + "index.m3u8"
	body := b.String()
	if err := st.Put(ctx, key, strings.NewReader(body), int64(len(body)), "application/vnd.apple.mpegurl"); err != nil {
		return Result{}, fmt.Errorf("writing %s: %w", key, err)
	}
	return res, nil
}
