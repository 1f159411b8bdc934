//! Group commit: the Lua script calls that many tasks make at once go to Redis as one.
//!
//! Ingest (one script per event) and recording outcomes (one script per delivery) are
//! the two writes of the hot path. Under load, dozens of tasks make them at the same
//! moment; sent one by one, each pays a Redis round trip, a script setup in Redis, a
//! socket write on each side and a reply parse. Here callers [`ScriptBatcher::call`]
//! with their own keys and arguments and await their own reply; one task per batcher
//! takes whatever has queued up (at most [`MAX_BATCH`] calls, [`MAX_BATCH_ARGS`] keys and
//! arguments and [`MAX_BATCH_BYTES`] bytes; a call larger than that goes alone), sends it
//! as one `EVALSHA` of the batched script, and answers each caller from its slot of the
//! reply. The caps bound how long one batch holds Redis (a script runs to its end, so a
//! batch that outlived the client's response timeout would be answered 503 although it
//! was written) and how far past `maxmemory` it can write (Redis checks memory once, when
//! a script starts).
//! While a batch is out, the next one gathers: batches grow with the load by themselves,
//! and an idle gateway sends a lone call at once, without waiting for company.
//!
//! The batched script ([`batched_script`]) runs the single-call body once per call, each
//! under `pcall` (its `KEYS` and `ARGV` tables built inside it too, so that nothing of a
//! call can fail outside): a call that fails (a key of the wrong type, out of memory)
//! answers an error for itself alone and the calls around it go on, as separate scripts
//! would; what the failing call wrote before its error stays written, also as with a
//! separate script. All calls of one batcher touch keys of one hash tag (one batcher per
//! shard).

use std::sync::Mutex;

use redis::aio::ConnectionManager;
use redis::{Script, Value};
use tokio::sync::{mpsc, oneshot};

use super::packed::Packed;
use super::{StoreError, StoreResult};

/// Most calls sent in one batch.
pub const MAX_BATCH: usize = 256;
/// Most keys and arguments in one batch (an ingest of one event to one endpoint has 19;
/// each further endpoint adds 4, each costing Redis some 60 µs to write).
pub const MAX_BATCH_ARGS: usize = 2_048;
/// Most bytes of keys and arguments in one batch.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// One script call: its keys and arguments, as the single-call script would take them,
/// each list packed in one buffer ([`Packed`]).
#[derive(Debug, Default)]
pub struct ScriptCall {
    keys: Packed,
    args: Packed,
}

impl ScriptCall {
    /// An empty call.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty call with room for a hot-path call's keys and arguments (about twenty,
    /// of under 2 KiB together) plus `large_args` bytes of larger arguments (an event record,
    /// a request), so that building it allocates four times.
    pub fn with_capacity(large_args: usize) -> Self {
        Self {
            keys: Packed::with_capacity(16, 1024),
            args: Packed::with_capacity(24, 512 + large_args),
        }
    }

    /// How many keys and arguments it has.
    fn arg_count(&self) -> usize {
        self.keys.len() + self.args.len()
    }

    /// How many bytes its keys and arguments hold.
    fn byte_count(&self) -> usize {
        self.keys.byte_len() + self.args.byte_len()
    }

    /// Adds a key (`KEYS[n]`).
    pub fn key(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.keys.push(key.as_ref());
        self
    }

    /// Adds an argument (`ARGV[n]`): what redis-rs would send for `value` (a string or bytes
    /// as they are, a number in decimal; a list adds one argument per item).
    pub fn arg<T: redis::ToRedisArgs>(&mut self, value: T) -> &mut Self {
        value.write_redis_args(&mut self.args);
        self
    }

    /// Adds one argument made of what `write` writes: a large argument (an event record)
    /// built in place, not built apart and copied in.
    pub fn arg_written(&mut self, write: impl FnOnce(&mut dyn std::io::Write)) -> &mut Self {
        {
            // The argument ends when the writer is dropped.
            let mut writer = redis::RedisWrite::writer_for_next_arg(&mut self.args);
            write(&mut writer);
        }
        self
    }
}

