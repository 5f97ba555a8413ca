//! The Redis front end over the DVV model, spoken to as a client would:
//! raw RESP over TCP.
#![allow(clippy::unwrap_used)]

mod common;
mod resp_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::ModelBackend;
use gyre_api::auth::{Gate, Role, UserEntry, Users, hash_secret};
use gyre_api::resp::RespConfig;
use gyre_api::{
    AdminCommand, AdminError, AdminReply, Backend, BucketSet, ClusterStatus, KvError, NodeStats,
};
use gyre_types::{BucketName, BucketProps};
use gyre_wire::{ClientOp, ClientReply};
use resp_support::*;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn plain_commands_read_and_write_the_default_bucket() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    assert_eq!(c.call(&["PING"]).await, Reply::Simple("PONG".into()));
    assert_eq!(c.call(&["ping", "hi"]).await, bulk("hi"));
    assert_eq!(c.call(&["ECHO", "a\r\nb"]).await, bulk("a\r\nb"));
    assert_eq!(c.call(&["GET", "k"]).await, Reply::Nil);
    assert_eq!(c.call(&["SET", "k", "v1"]).await, ok());
    assert_eq!(c.call(&["get", "k"]).await, bulk("v1"));
    assert_eq!(c.call(&["Set", "k", ""]).await, ok());
    assert_eq!(c.call(&["GET", "k"]).await, bulk(""));
    assert_eq!(model.values("default", b"k"), [Bytes::new()]);
    assert_eq!(c.call(&["MSET", "a", "1", "b", "2"]).await, ok());
    assert_eq!(
        c.call(&["MGET", "a", "missing", "b"]).await,
        Reply::Array(vec![bulk("1"), Reply::Nil, bulk("2")])
    );
    assert_eq!(
        c.call(&["EXISTS", "a", "missing", "b", "a"]).await,
        Reply::Int(3)
    );
    assert_eq!(c.call(&["DEL", "a", "missing", "k"]).await, Reply::Int(2));
    assert_eq!(c.call(&["GET", "a"]).await, Reply::Nil);
    assert_eq!(c.call(&["EXISTS", "a", "k"]).await, Reply::Int(0));
    assert!(model.values("default", b"a").is_empty());
    assert_eq!(c.call(&["DEL", "a"]).await, Reply::Int(0));
    // Binary keys and values pass through untouched.
    let binary: Vec<u8> = (0..=255).collect();
    assert_eq!(c.call(&[&b"SET"[..], &binary, &binary]).await, ok());
    assert_eq!(c.call(&[&b"GET"[..], &binary]).await, bulk(&binary));
    server.shutdown().await;
}

#[tokio::test]
async fn a_large_value_round_trips() {
    let (server, _model) = start().await;
    let mut c = server.client().await;
    let value: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    assert_eq!(c.call(&[&b"SET"[..], b"big", &value]).await, ok());
    assert_eq!(c.call(&["GET", "big"]).await, bulk(&value));
    server.shutdown().await;
}

#[tokio::test]
async fn gyre_bucket_selects_the_bucket_of_plain_commands() {
    let (server, model) = start().await;
    model
        .set_bucket(BucketName::new("other").unwrap(), BucketProps::default())
        .await
        .unwrap();
    let mut c = server.client().await;
    assert_eq!(c.call(&["GYRE.BUCKET"]).await, bulk("default"));
    assert_eq!(c.call(&["GYRE.BUCKET", "other"]).await, ok());
    assert_eq!(c.call(&["GYRE.BUCKET"]).await, bulk("other"));
    assert_eq!(c.call(&["SET", "k", "in-other"]).await, ok());
    assert_eq!(model.values("other", b"k"), [Bytes::from("in-other")]);
    assert!(model.values("default", b"k").is_empty());
    let before = calls(&model);
    assert_eq!(
        c.call(&["GYRE.BUCKET", "nope"]).await,
        error("ERR unknown bucket 'nope'")
    );
    assert!(
        c.call(&["GYRE.BUCKET", "bad name!"])
            .await
            .is_error_starting("ERR invalid bucket name")
    );
    assert_eq!(calls(&model), before);
    // Still in "other".
    assert_eq!(c.call(&["GET", "k"]).await, bulk("in-other"));
    // Another connection starts in the default bucket.
    assert_eq!(server.client().await.call(&["GET", "k"]).await, Reply::Nil);
    server.shutdown().await;
}

#[tokio::test]
async fn select_picks_the_bucket_of_a_database_number() {
    let (server, model) = start().await;
    model
        .set_bucket(BucketName::new("db3").unwrap(), BucketProps::default())
        .await
        .unwrap();
    let mut c = server.client().await;
    assert_eq!(c.call(&["SELECT", "3"]).await, ok());
    assert_eq!(c.call(&["GYRE.BUCKET"]).await, bulk("db3"));
    assert_eq!(c.call(&["SET", "k", "in-3"]).await, ok());
    assert_eq!(model.values("db3", b"k"), [Bytes::from("in-3")]);
    assert!(model.values("default", b"k").is_empty());
    assert!(
        c.call(&["SELECT", "4"])
            .await
            .is_error_starting("ERR DB index is out of range: database 4 is the bucket 'db4'")
    );
    assert_eq!(c.call(&["GYRE.BUCKET"]).await, bulk("db3"));
    assert_eq!(c.call(&["SELECT", "0"]).await, ok());
    assert_eq!(c.call(&["GYRE.BUCKET"]).await, bulk("default"));
    assert_eq!(c.call(&["GET", "k"]).await, Reply::Nil);
    server.shutdown().await;
}

