-- Quorum mode: undo the grant an attempt of owner ARGV[1] made with fence
-- ARGV[2] on KEYS[1], after that attempt failed to reach a majority. The
-- caller sends it only to the masters where this attempt wrote the lease
-- (status 1 of quorum_acquire.lua), and it touches only a lease of that
-- owner with that fence: an undo that arrives late, after the same owner's
-- next attempt was granted here with a new fence, must not end that lease.
-- Leaves the same tombstone as a release (ARGV[3] ms), keeping the fence, and
-- when ARGV[5] is '1' wakes waiters on KEYS[2] with ARGV[4] (an attempt that
-- never had a majority was nobody's holder, so its undo wakes nobody).
-- Returns {undone, held, fence, pttl}.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence')
if cur[1] == ARGV[1] and cur[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'owner', '', 'prev', '')
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  if ARGV[5] == '1' then
    redis.call(ARGV[4], KEYS[2], 'released')
  end
  return {1, 0, tonumber(cur[2]), 0}
end
return {0, 0, tonumber(cur[2]) or 0, 0}