/// Lua for Redis' clock: `now_ms()`, the server's time in ms (every process's leases are
/// timed by it, so host clocks may differ). One `redis.call` per read.
macro_rules! clock_lua {
    () => {
        r#"
local function now_ms()
  local now = redis.call('TIME')
  return now[1] * 1000 + math.floor(now[2] / 1000)
end
"#
    };
}
pub(crate) use clock_lua;

/// Wraps a single-call script body (written against `KEYS` and `ARGV`) into a script that
/// runs it once per call of a batch. A body must not write into `KEYS` or `ARGV`, nor
/// return or keep them: every call sees the same two tables, refilled. A body may call
/// `batch_now_ms()`: [`clock_lua`]'s `now_ms()` read once per batch (a batch runs in a few
/// ms at most). `ARGV` of the batch is, per call, its key count, its
/// argument count and its arguments; `KEYS` is every call's keys in order. The reply has
/// one entry per call: `{1, reply}`, or `{0, error text}` if the body failed. (Not error
/// replies inside the array: redis-rs fails a whole reply that holds one.)
pub fn batched_script(body: &str) -> Script {
    Script::new(&format!(
        concat!(
            clock_lua!(),
            r#"
local batch_now = nil
local function batch_now_ms()
  if not batch_now then batch_now = now_ms() end
  return batch_now
end
local function one(KEYS, ARGV)
{body}
end
-- a call's KEYS and ARGV, copied inside the pcall (a Lua unpack of thousands of values
-- would fail, and outside the pcall it would fail the whole batch), into one pair of
-- tables refilled for every call: a fresh pair per call grew each table by doubling,
-- an allocation each time. What a longer call left past the end is cleared, so `#`
-- and every index read what this call holds.
local keys, args, nk_last, na_last = {{}}, {{}}, 0, 0
local function run(k, nk, a, na)
  -- the most either table may hold, in case a copy stops half way
  nk_last, na_last = math.max(nk, nk_last), math.max(na, na_last)
  for i = 1, nk do keys[i] = KEYS[k + i] end
  for i = nk + 1, nk_last do keys[i] = nil end
  for i = 1, na do args[i] = ARGV[a + i] end
  for i = na + 1, na_last do args[i] = nil end
  nk_last, na_last = nk, na
  return one(keys, args)
end
local out, k, a = {{}}, 0, 1
while a <= #ARGV do
  local nk, na = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local ok, reply = pcall(run, k, nk, a + 1, na)
  if ok then
    out[#out + 1] = {{1, reply}}
  else
    -- a failed redis.call: a string 'CODE detail' (Redis 7.0) or a table {{err = ...}}
    local text = type(reply) == 'table' and reply.err or tostring(reply)
    if not string.match(text, '^[A-Z]+ ') then text = 'ERR ' .. text end
    out[#out + 1] = {{0, text}}
  end
  k, a = k + nk, a + 2 + na
end
return out
"#
        ),
        body = body
    ))
}

type Reply = oneshot::Sender<StoreResult<Value>>;
type Queued = (ScriptCall, Reply);

/// Sends the script calls made concurrently as one batched script call (see the module
/// docs).
pub struct ScriptBatcher {
    script: &'static Script,
    conn: ConnectionManager,
    /// The sending task's queue; started on first use (so that the batcher can be built
    /// outside a runtime) and again if the task ever ends (its runtime shut down).
    queue: Mutex<Option<mpsc::UnboundedSender<Queued>>>,
}

impl ScriptBatcher {
    /// A batcher of `script` (made by [`batched_script`]) over `conn`.
    pub fn new(script: &'static Script, conn: ConnectionManager) -> Self {
        Self {
            script,
            conn,
            queue: Mutex::new(None),
        }
    }

    /// Runs one call in the next batch and returns its own reply (or its own error).
    pub async fn call(&self, call: ScriptCall) -> StoreResult<Value> {
        let (reply, answer) = oneshot::channel();
        self.sender()?
            .send((call, reply))
            .map_err(|_| gone("the batch sender has stopped"))?;
        answer
            .await
            .map_err(|_| gone("the batch sender stopped before answering"))?
    }

    /// [`Self::call`], its reply converted to `T`.
    pub async fn call_as<T: redis::FromRedisValue>(&self, call: ScriptCall) -> StoreResult<T> {
        let reply = self.call(call).await?;
        Ok(redis::from_redis_value(reply).map_err(redis::RedisError::from)?)
    }

    /// The running task's queue, starting a task if there is none (or it has ended).
    fn sender(&self) -> StoreResult<mpsc::UnboundedSender<Queued>> {
        let mut queue = self
            .queue
            .lock()
            .map_err(|_| gone("the batch queue is poisoned"))?;
        match queue.as_ref() {
            Some(sender) if !sender.is_closed() => Ok(sender.clone()),
            _ => {
                if queue.is_some() {
                    tracing::warn!("the batch sender had stopped; starting another");
                }
                let (sender, receiver) = mpsc::unbounded_channel();
                tokio::spawn(send_batches(self.script, self.conn.clone(), receiver));
                *queue = Some(sender.clone());
                Ok(sender)
            }
        }
    }
}

/// An I/O-kind error (so the API answers 503, as for a lost connection).
fn gone(what: &'static str) -> StoreError {
    StoreError::Redis(std::io::Error::new(std::io::ErrorKind::BrokenPipe, what).into())
}

/// The batcher's task: one batch out at a time, the next gathering meanwhile.
async fn send_batches(
    script: &'static Script,
    mut conn: ConnectionManager,
    mut queue: mpsc::UnboundedReceiver<Queued>,
) {
    let mut carry = None;
    loop {
        let first = match carry.take() {
            Some(first) => first,
            None => match queue.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let batch = gather(first, &mut queue, &mut carry);
        match run_batch(script, &mut conn, &batch).await {
            Ok(answers) => {
                for (reply, answer) in batch.replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                for reply in batch.replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Calls gathered for one round trip, with their size.
struct Batch {
    calls: Vec<ScriptCall>,
    replies: Vec<Reply>,
    /// Keys and arguments of all calls.
    args: usize,
    /// Bytes of all keys and arguments.
    bytes: usize,
}

/// `first` and whatever else is queued, up to the batch caps; the call that would pass
/// them is left in `carry` for the next batch (a call past the caps on its own goes alone).
fn gather(
    first: Queued,
    queue: &mut mpsc::UnboundedReceiver<Queued>,
    carry: &mut Option<Queued>,
) -> Batch {
    let mut batch = Batch {
        args: first.0.arg_count(),
        bytes: first.0.byte_count(),
        calls: vec![first.0],
        replies: vec![first.1],
    };
    while batch.calls.len() < MAX_BATCH {
        let Ok(next) = queue.try_recv() else { break };
        let (args, bytes) = (next.0.arg_count(), next.0.byte_count());
        if batch.args + args > MAX_BATCH_ARGS || batch.bytes + bytes > MAX_BATCH_BYTES {
            *carry = Some(next);
            break;
        }
        batch.args += args;
        batch.bytes += bytes;
        batch.calls.push(next.0);
        batch.replies.push(next.1);
    }
    batch
}

/// One round trip for a batch: each call's own reply, in order. The outer error is the
/// round trip's (every caller gets it).
async fn run_batch(
    script: &Script,
    conn: &mut ConnectionManager,
    batch: &Batch,
) -> StoreResult<Vec<StoreResult<Value>>> {
    let calls = &batch.calls;
    let count = calls.len();
    // The EVALSHA built straight from the calls: each key and argument is copied once,
    // into the command (a `ScriptInvocation` would copy everything twice more).
    let keys: usize = calls.iter().map(|c| c.keys.len()).sum();
    let mut cmd =
        redis::Cmd::with_capacity(3 + batch.args + 2 * count, batch.bytes + 64 + 8 * count);
    cmd.arg("EVALSHA").arg(script.get_hash()).arg(keys);
    for call in calls.iter() {
        for key in call.keys.iter() {
            cmd.arg(key);
        }
    }
    for call in calls.iter() {
        cmd.arg(call.keys.len()).arg(call.args.len());
        for arg in call.args.iter() {
            cmd.arg(arg);
        }
    }
    let reply: Vec<Value> = match cmd.query_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            // Redis restarted or flushed its scripts: load it and go again.
            script.load_async(conn).await?;
            cmd.query_async(conn).await
        }
        other => other,
    }?;
    if reply.len() != count {
        return Err(StoreError::Corrupt(format!(
            "batched script answered {} replies to {count} calls",
            reply.len()
        )));
    }
    Ok(reply.into_iter().map(call_reply).collect())
}

/// One call's slot of a batch reply: `[1, reply]` or `[0, error text]`.
fn call_reply(slot: Value) -> StoreResult<Value> {
    let Value::Array(mut slot) = slot else {
        return Err(StoreError::Corrupt(format!("batch slot {slot:?}")));
    };
    let reply = if slot.len() > 1 {
        slot.swap_remove(1)
    } else {
        Value::Nil // the body returned nil, which ends a Lua array
    };
    match slot.first() {
        Some(Value::Int(1)) => Ok(reply),
        Some(Value::Int(0)) => Err(StoreError::Redis(server_error(reply))),
        other => Err(StoreError::Corrupt(format!("batch slot tag {other:?}"))),
    }
}

/// The error a call's script body raised, as Redis would have answered it on its own
/// (`WRONGTYPE ...`, `OOM ...`), so that its code and kind survive the batch.
fn server_error(text: Value) -> redis::RedisError {
    let text: String = redis::from_redis_value(text).unwrap_or_else(|_| "ERR script error".into());
    let line = text.replace(['\r', '\n'], " ");
    match redis::parse_redis_value(format!("-{line}\r\n").as_bytes()) {
        Ok(Value::ServerError(e)) => e.into(),
        _ => redis::make_extension_error("ERR".into(), Some(line)),
    }
}

/// Per-shard batchers of one script.
pub struct ShardBatchers(Vec<ScriptBatcher>);

impl ShardBatchers {
    /// One batcher of `script` per shard, all over `conn`.
    pub fn new(script: &'static Script, conn: &ConnectionManager, shards: u16) -> Self {
        Self(
            (0..shards.max(1))
                .map(|_| ScriptBatcher::new(script, conn.clone()))
                .collect(),
        )
    }

    /// The batcher of `shard` (the last one for a shard past the count, which no key
    /// layout produces).
    pub fn shard(&self, shard: u16) -> &ScriptBatcher {
        let i = usize::from(shard).min(self.0.len() - 1);
        &self.0[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(call: &ScriptCall) -> Vec<Vec<u8>> {
        call.args.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn a_written_argument_is_one_argument_between_its_neighbours() {
        let mut written = ScriptCall::with_capacity(16);
        written
            .arg("before")
            .arg_written(|out| {
                out.write_all(b"header\n").unwrap();
                out.write_all(b"{\"payload\":1}").unwrap();
            })
            .arg_written(|_| {})
            .arg(7u64);
        let mut plain = ScriptCall::new();
        plain
            .arg("before")
            .arg(&b"header\n{\"payload\":1}"[..])
            .arg("")
            .arg(7u64);
        assert_eq!(args(&written), args(&plain));
        assert_eq!(written.arg_count(), 4);
        assert_eq!(written.byte_count(), plain.byte_count());
    }
}
