//! Malformed, mismatched or unexpected requests and responses are typed errors,
//! never panics, and a failed exchange stays failed.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::hash_in;
use gyre_merkle::{
    Error, Exchange, ItemDigest, MerkleTree, Request, Response, Step, TreeId, TreeShape,
};
use gyre_types::{PartitionCount, PartitionId};
use proptest::prelude::*;

fn q() -> PartitionCount {
    PartitionCount::new(64).unwrap()
}

fn p() -> PartitionId {
    PartitionId::new(3)
}

/// `n` items; trees with different `version`s differ in every tenth item.
fn tree(version: u128, n: u64) -> MerkleTree {
    let items = (0..n).map(|i| {
        let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let v = if i % 10 == 0 { version } else { 0 };
        (hash_in(q(), p(), x), ItemDigest::of(&x.to_le_bytes(), v))
    });
    MerkleTree::from_items(q(), p(), TreeShape::DEFAULT, items).unwrap()
}

fn children(tree: &MerkleTree, level: u8, nodes: Vec<u32>) -> Request {
    Request::Children {
        tree: tree.id(),
        level,
        nodes,
    }
}

/// Starts an exchange of `a` against `b` and returns it after the root round.
fn after_root(a: &MerkleTree, b: &MerkleTree) -> (Exchange, Request) {
    let (mut ex, req) = Exchange::new(a);
    let resp = b.answer(&req).unwrap();
    match ex.on_response(a, resp).unwrap() {
        Step::Send(next) => (ex, next),
        Step::Done(o) => panic!("trees should differ: {o:?}"),
    }
}

#[test]
fn responder_refuses_other_trees() {
    let t = tree(1, 100);
    let others = [
        TreeId::new(q(), PartitionId::new(4), TreeShape::DEFAULT).unwrap(),
        TreeId::new(PartitionCount::new(128).unwrap(), p(), TreeShape::DEFAULT).unwrap(),
        TreeId::new(q(), p(), TreeShape::new(4, 4).unwrap()).unwrap(),
    ];
    for theirs in others {
        let expected = Err(Error::TreeMismatch {
            ours: t.id(),
            theirs,
        });
        let root = Request::Root {
            tree: theirs,
            root: 0,
        };
        assert_eq!(t.answer(&root), expected);
        let kids = Request::Children {
            tree: theirs,
            level: 0,
            nodes: vec![0],
        };
        assert_eq!(t.answer(&kids), expected);
    }
}

