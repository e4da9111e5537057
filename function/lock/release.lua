-- Release owner ARGV[1]'s lease on the lock KEYS[1] (the layout is in
-- acquire.lua; KEYS[4] and KEYS[5] are its MULTI leases' zset and hash,
-- KEYS[6] and KEYS[7] its queue and the queue's deadlines),
-- leave a tombstone for ARGV[2] ms that keeps the fence, and wake waiters on
-- channel KEYS[2] with ARGV[3] (PUBLISH, or SPUBLISH in Cluster). A release
-- repeated by the same owner within the tombstone's life succeeds again, so
-- a retried call is idempotent. Returns {released, held, fence, pttl}. A
-- "released FENCE 0 MODE HOLDER" change message goes to KEYS[3] with ARGV[4].
-- Quorum mode's masters run it with only KEYS[1] and KEYS[2]: they keep no
-- MULTI locks and publish no changes.
-- The owner of a lease that expired with a lock-delay ends the delay by
-- releasing it (the answer is still "not held": the lease had expired).
local MULTI = '#################################################################################################################################' -- see acquire.lua

-- The wake-up of a mutex's release: 'released PLACE' names the first live
-- place of the queue KEYS[6] (deadlines KEYS[7]), whose waiter alone is
-- woken; plain 'released' wakes every waiter.
local function next_in_queue()
  if not KEYS[6] or redis.call('EXISTS', KEYS[6]) == 0 then return 'released' end
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now)) do
    redis.call('ZREM', KEYS[6], d)
    redis.call('ZREM', KEYS[7], d)
  end
  local head = redis.call('ZRANGE', KEYS[6], 0, 0)[1]
  if head then return 'released ' .. head end
  return 'released'
end

local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence', 'prev', 'holder')
local owner, fence = cur[1], tonumber(cur[2]) or 0
if owner == ARGV[1] then
  redis.call('HSET', KEYS[1], 'owner', '', 'prev', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call(ARGV[3], KEYS[2], next_in_queue())
  if KEYS[3] then redis.call(ARGV[4], KEYS[3], 'released ' .. cur[2] .. ' 0 x ' .. (cur[4] or '')) end
  return {1, 0, fence, 0}
end
if owner == '' and cur[3] == ARGV[1] then
  return {1, 0, fence, 0}
end
if owner ~= MULTI then
  if owner and owner ~= '' then
    return {0, 1, fence, redis.call('PTTL', KEYS[1])}
  end
  -- Free: never held, expired, or a tombstone ('' owner) of another's release.
  return {0, 0, fence, 0}
end

if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = tonumber(redis.call('ZSCORE', KEYS[4], ARGV[1]))
local function live()
  return redis.call('ZCOUNT', KEYS[4], '(' .. now, '+inf')
end
if score and score > now then
  local info = redis.call('HGET', KEYS[5], ARGV[1]) or ''
  local f, md, _, h = string.match(info, '^(%d+) (%a) (%d+) (.*)$')
  local mark = now + tonumber(ARGV[2])
  redis.call('ZADD', KEYS[4], -mark, ARGV[1])
  -- The mark keeps the released fence, for the answer to a repeat.
  redis.call('HSET', KEYS[5], ARGV[1], (f or '0') .. ' r 0 ')
  for _, k in ipairs({KEYS[1], KEYS[4], KEYS[5]}) do
    if redis.call('PTTL', k) < tonumber(ARGV[2]) then redis.call('PEXPIRE', k, ARGV[2]) end
  end
  redis.call(ARGV[3], KEYS[2], 'released')
  redis.call(ARGV[4], KEYS[3], 'released ' .. (f or '0') .. ' 0 ' .. (md or 'x') .. ' ' .. (h or ''))
  local n = live()
  if n == 0 and (tonumber(redis.call('HGET', KEYS[1], 'until')) or 0) <= now then
    -- The last lease: the keys need outlive only the release marks.
    for _, k in ipairs({KEYS[1], KEYS[4], KEYS[5]}) do redis.call('PEXPIRE', k, ARGV[2]) end
  end
  return {1, n > 0 and 1 or 0, tonumber(f) or fence, 0}
end
if score and score < 0 and -score > now then
  local info = redis.call('HGET', KEYS[5], ARGV[1]) or ''
  local f = tonumber(string.match(info, '^(%d+) r ')) or fence
  local n = live()
  return {1, n > 0 and 1 or 0, f, 0} -- released already, within the window: the same answer
end
-- Not this owner's live lease. If its expiry started the lock-delay that
-- runs now, or would start one, the release ends the delay.
local delayed = false
local m = redis.call('HMGET', KEYS[1], 'until', 'until_owner')
if m[2] == ARGV[1] and (tonumber(m[1]) or 0) > now then
  redis.call('HDEL', KEYS[1], 'until', 'until_owner')
  delayed = true
end
if score and score >= 0 then -- expired, not yet swept: no delay to start
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('HDEL', KEYS[5], ARGV[1])
  delayed = true
end
if delayed then redis.call(ARGV[3], KEYS[2], 'released') end
local n = live()
return {0, n > 0 and 1 or 0, fence, 0}
