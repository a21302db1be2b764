package ownership

import "github.com/redis/go-redis/v9"

// Each script is one atomic step. Tokens are stored as decimal strings in the
// owner hash, so comparing ARGV (a string) with HGET is exact. A lease is
// identified by its token AND a random nonce drawn at acquisition: the fence
// counter restarts at 1 if Redis loses its data, and the nonce keeps a holder
// from before the loss from matching a new owner's equal token.

// acquireScript: KEYS owner, fence. ARGV worker_id, origin_url, session_id,
// ttl_ms, now_ms, channel, stream_id, nonce.
// Returns {1, token} or {0, current_worker_id}.
var acquireScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'worker_id')
if cur and cur ~= ARGV[1] then
  return {0, cur}
end
local token = redis.call('INCR', KEYS[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'worker_id', ARGV[1], 'origin_url', ARGV[2], 'session_id', ARGV[3],
  'token', token, 'acquired_at', ARGV[5], 'nonce', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[6], cjson.encode({event='acquired', stream_id=ARGV[7], session_id=ARGV[3],
  worker_id=ARGV[1], origin_url=ARGV[2], token=token}))
return {1, token}
`)

// renewScript: KEYS owner. ARGV token, ttl_ms, nonce. Returns 1 if renewed, 0
// if the lease is not the current one (or is gone).
var renewScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'token', 'nonce')
if h[1] == ARGV[1] and h[2] == ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// releaseScript: KEYS owner. ARGV token, channel, stream_id, nonce. Deletes
// the owner only if the lease matches; returns 1 if deleted.
var releaseScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'token', 'nonce')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[4] then
  return 0
end
local h = redis.call('HMGET', KEYS[1], 'worker_id', 'origin_url', 'session_id')
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({event='released', stream_id=ARGV[3], token=tonumber(ARGV[1]),
  worker_id=h[1], origin_url=h[2], session_id=h[3]}))
return 1
`)

// fencedScript: KEYS owner, target. ARGV token, nonce, command, args...
// Runs "command target args..." only if the lease is the current owner's.
// Returns {1, reply} or {0}.
var fencedScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'token', 'nonce')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then
  return {0}
end
local args = {}
for i = 4, #ARGV do args[#args + 1] = ARGV[i] end
local res = redis.call(ARGV[3], KEYS[2], unpack(args))
return {1, res}
`)

// assignScript: KEYS assignment, assignments, policy. ARGV session_id,
// since_ms, policy, channel, stream_id. The policy key loses any expiry: it
// lives as long as the stream wants a worker.
var assignScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'session_id', ARGV[1], 'since', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
redis.call('SET', KEYS[3], ARGV[3])
redis.call('PUBLISH', ARGV[4], cjson.encode({event='assigned', stream_id=ARGV[5], session_id=ARGV[1], policy=ARGV[3]}))
return 1
`)

// unassignScript: KEYS assignment, assignments, policy. ARGV session_id
// (empty: any), channel, stream_id, policy_linger_ms. Returns 1 if an
// assignment was removed; the policy key then expires after the linger (the
// ended stream's last playlists are still served meanwhile).
var unassignScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'session_id')
if not cur then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return 0
end
if ARGV[1] ~= '' and cur ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('PUBLISH', ARGV[2], cjson.encode({event='ended', stream_id=ARGV[3], session_id=cur}))
return 1
`)

// setPolicyScript: KEYS policy. ARGV policy, channel, stream_id, force.
// Updates the policy of a stream that has one in Redis (live, or just ended),
// keeping its expiry, or creates it when force is "1"; publishes the change
// either way so that routers drop what they cached. Returns 1 if the key was
// written.
var setPolicyScript = redis.NewScript(`
local n = 0
if ARGV[4] == '1' or redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  n = 1
end
redis.call('PUBLISH', ARGV[2], cjson.encode({event='policy', stream_id=ARGV[3], policy=ARGV[1]}))
return n
`)
