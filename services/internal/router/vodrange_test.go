package router

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRange(t *testing.T) {
	t.Parallel()
	const size = 100
	for _, c := range []struct {
		h               string
		start, length   int64
		ok, satisfiable bool
	}{
		{"bytes=0-99", 0, 100, true, true},
		{"bytes=0-0", 0, 1, true, true},
		{"bytes=10-", 10, 90, true, true},
		{"bytes=-10", 90, 10, true, true},
		{"bytes=-1000", 0, 100, true, true},
		{"bytes=90-1000", 90, 10, true, true},
		{"bytes= 5-9", 5, 5, true, true},
		{"bytes=100-", 0, 0, true, false},
		{"bytes=100-200", 0, 0, true, false},
		{"bytes=-0", 0, 0, true, false},
		{"bytes=9-3", 0, 0, false, false},
		{"bytes=0-1,4-5", 0, 0, false, false},
		{"items=0-5", 0, 0, false, false},
		{"bytes=+1-5", 0, 0, false, false},
		{"bytes=1--5", 0, 0, false, false},
		{"bytes=-", 0, 0, false, false},
		{"bytes=5", 0, 0, false, false},
		{"bytes=99999999999999999999-", 0, 0, false, false},
		{"", 0, 0, false, false},
	} {
		s, l, ok, sat := parseRange(c.h, size)
		require.Equal(t, [4]any{c.start, c.length, c.ok, c.satisfiable}, [4]any{s, l, ok, sat}, "%q", c.h)
	}
	_, _, ok, sat := parseRange("bytes=-5", 0)
	require.True(t, ok)
	require.False(t, sat, "every range of an empty file is unsatisfiable")
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-99", "bytes=-5", "bytes=7-", "bytes=5-2", "bytes=0-1,2-3", "bytes=-0"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return // sizes come from Stat
		}
		start, length, ok, sat := parseRange(h, size)
		if !ok || !sat {
			return
		}
		if start < 0 || length <= 0 || start+length > size {
			t.Fatalf("%q on %d bytes: start %d length %d", h, size, start, length)
		}
	})
}
