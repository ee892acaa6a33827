// Lua scripts of the Redis adapters. Every key arrives through KEYS[] (Cluster-safe;
// all keys of a store share one hash tag). Records are stored as JSON text written by
// the client and never re-encoded in Lua: cjson would turn [] into {} and round
// large numbers, so scripts only decode to read a status.
import { RUN_STATUSES } from '@pipewright/core';

// The status index zsets are passed as KEYS in RUN_STATUSES' order; S maps a status to its place.
const STATUS_INDEX = `local S = {${RUN_STATUSES.map((s, i) => `${s}=${i}`).join(', ')}}`;

// Writes `count` field/value pairs starting at ARGV[from] in slices (Lua's unpack has a stack limit).
const HSET_PAIRS = `
local function hsetPairs(key, from, count)
  local i = 0
  while i < count do
    local n = math.min(500, count - i)
    local args = {}
    for j = 0, n - 1 do
      args[#args + 1] = ARGV[from + 2 * (i + j)]
      args[#args + 1] = ARGV[from + 2 * (i + j) + 1]
    end
    redis.call('HSET', key, unpack(args))
    i = i + n
  end
end
local function rpushIds(key, from, count)
  local i = 0
  while i < count do
    local n = math.min(500, count - i)
    local args = {}
    for j = 0, n - 1 do args[#args + 1] = ARGV[from + 2 * (i + j)] end
    redis.call('RPUSH', key, unpack(args))
    i = i + n
  end
end`;

/**
 * createRun. KEYS: idem, run, jobs, order, runs, status zsets x6.
 * ARGV: useIdem, runId, createdAt, status, staleRunId, nFields, fields..., nJobs, jobs..., retentionMs
 * Returns {1} created, {0, existingId} idempotency hit, {-1} id taken.
 */
export const CREATE_RUN = `${STATUS_INDEX}
${HSET_PAIRS}
if ARGV[1] == '1' then
  local existing = redis.call('GET', KEYS[1])
  if existing and existing ~= ARGV[5] then return {0, existing} end
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1} end
local nFields = tonumber(ARGV[6])
hsetPairs(KEYS[2], 7, nFields)
local j = 7 + 2 * nFields
local nJobs = tonumber(ARGV[j])
if nJobs > 0 then
  hsetPairs(KEYS[3], j + 1, nJobs)
  rpushIds(KEYS[4], j + 1, nJobs)
end
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[6 + S[ARGV[4]]], ARGV[3], ARGV[2])
if ARGV[1] == '1' then redis.call('SET', KEYS[1], ARGV[2]) end
-- A run stored already finished (an import) expires like one that finished later.
local retention = tonumber(ARGV[j + 2 * nJobs + 1] or '0')
if retention > 0 and (ARGV[4] == 'succeeded' or ARGV[4] == 'failed' or ARGV[4] == 'cancelled') then
  for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], retention) end
  if ARGV[1] == '1' then redis.call('PEXPIRE', KEYS[1], retention) end
end
return {1}`;

/**
 * updateRun. KEYS: run, jobs, order, lease, runs, status zsets x6.
 * ARGV: runId, retentionMs, nExpect, expected..., nSet, fields..., nDel, fields...,
 * then optionally specLen, specHashJson: the caller has this spec cached, so when the stored
 * spec has that length and specHash is unchanged, the reply leaves the spec out.
 * Returns {-1} missing, {-2, status} conflict, {1, idemJson|'', specOmitted 0|1, flat hash...}.
 */
export const UPDATE_RUN = `${STATUS_INDEX}
${HSET_PAIRS}
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local old = cjson.decode(redis.call('HGET', KEYS[1], 'status'))
local oldCreated = redis.call('HGET', KEYS[1], 'createdAt')
local nExpect = tonumber(ARGV[3])
if nExpect > 0 then
  local ok = false
  for i = 1, nExpect do if ARGV[3 + i] == old then ok = true end end
  if not ok then return {-2, old} end
end
local p = 4 + nExpect
local nSet = tonumber(ARGV[p])
if nSet > 0 then hsetPairs(KEYS[1], p + 1, nSet) end
p = p + 1 + 2 * nSet
local nDel = tonumber(ARGV[p])
for i = 1, nDel do
  local f = ARGV[p + i]
  if f ~= 'status' and f ~= 'createdAt' and f ~= 'id' then redis.call('HDEL', KEYS[1], f) end
end
local new = cjson.decode(redis.call('HGET', KEYS[1], 'status'))
local created = redis.call('HGET', KEYS[1], 'createdAt')
if new ~= old or created ~= oldCreated then
  redis.call('ZREM', KEYS[6 + S[old]], ARGV[1])
  redis.call('ZADD', KEYS[6 + S[new]], created, ARGV[1])
  redis.call('ZADD', KEYS[5], created, ARGV[1])
end
local idem = redis.call('HGET', KEYS[1], 'idempotencyKey') or ''
local retention = tonumber(ARGV[2])
if retention > 0 then
  if new == 'succeeded' or new == 'failed' or new == 'cancelled' then
    for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], retention) end
  else
    for i = 1, 4 do redis.call('PERSIST', KEYS[i]) end
    idem = ''
  end
else
  idem = ''
end
local knownLen = ARGV[p + nDel + 1]
local omit = knownLen ~= nil and knownLen ~= '' and redis.call('HSTRLEN', KEYS[1], 'spec') == tonumber(knownLen)
  and redis.call('HGET', KEYS[1], 'specHash') == ARGV[p + nDel + 2]
if omit then
  local names = {}
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do if f ~= 'spec' then names[#names + 1] = f end end
  local vals = redis.call('HMGET', KEYS[1], unpack(names))
  local out = {1, idem, 1}
  for i = 1, #names do
    out[#out + 1] = names[i]
    out[#out + 1] = vals[i]
  end
  return out
end
local out = {1, idem, 0}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all do out[#out + 1] = all[i] end
return out`;

