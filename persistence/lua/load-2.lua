--[[
  Read what rehydrating one actor needs, atomically: its latest snapshot and
  the journal entries after it.

  KEYS[1] snapshot hash "{ns:p}:s:<ref>"  (fields seq, version, state)
  KEYS[2] journal list  "{ns:p}:j:<ref>"

  ARGV[1] read the journal only up to this seq ("" or 0: to the end)
  ARGV[2] "1": ignore the snapshot, return the journal from seq 1

  Returns { snapshotSeq, version, state or "", journalLength, entries, timers or "" }
  where entries is the journal entries snapshotSeq+1 .. min(end, ARGV[1])
  joined with "," (a JSON array without its brackets: one reply to parse,
  however long the tail).
]]
local rcall = redis.call
local snapSeq, version, state, timers = 0, 0, "", ""
local upTo = tonumber(ARGV[1]) or 0
if ARGV[2] ~= "1" then
  local s = rcall("HMGET", KEYS[1], "seq", "version", "state", "timers")
  if s[1] and (upTo == 0 or tonumber(s[1]) <= upTo) then
    snapSeq, version, state, timers = tonumber(s[1]), tonumber(s[2]), s[3], s[4] or ""
  end
end
local length = rcall("LLEN", KEYS[2])
-- A snapshot past the journal's end outlived its journal (state TTL): the actor is gone.
if snapSeq > length then snapSeq, version, state, timers = 0, 0, "", "" end
local last = -1
if upTo > 0 then last = upTo - 1 end
local entries = rcall("LRANGE", KEYS[2], snapSeq, last)
return { snapSeq, version, state, length, table.concat(entries, ","), timers }
