-- Quorum mode, phase 2: grant the lease on KEYS[1] to owner ARGV[1] for
-- ARGV[2] ms with the proposed fence ARGV[3]. Every master that grants stores
-- exactly the proposed fence, so a granted fence lives on a majority; a
-- master's fence never goes down while its hash lives.
-- Returns {status, held, fence, pttl}: status 1 granted, 0 held by another
-- owner, -1 the proposal is not above this master's fence (it saw a later
-- attempt), which the caller answers with a fresh proposal.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence')
local owner, fence = cur[1], tonumber(cur[2]) or 0
local p = tonumber(ARGV[3])
if owner and owner ~= '' and owner ~= ARGV[1] then
  return {0, 1, fence, redis.call('PTTL', KEYS[1])}
end
if owner == ARGV[1] and fence == p then
  -- The holder again with its own fence: an idempotent retry.
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, 1, fence, tonumber(ARGV[2])}
end
if fence >= p then
  local held, pttl = 0, 0
  if owner and owner ~= '' then held, pttl = 1, redis.call('PTTL', KEYS[1]) end
  return {-1, held, fence, pttl}
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'fence', ARGV[3], 'prev', '')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, 1, p, tonumber(ARGV[2])}
