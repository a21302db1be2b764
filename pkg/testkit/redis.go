package testkit

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisURL is the test Redis database when TEST_REDIS_URL is unset.
const DefaultRedisURL = "redis://127.0.0.1:6379/1"

// DefaultRedisDatabases are the databases RedisDatabase leases whole, when
// TEST_REDIS_DATABASES (a range "FIRST-LAST") is unset.
const DefaultRedisDatabases = "9-15"

// RedisURL returns TEST_REDIS_URL or DefaultRedisURL.
func RedisURL() string { return cmp.Or(os.Getenv("TEST_REDIS_URL"), DefaultRedisURL) }

// Redis is a test's share of the Redis server.
type Redis struct {
	Client *redis.Client
	// URL is the database's URL, for child processes.
	URL string
	// Prefix is unique to the test and ends in ':'.
	Prefix string
}

// RedisPrefix returns a client on the shared test database (RedisURL) and a
// key prefix unique to the test; every key under the prefix is deleted when
// the test ends. Code under test must put all its keys under the prefix.
func RedisPrefix(t testing.TB) *Redis {
	t.Helper()
	addr := RedisURL()
	c := connectRedis(t, addr)
	r := &Redis{Client: c, URL: addr, Prefix: "test:" + testName(t) + ":" + randomHex(4) + ":"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, r.Prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		_ = c.Close()
	})
	return r
}

// RedisDatabase leases a whole database of the test server to the test, for
// code that cannot prefix its keys (asynq): one of TEST_REDIS_DATABASES
// (default 9-15), leased through a key in the RedisURL database so that
// parallel tests and packages never share one. The database is emptied
// (FLUSHDB) when leased and when the test ends; it waits while every
// database is leased. Prefix is set too, for the code that takes one.
func RedisDatabase(t testing.TB) *Redis {
	t.Helper()
	baseURL := RedisURL()
	base := connectRedis(t, baseURL)
	first, last, err := parseRange(cmp.Or(os.Getenv("TEST_REDIS_DATABASES"), DefaultRedisDatabases))
	if err != nil {
		t.Fatalf("TEST_REDIS_DATABASES: %v", err)
	}
	opts, err := redis.ParseURL(baseURL)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL %q: %v", baseURL, err)
	}
	token := randomHex(8) + " " + t.Name()
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Minute)
	db := -1
	for db < 0 {
		for n := first; n <= last && db < 0; n++ {
			if n == opts.DB {
				continue
			}
			ok, err := base.SetNX(ctx, leaseKey(n), token, leaseTTL).Result()
			if err != nil {
				t.Fatalf("leasing a Redis database: %v", err)
			}
			if ok {
				db = n
			}
		}
		if db < 0 {
			if time.Now().After(deadline) {
				t.Fatalf("every Redis database %d-%d stayed leased for 5 minutes", first, last)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// Renew the lease while the test runs.
	renewCtx, stopRenew := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		tick := time.NewTicker(leaseTTL / 4)
		defer tick.Stop()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-tick.C:
				base.Expire(renewCtx, leaseKey(db), leaseTTL)
			}
		}
	}()

	opts.DB = db
	c := redis.NewClient(opts)
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("emptying leased Redis database %d: %v", db, err)
	}
	t.Cleanup(func() {
		stopRenew()
		<-renewed
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.FlushDB(ctx).Err(); err != nil {
			t.Errorf("emptying leased Redis database %d: %v", db, err)
		}
		_ = c.Close()
		if v, _ := base.Get(ctx, leaseKey(db)).Result(); v == token {
			base.Del(ctx, leaseKey(db))
		}
	})
	return &Redis{Client: c, URL: withDatabase(baseURL, db), Prefix: "test:" + testName(t) + ":" + randomHex(4) + ":"}
}

const leaseTTL = 10 * time.Minute

func leaseKey(db int) string { return fmt.Sprintf("dionysia:testkit:lease:db:%d", db) }

// connectRedis returns a client on url that answers, closed at cleanup, or
// fails (CI) or skips the test.
func connectRedis(t testing.TB, addr string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(addr)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL %q: %v", addr, err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	Require(t, c.Ping(ctx).Err(), "Redis at "+addr+" (TEST_REDIS_URL)", "deploy/local/setup.sh services (Debian's redis-server)")
	return c
}

// withDatabase returns the Redis URL raw with database db.
func withDatabase(raw string, db int) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + strconv.Itoa(db)
	return u.String()
}

func parseRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.Atoi(strings.TrimSpace(a))
	last, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, fmt.Errorf("%q is not a range FIRST-LAST of database numbers", s)
	}
	return first, last, nil
}

// testName is the test's name reduced to a short, glob-safe key part.
func testName(t testing.TB) string {
	var b strings.Builder
	for _, r := range t.Name() {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
