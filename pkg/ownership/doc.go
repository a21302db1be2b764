// Package ownership gives one worker at a time the right to produce a live
// stream, and tells routers which worker that is.
//
// Ownership is a lease per stream (not per session: a session moves between
// workers on failover) kept in Redis:
//
//	{prefix}stream:{id}:owner       hash    worker_id, origin_url, session_id, token, acquired_at, nonce   (PX TTL)
//	{prefix}stream:{id}:fence       int     INCR'd on every acquisition: fencing tokens, never reset
//	{prefix}stream:{id}:assignment  hash    session_id, since   (set by the control plane)
//	{prefix}stream:{id}:policy      string  public or signed   (set by the control plane; expires PolicyLinger after the session)
//	{prefix}assignments             zset  stream ids that have an assignment, scored by since (unix ms)
//	{prefix}ownership               pub/sub channel of Event JSON
//
// The owner hash is also the routing registry (stream → origin URL): it is
// written in the same Lua script that takes the lease, so the two can never
// disagree. Every operation is one Lua script, hence atomic:
//
//   - Acquire succeeds only if there is no live owner or the live owner is the
//     same worker, and always hands out a new, larger fencing token.
//   - Renew, Release and FencedDo act only while the stored token equals the
//     lease's token: a stale owner can neither extend, delete nor overwrite
//     anything once a newer owner exists or its lease expired.
//
// The playback policy is the control plane's: the API writes it with the
// assignment and again the moment an operator changes it (SetPolicy, which
// publishes an EventPolicy), so routers and origins apply a change within
// their cache lifetime. Workers never write it. A stream without a policy in
// Redis is treated as signed (State.Signed): readers fail closed.
//
// A worker uses Hold, which acquires the lease, renews it in the background
// and cancels the returned context the moment the lease is lost (or cannot be
// confirmed before it would expire), so the pipeline stops without output.
package ownership
