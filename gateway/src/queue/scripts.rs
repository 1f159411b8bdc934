//! The queue's Lua scripts. Each touches keys of one hash tag only.

use std::sync::LazyLock;

use redis::Script;

use crate::store::group_commit::{batched_script, clock_lua};

/// Lua that ends a job's lease: `release(stream, group, entry, leases, member)` acknowledges
/// and deletes the stream entry, or, for a job handed off at ingest (`entry` empty), takes
/// its member out of the leases set. Answers 1 while the lease was still this worker's, 0
/// when the job had been taken over (its lease ran out).
macro_rules! release_lua {
    () => {
        r#"
local function release(stream, group, entry, leases, member)
  if entry == '' then return redis.call('ZREM', leases, member) end
  local acked = redis.call('XACK', stream, group, entry)
  redis.call('XDEL', stream, entry)
  return acked
end
"#
    };
}

/// Lua that turns zset members back into stream jobs: `push_job(stream, member, ...)` adds
/// the job a member `tenant msg event` names (with `...` as extra fields), and
/// `move_due(zset, stream, max, limit, ...)` moves up to `limit` members scored at or below
/// `max` from the zset onto the stream, answering how many it moved.
macro_rules! move_lua {
    () => {
        r#"
local function push_job(stream, member, ...)
  local t, m, e = string.match(member, '^(%S+) (%S+) (%S+)$')
  if t then redis.call('XADD', stream, '*', 't', t, 'm', m, 'e', e, ...) end
end
local function move_due(zset, stream, max, limit, ...)
  local due = redis.call('ZRANGEBYSCORE', zset, '-inf', max, 'LIMIT', 0, limit)
  for _, member in ipairs(due) do
    push_job(stream, member, ...)
    redis.call('ZREM', zset, member)
  end
  return #due
end
"#
    };
}

/// Records an outcome and acknowledges the job in one step. The attempt record goes into
/// the log hash as field `a:<attempt number>`; KEYS[2], the attempts list where gateways
/// before 2026-11-21 kept them, only has its TTL kept in step with its log.
/// KEYS: log, legacy attempts list, jobs stream, delayed zset, endpoint stats hash, endpoint health key, event,
///       leases zset.
/// ARGV: entry, group, status, attempts, retry-at ms or "", attempt JSON or "", request JSON or "",
///       last error or "", delayed member, ttl secs, stats field or "", health ("ok", "fail" or ""), now ms.
/// Returns -1 when the job was no longer this worker's (another worker finished it, or its
/// lease ended and it went back to the stream) or its log is gone (its retention ended while
/// the job waited: the job is released, nothing is recorded), else the time
/// (ms) since which the endpoint has failed every attempt, 0 when it is healthy.
/// Batched ([`batched_script`]): the outcomes recorded at the same moment go in one call.
pub static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    batched_script(concat!(
        release_lua!(),
        r#"
if release(KEYS[3], ARGV[2], ARGV[1], KEYS[8], ARGV[9]) == 0 then return -1 end
local fields = {'status', ARGV[3], 'attempts', ARGV[4], 'next_attempt_at_ms', ARGV[5], 'last_error', ARGV[8]}
if ARGV[7] ~= '' then
  fields[#fields + 1] = 'request'
  fields[#fields + 1] = ARGV[7]
end
local number = tonumber(ARGV[4])
if ARGV[6] ~= '' then
  -- attempt n is the log's field a:<n>, so it lives exactly as long as its log; the
  -- newest 100 are kept
  fields[#fields + 1] = 'a:' .. ARGV[4]
  fields[#fields + 1] = ARGV[6]
end
-- a log always holds 'status': when HSET created every field, the log was gone (its
-- retention ended): take the fresh one back out, record nothing (no EXISTS first, one
-- redis.call less per outcome)
if redis.call('HSET', KEYS[1], unpack(fields)) == #fields / 2 then
  redis.call('DEL', KEYS[1])
  return -1
end
if ARGV[6] ~= '' and number > 100 then redis.call('HDEL', KEYS[1], 'a:' .. (number - 100)) end
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[9])
  -- a retry due after the retention would find its log gone: keep log, attempts
  -- and event for a full retention past the retry
  local keep = tonumber(ARGV[10]) + math.ceil((tonumber(ARGV[5]) - tonumber(ARGV[13])) / 1000)
  for _, key in ipairs({KEYS[1], KEYS[2], KEYS[7]}) do
    if redis.call('TTL', key) < keep then redis.call('EXPIRE', key, string.format('%d', keep)) end
  end
end
if ARGV[11] ~= '' then
  -- a field's first count may create the hash: that is when it gets its 8-day TTL
  if redis.call('HINCRBY', KEYS[5], ARGV[11], '1') == 1 then redis.call('EXPIRE', KEYS[5], '691200') end
end
if ARGV[12] == 'ok' then
  redis.call('DEL', KEYS[6])
elseif ARGV[12] == 'fail' then
  redis.call('SET', KEYS[6], ARGV[13], 'NX', 'EX', '2592000')
  return tonumber(redis.call('GET', KEYS[6]))
end
return 0
"#,
    ))
});

/// Holds a leased job while its endpoint is paused, unless the endpoints changed since the
/// worker saw the pause (a resume or delete racing it): then the job goes back on the stream,
/// so it is never parked where no resume will find it.
/// KEYS: jobs stream, held zset, endpoints version, leases zset.
/// ARGV: entry ("" for a job handed off at ingest), group, member, now ms, version seen.
pub static HOLD_IF_PAUSED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        release_lua!(),
        move_lua!(),
        r#"
if release(KEYS[1], ARGV[2], ARGV[1], KEYS[4], ARGV[3]) == 0 then return 0 end
local version = redis.call('GET', KEYS[3]) or '0'
if version == ARGV[5] then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
  return 1
end
push_job(KEYS[1], ARGV[3])
return 2
"#,
    ))
});

