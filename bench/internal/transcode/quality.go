package transcode

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/dionysia/dionysia/bench/internal/measure"
)

// Rendition is one encoded rendition to score.
type Rendition struct {
	Name          string
	Width, Height int
	FrameRate     float64
	Playlist      string // HLS media playlist of the rendition (fMP4)
}

// Score is a rendition's quality against the scaled source.
type Score struct {
	Name string
	PSNR float64 // average over all planes, dB
	SSIM float64 // "All" (luma and chroma weighted)
	// RawPSNR and RawSSIM compare the decoded pixels as they are; PSNR and
	// SSIM first convert a rendition tagged BT.601 back to BT.709 (what a
	// player honouring the tag shows). They differ only for such renditions.
	RawPSNR, RawSSIM float64
	ColorSpace       string // the rendition's tagged matrix, from ffprobe
}

var (
	rePSNR = regexp.MustCompile(`\[(psnr@[a-z0-9]+) @ [^]]+\] PSNR .*average:([0-9.]+|inf)`)
	reSSIM = regexp.MustCompile(`\[(ssim@[a-z0-9]+) @ [^]]+\] SSIM .*All:([0-9.]+)`)
)

// Quality decodes every rendition and compares it with the source scaled to
// its size (bicubic) at its frame rate, with ffmpeg's psnr and ssim filters,
// in one ffmpeg run that decodes the source once. Both sides are re-timed to
// start at 0 and compared frame by frame up to the shorter one.
func Quality(ctx context.Context, src string, rends []Rendition) ([]Score, error) {
	args := []string{"-hide_banner", "-nostdin", "-i", src}
	scores := make([]Score, len(rends))
	for i, r := range rends {
		args = append(args, "-i", r.Playlist)
		scores[i] = Score{Name: r.Name, ColorSpace: probeColorSpace(ctx, r.Playlist)}
	}
	var fc strings.Builder
	fmt.Fprintf(&fc, "[0:v]setpts=PTS-STARTPTS,split=%d", len(rends))
	for i := range rends {
		fmt.Fprintf(&fc, "[src%d]", i)
	}
	var maps []string
	for i, r := range rends {
		bt601 := scores[i].ColorSpace == "smpte170m" || scores[i].ColorSpace == "bt470bg"
		copies := 2
		if bt601 {
			copies = 4
		}
		fmt.Fprintf(&fc, ";[src%d]fps=%s,scale=%d:%d:flags=bicubic,format=yuv420p,settb=AVTB,split=%d", i, fpsExpr(r.FrameRate), r.Width, r.Height, copies)
		for c := range copies {
			fmt.Fprintf(&fc, "[ref%d_%d]", i, c)
		}
		fmt.Fprintf(&fc, ";[%d:v]setpts=PTS-STARTPTS,format=yuv420p,settb=AVTB,split=%d", i+1, copies)
		for c := range copies {
			fmt.Fprintf(&fc, "[dis%d_%d]", i, c)
		}
		// Tag-aware pair: convert BT.601 renditions back to BT.709.
		fix := ""
		if bt601 {
			fix = "scale=in_color_matrix=bt601:out_color_matrix=bt709,"
		}
		fmt.Fprintf(&fc, ";[dis%d_0]%snull[d%da];[d%da][ref%d_0]psnr@t%d=shortest=1[o%da]", i, fix, i, i, i, i, i)
		fmt.Fprintf(&fc, ";[dis%d_1]%snull[d%db];[d%db][ref%d_1]ssim@t%d=shortest=1[o%db]", i, fix, i, i, i, i, i)
		maps = append(maps, fmt.Sprintf("[o%da]", i), fmt.Sprintf("[o%db]", i))
		if bt601 {
			fmt.Fprintf(&fc, ";[dis%d_2][ref%d_2]psnr@r%d=shortest=1[o%dc]", i, i, i, i)
			fmt.Fprintf(&fc, ";[dis%d_3][ref%d_3]ssim@r%d=shortest=1[o%dd]", i, i, i, i)
			maps = append(maps, fmt.Sprintf("[o%dc]", i), fmt.Sprintf("[o%dd]", i))
		}
	}
	args = append(args, "-filter_complex", fc.String())
	for _, m := range maps {
		args = append(args, "-map", m)
	}
	args = append(args, "-f", "null", "-")
	res, err := measure.Run(ctx, "", nil, "ffmpeg", args...)
	if err != nil {
		return nil, fmt.Errorf("scoring quality: %w", err)
	}
	found := map[string]float64{}
	for _, m := range rePSNR.FindAllStringSubmatch(string(res.Stderr), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		if m[2] == "inf" {
			v = 100
		}
		found[m[1]] = v
	}
	for _, m := range reSSIM.FindAllStringSubmatch(string(res.Stderr), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		found[m[1]] = v
	}
	for i := range scores {
		var ok1, ok2 bool
		scores[i].PSNR, ok1 = found[fmt.Sprintf("psnr@t%d", i)]
		scores[i].SSIM, ok2 = found[fmt.Sprintf("ssim@t%d", i)]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("scoring quality: no PSNR/SSIM for %s in ffmpeg's output", rends[i].Name)
		}
		scores[i].RawPSNR, scores[i].RawSSIM = scores[i].PSNR, scores[i].SSIM
		if v, ok := found[fmt.Sprintf("psnr@r%d", i)]; ok {
			scores[i].RawPSNR = v
		}
		if v, ok := found[fmt.Sprintf("ssim@r%d", i)]; ok {
			scores[i].RawSSIM = v
		}
	}
	return scores, nil
}

func probeColorSpace(ctx context.Context, path string) string {
	res, err := measure.Run(ctx, "", nil, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=color_space", "-of", "default=nw=1:nk=1", path)
	if err != nil {
		return "unknown"
	}
	s := strings.TrimSpace(string(res.Stdout))
	if s == "" {
		return "unknown"
	}
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// X264Options returns the option string x264 wrote into the first file
// holding it (its SEI), e.g. "cabac=1 ref=1 ...", or "".
func X264Options(data []byte) string {
	const tag = "options: "
	i := strings.Index(string(data), "x264 - core")
	if i < 0 {
		return ""
	}
	s := string(data[i:])
	j := strings.Index(s, tag)
	if j < 0 {
		return ""
	}
	s = s[j+len(tag):]
	if k := strings.IndexByte(s, 0); k >= 0 {
		s = s[:k]
	}
	return strings.TrimSpace(s)
}
