//! Nothing from the network panics the core or corrupts this node's own
//! state: arbitrary messages (unknown ids, absurd versions, oversized
//! fields and lists, claims about this node) and arbitrary layouts.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use gyre_membership::{
    Config, Digest, Heartbeat, LayoutStamp, MAX_ADDR_LEN, MAX_CLIENT_ADDRS, Membership, Message,
    NodeInfo, NodeState, NodeStatus, Output, Tombstone,
};
use gyre_ring::{Layout, Member, RingConfig};
use gyre_types::{NodeId, PartitionCount, ZoneName};
use proptest::prelude::*;

const ME: NodeId = NodeId::new(1);
const MAX_NODES: usize = 24;
const MAX_STATES: usize = 8;

fn config() -> Config {
    Config {
        max_nodes: MAX_NODES,
        max_states_per_message: MAX_STATES,
        ring: ring(64),
        ..Config::default()
    }
}

fn ring(q: u32) -> RingConfig {
    RingConfig {
        partitions: PartitionCount::new(q).unwrap(),
        replication: 3,
    }
}

fn info(id: NodeId) -> NodeInfo {
    NodeInfo {
        id,
        peer_addr: format!("{id}:7000"),
        client_addrs: vec![format!("{id}:6379")],
        zone: ZoneName::new("home").unwrap(),
        capacity: 3,
    }
}

fn member(id: u64) -> Member {
    Member::new(
        NodeId::new(id),
        ZoneName::new(format!("z{}", id % 3)).unwrap(),
        1,
    )
}

/// Valid layouts a peer could send: with and without this node, newer and
/// older, and one of another cluster (other Q).
fn layouts() -> Vec<Layout> {
    let v1 = Layout::initial(ring(64), vec![member(1), member(2), member(3)]).unwrap();
    let v2 = v1.next(vec![member(2), member(3), member(4)]).unwrap();
    let v2b = v1
        .next(vec![member(1), member(2), member(3), member(5)])
        .unwrap();
    let v3 = v2.next(vec![member(1), member(2)]).unwrap();
    let other = Layout::initial(ring(128), vec![member(1), member(9)]).unwrap();
    vec![v1, v2, v2b, v3, other]
}

fn id() -> impl Strategy<Value = NodeId> {
    prop_oneof![
        3 => Just(ME),
        6 => (2u64..12).prop_map(NodeId::new),
        2 => any::<u64>().prop_map(NodeId::new),
    ]
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..8,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        2 => any::<u64>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..24),
        1 => proptest::collection::vec(any::<u8>(), MAX_ADDR_LEN - 2..MAX_ADDR_LEN + 4),
    ]
    .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn state() -> impl Strategy<Value = NodeState> {
    (
        (id(), number(), number(), number()),
        text(),
        proptest::collection::vec(text(), 0..MAX_CLIENT_ADDRS + 2),
        prop_oneof![Just("a"), Just("home"), Just("zzz")],
        prop_oneof![Just(0u32), Just(1), any::<u32>()],
        prop_oneof![
            Just(NodeStatus::Joining),
            Just(NodeStatus::Member),
            Just(NodeStatus::Leaving),
            Just(NodeStatus::Left)
        ],
        proptest::option::of((number(), any::<u64>())),
    )
        .prop_map(
            |(
                (id, generation, heartbeat, version),
                peer_addr,
                client_addrs,
                zone,
                capacity,
                status,
                layout,
            )| {
                NodeState {
                    id,
                    generation,
                    heartbeat,
                    version,
                    peer_addr,
                    client_addrs,
                    zone: ZoneName::new(zone).unwrap(),
                    capacity,
                    status,
                    layout: layout.map(|(version, digest)| LayoutStamp { version, digest }),
                    synced: layout.map(|(version, digest)| LayoutStamp { version, digest }),
                    reading: None,
                }
            },
        )
}

fn digest() -> impl Strategy<Value = Digest> {
    (id(), number(), number(), number()).prop_map(|(id, generation, heartbeat, version)| Digest {
        id,
        generation,
        heartbeat,
        version,
    })
}

fn heartbeat() -> impl Strategy<Value = Heartbeat> {
    (id(), number(), number()).prop_map(|(id, generation, heartbeat)| Heartbeat {
        id,
        generation,
        heartbeat,
    })
}

fn tombstone() -> impl Strategy<Value = Tombstone> {
    (
        prop_oneof![16 => (3u64..12).prop_map(NodeId::new), 1 => Just(ME)],
        number(),
    )
        .prop_map(|(id, age_ms)| Tombstone { id, age_ms })
}

fn digests() -> impl Strategy<Value = Vec<Digest>> {
    proptest::collection::vec(digest(), 0..MAX_NODES + 8)
}

fn states() -> impl Strategy<Value = Vec<NodeState>> {
    proptest::collection::vec(state(), 0..MAX_STATES + 4)
}