/// Parks a leased job in a zset (the delayed set) with the given score.
/// KEYS: jobs stream, zset, leases zset. ARGV: entry ("" for a job handed off at ingest),
/// group, member, score.
pub static HOLD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        release_lua!(),
        r#"
local acked = release(KEYS[1], ARGV[2], ARGV[1], KEYS[3], ARGV[3])
if acked == 1 then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3]) end
return acked
"#,
    ))
});

/// Moves members scored at or below ARGV[1] from a zset onto the jobs stream.
/// KEYS: source zset, jobs stream. ARGV: max score, limit. Members are "tenant msg event".
pub static MOVE_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        move_lua!(),
        r#"
return move_due(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))
"#,
    ))
});

/// Renews handed-off leases: each member still in the leases set (XX: one the mover already
/// took stays taken) now ends a lease length from now, by Redis' clock.
/// KEYS: leases zset. ARGV: lease ms, then the members.
pub static RENEW_LEASES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        clock_lua!(),
        r#"
local lease_end = string.format('%.0f', now_ms() + tonumber(ARGV[1]))
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', lease_end, ARGV[i]) end
return #ARGV - 1
"#,
    ))
});

/// Moves handed-off jobs whose lease ended by Redis' clock (the process that took them died
/// or stalled) onto the stream, marked `l` so that the lease counts towards dead-lettering.
/// KEYS: leases zset, jobs stream. ARGV: limit. Members are "tenant msg event".
pub static MOVE_EXPIRED_LEASES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        clock_lua!(),
        move_lua!(),
        r#"
return move_due(KEYS[1], KEYS[2], string.format('%.0f', now_ms()), tonumber(ARGV[1]), 'l', '1')
"#,
    ))
});

/// Re-queues a failed or delivered log (and takes it off the dead set).
/// KEYS: log, jobs stream, dead zset. ARGV: tenant, msg.
/// Returns "ok", "missing", or the current status when it cannot be retried.
pub static REQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local fields = redis.call('HMGET', KEYS[1], 'status', 'event_id')
local status, event = fields[1], fields[2]
if not status then return 'missing' end
if status ~= 'failed' and status ~= 'delivered' then return status end
redis.call('HSET', KEYS[1], 'status', 'pending', 'next_attempt_at_ms', '', 'manual', '1')
redis.call('ZREM', KEYS[3], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. event)
redis.call('XADD', KEYS[2], '*', 't', ARGV[1], 'm', ARGV[2], 'e', event)
return 'ok'
"#,
    )
});

/// Moves a job that crashed its workers too often to the dead set and fails its log.
/// KEYS: jobs stream, dead zset, log. ARGV: entry, group, member, now ms, error text.
pub static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local acked = redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
if acked == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'status', 'failed', 'next_attempt_at_ms', '', 'last_error', ARGV[5])
end
return 1
"#,
    )
});
