--[[
  Commit one processing step of a partition: the journal entries, snapshots,
  de-dup records, outbox entries, dead letters and ask replies of a batch of
  events, atomically.

  Lua has no rollback, so every check runs before the first write.

  KEYS[1] lease key       "{ns:p}:lease"   (value "<epoch>|<owner>")
  KEYS[2] dedup zset      "{ns:p}:dedup"   (member -> commit time ms)
  KEYS[3] outbox stream   "{ns:p}:outbox"
  KEYS[4] the partition's list of jobs in progress (the mailbox queue's active
          list; same hash tag), checked when ARGV[9] >= 0
  KEYS[5] the partition's list of waiting jobs: its length is returned
          (ARGV[9] >= 0 only)
  KEYS[6] the queue's wake-up markers (a sorted set; same hash tag): ARGV[10]
          is removed from it when KEYS[5] is empty (ARGV[9] >= 0 only)

  ARGV[1] expected lease value "<epoch>|<owner>"
  ARGV[2] key prefix of the partition "{ns:p}:" (journal "j:", snapshot "s:",
          reply "r:", dead letters "dlq", mail "mail" are built from it: same
          hash slot)
  ARGV[3] now (ms)
  ARGV[4] dedup: drop records with a score below this (ms)
  ARGV[5] dedup: keep at most this many records
  ARGV[6] outbox / dead-letter streams: approximate MAXLEN (the mail stream is
          not capped: the relay trims what it has delivered)
  ARGV[7] reply list TTL (ms)
  ARGV[8] "1": refuse the commit if an actor of a group is stopped (the caller
          did not read the stopped set before applying); "0": it did
  ARGV[9] the number of jobs the caller holds in KEYS[4]: a longer list holds
          jobs of another owner (older than the caller's, so to be applied
          first) and the commit is refused; -1: not checked
  ARGV[10] the member of KEYS[6] that says "a job is waiting" ("": none). The
          queue adds it with every job and again on every job it hands out, to
          wake other consumers; the partition's owner is the only one, so with
          nothing waiting it would wake its next blocking fetch for nothing
  ARGV[11] the rest, packed: a sequence of items, each a 4-byte big-endian
          byte length and that many bytes (numbers as their decimal text).
          Thousands of arguments would each cost the client a length count and
          a piece of the command text; one blob is written in one pass, and
          struct.unpack gives each item back as the Lua string an argument
          would have been. The items form eleven sections, each a count
          followed by its items (what every event has takes as few items as
          it can):
    G groups, each: actorRef, expectedSeq, n, <n journal entries>
    S snapshots, each: groupIndex (1-based), snapshotSeq, version, snapshotJson,
      timersJson
    T expiries, each: groupIndex, ttlMs: the group's journal and snapshot expire
      after that much inactivity (every commit renews it); groups not named: kept
    D dedup members
    O outputs (to the outbox stream): their count, then, when there are any,
      one item: their JSON array text, written as ONE stream record (field
      "outs"; a reader splits it, and names an output inside it by the
      record's id and its index). One record per commit instead of one per
      output: a stream entry, a call and a reply entry less per output.
    M mail (to the mail stream, which the relay moves to the queues), each:
      kind ("mail" | "timer"), body
    L dead letters, each: body
    R replies, each: askId, body
    K key states, each: op ("stop" | "resume"), actorRef, body
      stop:   HSET "{ns:p}:stopped" actorRef body   (its later events go to dead letters)
      resume: HDEL "{ns:p}:stopped" actorRef
    A jobs acknowledged by this commit (ARGV[9] >= 0 only), each: jobId,
      removed from KEYS[4] (they are among the ARGV[9] held)
    X keys deleted with them (their records; same hash tag)

  Returns:
    { 1, lastOutputId or "", waiting } committed (waiting: LLEN KEYS[5], or -1)
    { -1, actualLeaseValue }     lease lost (expired or taken over): nothing written
    { -2, groupIndex, actualSeq } a journal is not at the expected seq: nothing written
    { -3, member }               an event id was already applied: nothing written
    { -4, actorRef }             ARGV[8] = "1" and that actor is stopped: nothing written
    { -5, activeLength }         KEYS[4] holds more than ARGV[9] jobs: nothing written
]]
local rcall = redis.call
local leaseValue = rcall("GET", KEYS[1])
if leaseValue ~= ARGV[1] then
  return { -1, leaseValue or "" }
end

local expectActive = tonumber(ARGV[9])
if expectActive >= 0 then
  local active = rcall("LLEN", KEYS[4])
  if active > expectActive then
    return { -5, active }
  end
end

local prefix = ARGV[2]
local now = ARGV[3]
local maxLen = ARGV[6]
local stoppedKey = prefix .. "stopped"
-- An empty stopped set (the usual case) is not looked up per actor.
local checkStopped = ARGV[8] == "1" and rcall("EXISTS", stoppedKey) == 1

-- The packed items (ARGV[11]) as an array A, read in order from i.
local A = {}
do
  local blob, pos, n, size = ARGV[11], 1, 0, #ARGV[11]
  local unpackItem = struct.unpack
  while pos <= size do
    n = n + 1
    A[n], pos = unpackItem(">I4c0", blob, pos)
  end
end
local i = 1

