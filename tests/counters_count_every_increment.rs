//! Counters on three real nodes: clients increment one key through every
//! node at once (the `redis` crate's INCR/INCRBY/DECRBY, and HTTP POST);
//! every acknowledged increment is counted exactly once, as a read through
//! any node shows. Then the same while a node is killed with SIGKILL and
//! restarted: the counter holds every acknowledged increment, and at most
//! those whose outcome the clients could not know.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use common::{Cluster, wait_for};

fn client(addr: SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
}

/// Clients' increments of `key` through `addrs`, `rounds` each and then on
/// until `stop`: what was acknowledged, and the size of those whose outcome
/// is unknown.
fn increment_everywhere(
    addrs: &[SocketAddr],
    key: &str,
    rounds: i64,
    stop: &AtomicBool,
) -> (i64, i64) {
    let acked = Arc::new(AtomicI64::new(0));
    let unknown = Arc::new(AtomicI64::new(0));
    std::thread::scope(|s| {
        for (t, &addr) in addrs.iter().enumerate() {
            let (acked, unknown) = (Arc::clone(&acked), Arc::clone(&unknown));
            s.spawn(move || {
                let mut conn = client(addr);
                let _: () = redis::cmd("GYRE.BUCKET")
                    .arg("counters")
                    .query(&mut conn)
                    .unwrap();
                let mut i = 0;
                while i < rounds || !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let delta = match (t + i as usize) % 3 {
                        0 => 1,
                        1 => 5,
                        _ => -2,
                    };
                    let result: redis::RedisResult<i64> =
                        redis::cmd("INCRBY").arg(key).arg(delta).query(&mut conn);
                    match result {
                        Ok(_) => acked.fetch_add(delta, Ordering::SeqCst),
                        Err(e) => {
                            if e.is_io_error() || e.is_connection_dropped() {
                                conn = client(addr);
                                let _: redis::RedisResult<()> =
                                    redis::cmd("GYRE.BUCKET").arg("counters").query(&mut conn);
                            }
                            unknown.fetch_add(delta.abs(), Ordering::SeqCst)
                        }
                    };
                }
            });
        }
    });
    (acked.load(Ordering::SeqCst), unknown.load(Ordering::SeqCst))
}

fn read(addr: SocketAddr, key: &str) -> Option<i64> {
    let mut conn = client(addr);
    let _: () = redis::cmd("GYRE.BUCKET")
        .arg("counters")
        .query(&mut conn)
        .unwrap();
    let v: Option<String> = redis::cmd("GET").arg(key).query(&mut conn).ok()?;
    v.and_then(|v| v.parse().ok())
}

#[test]
fn every_acknowledged_increment_is_counted_once() {
    let mut cluster = Cluster::start(3);
    let made = cluster.nodes[0].call(
        "PUT",
        "/v1/buckets/counters",
        &[],
        Some(br#"{"conflict_mode": "counter"}"#),
    );
    assert_eq!(made.status, 200, "{}", made.text());
    let addrs: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.ep.resp).collect();
    wait_for(
        "every node to know the bucket",
        Duration::from_secs(10),
        || match addrs.iter().all(|&a| {
            let mut conn = client(a);
            redis::cmd("GYRE.BUCKET")
                .arg("counters")
                .query::<()>(&mut conn)
                .is_ok()
        }) {
            true => Ok(()),
            false => Err("a node does not know it yet".to_owned()),
        },
    );

    // Calm: exactly the sum, through every node, and over HTTP.
    let (acked, unknown) = increment_everywhere(&addrs, "hits", 200, &AtomicBool::new(true));
    assert_eq!(unknown, 0);
    for &addr in &addrs {
        assert_eq!(read(addr, "hits"), Some(acked), "through {addr}");
    }
    let reply = cluster.nodes[1].call("POST", "/v1/kv/counters/hits?incr=10", &[], None);
    assert_eq!(reply.json()["value"], acked + 10);

    // A node killed and restarted while clients count through the others.
    let live = [addrs[0], addrs[1]];
    let stop = Arc::new(AtomicBool::new(false));
    let seeds = vec![cluster.nodes[0].ep.peer.to_string()];
    let killer = std::thread::spawn({
        let mut victim = cluster.nodes.remove(2);
        let stop = Arc::clone(&stop);
        move || {
            std::thread::sleep(Duration::from_millis(200));
            victim.kill9();
            std::thread::sleep(Duration::from_millis(1500));
            victim.restart(&seeds);
            std::thread::sleep(Duration::from_millis(500));
            stop.store(true, Ordering::SeqCst);
            victim
        }
    });
    let (acked2, unknown2) = increment_everywhere(&live, "tokens", 100, &stop);
    let victim = killer.join().unwrap();
    cluster.nodes.push(victim);
    let addrs: Vec<SocketAddr> = cluster.nodes.iter().map(|n| n.ep.resp).collect();
    for &addr in &addrs {
        let value = wait_for(
            &format!("a read of the counter through {addr}"),
            Duration::from_secs(20),
            || read(addr, "tokens").ok_or_else(|| "no answer".to_owned()),
        );
        assert!(
            (acked2 - unknown2..=acked2 + unknown2).contains(&value),
            "through {addr}: {value}, acknowledged {acked2}, unknown outcomes {unknown2}"
        );
        if unknown2 == 0 {
            assert_eq!(value, acked2);
        }
    }
}
