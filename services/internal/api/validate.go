package api

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/store"
)

// Limits of request fields.
const (
	maxStreamName    = 200
	maxDescription   = 500
	maxAPIKeyName    = 100
	minSegmentSecs   = 1
	maxSegmentSecs   = 10
	minPlaylistSegs  = 3
	maxPlaylistSegs  = 100
	maxProfileRefLen = 64
	minDeleteAfter   = 1
	maxDeleteAfter   = 3650
	minThumbInterval = 1.0
	maxThumbInterval = 3600.0
)

var (
	hardwareValues = []string{job.HardwareAuto, job.HardwareGPU, job.HardwareCPU}
	policyValues   = []string{store.PlaybackPublic, store.PlaybackSigned}
	outputValues   = []string{job.OutputHLS, job.OutputDASH}
	scopeValues    = []string{store.ScopeAdmin, store.ScopeRead}
	recordingModes = []string{store.RecordingOff, store.RecordingAutomatic}
	// profileNameRE matches the profiles_name_check constraint.
	profileNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

// checkText validates a human-readable name: non-blank, at most max
// characters, no control characters.
func checkText(errs *[]apiv1.FieldError, field, v string, max int, required bool) {
	switch {
	case !utf8.ValidString(v):
		*errs = append(*errs, fieldError(field, "must be valid UTF-8"))
	case required && strings.TrimSpace(v) == "":
		*errs = append(*errs, fieldError(field, "must not be empty"))
	case utf8.RuneCountInString(v) > max:
		*errs = append(*errs, fieldError(field, "must be at most %d characters, got %d", max, utf8.RuneCountInString(v)))
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		*errs = append(*errs, fieldError(field, "must not contain control characters"))
	}
}

func checkEnum(errs *[]apiv1.FieldError, field string, v *string, allowed []string) {
	if v != nil && !slices.Contains(allowed, *v) {
		*errs = append(*errs, fieldError(field, "must be one of %s, got %q", strings.Join(allowed, ", "), *v))
	}
}

func checkRange(errs *[]apiv1.FieldError, field string, v *int, lo, hi int, unit string) {
	if v != nil && (*v < lo || *v > hi) {
		*errs = append(*errs, fieldError(field, "must be between %d and %d %s, got %d", lo, hi, unit, *v))
	}
}

func checkOutputs(errs *[]apiv1.FieldError, outputs []string) {
	if outputs == nil {
		return
	}
	if len(outputs) == 0 {
		*errs = append(*errs, fieldError("outputs", "must list at least one of %s", strings.Join(outputValues, ", ")))
		return
	}
	seen := map[string]bool{}
	for i, o := range outputs {
		field := fmt.Sprintf("outputs[%d]", i)
		switch {
		case !slices.Contains(outputValues, o):
			*errs = append(*errs, fieldError(field, "must be one of %s, got %q", strings.Join(outputValues, ", "), o))
		case seen[o]:
			*errs = append(*errs, fieldError(field, "duplicate output %q", o))
		}
		seen[o] = true
	}
}

func checkProfileRef(errs *[]apiv1.FieldError, v *string) {
	if v != nil && (*v == "" || len(*v) > maxProfileRefLen) {
		*errs = append(*errs, fieldError("profile", "must be a profile name or id"))
	}
}

// checkRecording validates the recording, dvr_window_s and
// thumbnail_interval_s of a create or update request.
func checkRecording(errs *[]apiv1.FieldError, r *apiv1.RecordingSetting, dvr *int, thumbs *float64) {
	if r != nil {
		if r.Mode == nil {
			*errs = append(*errs, fieldError("recording.mode", "is required: one of %s", strings.Join(recordingModes, ", ")))
		}
		checkEnum(errs, "recording.mode", r.Mode, recordingModes)
		checkRange(errs, "recording.delete_after_days", r.DeleteAfterDays, minDeleteAfter, maxDeleteAfter, "days")
	}
	checkRange(errs, "dvr_window_s", dvr, 0, job.MaxDVRWindowS, "seconds")
	if thumbs != nil && !(*thumbs >= minThumbInterval && *thumbs <= maxThumbInterval) {
		*errs = append(*errs, fieldError("thumbnail_interval_s", "must be between %g and %g seconds, got %g", minThumbInterval, maxThumbInterval, *thumbs))
	}
}

// validateStreamCreate returns every invalid field of a create request.
func validateStreamCreate(r apiv1.StreamCreate) []apiv1.FieldError {
	var errs []apiv1.FieldError
	checkText(&errs, "name", r.Name, maxStreamName, true)
	checkProfileRef(&errs, r.Profile)
	checkOutputs(&errs, r.Outputs)
	checkEnum(&errs, "hardware", r.Hardware, hardwareValues)
	checkEnum(&errs, "playback_policy", r.PlaybackPolicy, policyValues)
	checkRange(&errs, "segment_duration", r.SegmentDuration, minSegmentSecs, maxSegmentSecs, "seconds")
	checkRange(&errs, "playlist_window_size", r.PlaylistWindowSize, minPlaylistSegs, maxPlaylistSegs, "segments")
	checkRecording(&errs, r.Recording, r.DVRWindowS, r.ThumbnailIntervalS)
	return errs
}

// validateStreamUpdate returns every invalid field of an update request.
func validateStreamUpdate(r apiv1.StreamUpdate) []apiv1.FieldError {
	var errs []apiv1.FieldError
	if r.Name != nil {
		checkText(&errs, "name", *r.Name, maxStreamName, true)
	}
	checkProfileRef(&errs, r.Profile)
	checkOutputs(&errs, r.Outputs)
	checkEnum(&errs, "hardware", r.Hardware, hardwareValues)
	checkEnum(&errs, "playback_policy", r.PlaybackPolicy, policyValues)
	checkRange(&errs, "segment_duration", r.SegmentDuration, minSegmentSecs, maxSegmentSecs, "seconds")
	checkRange(&errs, "playlist_window_size", r.PlaylistWindowSize, minPlaylistSegs, maxPlaylistSegs, "segments")
	checkRecording(&errs, r.Recording, r.DVRWindowS, r.ThumbnailIntervalS)
	return errs
}

func checkProfileName(errs *[]apiv1.FieldError, name string) {
	if !profileNameRE.MatchString(name) {
		*errs = append(*errs, fieldError("name", "must be 1-64 characters of A-Z, a-z, 0-9, '_', '.' or '-', starting with a letter or digit, got %q", name))
	}
}

// validateProfileCreate applies the ladder defaults and returns the ladder to
// store and every invalid field.
func validateProfileCreate(r apiv1.ProfileCreate) (ladder.Ladder, []apiv1.FieldError) {
	var errs []apiv1.FieldError
	checkProfileName(&errs, r.Name)
	checkText(&errs, "description", r.Description, maxDescription, false)
	l := ladder.Ladder{Renditions: r.Renditions, Audio: r.Audio}.WithDefaults()
	if err := l.Validate(); err != nil {
		errs = append(errs, ladderFields(err)...)
	}
	return l, errs
}

// validateProfileUpdate merges the update into the current ladder, applies the
// defaults and returns the ladder to store (nil when unchanged) and every
// invalid field.
func validateProfileUpdate(cur ladder.Ladder, r apiv1.ProfileUpdate) (*ladder.Ladder, []apiv1.FieldError) {
	var errs []apiv1.FieldError
	if r.Name != nil {
		checkProfileName(&errs, *r.Name)
	}
	if r.Description != nil {
		checkText(&errs, "description", *r.Description, maxDescription, false)
	}
	if r.Renditions == nil && r.Audio == nil {
		return nil, errs
	}
	l := cur
	if r.Renditions != nil {
		l.Renditions = *r.Renditions
	}
	if r.Audio != nil {
		l.Audio = *r.Audio
	}
	l = l.WithDefaults()
	if err := l.Validate(); err != nil {
		errs = append(errs, ladderFields(err)...)
	}
	return &l, errs
}

// validateAPIKeyCreate applies the default scope and returns every invalid field.
func validateAPIKeyCreate(r *apiv1.APIKeyCreate) []apiv1.FieldError {
	var errs []apiv1.FieldError
	checkText(&errs, "name", r.Name, maxAPIKeyName, true)
	if r.Scope == "" {
		r.Scope = store.ScopeAdmin
	}
	checkEnum(&errs, "scope", &r.Scope, scopeValues)
	return errs
}
