// Package gstinit initialises GStreamer once per process. Every package that
// builds GStreamer elements calls Init before its first element; gst_init is
// not safe to call concurrently and only needs to run once.
package gstinit

import (
	"sync"

	"github.com/go-gst/go-gst/gst"
)

var once sync.Once

// Init initialises GStreamer. It is safe to call from any goroutine, any
// number of times; only the first call does work.
func Init() {
	once.Do(func() { gst.Init(nil) })
}
