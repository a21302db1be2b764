package pipeline

/*
#cgo pkg-config: gobject-2.0
#include <glib-object.h>

static gint dionysiaLiveObjects;

static void dionysiaObjectFinalized(gpointer data, GObject *where) {
	g_atomic_int_add(&dionysiaLiveObjects, -1);
}

static void dionysiaTrackObject(gpointer obj) {
	g_atomic_int_inc(&dionysiaLiveObjects);
	g_object_weak_ref(G_OBJECT(obj), dionysiaObjectFinalized, NULL);
}

static gint dionysiaLiveObjectCount(void) {
	return g_atomic_int_get(&dionysiaLiveObjects);
}
*/
import "C"

import "github.com/go-gst/go-gst/gst"

// trackObject counts e until GLib finalizes it. Every element and pipeline
// this package creates is tracked, so tests can prove that hundreds of
// start/stop cycles leave no GStreamer object behind.
func trackObject(e *gst.Element) { C.dionysiaTrackObject(C.gpointer(e.Unsafe())) }

// LiveObjects is the number of GStreamer elements (pipelines included) that
// this package created and GLib has not finalized yet. Go wrappers release
// their reference from a finalizer, so run the garbage collector before
// reading it.
func LiveObjects() int { return int(C.dionysiaLiveObjectCount()) }
