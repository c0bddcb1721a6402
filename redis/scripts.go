package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"

	"github.com/redis/rueidis"
)

// The Lua scripts. Each runs in one slot: the keys it is given and the keys
// it builds from ARGV[1] (the prefix) and a tag all carry the same hash tag.
// Times are integer microseconds, passed as strings; Lua numbers are
// doubles, exact for such times until the year 2255.

// preamble is shared by every script.
const preamble = `
local P = ARGV[1]
local function rkey(tag, id) return P .. 's:{' .. tag .. '}:' .. id end
local function dkey(tag, id) return P .. 'd:{' .. tag .. '}:' .. id end
local function ukey(tag) return P .. 'u:{' .. tag .. '}' end
local function gkey(tag) return P .. 'g:{' .. tag .. '}' end
-- the earlier of two deadlines, nil for a missing record
local function expof(ie, ae)
  if not ie or not ae then return nil end
  local a, b = tonumber(ie), tonumber(ae)
  if a < b then return a end
  return b
end
-- microseconds to milliseconds, rounded up: Redis never drops a key early
local function ms(us) return math.ceil(us / 1000) end
-- moves a key's expiry forward, never back
local function extend(key, at)
  local cur = redis.call('PEXPIRETIME', key)
  if cur == -1 or (cur >= 0 and cur < at) then redis.call('PEXPIREAT', key, at) end
end
-- byte order, whatever the server's locale
local function less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
-- HSET in chunks: unpack has a limit on the number of values
local function hset(key, t)
  for i = 1, #t, 512 do
    redis.call('HSET', key, unpack(t, i, math.min(i + 511, #t)))
  end
end
`

// createScript stores a new session; see Store.Create.
//
// KEYS: record, data, and the user index for an authenticated session.
// ARGV: prefix, tag, escaped id, now, max per user, escaped id of a session
// to replace in the same slot (or ""), replace reason, carry ("1"), limit
// reason, deadline µs, deadline ms, the expected revocation generation of
// the user (or ""), the number n of record fields, n field/value pairs,
// then data field/value pairs.
// Returns the escaped ids of the sessions it revoked, or nil (and changes
// nothing) when the user's generation is not the expected one.
var createScript = newScript(`
local rec, data, uidx = KEYS[1], KEYS[2], KEYS[3]
local tag, id, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('EXISTS', rec) == 1 then return redis.error_reply('ERR sessiond: session id in use') end
if uidx and ARGV[12] ~= '' and (redis.call('GET', gkey(tag)) or '0') ~= ARGV[12] then return false end
local ended, carried = {}, nil
if ARGV[6] ~= '' then
  local orec = rkey(tag, ARGV[6])
  local r = redis.call('HMGET', orec, 'ra', 'ie', 'ae', 'u')
  local e = expof(r[2], r[3])
  if e and not r[1] and e > now then
    redis.call('HSET', orec, 'ra', ARGV[4], 'rr', ARGV[7])
    if r[4] ~= '' then redis.call('ZREM', ukey(tag), ARGV[6]) end
    ended[#ended + 1] = ARGV[6]
    if ARGV[8] == '1' then carried = redis.call('HGETALL', dkey(tag, ARGV[6])) end
  end
end
local max = tonumber(ARGV[5])
if uidx then redis.call('ZREMRANGEBYSCORE', uidx, '-inf', ARGV[4]) end
if uidx and max > 0 then
  local live = {}
  for _, m in ipairs(redis.call('ZRANGE', uidx, 0, -1)) do
    local r = redis.call('HMGET', rkey(tag, m), 'ra', 'ie', 'ae', 'l', 'id')
    local e = expof(r[2], r[3])
    if e and not r[1] and e > now then
      live[#live + 1] = {tonumber(r[4]), r[5], m}
    else
      redis.call('ZREM', uidx, m)
    end
  end
  local over = #live - (max - 1)
  if over > 0 then
    table.sort(live, function(a, b)
      if a[1] ~= b[1] then return a[1] < b[1] end
      return less(a[2], b[2])
    end)
    for i = 1, over do
      redis.call('HSET', rkey(tag, live[i][3]), 'ra', ARGV[4], 'rr', ARGV[9])
      redis.call('ZREM', uidx, live[i][3])
      ended[#ended + 1] = live[i][3]
    end
  end
end
local expus, expms, n = ARGV[10], tonumber(ARGV[11]), tonumber(ARGV[13])
local fields = {}
for i = 14, 13 + 2 * n do fields[#fields + 1] = ARGV[i] end
hset(rec, fields)
redis.call('PEXPIREAT', rec, expms)
local d = {}
if carried then
  for i = 1, #carried, 2 do
    if carried[i] ~= '#' then d[carried[i]] = carried[i + 1] end
  end
end
for i = 14 + 2 * n, #ARGV, 2 do d[ARGV[i]] = ARGV[i + 1] end
local pairs_, size = {}, 0
for f, v in pairs(d) do
  pairs_[#pairs_ + 1] = f
  pairs_[#pairs_ + 1] = v
  size = size + #f - 1 + #v
end
if #pairs_ > 0 then
  redis.call('HSET', data, '#', size)
  hset(data, pairs_)
  redis.call('PEXPIREAT', data, expms)
end
if uidx then
  redis.call('ZADD', uidx, expus, id)
  extend(uidx, expms)
end
return ended
`)

