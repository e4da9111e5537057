-- Quorum mode, phase 2: grant the lease on KEYS[1] to owner ARGV[1] for
-- ARGV[2] ms with the proposed fence ARGV[3]. Every master that grants stores
-- exactly the proposed fence, so a granted fence lives on a majority; a
-- master's fence never goes down while its hash lives. The caller's own
-- lease is never rewritten: with the proposed fence it is extended, with
-- another fence it is left as it is (an undo of this attempt must never end
-- it), so a re-acquire by the holder keeps its lease and its fence.
-- Returns {status, held, fence, pttl}. Status: 1 granted (this attempt wrote
-- the lease), 2 the caller's lease with this fence, extended, 3 the caller's
-- lease with another fence, untouched, 0 held by another owner, -1 free but
-- the proposal is not above this master's fence (it saw a later attempt),
-- which the caller answers with a fresh proposal.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence')
local owner, fence = cur[1], tonumber(cur[2]) or 0
local p = tonumber(ARGV[3])
if owner == ARGV[1] then
  if fence == p then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {2, 1, fence, tonumber(ARGV[2])}
  end
  return {3, 1, fence, redis.call('PTTL', KEYS[1])}
end
if owner and owner ~= '' then
  return {0, 1, fence, redis.call('PTTL', KEYS[1])}
end
if fence >= p then
  return {-1, 0, fence, 0}
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'fence', ARGV[3], 'prev', '')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, 1, p, tonumber(ARGV[2])}
