// Package redis is a sessiond.Store on Redis 7.0 or later (or Valkey),
// single node or Redis Cluster, through github.com/redis/rueidis. It keeps
// sessions only; accounts stay in SQL.
//
//	st, err := redis.Open(ctx, "redis://127.0.0.1:6379/0", redis.WithPrefix("myapp:"))
//	// the same prefix from the URL, as sessiond's --session-store gives it
//	st, err := redis.Open(ctx, "redis://127.0.0.1:6379/0?prefix=myapp:")
//	// a cluster: several addresses in one URL
//	st, err := redis.Open(ctx, "redis://10.0.0.1:6379?addr=10.0.0.2:6379&addr=10.0.0.3:6379")
//
// # Reads from local memory
//
// Lookups (ByTokenHash, ByID, Data) read through rueidis's server-assisted
// client-side cache: the first read of a key fetches it and asks Redis to
// track it, later reads are served from the process's memory, and Redis
// pushes an invalidation the moment the key changes, whoever changes it. A
// hot validation costs no round trip. Every cached entry also has a short
// client TTL (WithCacheTTL, default 5s), which bounds staleness if
// invalidations cannot arrive (a connection that breaks drops its cache at
// once; a silent partition is the case the TTL covers).
//
// An invalidation is pushed to other clients when the write executes, but
// it travels on its own connection and is applied by that connection's
// reader, so it can land a little after the writer has its reply. Within
// one Store this would break read-your-writes ("from the moment Rotate
// returns, ByTokenHash(old) finds nothing"), so a Store remembers the keys
// it changed for a short window (the cache TTL, at most 1s) and reads them
// from the server meanwhile. Across Stores (other processes), a change is
// seen as soon as its invalidation arrives: in practice well under a
// millisecond on a LAN, at most the cache TTL.
//
// # A cache above the Store
//
// Listen passes Redis's invalidations on as the ids of the sessions whose
// records changed, so that sessiond's cache of validated sessions
// (sessiond.WithCache, fed through Manager.Invalidate) can sit on this
// Store as it does on PostgreSQL: a validation from that cache costs no
// decoding either. A record read untracked (read-your-writes above) is
// announced as changed before it is returned, so such a cache never keeps
// a copy that Redis would not invalidate.
//
// # Keys
//
// With prefix p (WithPrefix, default "sessiond:"), where tag is the user id
// for an authenticated session and the session's own id for an anonymous
// one, and ids and tags are escaped so that '{', '}', ':' and '%' never
// appear in them (percent-encoding):
//
//	p s:{tag}:id   hash   the session record: h (token hash, 32 raw bytes), id,
//	                      u (user id), rm, c, l, ie, ae (times in integer µs
//	                      since the Unix epoch), ua, br, os, ip, ra, rr,
//	                      aa (AuthenticatedAt µs, absent when zero),
//	                      tr (Transport, absent when empty),
//	                      rt (RotatedAt µs) and ph (PrevTokenHash, 32 raw
//	                      bytes), both absent when zero
//	p d:{tag}:id   hash   its data: "=" + key → value, and "#" → total size
//	p u:{uid}      zset   the user's live sessions: escaped id scored by the
//	                      session's earlier deadline (µs)
//	p t:{hex}      string token hash (hex) → "tag:id"
//	p i:{id}       string session id → tag
//	p g:{uid}      string the user's revocation generation (UserGeneration):
//	                      INCR'd by RevokeByUser's script, compared by the
//	                      create script; never expires (absent is 0)
//	p x:{sweep}    zset   "tag:id" scored by the earlier deadline (µs), for
//	                      DeleteExpired
//
// The braces are Redis Cluster hash tags: a user's records, data and index
// share one slot, so creating a session under a per-user limit, revoking
// all of a user's sessions and listing them are each one Lua script on one
// node. Nothing in this package sends a command whose keys span two slots.
// The two pointers live in slots of their own; they are written once (the
// token pointer again at rotation) and a lookup always ends at the record,
// which is authoritative: a stale pointer is harmless because the record's
// token hash must equal the one looked up (compared in constant time).
//
// The user index is scored by deadline rather than by last use, so expired
// entries are trimmed with one ZREMRANGEBYSCORE, and its TTL is simply its
// highest score; revoked sessions leave it when they are revoked. Listing
// and the per-user limit read the records' last-use times and sort in the
// script (LRU order: last use, then id).
//
// # Expiry
//
// Every key of a session expires (PEXPIREAT, on Redis's clock) at the
// session's earlier deadline, revoked sessions included, since the Store
// contract keeps them until they expire; Touch moves the record, data,
// user index and both pointers forward. DeleteExpired works on the caller's
// clock instead: it takes due members of the sweep index, and a small
// script in each session's slot deletes the record and data only if the
// record's deadline is still at or before now, then the pointers and the
// member go. Touch does not write the sweep index: a member that comes due
// for a session that was used since is re-scored by DeleteExpired, which
// costs one write per deadline instead of one per touch.
//
// # Cluster caveats
//
// Create with Replace where the replaced session lives in another slot
// (the usual case: an anonymous session upgraded at login) is two steps on
// two nodes: a script ends the old session and returns its data, then the
// script that creates the new session runs. The old session is dead first,
// so a failure in between logs the client out rather than leaving two live
// sessions; nothing can be fixated. When such a Create also expects a
// generation, the generation is read before the old session ends and
// compared again by the create script: a revocation landing between the two
// refuses the new session after the old one ended (the client is signed out
// and signs in again). For the same reason a Touch batch that
// spans several users is applied per user, each part atomic; every touch
// only moves times forward, so a retried batch converges.
package redis