fn heartbeats() -> impl Strategy<Value = Vec<Heartbeat>> {
    proptest::collection::vec(heartbeat(), 0..12)
}

fn tombstones() -> impl Strategy<Value = Vec<Tombstone>> {
    proptest::collection::vec(tombstone(), 0..3)
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (digests(), tombstones()).prop_map(|(digests, tombstones)| Message::Syn {
            digests,
            tombstones
        }),
        (states(), heartbeats(), digests(), tombstones()).prop_map(
            |(states, heartbeats, want, tombstones)| Message::Ack {
                states,
                heartbeats,
                want,
                tombstones
            }
        ),
        (states(), heartbeats())
            .prop_map(|(states, heartbeats)| Message::Ack2 { states, heartbeats }),
        Just(Message::Ping),
        Just(Message::Pong),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Receive { from: NodeId, msg: Message },
    Tick { after_ms: u64 },
    Layout { index: usize },
    Introduce { id: NodeId },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (id(), message()).prop_map(|(from, msg)| Op::Receive { from, msg }),
        3 => (0u64..3000).prop_map(|after_ms| Op::Tick { after_ms }),
        1 => (0usize..5).prop_map(|index| Op::Layout { index }),
        1 => id().prop_map(|id| Op::Introduce { id }),
    ]
}

/// The claims a message makes about this node that the core reads (the
/// lists are read only up to the limits; states over the limits are ignored).
fn claims_about_me(msg: &Message) -> Vec<(u64, u64, u64)> {
    let fits = |s: &NodeState| {
        s.version >= 1
            && s.peer_addr.len() <= MAX_ADDR_LEN
            && s.client_addrs.len() <= MAX_CLIENT_ADDRS
            && s.client_addrs.iter().all(|a| a.len() <= MAX_ADDR_LEN)
    };
    let mut claims = Vec::new();
    let digests = |ds: &[Digest], claims: &mut Vec<(u64, u64, u64)>| {
        for d in ds.iter().take(MAX_NODES).filter(|d| d.id == ME) {
            claims.push((d.generation, d.version, d.heartbeat));
        }
    };
    let states = |ss: &[NodeState], hs: &[Heartbeat], claims: &mut Vec<(u64, u64, u64)>| {
        for s in ss.iter().take(MAX_STATES).filter(|s| s.id == ME && fits(s)) {
            claims.push((s.generation, s.version, s.heartbeat));
        }
        for h in hs.iter().take(MAX_NODES).filter(|h| h.id == ME) {
            claims.push((h.generation, 0, h.heartbeat));
        }
    };
    match msg {
        Message::Syn { digests: ds, .. } => digests(ds, &mut claims),
        Message::Ack {
            states: ss,
            heartbeats: hs,
            want,
            ..
        } => {
            states(ss, hs, &mut claims);
            digests(want, &mut claims);
        }
        Message::Ack2 {
            states: ss,
            heartbeats: hs,
        } => states(ss, hs, &mut claims),
        Message::Ping | Message::Pong => {}
    }
    claims
}

