//! Expiry over RESP, as session libraries use it: `SET … EX`, `SETEX`,
//! `EXPIRE`, `TTL`, `PERSIST`, `GETEX`, and the commands around them. Times
//! are chosen so that no test waits for one to pass: a value that must be
//! gone is written with an expiry already in the past.
#![allow(clippy::unwrap_used)]

mod common;
mod resp_support;

use common::wall_ms;
use gyre_api::Backend;
use gyre_types::{BucketName, BucketProps};
use resp_support::*;

fn int(reply: Reply) -> i64 {
    match reply {
        Reply::Int(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}

#[tokio::test]
async fn set_with_a_time_to_live_reads_until_it_expires() {
    let (server, _model) = start().await;
    let mut c = server.client().await;
    assert_eq!(
        c.call(&["SET", "session:1", "alice", "EX", "100"]).await,
        ok()
    );
    assert_eq!(c.call(&["GET", "session:1"]).await, bulk("alice"));
    let ttl = int(c.call(&["TTL", "session:1"]).await);
    assert!((99..=100).contains(&ttl), "{ttl}");
    let pttl = int(c.call(&["PTTL", "session:1"]).await);
    assert!((99_000..=100_000).contains(&pttl), "{pttl}");
    let at = int(c.call(&["PEXPIRETIME", "session:1"]).await);
    let want = wall_ms() as i64 + 100_000;
    assert!((want - 2_000..=want).contains(&at), "{at} vs {want}");
    assert_eq!(int(c.call(&["EXPIRETIME", "session:1"]).await), at / 1000);
    // Every unit of SET, and SETEX/PSETEX.
    for args in [
        &["SET", "a", "v", "PX", "100000"][..],
        &[
            "SET",
            "a",
            "v",
            "EXAT",
            &(wall_ms() / 1000 + 100).to_string(),
        ],
        &["SET", "a", "v", "PXAT", &(wall_ms() + 100_000).to_string()],
        &["SETEX", "a", "100", "v"],
        &["PSETEX", "a", "100000", "v"],
    ] {
        let reply = c.call(args).await;
        assert_eq!(reply, ok(), "{args:?}");
        let ttl = int(c.call(&["TTL", "a"]).await);
        assert!((98..=100).contains(&ttl), "{args:?}: {ttl}");
        assert_eq!(c.call(&["GET", "a"]).await, bulk("v"));
    }
    // A plain SET makes a value that never expires (Redis discards the
    // old time to live), KEEPTTL keeps it.
    assert_eq!(c.call(&["SET", "a", "w"]).await, ok());
    assert_eq!(int(c.call(&["TTL", "a"]).await), -1);
    assert_eq!(c.call(&["SET", "a", "x", "EX", "100"]).await, ok());
    assert_eq!(c.call(&["SET", "a", "y", "KEEPTTL"]).await, ok());
    assert!((99..=100).contains(&int(c.call(&["TTL", "a"]).await)));
    assert_eq!(c.call(&["GET", "a"]).await, bulk("y"));
    assert_eq!(int(c.call(&["TTL", "missing"]).await), -2);
    server.shutdown().await;
}

#[tokio::test]
async fn an_expired_value_reads_as_absent_everywhere() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    let past = (wall_ms() - 1).to_string();
    assert_eq!(c.call(&["SET", "gone", "v", "PXAT", &past]).await, ok());
    assert_eq!(c.call(&["GET", "gone"]).await, Reply::Nil);
    assert_eq!(int(c.call(&["EXISTS", "gone"]).await), 0);
    assert_eq!(int(c.call(&["TTL", "gone"]).await), -2);
    assert_eq!(
        c.call(&["TYPE", "gone"]).await,
        Reply::Simple("none".into())
    );
    assert_eq!(
        c.call(&["MGET", "gone"]).await,
        Reply::Array(vec![Reply::Nil])
    );
    let (_, values) = gyre_get(&mut c, "gone").await;
    assert!(values.is_empty());
    // The replica still holds the version; it is the read that hides it.
    assert_eq!(model.values("default", b"gone").len(), 1);
    // DEL of an expired key deletes nothing a client could see.
    assert_eq!(int(c.call(&["DEL", "gone"]).await), 0);
    // SET NX treats it as absent.
    assert_eq!(c.call(&["SET", "gone", "back", "NX"]).await, ok());
    assert_eq!(c.call(&["GET", "gone"]).await, bulk("back"));
    server.shutdown().await;
}

async fn gyre_get(c: &mut Client, key: &str) -> (String, Vec<Vec<u8>>) {
    let reply = c.call(&["GYRE.GET", key]).await.items();
    let values = reply[1].items().iter().map(Reply::bytes).collect();
    (reply[0].text(), values)
}

#[tokio::test]
async fn expire_persist_and_getex_change_the_expiry_of_what_is_there() {
    let (server, _model) = start().await;
    let mut c = server.client().await;
    assert_eq!(int(c.call(&["EXPIRE", "missing", "10"]).await), 0);
    assert_eq!(int(c.call(&["PERSIST", "missing"]).await), 0);
    assert_eq!(c.call(&["SET", "k", "v"]).await, ok());
    assert_eq!(int(c.call(&["PERSIST", "k"]).await), 0);
    assert_eq!(int(c.call(&["EXPIRE", "k", "100"]).await), 1);
    assert!((99..=100).contains(&int(c.call(&["TTL", "k"]).await)));
    assert_eq!(int(c.call(&["PEXPIRE", "k", "200000"]).await), 1);
    assert!((199..=200).contains(&int(c.call(&["TTL", "k"]).await)));
    let at = wall_ms() / 1000 + 300;
    assert_eq!(int(c.call(&["EXPIREAT", "k", &at.to_string()]).await), 1);
    assert_eq!(int(c.call(&["EXPIRETIME", "k"]).await), at as i64);
    assert_eq!(
        int(c.call(&["PEXPIREAT", "k", &(at * 1000).to_string()]).await),
        1
    );
    assert_eq!(int(c.call(&["PERSIST", "k"]).await), 1);
    assert_eq!(int(c.call(&["TTL", "k"]).await), -1);
    assert_eq!(c.call(&["GET", "k"]).await, bulk("v"));
    // Conditions: NX only without an expiry, XX only with one, GT only to a
    // later one (none counts as infinite), LT only to an earlier one.
    assert_eq!(int(c.call(&["EXPIRE", "k", "100", "XX"]).await), 0);
    assert_eq!(int(c.call(&["EXPIRE", "k", "100", "GT"]).await), 0);
    assert_eq!(int(c.call(&["EXPIRE", "k", "100", "NX"]).await), 1);
    assert_eq!(int(c.call(&["EXPIRE", "k", "50", "NX"]).await), 0);
    assert_eq!(int(c.call(&["EXPIRE", "k", "50", "GT"]).await), 0);
    assert_eq!(int(c.call(&["EXPIRE", "k", "500", "GT"]).await), 1);
    assert_eq!(int(c.call(&["EXPIRE", "k", "1000", "lt"]).await), 0);
    assert_eq!(int(c.call(&["EXPIRE", "k", "50", "LT"]).await), 1);
    assert!((49..=50).contains(&int(c.call(&["TTL", "k"]).await)));
    // GETEX reads, and may change the expiry.
    assert_eq!(c.call(&["GETEX", "k"]).await, bulk("v"));
    assert!((49..=50).contains(&int(c.call(&["TTL", "k"]).await)));
    assert_eq!(c.call(&["GETEX", "k", "EX", "1000"]).await, bulk("v"));
    assert!((999..=1000).contains(&int(c.call(&["TTL", "k"]).await)));
    assert_eq!(c.call(&["GETEX", "k", "PERSIST"]).await, bulk("v"));
    assert_eq!(int(c.call(&["TTL", "k"]).await), -1);
    assert_eq!(c.call(&["GETEX", "missing", "EX", "5"]).await, Reply::Nil);
    // A time in the past deletes the key, as in Redis.
    assert_eq!(int(c.call(&["EXPIRE", "k", "-1"]).await), 1);
    assert_eq!(c.call(&["GET", "k"]).await, Reply::Nil);
    assert_eq!(int(c.call(&["TTL", "k"]).await), -2);
    server.shutdown().await;
}

#[tokio::test]
async fn conditional_and_reading_writes_answer_as_redis_does() {
    let (server, _model) = start().await;
    let mut c = server.client().await;
    assert_eq!(c.call(&["SET", "k", "1", "XX"]).await, Reply::Nil);
    assert_eq!(c.call(&["GET", "k"]).await, Reply::Nil);
    assert_eq!(c.call(&["SET", "k", "1", "NX"]).await, ok());
    assert_eq!(c.call(&["SET", "k", "2", "NX"]).await, Reply::Nil);
    assert_eq!(c.call(&["GET", "k"]).await, bulk("1"));
    assert_eq!(c.call(&["SET", "k", "2", "XX", "GET"]).await, bulk("1"));
    assert_eq!(
        c.call(&["SET", "k", "3", "GET", "EX", "100"]).await,
        bulk("2")
    );
    assert!((99..=100).contains(&int(c.call(&["TTL", "k"]).await)));
    assert_eq!(c.call(&["GETSET", "k", "4"]).await, bulk("3"));
    assert_eq!(int(c.call(&["TTL", "k"]).await), -1);
    assert_eq!(c.call(&["GETSET", "new", "1"]).await, Reply::Nil);
    assert_eq!(c.call(&["GETDEL", "k"]).await, bulk("4"));
    assert_eq!(c.call(&["GETDEL", "k"]).await, Reply::Nil);
    assert_eq!(
        c.call(&["TYPE", "new"]).await,
        Reply::Simple("string".into())
    );
    assert_eq!(int(c.call(&["TOUCH", "new", "k", "new"]).await), 2);
    assert_eq!(int(c.call(&["UNLINK", "new", "k"]).await), 1);
    assert_eq!(c.call(&["GET", "new"]).await, Reply::Nil);
    server.shutdown().await;
}

#[tokio::test]
async fn gyre_put_and_a_bucket_default_set_expiries_too() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    let (context, _) = gyre_get(&mut c, "k").await;
    c.call(&["GYRE.PUT", "k", &context, "v", "EX", "100"])
        .await
        .text();
    assert!((99..=100).contains(&int(c.call(&["TTL", "k"]).await)));
    c.call(&["GYRE.PUT", "k", "", "v", "PX", "100000", "W", "2"])
        .await
        .text();
    assert!((99..=100).contains(&int(c.call(&["TTL", "k"]).await)));
    // A bucket with a default time to live gives it to writes that name none.
    let sessions = BucketName::new("sessions").unwrap();
    let props = BucketProps::default().with_default_ttl(Some(1800)).unwrap();
    model.set_bucket(sessions, props).await.unwrap();
    assert_eq!(c.call(&["GYRE.BUCKET", "sessions"]).await, ok());
    assert_eq!(c.call(&["SET", "s", "v"]).await, ok());
    assert!((1799..=1800).contains(&int(c.call(&["TTL", "s"]).await)));
    assert_eq!(c.call(&["SET", "s", "v", "EX", "5"]).await, ok());
    assert!((4..=5).contains(&int(c.call(&["TTL", "s"]).await)));
    assert_eq!(int(c.call(&["PERSIST", "s"]).await), 1);
    assert_eq!(int(c.call(&["TTL", "s"]).await), -1);
    server.shutdown().await;
}
