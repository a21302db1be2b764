package secret

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStreamKey(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		k := NewStreamKey()
		require.True(t, ValidStreamKey(k), k)
		require.Len(t, k, len(StreamKeyPrefix)+43)
		require.False(t, seen[k], "duplicate key")
		seen[k] = true
	}
	for _, bad := range []string{"", "sk_", "sk_short", "xx_" + strings.Repeat("a", 43), "sk_" + strings.Repeat("a", 42) + "-", "sk_" + strings.Repeat("a", 44)} {
		require.False(t, ValidStreamKey(bad), bad)
	}
}

func TestRandomIsUniformEnough(t *testing.T) {
	t.Parallel()
	// 62 symbols × ~2000 draws each: every symbol must show up, none wildly over-represented
	// (a modulo bias or a broken rejection loop would skew the low symbols).
	counts := map[byte]int{}
	s := random(62 * 2000)
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	require.Len(t, counts, 62)
	for c, n := range counts {
		require.InDelta(t, 2000, n, 300, "symbol %q", c)
	}
}

func TestAPIKey(t *testing.T) {
	t.Parallel()
	k := NewAPIKey()
	require.True(t, strings.HasPrefix(k.Key, "dio_"+k.Prefix+"_"), k.Key)
	prefix, err := ParseAPIKey(k.Key)
	require.NoError(t, err)
	require.Equal(t, k.Prefix, prefix)
	require.True(t, MatchAPIKey(k.Key, k.Hash))
	require.Len(t, k.Hash, 32)

	other := NewAPIKey()
	require.NotEqual(t, k.Prefix, other.Prefix)
	require.False(t, MatchAPIKey(other.Key, k.Hash))

	for _, bad := range []string{"", "dio_", k.Key[:len(k.Key)-1], k.Key + "x", "dix_" + k.Key[4:],
		k.Key[:12] + "-" + k.Key[13:], strings.Replace(k.Key, "_", "-", 2)} {
		_, err := ParseAPIKey(bad)
		require.ErrorIs(t, err, ErrMalformed, bad)
	}
}

func FuzzParseAPIKey(f *testing.F) {
	f.Add(NewAPIKey().Key)
	f.Add("dio_abcdefgh_")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		prefix, err := ParseAPIKey(s)
		if err != nil {
			return
		}
		require.Len(t, prefix, VisiblePrefixLen)
		require.True(t, strings.HasPrefix(s, APIKeyPrefix+prefix+"_"))
	})
}

func TestWebhookSecret(t *testing.T) {
	a, b := NewWebhookSecret(), NewWebhookSecret()
	require.NotEqual(t, a, b)
	rest, ok := strings.CutPrefix(a, WebhookSecretPrefix)
	require.True(t, ok, a)
	require.Len(t, rest, randomLen)
	require.True(t, isBase62(rest))
}
