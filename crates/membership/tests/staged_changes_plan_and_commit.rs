//! Staged layout changes: join, leave, set capacity and zone, and removal of
//! a wiped node's old id, each planned and committed; stale and invalid
//! plans are refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::sim::{Sim, SimConfig, for_each_seed};
use gyre_membership::{
    Change, Config, Error, Event, LayoutStamp, Membership, Message, NodeInfo, NodeStatus,
};
use gyre_ring::{Layout, Member, RingConfig};
use gyre_types::{NodeId, PartitionCount, ZoneName};

const CHECK: Duration = Duration::from_millis(100);
const LIMIT: Duration = Duration::from_secs(30);

fn spread(sim: &mut Sim, stamp: LayoutStamp) {
    let seed = sim.seed;
    sim.run_until(LIMIT, CHECK, |s| {
        s.stamps() == BTreeSet::from([Some(stamp)])
    })
    .unwrap_or_else(|| panic!("seed {seed}: {stamp} did not spread: {:?}", sim.stamps()));
}

#[test]
fn join_a_new_node() {
    for_each_seed(5, |seed| {
        let mut sim = Sim::cluster(seed, 6, 3, SimConfig::default());
        let new = sim.add_node("z1");
        sim.run_until(LIMIT, CHECK, Sim::all_see_all_up).unwrap();
        assert_eq!(sim.node(new).state().status, NodeStatus::Joining);
        let on = sim.live_ids()[0];
        let plan = {
            let m = &mut sim.nodes.get_mut(&on).unwrap().m;
            m.stage(Change::Join(new)).unwrap();
            assert_eq!(m.stage(Change::Join(new)), Err(Error::AlreadyMember(new)));
            m.plan().unwrap()
        };
        assert_eq!(plan.base(), sim.node(on).layout_stamp());
        let diff = plan.diff().unwrap();
        assert!(diff.nodes[&new].gains > 0, "seed {seed}");
        assert!(
            diff.nodes.iter().all(|(id, c)| *id == new || c.gains == 0),
            "seed {seed}: only the new node gains"
        );
        let now = sim.now;
        sim.nodes
            .get_mut(&on)
            .unwrap()
            .m
            .commit(now, plan.clone())
            .unwrap();
        assert!(sim.node(on).staged().is_empty());
        spread(&mut sim, plan.stamp());
        assert!(sim.node(on).layout().unwrap().member(new).is_some());
        sim.run_until(LIMIT, CHECK, |s| {
            s.live()
                .all(|n| n.m.node(new).unwrap().status == NodeStatus::Member)
        })
        .unwrap_or_else(|| panic!("seed {seed}: the new member's status did not spread"));
    });
}

#[test]
fn leave_set_capacity_and_set_zone() {
    for_each_seed(5, |seed| {
        let mut sim = Sim::cluster(seed, 6, 3, SimConfig::default());
        let ids = sim.live_ids();
        let (on, leaver, bigger, mover) = (ids[0], ids[1], ids[2], ids[3]);
        let zone = ZoneName::new("z7").unwrap();
        let stamp = sim
            .commit(
                on,
                vec![
                    Change::Leave(leaver),
                    Change::SetCapacity(bigger, 4),
                    Change::SetZone(mover, zone.clone()),
                ],
            )
            .unwrap();
        spread(&mut sim, stamp);
        let layout = sim.node(ids[5]).layout().unwrap();
        assert!(layout.member(leaver).is_none(), "seed {seed}");
        assert_eq!(layout.member(bigger).unwrap().capacity, 4, "seed {seed}");
        assert_eq!(layout.member(mover).unwrap().zone, zone, "seed {seed}");
        assert!(layout.partitions_of(leaver).is_empty(), "seed {seed}");
        // The leaver knows it is leaving, and gossip tells everyone.
        sim.run_until(LIMIT, CHECK, |s| {
            s.live()
                .all(|n| n.m.node(leaver).unwrap().status == NodeStatus::Leaving)
        })
        .unwrap_or_else(|| panic!("seed {seed}: the leaver's status did not spread"));
        // Capacity and zone were changed in the layout only: the nodes'
        // own (configured) fields stay what they advertise.
        assert_eq!(sim.node(bigger).state().capacity, 1);
        // Once the change is over and the leaver handed everything off, it
        // says it left; a member saying so is not believed by its own core.
        for id in sim.live_ids() {
            sim.set_synced(id, stamp);
        }
        sim.run_until(LIMIT, CHECK, |s| s.live().all(|n| n.m.history().len() == 1))
            .unwrap_or_else(|| panic!("seed {seed}: the change did not complete"));
        sim.set_left(on);
        assert_eq!(
            sim.node(on).state().status,
            NodeStatus::Member,
            "seed {seed}"
        );
        sim.set_left(leaver);
        assert_eq!(
            sim.node(leaver).state().status,
            NodeStatus::Left,
            "seed {seed}"
        );
        sim.run_until(LIMIT, CHECK, |s| {
            s.live()
                .all(|n| n.m.node(leaver).unwrap().status == NodeStatus::Left)
        })
        .unwrap_or_else(|| panic!("seed {seed}: 'left' did not spread"));
    });
}

