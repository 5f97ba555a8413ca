//! `MULTI` … `EXEC` as a batch: nothing runs before `EXEC`, a command
//! refused while queueing aborts all of it, and `EXEC` answers every
//! command's reply in order (what redis-py's default pipeline sends).
#![allow(clippy::unwrap_used)]

mod common;
mod resp_support;

use std::sync::atomic::Ordering;

use resp_support::*;

#[tokio::test]
async fn queued_commands_run_at_exec_in_order() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    assert_eq!(c.call(&["SET", "a", "0"]).await, ok());
    let before = calls(&model);
    assert_eq!(c.call(&["MULTI"]).await, ok());
    for cmd in [
        &["SET", "a", "1"][..],
        &["GET", "a"],
        &["SET", "b", "2"],
        &["MGET", "a", "b"],
        &["DEL", "a"],
    ] {
        assert_eq!(c.call(cmd).await, Reply::Simple("QUEUED".into()));
    }
    // Queued, not run: the backend has seen nothing.
    assert_eq!(calls(&model), before);
    assert_eq!(model.values("default", b"a"), [&b"0"[..]]);
    assert_eq!(
        c.call(&["EXEC"]).await,
        Reply::Array(vec![
            ok(),
            bulk("1"),
            ok(),
            Reply::Array(vec![bulk("1"), bulk("2")]),
            Reply::Int(1),
        ])
    );
    assert!(model.values("default", b"a").is_empty());
    // The transaction is over: commands run at once again.
    assert_eq!(c.call(&["GET", "b"]).await, bulk("2"));
    assert!(
        c.call(&["EXEC"])
            .await
            .is_error_starting("ERR EXEC without MULTI")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_pipelined_transaction_is_answered_as_redis_py_expects() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    // redis-py's `pipeline()` writes everything at once.
    let mut batch = encode(&["MULTI"]);
    for i in 0..50 {
        batch.extend(encode(&["SET", &format!("k{i}"), &i.to_string()]));
    }
    batch.extend(encode(&["EXEC"]));
    c.send(&batch).await;
    assert_eq!(c.reply().await, ok());
    for _ in 0..50 {
        assert_eq!(c.reply().await, Reply::Simple("QUEUED".into()));
    }
    assert_eq!(c.reply().await, Reply::Array(vec![ok(); 50]));
    for i in 0..50 {
        assert_eq!(
            model.values("default", format!("k{i}").as_bytes()),
            [i.to_string().into_bytes()]
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn discard_and_a_dropped_connection_write_nothing() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    assert_eq!(c.call(&["MULTI"]).await, ok());
    assert_eq!(
        c.call(&["SET", "a", "1"]).await,
        Reply::Simple("QUEUED".into())
    );
    assert_eq!(c.call(&["DISCARD"]).await, ok());
    assert!(
        c.call(&["DISCARD"])
            .await
            .is_error_starting("ERR DISCARD without MULTI")
    );
    assert_eq!(c.call(&["MULTI"]).await, ok());
    assert_eq!(
        c.call(&["SET", "b", "1"]).await,
        Reply::Simple("QUEUED".into())
    );
    drop(c);
    // A new connection's command is answered after the old one is gone.
    let mut c = server.client().await;
    assert_eq!(c.call(&["GET", "b"]).await, Reply::Nil);
    assert_eq!(c.call(&["GET", "a"]).await, Reply::Nil);
    assert!(model.values("default", b"a").is_empty());
    assert!(model.values("default", b"b").is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_command_refused_while_queueing_aborts_the_transaction() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    let refused_while_queueing = [
        (
            &["NOSUCHCOMMAND", "x"][..],
            "ERR unknown command 'NOSUCHCOMMAND'",
        ),
        (&["GET"], "ERR wrong number of arguments for 'get' command"),
        (
            &["EXEC", "extra"],
            "ERR wrong number of arguments for 'exec' command",
        ),
    ];
    for (bad, error) in refused_while_queueing {
        assert_eq!(c.call(&["MULTI"]).await, ok());
        assert_eq!(
            c.call(&["SET", "a", "1"]).await,
            Reply::Simple("QUEUED".into())
        );
        assert!(c.call(bad).await.is_error_starting(error), "{bad:?}");
        assert_eq!(
            c.call(&["SET", "b", "1"]).await,
            Reply::Simple("QUEUED".into())
        );
        assert_eq!(
            c.call(&["EXEC"]).await,
            Reply::Error("EXECABORT Transaction discarded because of previous errors.".into())
        );
        assert_eq!(calls(&model), 0, "{bad:?}");
    }
    // Refusals that do not abort, as in Redis.
    assert_eq!(c.call(&["MULTI"]).await, ok());
    assert!(
        c.call(&["MULTI"])
            .await
            .is_error_starting("ERR MULTI calls can not be nested")
    );
    assert!(
        c.call(&["WATCH", "a"])
            .await
            .is_error_starting("ERR WATCH inside MULTI is not allowed")
    );
    assert_eq!(
        c.call(&["SET", "a", "1"]).await,
        Reply::Simple("QUEUED".into())
    );
    assert_eq!(c.call(&["EXEC"]).await, Reply::Array(vec![ok()]));
    assert_eq!(model.values("default", b"a"), [&b"1"[..]]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_command_failing_at_exec_is_its_own_element_and_undoes_nothing() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    assert_eq!(c.call(&["MULTI"]).await, ok());
    for cmd in [
        &["SET", "a", "1"][..],
        &["SET", "", "x"],
        &["SET", "b", "2"],
    ] {
        assert_eq!(c.call(cmd).await, Reply::Simple("QUEUED".into()));
    }
    let replies = c.call(&["EXEC"]).await.items();
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[0], ok());
    assert!(replies[1].is_error_starting("ERR "), "{:?}", replies[1]);
    assert_eq!(replies[2], ok());
    assert_eq!(model.values("default", b"b"), [&b"2"[..]]);

    assert_eq!(c.call(&["MULTI"]).await, ok());
    assert_eq!(
        c.call(&["SET", "c", "1"]).await,
        Reply::Simple("QUEUED".into())
    );
    model.unavailable.store(true, Ordering::SeqCst);
    let replies = c.call(&["EXEC"]).await.items();
    assert!(replies[0].is_error_starting("UNAVAILABLE "), "{replies:?}");
    model.unavailable.store(false, Ordering::SeqCst);
    assert_eq!(c.call(&["PING"]).await, Reply::Simple("PONG".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn watch_is_refused_with_what_to_use_instead() {
    let (server, model) = start().await;
    let mut c = server.client().await;
    let reply = c.call(&["WATCH", "a"]).await;
    assert!(
        reply.is_error_starting("ERR WATCH is not supported by Gyre"),
        "{reply:?}"
    );
    assert!(matches!(&reply, Reply::Error(e) if e.contains("GYRE.PUT")));
    // redis-py sends UNWATCH when a pipeline resets.
    assert_eq!(c.call(&["UNWATCH"]).await, ok());
    assert_eq!(calls(&model), 0);
    server.shutdown().await;
}
