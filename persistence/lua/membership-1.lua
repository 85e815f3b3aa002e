--[[
  Heartbeat of a worker: register it as live until now + TTL (Redis's clock,
  so workers on different machines agree), drop the workers whose TTL passed,
  and return the live ones. With TTL "0", the worker leaves at once.

  KEYS[1] live workers zset "{ns}:workers" (member = worker id, score = expiry ms)
  ARGV[1] worker id
  ARGV[2] TTL (ms); "0" = leave

  Returns the live worker ids, sorted.
]]
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[2] == "0" then
  redis.call("ZREM", KEYS[1], ARGV[1])
else
  redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
end
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
return redis.call("ZRANGE", KEYS[1], 0, -1)
