//! `SCAN`, `KEYS` and `DBSIZE` over the model: a scan returns every key of
//! the connection's bucket once, page by page until the cursor is 0, with
//! `MATCH`, `COUNT` and `TYPE` as Redis has them.
#![allow(clippy::unwrap_used)]

mod common;
mod resp_support;

use std::collections::BTreeSet;

use common::wall_ms;
use gyre_api::Backend;
use gyre_types::{BucketName, BucketProps};
use resp_support::*;

/// A whole `SCAN` walk with `extra` options: every key returned, and how
/// many calls it took.
async fn scan_all(c: &mut Client, extra: &[&str]) -> (Vec<String>, usize) {
    let mut cursor = "0".to_owned();
    let mut keys = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec!["SCAN", &cursor];
        args.extend_from_slice(extra);
        let reply = c.call(&args).await.items();
        calls += 1;
        keys.extend(reply[1].items().iter().map(Reply::text));
        cursor = reply[0].text();
        if cursor == "0" {
            return (keys, calls);
        }
    }
}

#[tokio::test]
async fn scan_walks_every_key_of_the_bucket_once() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    let mut written = BTreeSet::new();
    for i in 0..57 {
        let key = format!("user:{i}");
        assert_eq!(c.call(&["SET", &key, "v"]).await, ok());
        written.insert(key);
    }
    for i in 0..5 {
        assert_eq!(c.call(&["SET", &format!("session:{i}"), "v"]).await, ok());
    }
    // Deleted and expired keys, and other buckets, are not listed.
    assert_eq!(c.call(&["SET", "deleted", "v"]).await, ok());
    assert_eq!(c.call(&["DEL", "deleted"]).await, Reply::Int(1));
    let past = (wall_ms() - 1).to_string();
    assert_eq!(c.call(&["SET", "expired", "v", "PXAT", &past]).await, ok());
    let other = BucketName::new("other").unwrap();
    model
        .set_bucket(other, BucketProps::default())
        .await
        .unwrap();
    c.call(&["GYRE.PUT", "elsewhere", "", "v", "BUCKET", "other"])
        .await
        .text();

    let (keys, calls) = scan_all(&mut c, &["COUNT", "7"]).await;
    let unique: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(unique.len(), keys.len(), "a key came twice");
    let mut want = written.clone();
    want.extend((0..5).map(|i| format!("session:{i}")));
    assert_eq!(unique, want);
    assert!(calls >= 62 / 7, "{calls} calls");

    let (sessions, _) = scan_all(&mut c, &["MATCH", "session:*", "COUNT", "100"]).await;
    let sessions: BTreeSet<String> = sessions.into_iter().collect();
    assert_eq!(sessions, (0..5).map(|i| format!("session:{i}")).collect());
    let (strings, _) = scan_all(&mut c, &["TYPE", "string"]).await;
    assert_eq!(strings.len(), want.len());
    let (hashes, calls) = scan_all(&mut c, &["TYPE", "hash"]).await;
    assert_eq!((hashes.len(), calls), (0, 1));

    let keys = c.call(&["KEYS", "user:1?"]).await.items();
    let keys: BTreeSet<String> = keys.iter().map(Reply::text).collect();
    assert_eq!(keys, (10..20).map(|i| format!("user:{i}")).collect());
    assert_eq!(c.call(&["KEYS", "nothing*"]).await, Reply::Array(vec![]));

    // The model counts every object it holds, tombstones included.
    assert_eq!(c.call(&["DBSIZE"]).await, Reply::Int(65));

    // The connection's bucket is the one scanned.
    assert_eq!(c.call(&["GYRE.BUCKET", "other"]).await, ok());
    let (keys, _) = scan_all(&mut c, &[]).await;
    assert_eq!(keys, ["elsewhere"]);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_scan_arguments_are_refused_before_the_backend() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    for (args, reply) in [
        (&["SCAN", "x"][..], "ERR invalid cursor"),
        (&["SCAN", "-1"], "ERR invalid cursor"),
        (&["SCAN", "18446744073709551616"], "ERR invalid cursor"),
        (&["SCAN", "0", "COUNT", "0"], "ERR syntax error"),
        (&["SCAN", "0", "COUNT"], "ERR syntax error"),
        (
            &["SCAN", "0", "COUNT", "x"],
            "ERR value is not an integer or out of range",
        ),
        (&["SCAN", "0", "BOGUS", "1"], "ERR syntax error"),
        (
            &["KEYS"],
            "ERR wrong number of arguments for 'keys' command",
        ),
        (
            &["DBSIZE", "x"],
            "ERR wrong number of arguments for 'dbsize' command",
        ),
    ] {
        assert_eq!(c.call(args).await, error(reply), "{args:?}");
    }
    assert_eq!(calls(&model), 0);
    // Any position is a valid cursor: one past every key ends the walk.
    let reply = c.call(&["SCAN", "18446744073709551615"]).await.items();
    assert_eq!(reply[0], bulk("0"));
    server.shutdown().await;
}
