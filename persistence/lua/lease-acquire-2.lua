--[[
  Take the lease of a partition, or keep it if this owner already holds it.
  A new holder gets a new epoch (fencing token): the epoch counter only grows.

  KEYS[1] lease key        "{ns:p}:lease"  (value "<epoch>|<owner>", with a TTL)
  KEYS[2] epoch counter    "{ns:p}:epoch"

  ARGV[1] owner id (no "|")
  ARGV[2] lease TTL (ms)

  Returns { epoch, leaseValue }  acquired or kept
          { 0, holderValue, remainingTtlMs }  held by another owner
]]
local rcall = redis.call
local current = rcall("GET", KEYS[1])
if current then
  local sep = string.find(current, "|", 1, true)
  local owner = string.sub(current, sep + 1)
  if owner == ARGV[1] then
    rcall("PEXPIRE", KEYS[1], ARGV[2])
    return { tonumber(string.sub(current, 1, sep - 1)), current }
  end
  return { 0, current, rcall("PTTL", KEYS[1]) }
end
local epoch = rcall("INCR", KEYS[2])
local value = epoch .. "|" .. ARGV[1]
rcall("SET", KEYS[1], value, "PX", ARGV[2])
return { epoch, value }
