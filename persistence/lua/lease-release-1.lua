--[[
  Give a lease up at once (graceful hand-over), if still held with this value.

  KEYS[1] lease key "{ns:p}:lease"
  ARGV[1] lease value "<epoch>|<owner>"

  Returns 1 released, 0 not held
]]
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("DEL", KEYS[1])
  return 1
end
return 0
