//! Layouts travel between nodes and live on disk: the serialised form round
#![allow(clippy::unwrap_used)] // tests fail loudly
//! trips, and a tampered one is refused with an error, never a panic.

mod common;

use common::zone;
use gyre_ring::{Layout, Member, RingConfig};
use gyre_types::{NodeId, PartitionCount};

fn layout() -> Layout {
    let members = (1..=5)
        .map(|i| Member::new(NodeId::new(i), zone(i as usize % 3), 1))
        .collect();
    let config = RingConfig {
        partitions: PartitionCount::new(64).unwrap(),
        replication: 3,
    };
    Layout::initial(config, members).unwrap()
}

#[test]
fn round_trips() {
    let l = layout();
    let json = serde_json::to_string(&l).unwrap();
    let back: Layout = serde_json::from_str(&json).unwrap();
    assert_eq!(back, l);
}

fn tampered(f: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v = serde_json::to_value(layout()).unwrap();
    f(&mut v);
    match serde_json::from_value::<Layout>(v) {
        Ok(_) => panic!("a tampered layout was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn corrupt_layouts_are_refused() {
    let e = tampered(|v| v["replicas"][0] = 99.into());
    assert!(e.contains("not a member"), "{e}");
    let e = tampered(|v| v["replicas"][1] = v["replicas"][0].clone());
    assert!(e.contains("same node twice"), "{e}");
    let e = tampered(|v| {
        v["replicas"].as_array_mut().unwrap().pop();
    });
    assert!(e.contains("wrong number"), "{e}");
    let e = tampered(|v| v["width"] = 2.into());
    assert!(e.contains("width"), "{e}");
    let e = tampered(|v| v["config"]["replication"] = 0.into());
    assert!(e.contains("replication factor 0"), "{e}");
    let e = tampered(|v| v["config"]["partitions"] = 100.into());
    assert!(e.contains("power of two"), "{e}");
    let e = tampered(|v| v["members"][1]["id"] = v["members"][0]["id"].clone());
    assert!(e.contains("sorted") || e.contains("more than once"), "{e}");
    let e = tampered(|v| v["members"][0]["capacity"] = 0.into());
    assert!(e.contains("capacity 0"), "{e}");
}

#[test]
fn bad_member_lists_are_refused() {
    let cfg = RingConfig::default();
    assert_eq!(
        Layout::initial(cfg, vec![]).unwrap_err(),
        gyre_ring::Error::NoMembers
    );
    let m = Member::new(NodeId::new(1), zone(0), 1);
    assert!(matches!(
        Layout::initial(cfg, vec![m.clone(), m.clone()]),
        Err(gyre_ring::Error::DuplicateMember(_))
    ));
    let l = Layout::initial(cfg, vec![m]).unwrap();
    assert!(
        l.preference_list(gyre_types::KeyHash::from_u64(0), 4)
            .is_err()
    );
    assert!(
        l.preference_list(gyre_types::KeyHash::from_u64(0), 0)
            .is_err()
    );
}
