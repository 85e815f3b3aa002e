--[[
  Extend a lease this owner still holds with the same epoch.

  KEYS[1] lease key "{ns:p}:lease"
  ARGV[1] lease value "<epoch>|<owner>"
  ARGV[2] lease TTL (ms)

  Returns 1 extended, 0 lost (expired or taken over)
]]
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return 1
end
return 0
