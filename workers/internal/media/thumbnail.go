package media

import "time"

// Thumbnail is a JPEG still the worker wrote from a decoded frame.
type Thumbnail struct {
	Path          string    // the JPEG file
	At            time.Time // wall-clock time the frame was shown
	Width, Height int       // pixels
}
