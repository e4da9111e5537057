-- Quorum mode, phase 1: read the lock on KEYS[1] for owner ARGV[1] and this
-- master's clock. Returns {mine, held, fence, pttl, time_us}: mine is 1 when
-- ARGV[1] holds the lease here.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence')
local owner, fence = cur[1], tonumber(cur[2]) or 0
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if owner and owner ~= '' then
  local mine = 0
  if owner == ARGV[1] then mine = 1 end
  return {mine, 1, fence, redis.call('PTTL', KEYS[1]), now}
end
return {0, 0, fence, 0, now}