// revokeScript ends one session if it is active, and returns its data when
// asked to (the first half of a Replace across slots).
//
// KEYS: record, user index, data.
// ARGV: prefix, now, reason, escaped id, carry ("1").
// Returns {'0'} when the session was not active, else {'1', data
// field/value pairs...}.
var revokeScript = newScript(`
local r = redis.call('HMGET', KEYS[1], 'ra', 'ie', 'ae', 'u')
local e = expof(r[2], r[3])
if not e or r[1] or e <= tonumber(ARGV[2]) then return {'0'} end
redis.call('HSET', KEYS[1], 'ra', ARGV[2], 'rr', ARGV[3])
if r[4] ~= '' then redis.call('ZREM', KEYS[2], ARGV[4]) end
if ARGV[5] == '1' then
  local d = redis.call('HGETALL', KEYS[3])
  table.insert(d, 1, '1')
  return d
end
return {'1'}
`)

// revokeUserScript ends every active session of a user but one, and
// advances the user's revocation generation.
//
// KEYS: user index, generation.
// ARGV: prefix, tag, now, reason, escaped id of the exception.
// Returns the escaped ids it ended.
var revokeUserScript = newScript(`
local uidx, tag, now = KEYS[1], ARGV[2], tonumber(ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('ZREMRANGEBYSCORE', uidx, '-inf', ARGV[3])
local ended = {}
for _, m in ipairs(redis.call('ZRANGE', uidx, 0, -1)) do
  if m ~= ARGV[5] then
    local rec = rkey(tag, m)
    local r = redis.call('HMGET', rec, 'ra', 'ie', 'ae')
    local e = expof(r[2], r[3])
    if e and not r[1] and e > now then
      redis.call('HSET', rec, 'ra', ARGV[3], 'rr', ARGV[4])
      ended[#ended + 1] = m
    end
    redis.call('ZREM', uidx, m)
  end
end
return ended
`)

// listScript returns a user's active sessions, trimming dead index entries.
//
// KEYS: user index.
// ARGV: prefix, tag, now.
// Returns one HGETALL array per active session, in no particular order.
var listScript = newScript(`
local uidx, tag, now = KEYS[1], ARGV[2], tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', uidx, '-inf', ARGV[3])
local out = {}
for _, m in ipairs(redis.call('ZRANGE', uidx, 0, -1)) do
  local rec = rkey(tag, m)
  local r = redis.call('HMGET', rec, 'ra', 'ie', 'ae')
  local e = expof(r[2], r[3])
  if e and not r[1] and e > now then
    out[#out + 1] = redis.call('HGETALL', rec)
  else
    redis.call('ZREM', uidx, m)
  end
end
return out
`)

// touchScript applies the touches of one tag's sessions.
//
// KEYS: their records.
// ARGV: prefix, tag, then (escaped id, last seen µs, idle deadline µs) per
// touch.
// Returns (escaped id, token hash, new deadline ms or 0) per session it
// changed; 0 when the deadline did not move.
var touchScript = newScript(`
local tag = ARGV[2]
local out = {}
for j = 3, #ARGV, 3 do
  local id, l, ie = ARGV[j], tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2])
  local rec = rkey(tag, id)
  local r = redis.call('HMGET', rec, 'ra', 'ie', 'ae', 'l', 'h', 'u')
  local e = expof(r[2], r[3])
  if e and not r[1] and e > l then
    local set = {}
    if l > tonumber(r[4]) then
      set[#set + 1] = 'l'
      set[#set + 1] = ARGV[j + 1]
    end
    local nie = r[2]
    if ie > tonumber(r[2]) then
      nie = ARGV[j + 2]
      set[#set + 1] = 'ie'
      set[#set + 1] = nie
    end
    if #set > 0 then
      redis.call('HSET', rec, unpack(set))
      local ne, at = expof(nie, r[3]), 0
      if ne > e then
        at = ms(ne)
        redis.call('PEXPIREAT', rec, at)
        redis.call('PEXPIREAT', dkey(tag, id), at)
      end
      if r[6] ~= '' then
        redis.call('ZADD', ukey(tag), ne, id)
        extend(ukey(tag), ms(ne))
      end
      out[#out + 1] = id
      out[#out + 1] = r[5]
      out[#out + 1] = string.format('%.0f', at)
    end
  end
end
return out
`)