#[test]
fn a_removed_id_never_comes_back_and_its_tombstone_expires() {
    for_each_seed(5, |seed| {
        let ttl = Duration::from_secs(300);
        let mut config = SimConfig::default();
        config.membership.removed_ttl = ttl;
        let mut sim = Sim::cluster(seed, 6, 3, config);
        let ids = sim.live_ids();
        let (on, wiped, bystander) = (ids[0], ids[4], ids[5]);
        // The bystander is cut off during the removal: it keeps the old id's
        // state, with its latest heartbeat, and will gossip it after the heal.
        let rest: Vec<NodeId> = ids.iter().copied().filter(|id| *id != bystander).collect();
        sim.partition(&[&rest, &[bystander]]);
        let fresh = sim.wipe(wiped);
        assert_ne!(fresh, wiped);
        {
            let m = &mut sim.nodes.get_mut(&on).unwrap().m;
            assert_eq!(m.stage(Change::Remove(wiped)), Err(Error::NodeIsUp(wiped)));
            assert_eq!(m.stage(Change::Remove(on)), Err(Error::RemoveSelf));
        }
        sim.run_until(LIMIT, CHECK, |s| {
            s.live()
                .filter(|n| n.info.id != bystander)
                .all(|n| !n.m.is_up(wiped, s.now) && n.m.is_up(fresh, s.now))
        })
        .unwrap_or_else(|| panic!("seed {seed}: the wipe went unnoticed"));
        // Operator actions judge liveness at the latest time the node was
        // given: let it tick once more.
        sim.run_for(Duration::from_secs(1));
        let removed_at = sim.now;
        let stamp = sim
            .commit(on, vec![Change::Remove(wiped), Change::Join(fresh)])
            .unwrap();
        assert!(sim.node(on).is_removed(wiped));
        assert_eq!(
            sim.nodes.get_mut(&on).unwrap().m.stage(Change::Join(wiped)),
            Err(Error::Removed(wiped))
        );
        sim.run_for(Duration::from_secs(20));
        assert!(sim.node(bystander).node(wiped).is_some(), "seed {seed}");
        sim.heal();
        spread(&mut sim, stamp);
        sim.run_for(Duration::from_secs(60));
        for n in sim.live() {
            assert!(
                n.m.is_removed(wiped),
                "seed {seed}: {} lost the tombstone",
                n.info.id
            );
            assert!(
                n.m.node(wiped).is_none(),
                "seed {seed}: {} knows the removed id",
                n.info.id
            );
            assert!(!n.m.is_up(wiped, sim.now));
            assert!(n.m.layout().unwrap().member(wiped).is_none());
            let back = n
                .events
                .iter()
                .any(|(at, e)| *at >= removed_at && *e == Event::Discovered(wiped));
            assert!(
                !back,
                "seed {seed}: {} rediscovered the removed id",
                n.info.id
            );
        }
        assert!(
            sim.events_of(bystander, removed_at)
                .contains(&&Event::Removed(wiped)),
            "seed {seed}"
        );
        // Every node forgets the tombstone when it expires, at about the same
        // time, and none brings it back.
        sim.run_until_time(removed_at + ttl + Duration::from_secs(5));
        for n in sim.live() {
            assert!(
                !n.m.is_removed(wiped),
                "seed {seed}: {} kept the tombstone",
                n.info.id
            );
            assert!(n.m.node(wiped).is_none(), "seed {seed}");
        }
        sim.run_for(Duration::from_secs(60));
        assert!(
            sim.live()
                .all(|n| !n.m.is_removed(wiped) && n.m.node(wiped).is_none())
        );
    });
}

