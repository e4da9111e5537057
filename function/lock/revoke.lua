-- Revoke every lease on the lock KEYS[1], whoever holds it (the layout is
-- in acquire.lua; KEYS[4] and KEYS[5] are its MULTI leases' zset and hash):
-- end them now as an expiry would, but leave a tombstone for ARGV[1] ms
-- that keeps the fence (so the next grant's fence is above it). No release
-- marks are kept, so the holders' late releases or heartbeats are refused
-- (not_held), exactly as after an expiry; a running lock-delay ends too,
-- and a revoke starts none. Waiters on KEYS[2] are woken with ARGV[2]
-- (PUBLISH or SPUBLISH), and a "revoked FENCE 0 MODE HOLDER" change message
-- per lease goes to KEYS[3] with ARGV[3].
-- Returns {revoked, held, fence, pttl}: {0, 0, fence, 0} when nobody held it.
local MULTI = '#################################################################################################################################' -- see acquire.lua
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence', 'holder')
local owner, fence = cur[1], tonumber(cur[2]) or 0
if owner == MULTI then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local live = redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. now, '+inf')
  local ended = false
  for _, o in ipairs(live) do
    local info = redis.call('HGET', KEYS[5], o) or ''
    local f, md, _, h = string.match(info, '^(%d+) (%a) (%d+) (.*)$')
    redis.call(ARGV[3], KEYS[3], 'revoked ' .. (f or '0') .. ' 0 ' .. (md or 'x') .. ' ' .. (h or ''))
    ended = true
  end
  local delayed = (tonumber(redis.call('HGET', KEYS[1], 'until')) or 0) > now
  redis.call('DEL', KEYS[4], KEYS[5])
  redis.call('HDEL', KEYS[1], 'limit', 'until', 'until_owner')
  redis.call('HSET', KEYS[1], 'owner', '', 'prev', '', 'holder', '')
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  if ended or delayed then redis.call(ARGV[2], KEYS[2], 'released') end
  if ended then return {1, 0, fence, 0} end
  return {0, 0, fence, 0}
end
if owner and owner ~= '' then
  redis.call('HSET', KEYS[1], 'owner', '', 'prev', '', 'holder', '')
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call(ARGV[2], KEYS[2], 'released')
  redis.call(ARGV[3], KEYS[3], 'revoked ' .. cur[2] .. ' 0 x ' .. (cur[3] or ''))
  return {1, 0, fence, 0}
end
return {0, 0, fence, 0}
