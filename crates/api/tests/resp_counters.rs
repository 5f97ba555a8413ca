//! Counters over RESP: `INCR`, `INCRBY`, `DECR`, `DECRBY` in a counter
//! bucket, `GET` reading the number; a clear error elsewhere; plain writes
//! refused in a counter bucket.
#![allow(clippy::unwrap_used)]

mod common;
mod resp_support;

use gyre_api::Backend;
use gyre_types::{BucketName, BucketProps, ConflictMode};
use resp_support::*;

#[tokio::test]
async fn incr_and_its_family_count_in_a_counter_bucket() {
    let (server, model) = start().await;
    let counters = BucketName::new("counters").unwrap();
    let props = BucketProps::default().with_conflict_mode(ConflictMode::Counter);
    model.set_bucket(counters, props).await.unwrap();
    let mut c = server.client().await;

    // Outside a counter bucket: an error that says what to do.
    let reply = c.call(&["INCR", "visits"]).await;
    assert!(
        matches!(&reply, Reply::Error(e) if e.starts_with("ERR bucket 'default' does not hold counters") && e.contains("GYRE.BUCKET")),
        "{reply:?}"
    );
    assert_eq!(calls(&model), 0);

    assert_eq!(c.call(&["GYRE.BUCKET", "counters"]).await, ok());
    assert_eq!(c.call(&["INCR", "visits"]).await, Reply::Int(1));
    assert_eq!(c.call(&["INCRBY", "visits", "41"]).await, Reply::Int(42));
    assert_eq!(c.call(&["DECR", "visits"]).await, Reply::Int(41));
    assert_eq!(c.call(&["DECRBY", "visits", "-9"]).await, Reply::Int(50));
    assert_eq!(c.call(&["DECRBY", "stock", "3"]).await, Reply::Int(-3));
    assert_eq!(c.call(&["GET", "visits"]).await, bulk("50"));
    assert_eq!(c.call(&["GET", "never"]).await, Reply::Nil);
    assert_eq!(
        c.call(&["MGET", "visits", "stock"]).await,
        Reply::Array(vec![bulk("50"), bulk("-3")])
    );
    // Plain writes are refused there; deletes work.
    assert!(
        c.call(&["SET", "visits", "7"])
            .await
            .is_error_starting("ERR bucket 'counters' holds counters"),
    );
    assert_eq!(c.call(&["DEL", "stock"]).await, Reply::Int(1));
    assert_eq!(c.call(&["INCR", "stock"]).await, Reply::Int(1));
    // Bad arguments and overflow, as Redis answers them.
    for (args, reply) in [
        (
            &["INCRBY", "visits", "x"][..],
            "ERR value is not an integer or out of range",
        ),
        (
            &["INCRBY", "visits"],
            "ERR wrong number of arguments for 'incrby' command",
        ),
        (
            &["DECRBY", "visits", "-9223372036854775808"],
            "ERR decrement would overflow",
        ),
        (
            &["INCRBY", "visits", "9223372036854775807"],
            "ERR increment or decrement would overflow",
        ),
    ] {
        assert_eq!(c.call(args).await, error(reply), "{args:?}");
    }
    assert_eq!(c.call(&["GET", "visits"]).await, bulk("50"));
    // A MULTI batch of increments.
    assert_eq!(c.call(&["MULTI"]).await, ok());
    for _ in 0..3 {
        assert_eq!(
            c.call(&["INCR", "visits"]).await,
            Reply::Simple("QUEUED".into())
        );
    }
    assert_eq!(
        c.call(&["EXEC"]).await,
        Reply::Array(vec![Reply::Int(51), Reply::Int(52), Reply::Int(53)])
    );
    server.shutdown().await;
}
