"""The Lua scripts the features run atomically on the server (EVALSHA through redis-py's
``register_script``, which reloads a script the server has forgotten; every call goes through
the client's ``execute_command``, so an instrumented client records them as ``evalsha``)."""

from __future__ import annotations

# KEYS[1] lock key, ARGV[1] token -> 1 deleted, 0 not ours
RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1] lock key, ARGV[1] token, ARGV[2] milliseconds to add -> new PTTL, or 0 not ours
EXTEND_IF_OWNER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
local new_ttl = ttl + tonumber(ARGV[2])
redis.call('PEXPIRE', KEYS[1], new_ttl)
return new_ttl
"""

# Sliding-window log on a sorted set, with the server's clock (one clock for every instance).
# KEYS[1] window key; ARGV[1] limit, ARGV[2] window in microseconds, ARGV[3] unique member.
# -> {allowed 0/1, remaining, retry_after_us, reset_after_us}
SLIDING_WINDOW = """
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, math.ceil(window / 1000))
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {1, limit - count - 1, 0, tonumber(oldest[2]) + window - now}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local retry = tonumber(oldest[2]) + window - now
if retry < 1 then retry = 1 end
return {0, 0, retry, retry}
"""
