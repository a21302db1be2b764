package testkit_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/testkit"
)

// recorder is a testing.TB that records what Missing asks of it.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Fatalf(f string, args ...any) { r.fatal = fmt.Sprintf(f, args...) }
func (r *recorder) Skipf(f string, args ...any)  { r.skip = fmt.Sprintf(f, args...) }

func TestMissingFailsUnderCIAndSkipsElsewhere(t *testing.T) {
	t.Setenv("CI", "true")
	r := &recorder{TB: t}
	testkit.Missing(r, "mediamtx", "deploy/local/build-mediamtx.sh")
	require.Contains(t, r.fatal, "deploy/local/build-mediamtx.sh")
	require.Empty(t, r.skip)

	t.Setenv("CI", "")
	r = &recorder{TB: t}
	testkit.Missing(r, "mediamtx", "deploy/local/build-mediamtx.sh")
	require.Contains(t, r.skip, "deploy/local/build-mediamtx.sh", "the skip says how to install it")
	require.Empty(t, r.fatal)

	r = &recorder{TB: t}
	testkit.Require(r, nil, "mediamtx", "x")
	require.Empty(t, r.fatal+r.skip, "no error: nothing happens")
}

func TestFreePortServesTCPAndUDP(t *testing.T) {
	p := testkit.FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	require.NoError(t, err)
	defer l.Close()
	u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
	require.NoError(t, err)
	require.NoError(t, u.Close())
}

func TestRepoRootHoldsGoWork(t *testing.T) {
	_, err := os.Stat(filepath.Join(testkit.RepoRoot(t), "go.work"))
	require.NoError(t, err)
}

func TestRedisPrefixDeletesItsKeysAtCleanup(t *testing.T) {
	var ended *testkit.Redis
	t.Run("a test", func(t *testing.T) {
		ended = testkit.RedisPrefix(t)
		require.NoError(t, ended.Client.Set(t.Context(), ended.Prefix+"k", "v", 0).Err())
	})
	probe := testkit.RedisPrefix(t)
	require.NotEqual(t, ended.Prefix, probe.Prefix)
	n, err := probe.Client.Exists(context.Background(), ended.Prefix+"k").Result()
	require.NoError(t, err)
	require.Zero(t, n, "the key of an ended test is gone")
}

func TestRedisDatabaseIsLeasedToOneTestAtATime(t *testing.T) {
	var mu sync.Mutex
	leased := map[string]bool{}
	// Both tests hold their lease until both have one (go test runs at
	// least two parallel tests at once).
	var both sync.WaitGroup
	both.Add(2)
	t.Run("parallel tests", func(t *testing.T) {
		for i := range 2 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				r := testkit.RedisDatabase(t)
				n, err := r.Client.DBSize(t.Context()).Result()
				require.NoError(t, err)
				require.Zero(t, n, "a leased database starts empty")
				require.NoError(t, r.Client.Set(t.Context(), "asynq:like", "v", 0).Err())
				mu.Lock()
				twice := leased[r.URL]
				leased[r.URL] = true
				mu.Unlock()
				both.Done()
				both.Wait()
				require.False(t, twice, "database %s leased twice at once", r.URL)
			})
		}
	})
	require.Len(t, leased, 2)
}