#[test]
fn responder_refuses_bad_levels_indices_and_sizes() {
    let t = tree(1, 100);
    assert_eq!(
        t.answer(&children(&t, 3, vec![0])),
        Err(Error::LevelOutOfRange { level: 3, depth: 3 })
    );
    assert_eq!(
        t.answer(&children(&t, 255, vec![0])),
        Err(Error::LevelOutOfRange {
            level: 255,
            depth: 3
        })
    );
    assert_eq!(
        t.answer(&children(&t, 1, vec![3, 16])),
        Err(Error::IndexOutOfRange {
            level: 1,
            index: 16,
            len: 16
        })
    );
    assert_eq!(
        t.answer(&children(&t, 0, vec![u32::MAX])),
        Err(Error::IndexOutOfRange {
            level: 0,
            index: u32::MAX,
            len: 1
        })
    );
    assert_eq!(
        t.answer(&children(&t, 2, vec![0; 4097])),
        Err(Error::TooManyNodes {
            count: 4097,
            max: 4096
        })
    );
    // Well-formed requests are answered with fanout digests per node.
    match t.answer(&children(&t, 2, vec![0, 255])).unwrap() {
        Response::Children { level, digests } => {
            assert_eq!(level, 2);
            assert_eq!(digests.len(), 32);
            assert_eq!(digests[16..], t.leaves()[255 * 16..]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn initiator_refuses_malformed_root_responses() {
    let (a, b) = (tree(1, 100), tree(2, 100));
    let cases = [
        // Roots equal, yet children sent.
        (
            Response::Root {
                root: a.root(),
                children: vec![0; 16],
            },
            Error::MalformedResponse("children sent although the roots are equal"),
        ),
        // Roots differ, no children.
        (
            Response::Root {
                root: b.root(),
                children: vec![],
            },
            Error::MalformedResponse("the root's children do not combine to the root"),
        ),
        // Children that do not combine to the root.
        (
            Response::Root {
                root: b.root(),
                children: vec![1; 16],
            },
            Error::MalformedResponse("the root's children do not combine to the root"),
        ),
        // Too few children (that happen to combine to the root).
        (
            Response::Root {
                root: b.root(),
                children: vec![b.root()],
            },
            Error::WrongDigestCount {
                expected: 16,
                got: 1,
            },
        ),
        // The wrong kind of response.
        (
            Response::Children {
                level: 0,
                digests: vec![],
            },
            Error::UnexpectedResponse {
                expected: "root",
                got: "children",
            },
        ),
    ];
    for (response, expected) in cases {
        let (mut ex, _) = Exchange::new(&a);
        assert_eq!(ex.on_response(&a, response.clone()), Err(expected));
        assert!(ex.is_over());
        // A failed exchange stays failed.
        let good = b.answer(&Exchange::new(&a).1).unwrap();
        assert_eq!(ex.on_response(&a, good), Err(Error::ExchangeOver));
    }
}

#[test]
fn initiator_refuses_malformed_children_responses() {
    let (a, b) = (tree(1, 100), tree(2, 100));
    let (_, req) = after_root(&a, &b);
    let Request::Children { level, nodes, .. } = &req else {
        panic!("{req:?}")
    };
    let n = nodes.len() * 16;
    let cases = [
        (
            Response::Children {
                level: level + 1,
                digests: vec![0; n],
            },
            Error::WrongLevel {
                expected: *level,
                got: level + 1,
            },
        ),
        (
            Response::Children {
                level: *level,
                digests: vec![0; n + 1],
            },
            Error::WrongDigestCount {
                expected: n,
                got: n + 1,
            },
        ),
        (
            Response::Children {
                level: *level,
                digests: vec![0; n - 16],
            },
            Error::WrongDigestCount {
                expected: n,
                got: n - 16,
            },
        ),
        (
            Response::Root {
                root: 0,
                children: vec![],
            },
            Error::UnexpectedResponse {
                expected: "children",
                got: "root",
            },
        ),
    ];
    for (response, expected) in cases {
        let (mut ex, _) = after_root(&a, &b);
        assert_eq!(ex.on_response(&a, response), Err(expected));
        assert!(ex.is_over());
    }
}

#[test]
fn initiator_refuses_a_different_local_tree_and_late_responses() {
    let (a, b) = (tree(1, 100), tree(2, 100));
    let other = MerkleTree::new(q(), PartitionId::new(5), TreeShape::DEFAULT).unwrap();
    let (mut ex, req) = Exchange::new(&a);
    let resp = b.answer(&req).unwrap();
    assert_eq!(
        ex.on_response(&other, resp.clone()),
        Err(Error::TreeMismatch {
            ours: a.id(),
            theirs: other.id()
        })
    );

    // A response after Done.
    let (mut ex, req) = Exchange::new(&a);
    let resp = a.answer(&req).unwrap();
    assert!(matches!(
        ex.on_response(&a, resp.clone()),
        Ok(Step::Done(_))
    ));
    assert_eq!(ex.on_response(&a, resp), Err(Error::ExchangeOver));
}

fn response() -> impl Strategy<Value = Response> {
    let digests = prop_oneof![0usize..40, Just(16), Just(256)].prop_flat_map(|n| {
        prop::collection::vec(prop_oneof![Just(0u128), any::<u128>(), 0u128..4], n)
    });
    prop_oneof![
        (any::<u128>(), digests.clone())
            .prop_map(|(root, children)| Response::Root { root, children }),
        (prop_oneof![0u8..5, any::<u8>()], digests)
            .prop_map(|(level, digests)| Response::Children { level, digests }),
    ]
}

proptest! {
    /// Arbitrary responses, mixed with honest ones, never panic the initiator,
    /// and once it errs or finishes it stays over.
    #[test]
    fn random_responses_never_panic(
        script in prop::collection::vec((any::<bool>(), response()), 1..12),
    ) {
        let (a, b) = (tree(1, 300), tree(2, 300));
        let (mut ex, mut req) = Exchange::new(&a);
        let mut over = false;
        for (honest, random) in script {
            let resp = if honest { b.answer(&req).unwrap_or(random) } else { random };
            let result = ex.on_response(&a, resp);
            if over {
                prop_assert_eq!(result, Err(Error::ExchangeOver));
                continue;
            }
            match result {
                Ok(Step::Send(next)) => req = next,
                Ok(Step::Done(outcome)) => {
                    prop_assert!(outcome.ranges.len() <= 4096);
                    over = true;
                }
                Err(_) => over = true,
            }
            prop_assert_eq!(ex.is_over(), over);
        }
    }

    /// Arbitrary requests never panic the responder; accepted ones get
    /// `fanout` digests per listed node.
    #[test]
    fn random_requests_never_panic(
        same_tree in any::<bool>(),
        level in prop_oneof![0u8..4, any::<u8>()],
        nodes in prop::collection::vec(prop_oneof![0u32..300, any::<u32>()], 0..50),
        root in any::<u128>(),
    ) {
        let t = tree(1, 300);
        let id = if same_tree {
            t.id()
        } else {
            TreeId::new(q(), p(), TreeShape::new(2, 3).unwrap()).unwrap()
        };
        let n = nodes.len();
        match t.answer(&Request::Children { tree: id, level, nodes }) {
            Ok(Response::Children { digests, .. }) => prop_assert_eq!(digests.len(), n * 16),
            Ok(other) => prop_assert!(false, "{:?}", other),
            Err(_) => {}
        }
        let answered = t.answer(&Request::Root { tree: id, root }).is_ok();
        prop_assert_eq!(answered, same_tree);
    }
}