-- Parse and check the groups.
local groupCount = tonumber(A[i]); i = i + 1
local groups = {}
for g = 1, groupCount do
  local ref = A[i]
  local n = tonumber(A[i + 2])
  local journalKey = prefix .. "j:" .. ref
  local actual = rcall("LLEN", journalKey)
  if actual ~= tonumber(A[i + 1]) then
    return { -2, g - 1, actual }
  end
  if checkStopped and rcall("HEXISTS", stoppedKey, ref) == 1 then
    return { -4, ref }
  end
  groups[g] = { journalKey, i + 3, n, ref }
  i = i + 3 + n
end
local snapshotCount = tonumber(A[i]); i = i + 1
local snapshotFirst = i
i = i + 5 * snapshotCount
local expiryCount = tonumber(A[i]); i = i + 1
local expiryFirst = i
i = i + 2 * expiryCount

-- De-dup members are checked and added CHUNK at a time (one call each, not one per event).
local CHUNK = 500
local dedupCount = tonumber(A[i]); i = i + 1
local dedupFirst = i
for from = 0, dedupCount - 1, CHUNK do
  local last = math.min(from + CHUNK, dedupCount) - 1
  local scores = rcall("ZMSCORE", KEYS[2], unpack(A, dedupFirst + from, dedupFirst + last))
  for d = 1, #scores do
    if scores[d] then
      return { -3, A[dedupFirst + from + d - 1] }
    end
  end
end
i = dedupFirst + dedupCount

-- All checks passed: write.
for g = 1, groupCount do
  local grp = groups[g]
  local from, n = grp[2], grp[3]
  local done = 0
  while done < n do
    local k = math.min(CHUNK, n - done)
    rcall("RPUSH", grp[1], unpack(A, from + done, from + done + k - 1))
    done = done + k
  end
end
for s = 0, snapshotCount - 1 do
  local at = snapshotFirst + 5 * s
  local snapshotKey = prefix .. "s:" .. groups[tonumber(A[at])][4]
  rcall("HSET", snapshotKey, "seq", A[at + 1], "version", A[at + 2], "state", A[at + 3], "timers", A[at + 4], "at", now)
end
for e = 0, expiryCount - 1 do
  local grp = groups[tonumber(A[expiryFirst + 2 * e])]
  local ttl = A[expiryFirst + 2 * e + 1]
  rcall("PEXPIRE", grp[1], ttl)
  rcall("PEXPIRE", prefix .. "s:" .. grp[4], ttl)
end

for from = 0, dedupCount - 1, CHUNK do
  local last = math.min(from + CHUNK, dedupCount) - 1
  local scored = {}
  for d = from, last do
    scored[#scored + 1] = now
    scored[#scored + 1] = A[dedupFirst + d]
  end
  rcall("ZADD", KEYS[2], unpack(scored))
end
if dedupCount > 0 then
  rcall("ZREMRANGEBYSCORE", KEYS[2], "-inf", "(" .. ARGV[4])
  local excess = rcall("ZCARD", KEYS[2]) - tonumber(ARGV[5])
  if excess > 0 then
    rcall("ZREMRANGEBYRANK", KEYS[2], 0, excess - 1)
  end
end

local lastId = ""
local mailKey = prefix .. "mail"
local outCount = tonumber(A[i]); i = i + 1
-- (Older records hold one output each, as "body", some with "kind" "out": readers still read them.)
if outCount > 0 then
  lastId = rcall("XADD", KEYS[3], "MAXLEN", "~", maxLen, "*", "outs", A[i])
  i = i + 1
end
local mailCount = tonumber(A[i]); i = i + 1
for m = 1, mailCount do
  rcall("XADD", mailKey, "*", "kind", A[i], "body", A[i + 1])
  i = i + 2
end

local dlqCount = tonumber(A[i]); i = i + 1
for l = 1, dlqCount do
  rcall("XADD", prefix .. "dlq", "MAXLEN", "~", maxLen, "*", "body", A[i])
  i = i + 1
end

local replyCount = tonumber(A[i]); i = i + 1
for r = 1, replyCount do
  local replyKey = prefix .. "r:" .. A[i]
  rcall("RPUSH", replyKey, A[i + 1])
  rcall("PEXPIRE", replyKey, ARGV[7])
  i = i + 2
end

local stateCount = tonumber(A[i]); i = i + 1
for k = 1, stateCount do
  if A[i] == "stop" then
    rcall("HSET", stoppedKey, A[i + 1], A[i + 2])
  else
    rcall("HDEL", stoppedKey, A[i + 1])
  end
  i = i + 3
end

local ackCount = tonumber(A[i]); i = i + 1
-- LREM from the tail: the queue pushes taken jobs at the head, so the oldest (named first) are found at once.
for a = 1, ackCount do
  rcall("LREM", KEYS[4], -1, A[i])
  i = i + 1
end
local delCount = tonumber(A[i]); i = i + 1
for from = 0, delCount - 1, CHUNK do
  rcall("DEL", unpack(A, i + from, i + math.min(from + CHUNK, delCount) - 1))
end
i = i + delCount

local waiting = -1
if expectActive >= 0 then
  waiting = rcall("LLEN", KEYS[5])
  if waiting == 0 and ARGV[10] ~= "" then
    rcall("ZREM", KEYS[6], ARGV[10])
  end
end
return { 1, lastId, waiting }
