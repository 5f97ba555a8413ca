//! The test model itself behaves as a node would: contexts supersede,
//! concurrent writes become siblings.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::ModelBackend;
use gyre_api::Backend;
use gyre_types::{BucketName, Key};
use gyre_wire::{ClientOp, ClientReply};

#[tokio::test]
async fn concurrent_puts_are_siblings_and_a_put_with_their_context_resolves_them() {
    let model = ModelBackend::new();
    let (bucket, key) = (
        BucketName::new("default").unwrap(),
        Key::new(b"k".to_vec()).unwrap(),
    );
    let put = |ctx: Option<Bytes>, v: &'static str| ClientOp::Put {
        bucket: bucket.clone(),
        key: key.clone(),
        context: ctx,
        value: Bytes::from(v),
        w: None,
        expiry: gyre_wire::Expiry::Default,
    };
    let empty = Bytes::from(gyre_versioning::Context::empty().to_bytes());
    model.kv(put(Some(empty.clone()), "a")).await.unwrap();
    model.kv(put(Some(empty), "b")).await.unwrap();
    let get = ClientOp::Get {
        bucket: bucket.clone(),
        key: key.clone(),
        r: None,
    };
    let ClientReply::Values {
        values,
        latest,
        context,
        ..
    } = model.kv(get.clone()).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(values.len(), 2);
    assert_eq!(latest, Some(1));
    model.kv(put(Some(context), "c")).await.unwrap();
    assert_eq!(model.values("default", b"k"), [Bytes::from("c")]);
}