// ---- one node driven by hand ----

fn info(id: u64) -> NodeInfo {
    NodeInfo {
        id: NodeId::new(id),
        peer_addr: format!("n{id}:7000"),
        client_addrs: vec![],
        zone: ZoneName::default(),
        capacity: 1,
    }
}

fn ring() -> RingConfig {
    RingConfig {
        partitions: PartitionCount::new(64).unwrap(),
        replication: 3,
    }
}

fn alone(layout: bool) -> Membership {
    let layout = layout.then(|| {
        Layout::initial(
            ring(),
            vec![Member::new(NodeId::new(1), ZoneName::default(), 1)],
        )
        .unwrap()
    });
    let config = Config {
        ring: ring(),
        ..Config::default()
    };
    Membership::new(info(1), 1, layout, config, 7).unwrap()
}

#[test]
fn the_first_commit_creates_the_first_layout() {
    let mut m = alone(false);
    assert_eq!(m.state().status, NodeStatus::Joining);
    assert_eq!(m.plan().unwrap_err(), Error::NothingStaged);
    m.stage(Change::Join(NodeId::new(1))).unwrap();
    let plan = m.plan().unwrap();
    assert_eq!(plan.base(), None);
    assert!(plan.diff().is_none());
    assert_eq!(plan.layout().version(), 1);
    assert_eq!(plan.layout().config(), ring());
    let out = m.commit(Duration::ZERO, plan).unwrap();
    let stamp = m.layout_stamp().unwrap();
    assert!(out.contains(&gyre_membership::Output::Event(Event::LayoutChanged(stamp))));
    assert_eq!(m.state().status, NodeStatus::Member);
    assert_eq!(m.state().layout, Some(stamp));
}

#[test]
fn invalid_changes_are_typed_errors() {
    let mut m = alone(true);
    let stranger = NodeId::new(99);
    assert_eq!(
        m.stage(Change::Join(stranger)),
        Err(Error::UnknownNode(stranger))
    );
    assert_eq!(
        m.stage(Change::Leave(stranger)),
        Err(Error::NotAMember(stranger))
    );
    assert_eq!(
        m.stage(Change::Remove(stranger)),
        Err(Error::UnknownNode(stranger))
    );
    assert_eq!(
        m.stage(Change::SetCapacity(NodeId::new(1), 0)),
        Err(Error::ZeroCapacity(NodeId::new(1)))
    );
    assert_eq!(
        m.stage(Change::Join(NodeId::new(1))),
        Err(Error::AlreadyMember(NodeId::new(1)))
    );
    assert!(m.staged().is_empty());
    // Leaving the last member: the ring refuses.
    m.stage(Change::Leave(NodeId::new(1))).unwrap();
    assert_eq!(
        m.plan().unwrap_err(),
        Error::Ring(gyre_ring::Error::NoMembers)
    );
    m.clear_staged();
    assert!(m.staged().is_empty());
    assert!(m.plan().is_err());
}