#[tokio::test]
async fn a_hundred_pipelined_commands_are_answered_in_order() {
    let (server, _model) = start().await;
    let mut c = server.client().await;
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend(encode(&["SET", &format!("k{i}"), &format!("v{i}")]));
        batch.extend(encode(&["GET", &format!("k{i}")]));
    }
    c.send(&batch).await;
    for i in 0..50 {
        assert_eq!(c.reply().await, ok());
        assert_eq!(c.reply().await, bulk(format!("v{i}")));
    }
    // Many small commands split at every byte still come out whole.
    let batch: Vec<u8> = (0..20).flat_map(|_| encode(&["PING"])).collect();
    for byte in &batch {
        c.send(std::slice::from_ref(byte)).await;
    }
    for _ in 0..20 {
        assert_eq!(c.reply().await, Reply::Simple("PONG".into()));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn inline_commands_work_as_in_telnet() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    c.send(b"PING\r\n").await;
    assert_eq!(c.reply().await, Reply::Simple("PONG".into()));
    c.send(b"set k \"hello world\\n\"\r\nget k\n\r\n  \nEXISTS 'k'\r\n")
        .await;
    assert_eq!(c.reply().await, ok());
    assert_eq!(c.reply().await, bulk("hello world\n"));
    assert_eq!(c.reply().await, Reply::Int(1));
    assert_eq!(
        model.values("default", b"k"),
        [Bytes::from("hello world\n")]
    );
    // Unbalanced quotes lose the framing, as in Redis.
    c.send(b"SET k \"oops\r\n").await;
    assert_eq!(
        c.reply().await,
        error("ERR Protocol error: unbalanced quotes in request")
    );
    assert!(c.closed().await);
    server.shutdown().await;
}

#[tokio::test]
async fn hello_3_switches_nulls_and_maps_to_resp3() {
    let (server, _model) = start().await;
    let mut c = server.client().await;
    let id = match c.call(&["CLIENT", "ID"]).await {
        Reply::Int(id) => id,
        other => panic!("{other:?}"),
    };
    // HELLO without a version answers in the current protocol.
    let hello = c.call(&["HELLO"]).await.items();
    assert_eq!(hello.len(), 14);
    assert_eq!(hello[0..2], [bulk("server"), bulk("gyre")]);
    assert_eq!(hello[4..6], [bulk("proto"), Reply::Int(2)]);
    let Reply::Map(hello) = c.call(&["HELLO", "3", "SETNAME", "me"]).await else {
        panic!("HELLO 3 answers a map")
    };
    assert_eq!(
        hello,
        [
            (bulk("server"), bulk("gyre")),
            (bulk("version"), bulk("7.0.0")),
            (bulk("proto"), Reply::Int(3)),
            (bulk("id"), Reply::Int(id)),
            (bulk("mode"), bulk("standalone")),
            (bulk("role"), bulk("master")),
            (bulk("modules"), Reply::Array(vec![])),
        ]
    );
    assert_eq!(c.call(&["CLIENT", "GETNAME"]).await, bulk("me"));
    assert_eq!(c.call(&["GET", "missing"]).await, Reply::Null);
    assert_eq!(
        c.call(&["MGET", "missing"]).await,
        Reply::Array(vec![Reply::Null])
    );
    assert_eq!(
        c.call(&["CONFIG", "GET", "save"]).await,
        Reply::Map(vec![(bulk("save"), bulk(""))])
    );
    assert_eq!(c.call(&["COMMAND", "DOCS"]).await, Reply::Map(vec![]));
    assert!(matches!(
        c.call(&["INFO", "server"]).await,
        Reply::Verbatim(t) if t.starts_with("# Server\r\n")
    ));
    assert!(matches!(c.call(&["HELLO", "2"]).await, Reply::Array(_)));
    assert_eq!(c.call(&["GET", "missing"]).await, Reply::Nil);
    assert_eq!(
        c.call(&["HELLO", "4"]).await,
        error("NOPROTO unsupported protocol version")
    );
    assert_eq!(
        c.call(&["HELLO", "x"]).await,
        error("ERR Protocol version is not an integer or out of range")
    );
    assert_eq!(
        c.call(&["HELLO", "3", "BOGUS"]).await,
        error("ERR Syntax error in HELLO option 'BOGUS'")
    );
    // A failed HELLO leaves the protocol as it was.
    assert_eq!(c.call(&["GET", "missing"]).await, Reply::Nil);
    server.shutdown().await;
}

/// The base64 context of a GYRE.GET and its values.
async fn gyre_get(c: &mut Client, key: &str) -> (String, Vec<Vec<u8>>) {
    let reply = c.call(&["GYRE.GET", key]).await.items();
    assert_eq!(reply.len(), 2, "{reply:?}");
    (
        reply[0].text(),
        reply[1].items().iter().map(Reply::bytes).collect(),
    )
}

