package live

import (
	"encoding/binary"
	"math"
	"time"
)

// The publisher's audio carries a 100 ms beep at every whole second k of its
// timeline, at 500 + 100·(k mod 16) Hz, so a beep found in the output tells
// which second of the publisher's timeline it is, modulo 16 s.
const (
	beepBaseHz  = 500
	beepStepHz  = 100
	beepModulo  = 16
	beepLength  = 100 * time.Millisecond
	sampleRate  = 48000
	beepExprFmt = "0.5*sin(2*PI*(500+100*mod(floor(t),16))*t)*lt(mod(t,1),0.1)"
)

// beep is one beep found in decoded audio.
type beep struct {
	At    time.Duration // onset, from the start of the decoded audio
	Index int           // k mod 16
}

// findBeeps scans mono s16le PCM at 48 kHz for beeps.
func findBeeps(pcm []byte) []beep {
	n := len(pcm) / 2
	s := make([]float64, n)
	for i := range n {
		s[i] = float64(int16(binary.LittleEndian.Uint16(pcm[2*i:]))) / 32768
	}
	const win = sampleRate / 200 // 5 ms
	var beeps []beep
	quiet := 0
	for i := 0; i+win <= n; i += win {
		var e float64
		for _, v := range s[i : i+win] {
			e += v * v
		}
		rms := math.Sqrt(e / win)
		if rms < 0.05 {
			quiet++
			continue
		}
		if quiet < 60 { // not 300 ms of quiet before: inside a beep
			quiet = 0
			continue
		}
		quiet = 0
		// Onset: refine to the first sample above a threshold in this window.
		on := i
		for j := i; j < i+win; j++ {
			if math.Abs(s[j]) > 0.1 {
				on = j
				break
			}
		}
		a, b := on+sampleRate/100, on+9*sampleRate/100 // 10–90 ms into the beep
		if b >= n {
			break
		}
		cross := 0
		for j := a + 1; j < b; j++ {
			if (s[j-1] < 0) != (s[j] < 0) {
				cross++
			}
		}
		hz := float64(cross) / 2 / (float64(b-a) / sampleRate)
		idx := int(math.Round((hz - beepBaseHz) / beepStepHz))
		if idx < 0 || idx >= beepModulo {
			continue
		}
		beeps = append(beeps, beep{At: time.Duration(float64(on) / sampleRate * float64(time.Second)), Index: idx})
	}
	return beeps
}