// rotateScript swaps the token hash of an active session and records the
// rotation (rt: now, ph: the old hash). With a fifth argument it also sets
// that field (AuthenticatedAt) to now and, a new chain starting, drops ph.
//
// KEYS: record.
// ARGV: prefix, old hash, new hash, now, and optionally the field name.
// Returns 0 when the session is not active or its hash is not old, else
// its deadline in ms.
var rotateScript = newScript(`
local r = redis.call('HMGET', KEYS[1], 'ra', 'ie', 'ae', 'h')
local e = expof(r[2], r[3])
if not e or r[1] or e <= tonumber(ARGV[4]) or r[4] ~= ARGV[2] then return 0 end
if ARGV[5] then
  redis.call('HSET', KEYS[1], 'h', ARGV[3], ARGV[5], ARGV[4], 'rt', ARGV[4])
  redis.call('HDEL', KEYS[1], 'ph')
else
  redis.call('HSET', KEYS[1], 'h', ARGV[3], 'ph', ARGV[2], 'rt', ARGV[4])
end
return ms(e)
`)

// setDataScript sets one data key of an active session within a size limit.
//
// KEYS: record, data.
// ARGV: prefix, now, field ("=" + key), value, max bytes.
// Returns 1, 0 when the session is not active, -1 when over the limit.
var setDataScript = newScript(`
local r = redis.call('HMGET', KEYS[1], 'ra', 'ie', 'ae')
local e = expof(r[2], r[3])
if not e or r[1] or e <= tonumber(ARGV[2]) then return 0 end
local klen = #ARGV[3] - 1
local size = tonumber(redis.call('HGET', KEYS[2], '#') or '0')
local old = redis.call('HGET', KEYS[2], ARGV[3])
if old then size = size - klen - #old end
size = size + klen + #ARGV[4]
if size > tonumber(ARGV[5]) then return -1 end
redis.call('HSET', KEYS[2], '#', size, ARGV[3], ARGV[4])
redis.call('PEXPIREAT', KEYS[2], ms(e))
return 1
`)

// deleteDataScript removes one data key of an active session.
//
// KEYS: record, data.
// ARGV: prefix, now, field ("=" + key).
// Returns 1, or 0 when the session is not active.
var deleteDataScript = newScript(`
local r = redis.call('HMGET', KEYS[1], 'ra', 'ie', 'ae')
local e = expof(r[2], r[3])
if not e or r[1] or e <= tonumber(ARGV[2]) then return 0 end
local old = redis.call('HGET', KEYS[2], ARGV[3])
if old then
  if redis.call('HLEN', KEYS[2]) <= 2 then
    redis.call('DEL', KEYS[2])
  else
    local size = tonumber(redis.call('HGET', KEYS[2], '#') or '0') - (#ARGV[3] - 1) - #old
    redis.call('HDEL', KEYS[2], ARGV[3])
    redis.call('HSET', KEYS[2], '#', size)
  end
end
return 1
`)

// sweepScript deletes one session if its deadline is at or before now.
//
// KEYS: record, data, user index.
// ARGV: prefix, now, escaped id.
// Returns {0} when the record is gone already, {1, deadline µs} when it is
// not due, {2, token hash} when it deleted it.
var sweepScript = newScript(`
local r = redis.call('HMGET', KEYS[1], 'ie', 'ae', 'h', 'u')
local e = expof(r[1], r[2])
if not e then
  redis.call('DEL', KEYS[2])
  return {0}
end
if e > tonumber(ARGV[2]) then return {1, e} end
redis.call('DEL', KEYS[1], KEYS[2])
if r[4] ~= '' then redis.call('ZREM', KEYS[3], ARGV[3]) end
return {2, r[3]}
`)

// script is a Lua script run with EVALSHA, falling back to EVAL when the
// server does not have it yet.
type script struct {
	lua *rueidis.Lua
	src string
	sha string
}

func newScript(body string) *script {
	src := preamble + body
	sum := sha1.Sum([]byte(src))
	return &script{lua: rueidis.NewLuaScript(src), src: src, sha: hex.EncodeToString(sum[:])}
}

// exec runs the script once.
func (sc *script) exec(ctx context.Context, c rueidis.Client, keys, args []string) rueidis.RedisResult {
	return sc.lua.Exec(ctx, c, keys, args)
}

// call is one run of a script in execMulti.
type call struct{ keys, args []string }

// execMulti runs the script several times, possibly on several nodes, in
// one round trip (two when a node lacks the script).
func (sc *script) execMulti(ctx context.Context, c rueidis.Client, calls []call) []rueidis.RedisResult {
	if len(calls) == 1 {
		return []rueidis.RedisResult{sc.exec(ctx, c, calls[0].keys, calls[0].args)}
	}
	cmds := make(rueidis.Commands, len(calls))
	for i, cl := range calls {
		cmds[i] = c.B().Evalsha().Sha1(sc.sha).Numkeys(int64(len(cl.keys))).Key(cl.keys...).Arg(cl.args...).Build()
	}
	res := c.DoMulti(ctx, cmds...)
	var again []int
	for i, r := range res {
		if e, ok := rueidis.IsRedisErr(r.Error()); ok && e.IsNoScript() {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return res
	}
	cmds = cmds[:0]
	for _, i := range again {
		cl := calls[i]
		cmds = append(cmds, c.B().Eval().Script(sc.src).Numkeys(int64(len(cl.keys))).Key(cl.keys...).Arg(cl.args...).Build())
	}
	for j, r := range c.DoMulti(ctx, cmds...) {
		res[again[j]] = r
	}
	return res
}
