package testkit

import (
	"os"
	"strconv"
	"testing"
)

// InCI reports whether the tests run in continuous integration (CI=true or
// any other value strconv.ParseBool takes as true): there a missing
// component is a failure, not a skip.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Missing stops the test because a real component it needs is absent: it
// fails under CI and skips elsewhere. what names the component and why it is
// missing, install says how to get it.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s (CI=true: a missing component fails the test). Install: %s", what, install)
		return
	}
	t.Skipf("%s: skipped (under CI=true this fails). Install: %s", what, install)
}

// Require calls Missing when err is not nil.
func Require(t testing.TB, err error, what, install string) {
	t.Helper()
	if err != nil {
		Missing(t, what+": "+err.Error(), install)
	}
}
