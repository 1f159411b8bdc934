//! Group commit of script calls (`gateway::store::group_commit`), against a Redis of the
//! test's own so that its command counts are the test's alone: concurrent calls share
//! round trips, each caller gets its own reply, a failing call fails alone, and a lost
//! Redis answers every caller with an error instead of leaving one waiting.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures::future::join_all;
use gateway::api::error::ApiError;
use gateway::store::group_commit::{batched_script, ScriptBatcher, ScriptCall};
use gateway::store::StoreError;
use gateway_e2e::process::free_port;
use gateway_e2e::redis_server::RedisServer;
use redis::aio::ConnectionManager;
use redis::{Script, Value};

/// `INCRBY KEYS[1] ARGV[1]`, after a busy wait of ARGV[2] loop rounds (so that a test can
/// hold the batcher busy while more calls queue up behind it).
static INCR: LazyLock<Script> = LazyLock::new(|| {
    batched_script(
        r#"
for _ = 1, tonumber(ARGV[2]) do end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"#,
    )
});

/// Answers what the call sees: `#KEYS`, `#ARGV`, and its last key and argument.
static ECHO_SHAPE: LazyLock<Script> = LazyLock::new(|| {
    batched_script(
        r#"
return {#KEYS, #ARGV, KEYS[#KEYS] or '', ARGV[#ARGV] or ''}
"#,
    )
});

async fn connect(redis: &RedisServer) -> ConnectionManager {
    // A response timeout well past the busy call's spin, even on a loaded machine.
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(20)))
        .set_number_of_retries(1);
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection_manager_with_config(config)
        .await
        .unwrap()
}

fn incr(key: &str, by: i64, spin: u64) -> ScriptCall {
    let mut call = ScriptCall::new();
    call.key(key).arg(by).arg(spin);
    call
}

/// An `incr` call carrying `extra` unused arguments (an ingest matching thousands of
/// endpoints has that many).
fn big_incr(key: &str, by: i64, extra: usize) -> ScriptCall {
    let mut call = incr(key, by, 0);
    for i in 0..extra {
        call.arg(i);
    }
    call
}

