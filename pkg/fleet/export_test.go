package fleet

import "github.com/redis/go-redis/v9"

// AgeForTest exposes a worker's live key, whose remaining lifetime is what
// List reads a worker's state from, so tests can age a heartbeat without
// sleeping through a window.
func (r *Registry) AgeForTest(id string) (redis.UniversalClient, string) { return r.rdb, r.liveKey(id) }
