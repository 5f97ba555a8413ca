//! A web application's sessions on three real nodes, through the `redis`
//! client crate as a session library uses it: `SET … EX`, `TTL`, `EXPIRE`,
//! `PERSIST`, and a transactional pipeline (`MULTI` … `EXEC`, what
//! redis-py's `pipeline()` sends by default). Sessions that expire read as
//! absent through every node, and the sweep reclaims them from every
//! replica; sessions that did not expire are all read back.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Cluster, Options, wait_for};

fn client(addr: SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
}

#[test]
fn sessions_expire_everywhere_and_their_storage_is_reclaimed() {
    let cluster = Cluster::start_with(
        3,
        &Options {
            extra_flags: ["--tombstone-grace-secs", "1", "--sweep-interval-secs", "2"]
                .map(str::to_owned)
                .to_vec(),
            ..Options::default()
        },
    );
    let nodes = &cluster.nodes;
    let mut conns: Vec<redis::Connection> = nodes.iter().map(|n| client(n.ep.resp)).collect();

    // Long sessions, written through a transactional pipeline: every
    // command answered, all of them applied.
    let long: Vec<String> = (0..20).map(|i| format!("session:long:{i}")).collect();
    let mut pipe = redis::pipe();
    pipe.atomic();
    for key in &long {
        pipe.cmd("SET")
            .arg(key)
            .arg("user data")
            .arg("EX")
            .arg(3600);
    }
    let replies: Vec<String> = pipe.query(&mut conns[0]).unwrap();
    assert_eq!(replies, vec!["OK".to_owned(); long.len()]);
    for key in &long {
        let ttl: i64 = redis::cmd("TTL").arg(key).query(&mut conns[1]).unwrap();
        assert!((3590..=3600).contains(&ttl), "{key}: {ttl}");
    }
    // A session kept alive by EXPIRE, and one made permanent.
    let kept = "session:kept";
    let _: () = redis::cmd("SET")
        .arg(kept)
        .arg("v")
        .arg("PX")
        .arg(1500)
        .query(&mut conns[0])
        .unwrap();
    let set: i64 = redis::cmd("EXPIRE")
        .arg(kept)
        .arg(3600)
        .query(&mut conns[2])
        .unwrap();
    assert_eq!(set, 1);
    let _: () = redis::cmd("SETEX")
        .arg("user:1")
        .arg(1)
        .arg("profile")
        .query(&mut conns[1])
        .unwrap();
    let persisted: i64 = redis::cmd("PERSIST")
        .arg("user:1")
        .query(&mut conns[0])
        .unwrap();
    assert_eq!(persisted, 1);

    // Short sessions: read back at once, then gone through every node.
    let short: Vec<String> = (0..20).map(|i| format!("session:short:{i}")).collect();
    let written = Instant::now();
    for (i, key) in short.iter().enumerate() {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("brief")
            .arg("PX")
            .arg(1000)
            .query(&mut conns[i % 3])
            .unwrap();
    }
    let first: Option<String> = redis::cmd("GET")
        .arg(&short[0])
        .query(&mut conns[1])
        .unwrap();
    if written.elapsed() < Duration::from_millis(900) {
        assert_eq!(first.as_deref(), Some("brief"));
    }
    for (i, conn) in conns.iter_mut().enumerate() {
        wait_for(
            &format!("the short sessions to expire as seen through n{i}"),
            Duration::from_secs(10),
            || {
                let left: Vec<Option<String>> = short
                    .iter()
                    .map(|k| redis::cmd("GET").arg(k).query(conn).unwrap())
                    .collect();
                let left = left.iter().filter(|v| v.is_some()).count();
                if left == 0 {
                    Ok(())
                } else {
                    Err(format!("{left} still read"))
                }
            },
        );
        for key in &short {
            let ttl: i64 = redis::cmd("TTL").arg(key).query(conn).unwrap();
            assert_eq!(ttl, -2, "{key}");
            let exists: i64 = redis::cmd("EXISTS").arg(key).query(conn).unwrap();
            assert_eq!(exists, 0, "{key}");
        }
    }

    // The sweep purges every replica's copy of the short sessions.
    wait_for(
        "every replica to drop the expired sessions",
        Duration::from_secs(30),
        || {
            let mut held = Vec::new();
            for node in nodes {
                for key in &short {
                    if node.holds(key)? {
                        held.push(format!("{}:{key}", node.label()));
                    }
                }
            }
            if held.is_empty() {
                Ok(())
            } else {
                Err(format!("still held: {held:?}"))
            }
        },
    );
    let purged: u64 = nodes
        .iter()
        .map(|n| n.metric("gyre_expired_purged_total"))
        .sum();
    assert!(purged >= short.len() as u64, "{purged}");

    // Everything that did not expire is there, through every node.
    for conn in &mut conns {
        for key in long.iter().map(String::as_str).chain([kept, "user:1"]) {
            let value: Option<String> = redis::cmd("GET").arg(key).query(conn).unwrap();
            assert!(value.is_some(), "{key} is gone");
        }
        let ttl: i64 = redis::cmd("TTL").arg("user:1").query(conn).unwrap();
        assert_eq!(ttl, -1);
    }
}