#[tokio::test]
async fn concurrent_gyre_puts_become_siblings_and_a_put_with_their_context_resolves_them() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    // The empty context of a missing key: a valid base64 string.
    let (empty, values) = gyre_get(&mut c, "k").await;
    assert!(values.is_empty());
    assert!(!empty.is_empty());
    let a = c.call(&["GYRE.PUT", "k", &empty, "a"]).await.text();
    let b = c.call(&["GYRE.PUT", "k", &empty, "b"]).await.text();
    assert_ne!(a, b);
    let (context, mut values) = gyre_get(&mut c, "k").await;
    values.sort();
    assert_eq!(values, [b"a".to_vec(), b"b".to_vec()]);
    // The contexts are standard base64, as the HTTP API writes them.
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&context)
        .unwrap();
    assert!(gyre_versioning::Context::from_bytes(&raw).is_ok());
    // GET shows one of them: the latest.
    assert_eq!(c.call(&["GET", "k"]).await, bulk("b"));
    // A put with the read's context resolves both.
    let after = c.call(&["GYRE.PUT", "k", &context, "merged"]).await.text();
    assert_eq!(model.values("default", b"k"), [Bytes::from("merged")]);
    let (now, values) = gyre_get(&mut c, "k").await;
    assert_eq!(values, [b"merged".to_vec()]);
    assert_eq!(now, after);
    // A delete with it removes the value; the tombstone's context comes back.
    let deleted = c.call(&["GYRE.DEL", "k", &now]).await.text();
    assert!(!deleted.is_empty());
    assert_eq!(gyre_get(&mut c, "k").await.1, Vec::<Vec<u8>>::new());
    // "" and "-" are blind writes: they supersede everything.
    c.call(&["GYRE.PUT", "k", &empty, "x"]).await.text();
    c.call(&["GYRE.PUT", "k", &empty, "y"]).await.text();
    c.call(&["GYRE.PUT", "k", "", "blind"]).await.text();
    assert_eq!(model.values("default", b"k"), [Bytes::from("blind")]);
    c.call(&["GYRE.PUT", "k", &empty, "z"]).await.text();
    c.call(&["GYRE.DEL", "k", "-"]).await.text();
    assert!(model.values("default", b"k").is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn get_returns_the_latest_sibling_and_set_supersedes_all() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    let (empty, _) = gyre_get(&mut c, "k").await;
    for v in ["first", "second", "third"] {
        c.call(&["GYRE.PUT", "k", &empty, v]).await.text();
    }
    assert_eq!(model.values("default", b"k").len(), 3);
    assert_eq!(c.call(&["GET", "k"]).await, bulk("third"));
    assert_eq!(
        c.call(&["MGET", "k"]).await,
        Reply::Array(vec![bulk("third")])
    );
    assert_eq!(c.call(&["SET", "k", "only"]).await, ok());
    assert_eq!(model.values("default", b"k"), [Bytes::from("only")]);
    // DEL of a key with siblings deletes them all.
    c.call(&["GYRE.PUT", "k", &empty, "again"]).await.text();
    assert_eq!(c.call(&["DEL", "k"]).await, Reply::Int(1));
    assert!(model.values("default", b"k").is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn gyre_options_choose_the_bucket_and_quorums() {
    let (server, model) = start().await;
    model
        .set_bucket(
            BucketName::new("five").unwrap(),
            BucketProps::new(5, 3, 3).unwrap(),
        )
        .await
        .unwrap();
    let mut c = server.client().await;
    let ctx = c
        .call(&["GYRE.PUT", "k", "", "v", "bucket", "five", "W", "5"])
        .await
        .text();
    assert_eq!(model.values("five", b"k"), [Bytes::from("v")]);
    let reply = c
        .call(&["GYRE.GET", "k", "R", "4", "BUCKET", "five"])
        .await
        .items();
    assert_eq!(reply, [bulk(&ctx), Reply::Array(vec![bulk("v")])]);
    // The default bucket has n_val 3: R=5 is impossible there.
    let before = calls(&model);
    assert_eq!(
        c.call(&["GYRE.GET", "k", "R", "5"]).await,
        error("ERR R=5 is impossible with n_val=3: it must be between 1 and 3")
    );
    assert_eq!(
        c.call(&["GYRE.GET", "k", "R", "0"]).await,
        error("ERR R=0 is impossible with n_val=3: it must be between 1 and 3")
    );
    assert_eq!(
        c.call(&["GYRE.PUT", "k", "", "v", "W", "4"]).await,
        error("ERR W=4 is impossible with n_val=3: it must be between 1 and 3")
    );
    assert_eq!(
        c.call(&["GYRE.DEL", "k", "", "W", "-1"]).await,
        error("ERR W=-1 is impossible with n_val=3: it must be between 1 and 3")
    );
    assert_eq!(
        c.call(&["GYRE.GET", "k", "R", "two"]).await,
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.call(&["GYRE.GET", "k", "W", "2"]).await,
        error("ERR syntax error")
    );
    assert_eq!(
        c.call(&["GYRE.GET", "k", "R"]).await,
        error("ERR syntax error")
    );
    assert_eq!(
        c.call(&["GYRE.GET", "k", "BUCKET", "nope"]).await,
        error("ERR unknown bucket 'nope'")
    );
    assert_eq!(
        c.call(&["GYRE.PUT", "k", "", "v", "BUCKET", "nope"]).await,
        error("ERR unknown bucket 'nope'")
    );
    assert_eq!(calls(&model), before);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_an_error_that_reaches_nothing_and_keeps_the_connection() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    let before = calls(&model);
    assert_eq!(
        c.call(&["FOO", "a", "b"]).await,
        error("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(
        c.call(&["foo"]).await,
        error("ERR unknown command 'foo', with args beginning with: ")
    );
    // Long arguments are cut, newlines cannot break the framing.
    let long = "x".repeat(300);
    let Reply::Error(e) = c.call(&["nope", &long, "a\r\nb"]).await else {
        panic!()
    };
    assert!(e.len() < 300, "{e}");
    assert_eq!(
        c.call(&["GET"]).await,
        error("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        c.call(&["GET", "a", "b"]).await,
        error("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        c.call(&["SET", "k"]).await,
        error("ERR wrong number of arguments for 'set' command")
    );
    assert_eq!(
        c.call(&["MSET", "a", "1", "b"]).await,
        error("ERR wrong number of arguments for 'mset' command")
    );
    assert_eq!(
        c.call(&["PING", "a", "b"]).await,
        error("ERR wrong number of arguments for 'ping' command")
    );
    assert_eq!(
        c.call(&["GYRE.PUT", "k", ""]).await,
        error("ERR wrong number of arguments for 'gyre.put' command")
    );
    // Options in conflict, or with bad times, are refused as Redis does.
    for (args, reply) in [
        (
            &["SET", "k", "v", "EX", "10", "PX", "5"][..],
            "ERR syntax error",
        ),
        (&["SET", "k", "v", "NX", "XX"], "ERR syntax error"),
        (
            &["SET", "k", "v", "EX", "10", "KEEPTTL"],
            "ERR syntax error",
        ),
        (&["SET", "k", "v", "EX"], "ERR syntax error"),
        (
            &["SET", "k", "v", "EX", "0"],
            "ERR invalid expire time in 'set' command",
        ),
        (
            &["SET", "k", "v", "PX", "-5"],
            "ERR invalid expire time in 'set' command",
        ),
        (
            &["SET", "k", "v", "EX", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["SET", "k", "v", "EX", "9223372036854775807"],
            "ERR invalid expire time in 'set' command",
        ),
        (
            &["SETEX", "k", "0", "v"],
            "ERR invalid expire time in 'setex' command",
        ),
        (
            &["EXPIRE", "k", "10", "SOON"],
            "ERR Unsupported option SOON",
        ),
        (&["GETEX", "k", "EX"], "ERR syntax error"),
        (
            &["GYRE.PUT", "k", "", "v", "EX", "0"],
            "ERR invalid expire time in 'gyre.put' command",
        ),
        (&["GYRE.GET", "k", "EX", "5"], "ERR syntax error"),
    ] {
        assert_eq!(c.call(args).await, error(reply), "{args:?}");
    }
    assert_eq!(
        c.call(&["SET", "k", "v", "BOGUS"]).await,
        error("ERR syntax error")
    );
    let huge_key = vec![b'k'; gyre_types::Key::MAX_LEN + 1];
    for command in ["GET", "EXISTS", "DEL", "MGET", "GYRE.GET"] {
        assert_eq!(
            c.call(&[command.as_bytes(), &huge_key]).await,
            error("ERR key is 65464 bytes, the maximum is 65463"),
            "{command}"
        );
    }
    assert_eq!(
        c.call(&[&b"SET"[..], &huge_key, b"v"]).await,
        error("ERR key is 65464 bytes, the maximum is 65463")
    );
    // A bad key anywhere in a multi-key command: nothing is written.
    assert_eq!(
        c.call(&[&b"MSET"[..], b"a", b"1", &huge_key, b"2"]).await,
        error("ERR key is 65464 bytes, the maximum is 65463")
    );
    assert_eq!(c.call(&["GET", ""]).await, error("ERR key is empty"));
    assert!(
        c.call(&["GYRE.PUT", "k", "!!not base64!!", "v"])
            .await
            .is_error_starting("ERR bad context: ")
    );
    assert!(
        c.call(&["GYRE.DEL", "k", "AAA"])
            .await
            .is_error_starting("ERR bad context: ")
    );
    assert_eq!(
        c.call(&["SELECT", "-1"]).await,
        error("ERR DB index is out of range")
    );
    assert_eq!(
        c.call(&["SELECT", "x"]).await,
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(calls(&model), before, "bad input reached the backend");
    assert!(model.values("default", b"a").is_empty());
    // A context that is base64 but not a context: the backend refuses it.
    assert!(
        c.call(&["GYRE.PUT", "k", "AAAA", "v"])
            .await
            .is_error_starting("ERR bad context: ")
    );
    // And the connection still works.
    assert_eq!(c.call(&["SET", "k", "v"]).await, ok());
    assert_eq!(c.call(&["GET", "k"]).await, bulk("v"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_value_over_the_bucket_limit_is_refused_by_the_backend() {
    let (server, model) = start().await;
    model
        .set_bucket(
            BucketName::new("small").unwrap(),
            BucketProps::default().with_max_value_len(10).unwrap(),
        )
        .await
        .unwrap();
    let mut c = server.client().await;
    assert_eq!(c.call(&["GYRE.BUCKET", "small"]).await, ok());
    assert_eq!(
        c.call(&["SET", "k", "01234567890"]).await,
        error("ERR value too large")
    );
    assert_eq!(c.call(&["SET", "k", "0123456789"]).await, ok());
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_resp_is_a_protocol_error_and_closes_the_connection() {
    let model = Arc::new(ModelBackend::new());
    let config = RespConfig {
        max_value_len: 1024,
        max_args: 16,
        ..RespConfig::default()
    };
    let server = start_with(model.clone(), config).await;
    let cases: [(&[u8], &str); 8] = [
        (b"*x\r\n", "invalid multibulk length"),
        (b"*17\r\n", "invalid multibulk length"),
        (b"*1\r\n+PING\r\n", "expected '$', got '+'"),
        (b"*1\r\n$x\r\n", "invalid bulk length"),
        (b"*1\r\n$-5\r\n", "invalid bulk length"),
        (b"*2\r\n$3\r\nGET\r\n$1025\r\n", "invalid bulk length"),
        (b"*1\r\n$4\r\nPINGxx", "expected CRLF after bulk string"),
        (b"*1\r\n$4\rPING\r\n", "bulk count not terminated by CRLF"),
    ];
    for (input, message) in cases {
        let mut c = server.client().await;
        // A good command first, answered before the framing breaks.
        let mut bytes = encode(&["PING"]);
        bytes.extend_from_slice(input);
        c.send(&bytes).await;
        assert_eq!(c.reply().await, Reply::Simple("PONG".into()));
        assert_eq!(
            c.reply().await,
            error(&format!("ERR Protocol error: {message}")),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert!(c.closed().await, "{:?}", String::from_utf8_lossy(input));
    }
    // A line that never ends.
    let mut c = server.client().await;
    c.send(&vec![b'a'; 70 * 1024]).await;
    assert_eq!(
        c.reply().await,
        error("ERR Protocol error: too big inline request")
    );
    assert!(c.closed().await);
    assert_eq!(calls(&model), 0);
    // The server still serves others.
    assert_eq!(
        server.client().await.call(&["PING"]).await,
        Reply::Simple("PONG".into())
    );
    server.shutdown().await;
}

#[tokio::test]
async fn tool_commands_answer_as_redis_tools_expect() {
    let (server, _model) = start().await;
    let mut c = server.client().await;
    // redis-benchmark reads these two.
    assert_eq!(
        c.call(&["CONFIG", "GET", "save"]).await,
        Reply::Array(vec![bulk("save"), bulk("")])
    );
    assert_eq!(
        c.call(&["CONFIG", "GET", "appendonly"]).await,
        Reply::Array(vec![bulk("appendonly"), bulk("no")])
    );
    assert_eq!(
        c.call(&["CONFIG", "GET", "nothing"]).await,
        Reply::Array(vec![])
    );
    assert_eq!(c.call(&["CONFIG", "GET", "*"]).await.items().len(), 8);
    assert_eq!(
        c.call(&["CONFIG", "SET", "save", ""]).await,
        error("ERR CONFIG SET is not supported by Gyre")
    );
    assert_eq!(
        c.call(&["CONFIG", "FOO"]).await,
        error("ERR unknown subcommand 'FOO'. Try CONFIG HELP.")
    );
    // redis-cli asks for these at start.
    assert_eq!(c.call(&["COMMAND", "DOCS"]).await, Reply::Array(vec![]));
    assert_eq!(c.call(&["COMMAND"]).await, Reply::Array(vec![]));
    let list = c.call(&["COMMAND", "LIST"]).await.items();
    assert!(list.contains(&bulk("gyre.get")));
    assert!(list.contains(&bulk("multi")));
    assert_eq!(
        c.call(&["COMMAND", "COUNT"]).await,
        Reply::Int(list.len() as i64)
    );
    assert_eq!(
        c.call(&["CLIENT", "SETINFO", "LIB-NAME", "redis-cli"])
            .await,
        ok()
    );
    assert_eq!(c.call(&["CLIENT", "SETINFO", "lib-ver", "7.2"]).await, ok());
    assert_eq!(
        c.call(&["CLIENT", "SETINFO", "colour", "blue"]).await,
        error("ERR Unrecognized option 'colour'")
    );
    assert_eq!(c.call(&["CLIENT", "GETNAME"]).await, Reply::Nil);
    assert_eq!(c.call(&["CLIENT", "SETNAME", "worker-1"]).await, ok());
    assert_eq!(c.call(&["CLIENT", "GETNAME"]).await, bulk("worker-1"));
    assert_eq!(
        c.call(&["CLIENT", "SETNAME", "a b"]).await,
        error("ERR Client names cannot contain spaces, newlines or special characters.")
    );
    assert!(
        c.call(&["CLIENT", "INFO"])
            .await
            .text()
            .contains("name=worker-1")
    );
    assert!(matches!(c.call(&["CLIENT", "ID"]).await, Reply::Int(id) if id > 0));
    // CLIENT LIST shows every connection, this one by its name.
    let mut other = server.client().await;
    assert_eq!(other.call(&["CLIENT", "SETNAME", "worker-2"]).await, ok());
    assert_eq!(other.call(&["MULTI"]).await, ok());
    assert_eq!(
        other.call(&["GET", "k"]).await,
        Reply::Simple("QUEUED".into())
    );
    let list = c.call(&["CLIENT", "LIST"]).await.text();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].contains(" name=worker-1 ") && lines[0].contains(" cmd=client "),
        "{list}"
    );
    assert!(
        lines[1].contains(" name=worker-2 ") && lines[1].contains(" multi=1 "),
        "{list}"
    );
    let Reply::Int(my_id) = c.call(&["CLIENT", "ID"]).await else {
        panic!()
    };
    let mine = c
        .call(&["CLIENT", "LIST", "ID", &my_id.to_string()])
        .await
        .text();
    assert_eq!(mine.lines().count(), 1);
    assert!(mine.starts_with(&format!("id={my_id} ")), "{mine}");
    assert_eq!(
        c.call(&["CLIENT", "LIST", "TYPE", "pubsub"]).await.text(),
        ""
    );
    assert_eq!(
        c.call(&["CLIENT", "LIST", "ID", "x"]).await,
        error("ERR Invalid client ID")
    );
    drop(other);
    assert_eq!(
        c.call(&["CLIENT", "KILL"]).await,
        error("ERR unknown subcommand 'KILL'. Try CLIENT HELP.")
    );
    assert_eq!(
        c.call(&["CLIENT", "SETNAME"]).await,
        error("ERR wrong number of arguments for 'client|setname' command")
    );
    assert_eq!(c.call(&["SELECT", "0"]).await, ok());
    let info = c.call(&["INFO"]).await.text();
    for line in [
        "# Server\r\n",
        "redis_version:7.0.0\r\n",
        "gyre_version:",
        "# Clients\r\nconnected_clients:1\r\n",
        "# Stats\r\n",
        "total_commands_processed:",
        "# Keyspace\r\n",
    ] {
        assert!(info.contains(line), "{line:?} not in {info}");
    }
    let stats = c.call(&["info", "STATS"]).await.text();
    assert!(stats.starts_with("# Stats\r\n"), "{stats}");
    assert!(!stats.contains("# Server"));
    assert_eq!(c.call(&["INFO", "nothing"]).await, bulk(""));
    assert_eq!(c.call(&["QUIT"]).await, ok());
    assert!(c.closed().await);
    server.shutdown().await;
}

#[tokio::test]
async fn authentication_flows_as_in_redis() {
    let model = Arc::new(ModelBackend::new());
    let users = Users::new(vec![UserEntry {
        name: "default".into(),
        role: Role::Admin,
        buckets: None,
        secret_hash: hash_secret("s3cret").unwrap(),
    }])
    .unwrap();
    let config = RespConfig {
        gate: Arc::new(Gate::new(users, true)),
        ..RespConfig::default()
    };
    let server = start_with(model.clone(), config).await;
    let mut c = server.client().await;
    for command in [&["GET", "k"][..], &["PING"], &["SET", "k", "v"], &["INFO"]] {
        assert_eq!(
            c.call(command).await,
            error("NOAUTH Authentication required.")
        );
    }
    // Unknown commands are unknown, authenticated or not.
    assert!(
        c.call(&["NOPE"])
            .await
            .is_error_starting("ERR unknown command 'NOPE'")
    );
    let wrong = error("WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(c.call(&["AUTH", "nope"]).await, wrong);
    assert_eq!(c.call(&["AUTH", "someone", "s3cret"]).await, wrong);
    assert_eq!(
        c.call(&["AUTH", "a", "b", "c"]).await,
        error("ERR wrong number of arguments for 'auth' command")
    );
    assert!(
        c.call(&["HELLO", "3"])
            .await
            .is_error_starting("NOAUTH HELLO must be called")
    );
    assert_eq!(
        c.call(&["HELLO", "3", "AUTH", "default", "nope"]).await,
        wrong
    );
    assert_eq!(calls(&model), 0);
    assert_eq!(c.call(&["AUTH", "s3cret"]).await, ok());
    assert_eq!(c.call(&["SET", "k", "v"]).await, ok());
    // AUTH user password, and HELLO … AUTH.
    let mut c = server.client().await;
    assert_eq!(c.call(&["AUTH", "default", "s3cret"]).await, ok());
    assert_eq!(c.call(&["GET", "k"]).await, bulk("v"));
    let mut c = server.client().await;
    assert!(matches!(
        c.call(&["HELLO", "3", "AUTH", "default", "s3cret"]).await,
        Reply::Map(_)
    ));
    assert_eq!(c.call(&["GET", "missing"]).await, Reply::Null);
    // Before authenticating, a client may send only small commands.
    let mut c = server.client().await;
    c.send(b"*11\r\n").await;
    assert_eq!(
        c.reply().await,
        error("ERR Protocol error: unauthenticated multibulk length")
    );
    assert!(c.closed().await);
    let mut c = server.client().await;
    c.send(b"*2\r\n$4\r\nAUTH\r\n$20000\r\n").await;
    assert_eq!(
        c.reply().await,
        error("ERR Protocol error: unauthenticated bulk length")
    );
    assert!(c.closed().await);
    // QUIT needs no password.
    let mut c = server.client().await;
    assert_eq!(c.call(&["QUIT"]).await, ok());
    assert!(c.closed().await);
    let failures = server.metrics.render(&NodeStats::default());
    assert!(
        failures.contains("gyre_auth_failures_total{front=\"resp\"} 3"),
        "{failures}"
    );
    server.shutdown().await;

    // Without a password, AUTH is an error (but AUTH default anything is not).
    let (server, _model) = start().await;
    let mut c = server.client().await;
    assert_eq!(
        c.call(&["AUTH", "x"]).await,
        error(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?"
        )
    );
    assert_eq!(c.call(&["AUTH", "default", "x"]).await, ok());
    assert_eq!(c.call(&["PING"]).await, Reply::Simple("PONG".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn unavailability_and_backend_errors_have_their_own_codes() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    assert_eq!(c.call(&["SET", "k", "v"]).await, ok());
    model.unavailable.store(true, Ordering::SeqCst);
    let unavailable = error(
        "UNAVAILABLE 1 of 2 required replicas answered (asked 2 other primaries, waited 2000 ms)",
    );
    assert_eq!(c.call(&["GET", "k"]).await, unavailable);
    assert_eq!(c.call(&["SET", "k", "w"]).await, unavailable);
    assert_eq!(c.call(&["DEL", "k"]).await, unavailable);
    assert_eq!(c.call(&["MSET", "a", "1", "b", "2"]).await, unavailable);
    assert_eq!(c.call(&["MGET", "a", "b"]).await, unavailable);
    assert_eq!(c.call(&["EXISTS", "a"]).await, unavailable);
    assert_eq!(c.call(&["GYRE.GET", "k"]).await, unavailable);
    assert_eq!(c.call(&["GYRE.PUT", "k", "", "v"]).await, unavailable);
    assert_eq!(c.call(&["GYRE.DEL", "k", ""]).await, unavailable);
    model.unavailable.store(false, Ordering::SeqCst);
    assert_eq!(c.call(&["GET", "k"]).await, bulk("v"));
    let text = server.metrics.render(&NodeStats::default());
    assert!(
        text.contains(r#"gyre_requests_total{front="resp",op="get",outcome="unavailable"} 5"#),
        "{text}"
    );
    assert!(
        text.contains(r#"gyre_requests_total{front="resp",op="put",outcome="ok"} 1"#),
        "{text}"
    );
    server.shutdown().await;

    // The other errors, from a backend that fails as told.
    for (e, reply) in [
        (
            KvError::NotReady("no layout".into()),
            "CLUSTERDOWN not ready: no layout",
        ),
        (
            KvError::Internal("disk on fire".into()),
            "ERR internal error: disk on fire",
        ),
        (KvError::BadRequest("nope".into()), "ERR nope"),
        (
            KvError::UnknownBucket("gone".into()),
            "ERR unknown bucket 'gone'",
        ),
    ] {
        let backend = Arc::new(Gated::new());
        *backend.fail.lock().unwrap() = Some(e);
        let server = start_with(backend, RespConfig::default()).await;
        let mut c = server.client().await;
        assert_eq!(c.call(&["GET", "k"]).await, error(reply));
        assert_eq!(c.call(&["SET", "k", "v"]).await, error(reply));
        server.shutdown().await;
    }
}

#[tokio::test]
async fn metrics_count_every_key_operation_and_siblings() {
    let (server, _model) = start().await;
    let mut c = server.client().await;
    let (empty, _) = gyre_get(&mut c, "k").await;
    c.call(&["GYRE.PUT", "k", &empty, "a"]).await.text();
    c.call(&["GYRE.PUT", "k", &empty, "b"]).await.text();
    c.call(&["GYRE.PUT", "k", &empty, "c"]).await.text();
    c.call(&["GET", "k"]).await.bytes();
    c.call(&["DEL", "k"]).await;
    // Refused before the backend: counted as bad requests.
    assert!(c.call(&["GET", ""]).await.is_error_starting("ERR"));
    assert!(
        c.call(&["GYRE.PUT", "k", "", "v", "W", "9"])
            .await
            .is_error_starting("ERR")
    );
    assert!(
        c.call(&["SET", "k", "v", "NX", "XX"])
            .await
            .is_error_starting("ERR")
    );
    let text = server.metrics.render(&NodeStats::default());
    for line in [
        r#"gyre_requests_total{front="resp",op="get",outcome="bad_request"} 1"#,
        r#"gyre_requests_total{front="resp",op="put",outcome="bad_request"} 2"#,
        r#"gyre_requests_total{front="resp",op="get",outcome="ok"} 3"#,
        r#"gyre_requests_total{front="resp",op="put",outcome="ok"} 3"#,
        r#"gyre_requests_total{front="resp",op="delete",outcome="ok"} 1"#,
        // GET and DEL's read each saw 3 values: 2 extra each.
        "gyre_siblings_returned_total 4",
    ] {
        assert!(text.contains(line), "{line} not in {text}");
    }
    server.shutdown().await;
}

/// The model behind a gate: key operations wait until it opens, or fail
/// with a set error.
struct Gated {
    model: ModelBackend,
    gate: tokio::sync::Semaphore,
    entered: tokio::sync::Notify,
    fail: std::sync::Mutex<Option<KvError>>,
}

impl Gated {
    fn new() -> Self {
        Self {
            model: ModelBackend::new(),
            gate: tokio::sync::Semaphore::new(0),
            entered: tokio::sync::Notify::new(),
            fail: std::sync::Mutex::new(None),
        }
    }
}

impl Backend for Gated {
    async fn kv(&self, op: ClientOp) -> Result<ClientReply, KvError> {
        if let Some(e) = self.fail.lock().unwrap().clone() {
            return Err(e);
        }
        self.entered.notify_one();
        self.gate.acquire().await.unwrap().forget();
        self.model.kv(op).await
    }
    fn bucket(&self, bucket: &BucketName) -> Option<BucketProps> {
        self.model.bucket(bucket)
    }
    fn buckets(&self) -> Vec<(BucketName, BucketProps)> {
        self.model.buckets()
    }
    async fn set_bucket(
        &self,
        bucket: BucketName,
        props: BucketProps,
    ) -> Result<BucketSet, AdminError> {
        self.model.set_bucket(bucket, props).await
    }
    fn status(&self) -> ClusterStatus {
        self.model.status()
    }
    async fn admin(&self, command: AdminCommand) -> Result<AdminReply, AdminError> {
        self.model.admin(command).await
    }
    fn stats(&self) -> NodeStats {
        self.model.stats()
    }
    fn local_trees(&self) -> Vec<gyre_api::TreeRoot> {
        self.model.local_trees()
    }
    fn local_get(
        &self,
        bucket: &BucketName,
        key: &gyre_types::Key,
    ) -> Result<Option<Vec<Bytes>>, KvError> {
        self.model.local_get(bucket, key)
    }
    async fn list_keys(
        &self,
        bucket: &BucketName,
        cursor: u64,
        count: usize,
    ) -> Result<gyre_api::KeyPage, KvError> {
        self.model.list_keys(bucket, cursor, count).await
    }
    async fn key_count(&self) -> Result<u64, KvError> {
        self.model.key_count().await
    }
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_finishes_commands_in_flight() {
    let backend = Arc::new(Gated::new());
    let server = start_with(backend.clone(), RespConfig::default()).await;
    let addr = server.addr;
    let mut idle = server.client().await;
    assert_eq!(idle.call(&["PING"]).await, Reply::Simple("PONG".into()));
    let mut busy = server.client().await;
    // A SET in flight, and another command pipelined behind it.
    let mut batch = encode(&["SET", "k", "v"]);
    batch.extend(encode(&["GET", "k"]));
    busy.send(&batch).await;
    backend.entered.notified().await;
    let stop = tokio::spawn(server.shutdown());
    // The idle connection closes; no new connection is accepted.
    assert!(idle.closed().await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    match TcpStream::connect(addr).await {
        Err(_) => {}
        Ok(mut s) => {
            let mut b = [0u8; 16];
            assert!(matches!(s.read(&mut b).await, Ok(0) | Err(_)));
        }
    }
    assert!(
        !stop.is_finished(),
        "serve returned with a command in flight"
    );
    // The SET finishes and is answered; the pipelined GET is not run.
    backend.gate.add_permits(1);
    assert_eq!(busy.reply().await, ok());
    assert!(busy.closed().await);
    tokio::time::timeout(TIMEOUT, stop).await.unwrap().unwrap();
    assert_eq!(backend.model.values("default", b"k"), [Bytes::from("v")]);
}

/// Random input over TCP: the server answers or hangs up, never dies; and
/// commands cut into random pieces are answered as if sent whole.
#[test]
fn random_bytes_and_fragmented_commands_over_tcp() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (server, _model) = runtime.block_on(start());
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    let garbage = (
        proptest::collection::vec(any::<u8>(), 0..512),
        proptest::bool::ANY,
    );
    runner
        .run(&garbage, |(mut bytes, framed)| {
            if framed {
                bytes.insert(0, b'*');
            }
            runtime.block_on(async {
                let mut c = server.client().await;
                c.send(&bytes).await;
                // Whatever happened, the server still answers a new client.
                let mut fresh = server.client().await;
                assert_eq!(fresh.call(&["PING"]).await, Reply::Simple("PONG".into()));
            });
            Ok(())
        })
        .unwrap();

    let commands = proptest::collection::vec(
        ("[a-z]{1,6}", proptest::collection::vec(any::<u8>(), 0..64)),
        1..8,
    );
    let cuts = proptest::collection::vec(any::<usize>(), 0..10);
    runner
        .run(&(commands, cuts), |(commands, cuts)| {
            runtime.block_on(async {
                let mut c = server.client().await;
                let mut batch = Vec::new();
                for (key, value) in &commands {
                    batch.extend(encode(&[&b"SET"[..], key.as_bytes(), value]));
                    batch.extend(encode(&[&b"GET"[..], key.as_bytes()]));
                }
                let mut cuts: Vec<usize> = cuts.iter().map(|c| c % batch.len()).collect();
                cuts.push(batch.len());
                cuts.sort_unstable();
                let mut sent = 0;
                for cut in cuts {
                    c.send(&batch[sent..cut.max(sent)]).await;
                    sent = cut.max(sent);
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                for (_, value) in &commands {
                    assert_eq!(c.reply().await, ok());
                    assert_eq!(c.reply().await, bulk(value));
                }
            });
            Ok(())
        })
        .unwrap();
    runtime.block_on(server.shutdown());
}

/// Each role runs what it may, on the buckets it may touch, and nothing
/// else: `-NOPERM`, and the backend never sees the refused command.
#[tokio::test]
async fn each_user_runs_what_its_role_allows() {
    let model = Arc::new(ModelBackend::new());
    for bucket in ["other", "db1"] {
        model
            .set_bucket(BucketName::new(bucket).unwrap(), BucketProps::default())
            .await
            .unwrap();
    }
    let entry = |name: &str, role: Role, buckets: Option<Vec<String>>| UserEntry {
        name: name.into(),
        role,
        buckets,
        secret_hash: hash_secret(&format!("{name}-secret")).unwrap(),
    };
    let users = Users::new(vec![
        entry("root", Role::Admin, None),
        entry("app", Role::ReadWrite, Some(vec!["default".into()])),
        entry("viewer", Role::ReadOnly, None),
    ])
    .unwrap();
    let config = RespConfig {
        gate: Arc::new(Gate::new(users, true)),
        ..RespConfig::default()
    };
    let server = start_with(model.clone(), config).await;
    let login = |name: &'static str| {
        let server = &server;
        async move {
            let mut c = server.client().await;
            assert_eq!(
                c.call(&["AUTH", name, &format!("{name}-secret")]).await,
                ok()
            );
            c
        }
    };
    // What each command needs: (command, a write?).
    let commands: [(&[&str], bool); 8] = [
        (&["SET", "k", "v"], true),
        (&["GET", "k"], false),
        (&["DEL", "k"], true),
        (&["EXPIRE", "k", "10"], true),
        (&["TTL", "k"], false),
        (&["SCAN", "0"], false),
        (&["GYRE.PUT", "k", "", "v"], true),
        (&["GYRE.GET", "k"], false),
    ];
    for (user, may_write, may_read) in [
        ("root", true, true),
        ("app", true, true),
        ("viewer", false, true),
    ] {
        let mut c = login(user).await;
        for (command, write) in commands {
            let allowed = if write { may_write } else { may_read };
            let before = calls(&model);
            let reply = c.call(command).await;
            if allowed {
                assert!(
                    !matches!(&reply, Reply::Error(e) if e.starts_with("NOPERM")),
                    "{user} {command:?}: {reply:?}"
                );
            } else {
                assert!(
                    reply
                        .is_error_starting(&format!("NOPERM user '{user}' (readonly) may not run")),
                    "{user} {command:?}: {reply:?}"
                );
                assert_eq!(
                    calls(&model),
                    before,
                    "{user} {command:?} reached the backend"
                );
            }
        }
    }
    // A user limited to the default bucket cannot reach another, whether
    // by GYRE.BUCKET, SELECT or a BUCKET option.
    let mut app = login("app").await;
    assert_eq!(app.call(&["SELECT", "1"]).await, ok());
    assert!(app.call(&["GET", "k"]).await.is_error_starting(
        "NOPERM user 'app' (readwrite) may not run 'get': it needs reading bucket 'db1'"
    ));
    assert_eq!(app.call(&["GYRE.BUCKET", "default"]).await, ok());
    assert!(
        app.call(&["GYRE.GET", "k", "BUCKET", "other"])
            .await
            .is_error_starting("NOPERM")
    );
    assert!(
        app.call(&["GYRE.PUT", "k", "", "v", "BUCKET", "other"])
            .await
            .is_error_starting("NOPERM")
    );
    let mut root = login("root").await;
    let info = root.call(&["CLIENT", "INFO"]).await.text();
    assert!(info.contains(" user=root "), "{info}");
    assert_eq!(root.call(&["GYRE.BUCKET", "other"]).await, ok());
    assert_eq!(root.call(&["SET", "k", "root's"]).await, ok());
    assert_eq!(model.values("other", b"k"), [Bytes::from("root's")]);
    server.shutdown().await;
}

/// Over `max_clients`, a client is told so and closed, and the others keep
/// being served; a connection that completes no command within the idle
/// timeout is closed, whether silent or trickling a command.
#[tokio::test]
async fn max_clients_and_the_idle_timeout_protect_the_node() {
    let model = Arc::new(ModelBackend::new());
    let config = RespConfig {
        max_clients: 1,
        ..RespConfig::default()
    };
    let server = start_with(model.clone(), config).await;
    let mut first = server.client().await;
    assert_eq!(first.call(&["PING"]).await, Reply::Simple("PONG".into()));
    let mut second = server.client().await;
    assert_eq!(
        second.reply().await,
        error("ERR max number of clients reached")
    );
    assert!(second.closed().await);
    assert_eq!(first.call(&["SET", "k", "v"]).await, ok());
    server.shutdown().await;

    let config = RespConfig {
        idle_timeout: Some(Duration::from_millis(300)),
        ..RespConfig::default()
    };
    let server = start_with(model, config).await;
    let mut silent = server.client().await;
    assert_eq!(silent.call(&["PING"]).await, Reply::Simple("PONG".into()));
    assert!(silent.closed().await);
    let mut trickling = server.client().await;
    trickling.send(b"*1\r\n$4\r\nPI").await;
    assert!(trickling.closed().await);
    server.shutdown().await;
}
