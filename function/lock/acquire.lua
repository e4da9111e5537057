-- Acquire the lease on KEYS[1] for owner ARGV[1] for ARGV[2] milliseconds.
-- The lock is one hash: owner ('' after a release: a tombstone keeping the
-- fence for a moment) and fence. Returns {granted, held, fence, pttl}.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence')
local owner, fence = cur[1], tonumber(cur[2])
if owner and owner ~= '' then
  if owner == ARGV[1] then
    -- The holder again: an idempotent retry keeps the fence, resets the TTL.
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, 1, fence, tonumber(ARGV[2])}
  end
  return {0, 1, fence, redis.call('PTTL', KEYS[1])}
end
-- A new fence is never below Redis' clock in microseconds, so it exceeds
-- every earlier fence even after the keys expired or the data was lost, and
-- exceeds the tombstone's fence even if the clock stalled.
-- Redis 4 refuses writes after TIME in a script unless its effects, not the
-- script, are replicated; from Redis 5 on that is the default.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local f = tonumber(t[1]) * 1000000 + tonumber(t[2])
if fence and fence >= f then
  f = fence + 1
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'fence', string.format('%.0f', f), 'prev', '')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, 1, f, tonumber(ARGV[2])}