fn check_outputs(out: &[Output]) {
    for o in out {
        if let Output::Send { msg, .. } = o {
            match msg {
                Message::Syn {
                    digests,
                    tombstones,
                } => {
                    assert!(digests.len() <= MAX_NODES + 1);
                    assert!(tombstones.len() <= MAX_NODES);
                }
                Message::Ack {
                    states,
                    heartbeats,
                    want,
                    tombstones,
                } => {
                    assert!(states.len() <= MAX_STATES);
                    assert!(heartbeats.len() <= MAX_NODES + 1);
                    assert!(want.len() <= MAX_NODES);
                    assert!(tombstones.len() <= MAX_NODES);
                }
                Message::Ack2 { states, heartbeats } => {
                    assert!(states.len() <= MAX_STATES);
                    assert!(heartbeats.len() <= MAX_NODES);
                }
                Message::Ping | Message::Pong => {}
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_never_panics_nor_corrupts_my_state(ops in proptest::collection::vec(op(), 1..40)) {
        let layouts = layouts();
        let mut m = Membership::new(info(ME), 10, Some(layouts[0].clone()), config(), 5).unwrap();
        m.introduce(NodeId::new(2), "seed:7000".to_owned());
        let mine = info(ME);
        let mut now = Duration::from_secs(1);
        let mut last = m.state().clone();
        for op in ops {
            let layout_before = m.layout_stamp();
            let claims = match &op {
                Op::Receive { msg, .. } => claims_about_me(msg),
                _ => Vec::new(),
            };
            let quiet = m.is_self_removed() && matches!(op, Op::Receive { .. } | Op::Tick { .. });
            let out = match op {
                Op::Receive { from, msg } => {
                    // Every message survives serialisation unchanged.
                    let json = serde_json::to_string(&msg).unwrap();
                    prop_assert_eq!(&serde_json::from_str::<Message>(&json).unwrap(), &msg);
                    m.receive(now, from, msg)
                }
                Op::Tick { after_ms } => {
                    now += Duration::from_millis(after_ms);
                    m.tick(now)
                }
                Op::Layout { index } => m.layout_received(now, layouts[index].clone()),
                Op::Introduce { id } => {
                    m.introduce(id, format!("{id}:7000"));
                    Vec::new()
                }
            };
            check_outputs(&out);
            if quiet {
                // Removed: nothing changes it, and it says nothing.
                prop_assert!(out.is_empty());
                prop_assert_eq!(m.state(), &last);
            }
            let me = m.state();
            // Who I am and what I advertise do not change...
            prop_assert_eq!(me.id, ME);
            prop_assert_eq!(&me.peer_addr, &mine.peer_addr);
            prop_assert_eq!(&me.client_addrs, &mine.client_addrs);
            prop_assert_eq!(&me.zone, &mine.zone);
            prop_assert_eq!(me.capacity, mine.capacity);
            // ...except my layout, which only a layout (never a message) changes,
            // and my status, which follows it.
            if m.layout_stamp() != layout_before {
                prop_assert!(m.layout_stamp() > layout_before);
            }
            prop_assert_eq!(me.layout, m.layout_stamp());
            let in_layout = m.layout().is_some_and(|l| l.member(ME).is_some());
            let status = if in_layout { NodeStatus::Member } else { NodeStatus::Leaving };
            prop_assert_eq!(me.status, status);
            // My versions never go back, and end at or past every claim about me.
            prop_assert!((me.generation, me.version) >= (last.generation, last.version));
            prop_assert!((me.generation, me.heartbeat) >= (last.generation, last.heartbeat));
            // (A removed node has nothing to win: it ignores them.)
            let claims = if m.is_self_removed() { Vec::new() } else { claims };
            for (generation, version, heartbeat) in claims {
                prop_assert!((me.generation, me.version) >= (generation, version));
                prop_assert!((me.generation, me.heartbeat) >= (generation, heartbeat));
            }
            prop_assert_eq!(m.node(ME), Some(me));
            prop_assert!(m.is_up(ME, now));
            // Bounded memory.
            let views: Vec<_> = m.members(now).collect();
            prop_assert!(views.len() <= 1 + 2 * MAX_NODES);
            prop_assert!(views.iter().filter(|v| v.id == ME).count() == 1);
            prop_assert!(views.iter().all(|v| v.phi.is_none_or(|p| (0.0..=gyre_membership::MAX_PHI).contains(&p))));
            last = me.clone();
        }
    }
}

#[test]
fn huge_lists_are_read_only_up_to_the_limits() {
    let mut m = Membership::new(info(ME), 1, None, config(), 1).unwrap();
    let now = Duration::from_secs(1);
    let digests: Vec<Digest> = (100..100_000u64)
        .map(|i| Digest {
            id: NodeId::new(i),
            generation: 1,
            heartbeat: 1,
            version: 1,
        })
        .collect();
    let out = m.receive(
        now,
        NodeId::new(100),
        Message::Syn {
            digests,
            tombstones: vec![],
        },
    );
    let Some(Output::Send {
        msg: Message::Ack { want, .. },
        ..
    }) = out.first()
    else {
        panic!("no answer: {out:?}")
    };
    assert_eq!(want.len(), MAX_NODES);
    let states: Vec<NodeState> = (100..20_000u64)
        .map(|i| NodeState {
            id: NodeId::new(i),
            ..m.state().clone()
        })
        .collect();
    m.receive(
        now,
        NodeId::new(100),
        Message::Ack2 {
            states,
            heartbeats: vec![],
        },
    );
    assert_eq!(
        m.members(now).filter(|v| v.state.is_some()).count(),
        1 + MAX_STATES
    );
    for round in 0..10u64 {
        let states: Vec<NodeState> = (0..MAX_STATES as u64)
            .map(|i| NodeState {
                id: NodeId::new(1000 + round * 100 + i),
                ..m.state().clone()
            })
            .collect();
        m.receive(
            now,
            NodeId::new(100),
            Message::Ack2 {
                states,
                heartbeats: vec![],
            },
        );
    }
    assert_eq!(m.members(now).count(), 1 + MAX_NODES);
}

#[test]
fn a_restart_with_a_smaller_generation_still_wins() {
    // The driver's clock went backwards: the new life's generation is
    // smaller than the old one's, which peers still hold.
    let (a, b) = (NodeId::new(1), NodeId::new(2));
    let mut old = Membership::new(info(a), 5_000, None, Config::default(), 1).unwrap();
    let mut peer = Membership::new(info(b), 1, None, Config::default(), 2).unwrap();
    for _ in 0..50 {
        old.tick(Duration::ZERO);
    }
    peer.receive(
        Duration::ZERO,
        a,
        Message::Ack2 {
            states: vec![old.state().clone()],
            heartbeats: vec![],
        },
    );
    let mut new = Membership::new(info(a), 4_000, None, Config::default(), 3).unwrap();
    // The peer opens a round with the new life.
    let now = Duration::from_secs(1);
    let syn = Message::Syn {
        digests: vec![peer.state().digest(), peer.node(a).unwrap().digest()],
        tombstones: vec![],
    };
    let out = new.receive(now, b, syn);
    assert_eq!(new.state().generation, 5_000);
    assert!(new.state().heartbeat > old.state().heartbeat);
    let Some(Output::Send { msg, .. }) = out.into_iter().find(|o| matches!(o, Output::Send { .. }))
    else {
        panic!("no answer")
    };
    peer.receive(now, a, msg);
    assert_eq!(peer.node(a), Some(new.state()));
}

#[test]
fn a_tombstone_about_me_is_reported_and_changes_nothing_else() {
    let mut m = Membership::new(info(ME), 1, None, Config::default(), 1).unwrap();
    let before = m.state().clone();
    let msg = Message::Ack {
        states: vec![],
        heartbeats: vec![],
        want: vec![],
        tombstones: vec![Tombstone { id: ME, age_ms: 0 }],
    };
    let out = m.receive(Duration::from_secs(1), NodeId::new(2), msg.clone());
    assert!(out.contains(&Output::Event(gyre_membership::Event::SelfRemoved)));
    assert!(!m.is_removed(ME));
    assert_eq!(m.state(), &before);
    // Reported once.
    let out = m.receive(Duration::from_secs(2), NodeId::new(2), msg);
    assert!(!out.contains(&Output::Event(gyre_membership::Event::SelfRemoved)));
}

#[test]
fn a_removed_node_stays_quiet_and_says_so_after_a_restart() {
    let mut m = Membership::new(info(ME), 1, None, Config::default(), 1).unwrap();
    assert!(!m.is_self_removed());
    let removal = Message::Syn {
        digests: vec![],
        tombstones: vec![Tombstone { id: ME, age_ms: 0 }],
    };
    let out = m.receive(Duration::from_secs(1), NodeId::new(2), removal);
    // Told, and nothing answered: a removed node has nothing to say.
    assert_eq!(out, [Output::Event(gyre_membership::Event::SelfRemoved)]);
    assert!(m.is_self_removed());
    let me = m
        .members(Duration::from_secs(1))
        .find(|v| v.id == ME)
        .unwrap();
    assert!(me.removed);
    // Gossip rounds and what peers send change nothing and send nothing.
    let before = m.state().clone();
    assert!(m.tick(Duration::from_secs(2)).is_empty());
    let syn = Message::Syn {
        digests: vec![],
        tombstones: vec![],
    };
    assert!(
        m.receive(Duration::from_secs(3), NodeId::new(2), syn)
            .is_empty()
    );
    assert_eq!(m.state(), &before);

    // Restored as its driver persisted it: quiet from the start.
    let mut again = Membership::new(info(ME), 2, None, Config::default(), 1)
        .unwrap()
        .with_self_removed(true);
    assert!(again.is_self_removed());
    again.introduce(NodeId::new(2), "seed".to_owned());
    assert!(again.tick(Duration::from_secs(1)).is_empty());
}

#[test]
fn with_write_drain_a_layout_is_said_only_once_the_driver_says_older_writes_are_over() {
    let layouts = layouts();
    let v1 = LayoutStamp::of(&layouts[0]);
    let v2 = LayoutStamp::of(&layouts[1]);
    let mut m = Membership::new(info(ME), 1, Some(layouts[0].clone()), Config::default(), 1)
        .unwrap()
        .with_write_drain();
    m.introduce(NodeId::new(2), "seed".to_owned());
    let now = Duration::from_secs(1);
    let out = m.layout_received(now, layouts[1].clone());
    assert!(out.contains(&Output::Event(gyre_membership::Event::LayoutChanged(v2))));
    // Routes with v2, says v1.
    assert_eq!(m.layout_stamp(), Some(v2));
    assert_eq!(m.state().layout, Some(v1));
    // A word about another layout changes nothing.
    assert!(m.writes_drained(now, v1).is_empty());
    assert_eq!(m.state().layout, Some(v1));
    // The driver's word: said (and pushed to every peer whose state is
    // known, as any change of the barrier word is).
    let version = m.state().version;
    m.writes_drained(now, v2);
    assert_eq!(m.state().layout, Some(v2));
    assert!(m.state().version > version);
    // Said once.
    assert!(m.writes_drained(now, v2).is_empty());
}
