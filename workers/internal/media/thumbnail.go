package media

import "time"

// Thumbnail is a still the pipeline wrote: Path is the JPEG file, At the wall-clock time the frame was shown.
type Thumbnail struct {
	Path          string
	At            time.Time
	Width, Height int
}
