-- Extend the lease on KEYS[1] to ARGV[2] ms if owner ARGV[1] holds it. An
-- expired lease is gone from Redis, so it can never be revived here.
-- Returns {extended, held, fence, pttl}. When KEYS[2] is given, an
-- "extended FENCE TTL" change message goes there with the command ARGV[3].
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence')
local owner, fence = cur[1], tonumber(cur[2]) or 0
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  if KEYS[2] then redis.call(ARGV[3], KEYS[2], 'extended ' .. cur[2] .. ' ' .. ARGV[2]) end
  return {1, 1, fence, tonumber(ARGV[2])}
end
if owner and owner ~= '' then
  return {0, 1, fence, redis.call('PTTL', KEYS[1])}
end
return {0, 0, fence, 0}