/// EVALSHA calls Redis has served since its start.
async fn evalsha_calls(conn: &mut ConnectionManager) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Starts a slow call, so that the calls made next queue up behind it.
fn hold_busy(batcher: &Arc<ScriptBatcher>) -> tokio::task::JoinHandle<()> {
    let batcher = batcher.clone();
    let handle = tokio::spawn(async move {
        batcher.call(incr("busy", 1, 20_000_000)).await.unwrap();
    });
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_round_trips_and_each_gets_its_own_reply() {
    let redis = RedisServer::start(free_port(), false).await;
    let mut conn = connect(&redis).await;
    let batcher = Arc::new(ScriptBatcher::new(&INCR, conn.clone()));
    let busy = hold_busy(&batcher);
    tokio::time::sleep(Duration::from_millis(20)).await;

    let calls = (0..200i64).map(|i| {
        let batcher = batcher.clone();
        async move { (i, batcher.call(incr(&format!("k{i}"), i + 1, 0)).await) }
    });
    let replies = join_all(calls).await;
    busy.await.unwrap();

    for (i, reply) in replies {
        let value: i64 = redis::from_redis_value(reply.unwrap()).unwrap();
        assert_eq!(value, i + 1, "call {i} got another call's reply");
        let stored: i64 = redis::cmd("GET")
            .arg(format!("k{i}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(stored, i + 1);
    }
    // 201 calls: the slow one, then the 200 that queued behind it in at most one batch of
    // 256 (a NOSCRIPT miss may add a call or two; one call each would be 201).
    let round_trips = evalsha_calls(&mut conn).await;
    assert!(
        round_trips <= 6,
        "201 calls took {round_trips} EVALSHA calls"
    );
}

/// Calls of different lengths in one batch (a long one before short ones, and the other
/// way round) each see exactly their own KEYS and ARGV, `#` included: the batched script
/// refills one pair of tables per call, and what a longer call left must not show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_of_different_lengths_in_one_batch_see_only_their_own_arguments() {
    let redis = RedisServer::start(free_port(), false).await;
    let mut conn = connect(&redis).await;
    let batcher = Arc::new(ScriptBatcher::new(&ECHO_SHAPE, conn.clone()));
    // The first call goes alone (and loads the script); while Redis answers it, busy with
    // another batcher's slow call, the rest queue up behind it in this order and go as one
    // batch: a 9-argument call, then shorter and longer ones.
    let lengths = [0usize, 9, 1, 0, 5, 12, 2, 0, 7];
    let before = evalsha_calls(&mut conn).await;
    let busy = hold_busy(&Arc::new(ScriptBatcher::new(&INCR, conn.clone())));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let calls = lengths.iter().enumerate().map(|(i, &n)| {
        let batcher = batcher.clone();
        let mut call = ScriptCall::new();
        for k in 0..n {
            call.key(format!("c{i}:k{k}"));
            call.arg(format!("c{i}:a{k}"));
        }
        async move { batcher.call(call).await }
    });
    let replies = join_all(calls).await;
    busy.await.unwrap();
    for (i, (reply, &n)) in replies.into_iter().zip(&lengths).enumerate() {
        let (keys, args, last_key, last_arg): (usize, usize, String, String) =
            redis::from_redis_value(reply.unwrap()).unwrap();
        assert_eq!((keys, args), (n, n), "call {i}");
        let expected = |kind: &str| {
            if n == 0 {
                String::new()
            } else {
                format!("c{i}:{kind}{}", n - 1)
            }
        };
        assert_eq!(last_key, expected("k"), "call {i}");
        assert_eq!(last_arg, expected("a"), "call {i}");
    }
    // The slow call and its script load, the first call and its load, one batch.
    let batches = evalsha_calls(&mut conn).await - before;
    assert!(
        batches <= 5,
        "9 calls and the slow one took {batches} EVALSHA calls: the 8 did not share a batch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_call_fails_alone_and_the_rest_of_its_batch_is_written() {
    let redis = RedisServer::start(free_port(), false).await;
    let mut conn = connect(&redis).await;
    let _: () = redis::cmd("RPUSH")
        .arg("a-list")
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    let batcher = Arc::new(ScriptBatcher::new(&INCR, conn.clone()));
    let busy = hold_busy(&batcher);
    tokio::time::sleep(Duration::from_millis(20)).await;

    let keys: Vec<String> = (0..20)
        .map(|i| {
            if i == 10 {
                "a-list".to_string()
            } else {
                format!("n{i}")
            }
        })
        .collect();
    let replies = join_all(keys.iter().map(|key| batcher.call(incr(key, 5, 0)))).await;
    busy.await.unwrap();

    for (key, reply) in keys.iter().zip(replies) {
        if key == "a-list" {
            match reply {
                Err(StoreError::Redis(e)) => assert_eq!(e.code(), Some("WRONGTYPE"), "{e}"),
                other => panic!("the call on a list should fail with WRONGTYPE: {other:?}"),
            }
        } else {
            assert_eq!(reply.unwrap(), Value::Int(5), "{key}");
        }
    }
    let list_len: i64 = redis::cmd("LLEN")
        .arg("a-list")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        list_len, 1,
        "the list the failing call touched is left as it was"
    );
    // The 20 calls shared a batch (one each would be 21 EVALSHA calls with the slow one).
    let round_trips = evalsha_calls(&mut conn).await;
    assert!(
        round_trips <= 4,
        "21 calls took {round_trips} EVALSHA calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_too_big_to_share_a_batch_goes_alone_and_all_succeed() {
    let redis = RedisServer::start(free_port(), false).await;
    let mut conn = connect(&redis).await;
    let batcher = Arc::new(ScriptBatcher::new(&INCR, conn.clone()));
    // A first call loads the script, so that the count below holds only the calls made next.
    assert_eq!(
        batcher.call(incr("warm-up", 1, 0)).await.unwrap(),
        Value::Int(1)
    );
    let before = evalsha_calls(&mut conn).await;
    let busy = hold_busy(&batcher);
    tokio::time::sleep(Duration::from_millis(20)).await;

    // 9,000 arguments: past the batch caps, and past what Lua's unpack takes at once.
    let calls = (0..11).map(|i| {
        if i == 5 {
            big_incr("big", 7, 9_000)
        } else {
            incr(&format!("s{i}"), i + 1, 0)
        }
    });
    let replies = join_all(calls.map(|call| batcher.call(call))).await;
    busy.await.unwrap();
    for (i, reply) in replies.into_iter().enumerate() {
        let expected = if i == 5 { 7 } else { i as i64 + 1 };
        assert_eq!(reply.unwrap(), Value::Int(expected), "call {i}");
    }
    // The slow call, s0-s4, the big call alone, s6-s10: 4 EVALSHA calls at least. A batch
    // ignoring its caps would take the 11 in one (2 in all); one letting the big call join
    // a batch, 3.
    let round_trips = evalsha_calls(&mut conn).await - before;
    assert!(
        round_trips >= 4,
        "the big call shared a batch: {round_trips} EVALSHA calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_caller_gets_an_error_when_redis_is_gone() {
    let mut redis = RedisServer::start(free_port(), false).await;
    let conn = connect(&redis).await;
    let batcher = Arc::new(ScriptBatcher::new(&INCR, conn));
    assert_eq!(
        batcher.call(incr("before", 1, 0)).await.unwrap(),
        Value::Int(1)
    );
    redis.kill().await;

    let calls = (0..50).map(|i| batcher.call(incr(&format!("k{i}"), 1, 0)));
    let replies = tokio::time::timeout(Duration::from_secs(30), join_all(calls))
        .await
        .expect("callers left waiting after Redis went away");
    for reply in replies {
        let Err(e) = reply else {
            panic!("expected an error, got {reply:?}");
        };
        assert!(matches!(e, StoreError::Redis(_)), "{e:?}");
        // what the API makes of it: 503, not an internal error
        assert_eq!(ApiError::from(e).code(), "store_unavailable");
    }
}