/** Read several runs. KEYS: run keys. Returns one flat HGETALL per key (empty when gone). */
export const GET_RUNS = `
local out = {}
for i = 1, #KEYS do out[i] = redis.call('HGETALL', KEYS[i]) end
return out`;

/** getJobs. KEYS: run, jobs, order. Returns {-1} missing or {1, json...} in insertion order. */
export const GET_JOBS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local ids = redis.call('LRANGE', KEYS[3], 0, -1)
local out = {1}
local i = 1
while i <= #ids do
  local args = {}
  for j = i, math.min(i + 499, #ids) do args[#args + 1] = ids[j] end
  local vals = redis.call('HMGET', KEYS[2], unpack(args))
  for j = 1, #vals do out[#out + 1] = vals[j] end
  i = i + 500
end
return out`;

/** addJobs. KEYS: run, jobs, order. ARGV: nJobs, id/json pairs. Returns {-1} missing, {-3, id} duplicate, {1}. */
export const ADD_JOBS = `${HSET_PAIRS}
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local id = ARGV[2 + 2 * i]
  if redis.call('HEXISTS', KEYS[2], id) == 1 then return {-3, id} end
end
hsetPairs(KEYS[2], 2, n)
rpushIds(KEYS[3], 2, n)
return {1}`;

/**
 * putJobs, all or nothing. KEYS: run, jobs pairs (one per run in the batch).
 * ARGV: nExpect, expected..., nJobs, then runPair/jobId/json triples (runPair 1-based).
 * Returns {1}, or for the first failing job i (1-based) {-1, i}, {-3, i}, {-2, i, status}.
 */
export const PUT_JOBS = `
local nExpect = tonumber(ARGV[1])
local p = 2 + nExpect
local n = tonumber(ARGV[p])
local seen = {}
for i = 0, n - 1 do
  local pair = tonumber(ARGV[p + 1 + 3 * i])
  local runKey = KEYS[2 * pair - 1]
  if seen[pair] == nil then
    if redis.call('EXISTS', runKey) == 0 then return {-1, i + 1} end
    seen[pair] = true
  end
  local cur = redis.call('HGET', KEYS[2 * pair], ARGV[p + 2 + 3 * i])
  if not cur then return {-3, i + 1} end
  if nExpect > 0 then
    local st = cjson.decode(cur)['status']
    local ok = false
    for e = 1, nExpect do if ARGV[1 + e] == st then ok = true end end
    if not ok then return {-2, i + 1, st} end
  end
end
for i = 0, n - 1 do
  local pair = tonumber(ARGV[p + 1 + 3 * i])
  redis.call('HSET', KEYS[2 * pair], ARGV[p + 2 + 3 * i], ARGV[p + 3 + 3 * i])
end
return {1}`;

/** acquireLease. KEYS: run, lease. ARGV: owner, ttlMs. Returns -1 missing run, 1 held, 0 refused. */
export const ACQUIRE_LEASE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[2]) == ARGV[1] or redis.call('PTTL', KEYS[2]) == -1 then
  -- Ours, or a lease without expiry (not written by these scripts): such a lease would hide the
  -- run from every recovery for ever, so it counts as expired.
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

/** renewLease. KEYS: lease. ARGV: owner, ttlMs. Returns 1 renewed, 0 lost. */
export const RENEW_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

/** releaseLease. KEYS: lease. ARGV: owner. */
export const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * Log append. KEYS: stream. ARGV: n, then seq/payload pairs. Lines at or below the
 * stream's last seq are skipped, so a resent batch is harmless. Returns lines added.
 */
export const LOG_APPEND = `
local last = 0
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if top[1] then last = tonumber(string.match(top[1][1], '^(%d+)')) end
local added = 0
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local seq = tonumber(ARGV[2 + 2 * i])
  if seq > last then
    redis.call('XADD', KEYS[1], seq .. '-0', 'l', ARGV[3 + 2 * i])
    last = seq
    added = added + 1
  end
end
return added`;

/**
 * Log end marker: entry <lastSeq>-1 sorts after every line so far. KEYS: stream.
 * ARGV: retentionMs. Idempotent.
 */
export const LOG_END = `
local last = '0'
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if top[1] then
  local id = top[1][1]
  if string.sub(id, -2) == '-1' then last = nil else last = string.match(id, '^(%d+)') end
end
if last then redis.call('XADD', KEYS[1], last .. '-1', 'e', '1') end
local retention = tonumber(ARGV[1])
if retention > 0 then redis.call('PEXPIRE', KEYS[1], retention) end
return 1`;