#[test]
fn a_commit_is_refused_while_a_peer_advertises_a_newer_layout() {
    let mut m = alone(true);
    let mine = m.layout_stamp().unwrap();
    m.stage(Change::SetCapacity(NodeId::new(1), 2)).unwrap();
    let plan = m.plan().unwrap();
    // A peer says it holds a newer layout; this node has not pulled it yet.
    let newer = LayoutStamp {
        version: mine.version + 1,
        digest: 42,
    };
    let mut peer = Membership::new(info(2), 1, None, Config::default(), 3).unwrap();
    let Message::Syn { digests, .. } = peer_syn(&mut peer) else {
        unreachable!()
    };
    assert_eq!(digests.len(), 1);
    let mut state = peer.state().clone();
    state.layout = Some(newer);
    let out = m.receive(
        Duration::from_secs(1),
        state.id,
        Message::Ack2 {
            states: vec![state],
            heartbeats: vec![],
        },
    );
    assert!(out.iter().any(|o| matches!(
        o,
        gyre_membership::Output::PullLayout { from, stamp } if *from == NodeId::new(2) && *stamp == newer
    )));
    assert_eq!(
        m.commit(Duration::from_secs(1), plan),
        Err(Error::LayoutBehind {
            current: Some(mine),
            newest: newer
        })
    );
    assert_eq!(m.layout_stamp(), Some(mine));
}

fn peer_syn(peer: &mut Membership) -> Message {
    peer.introduce(NodeId::new(1), "n1:7000".to_owned());
    let out = peer.tick(Duration::from_secs(1));
    out.into_iter()
        .find_map(|o| match o {
            gyre_membership::Output::Send { msg, .. } => Some(msg),
            _ => None,
        })
        .unwrap()
}

#[test]
fn a_removed_id_is_not_learned_back_from_any_message() {
    let (two, three) = (NodeId::new(2), NodeId::new(3));
    let mut m = alone(true);
    let state = |id: NodeId, generation: u64, heartbeat: u64| {
        let mut s = Membership::new(info(id.as_u64()), generation, None, Config::default(), 1)
            .unwrap()
            .state()
            .clone();
        s.heartbeat = heartbeat;
        s
    };
    let ack2 = |states| Message::Ack2 {
        states,
        heartbeats: vec![],
    };
    let now = Duration::from_secs(1);
    // Node 2 is heard of (from node 3), joined, then found gone for good.
    m.receive(now, three, ack2(vec![state(two, 1, 5), state(three, 1, 5)]));
    m.stage(Change::Join(two)).unwrap();
    let plan = m.plan().unwrap();
    m.commit(now, plan).unwrap();
    m.stage(Change::Remove(two)).unwrap();
    let plan = m.plan().unwrap();
    assert_eq!(plan.removed(), &[two]);
    let out = m.commit(now, plan).unwrap();
    assert!(out.contains(&gyre_membership::Output::Event(Event::Removed(two))));
    assert!(m.is_removed(two) && m.node(two).is_none());

    // Nodes that still remember it keep gossiping it, even a newer life.
    let later = Duration::from_secs(2);
    let out = m.receive(
        later,
        three,
        ack2(vec![state(two, 1, 99), state(two, 7, 1)]),
    );
    assert!(m.node(two).is_none());
    assert!(
        !out.iter()
            .any(|o| matches!(o, gyre_membership::Output::Event(Event::Discovered(_))))
    );
    let heartbeat = gyre_membership::Heartbeat {
        id: two,
        generation: 1,
        heartbeat: 100,
    };
    m.receive(
        later,
        three,
        Message::Ack2 {
            states: vec![],
            heartbeats: vec![heartbeat],
        },
    );
    let syn = Message::Syn {
        digests: vec![state(two, 1, 100).digest()],
        tombstones: vec![],
    };
    let out = m.receive(later, three, syn);
    let Some(gyre_membership::Output::Send {
        msg: Message::Ack {
            want, tombstones, ..
        },
        ..
    }) = out.first()
    else {
        panic!("no answer")
    };
    assert!(want.is_empty(), "a removed id is not asked for");
    assert_eq!(tombstones.len(), 1, "the tombstone is passed on");
    m.introduce(two, "n2:7000".to_owned());
    m.receive(later, two, Message::Pong);
    assert!(m.node(two).is_none() && !m.is_up(two, later) && m.peer_addr(two).is_none());
    assert!(m.stage(Change::Join(two)).is_err());
}
