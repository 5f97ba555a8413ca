//! Every message survives a frame round trip: `decode(encode(m)[4..]) == m`,
//! with a header that announces exactly the body's length, frame by frame or
//! several frames in one stream received in arbitrary chunks. A message over
//! the sender's limit is refused with `FrameTooLarge`, never sent or panicked on.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::fmt::Debug;

use bytes::Bytes;
use common::*;
use gyre_types::{BucketName, Key, NodeId};
use gyre_wire::{
    Answer, ClientOp, Error, FrameLimit, FrameReader, Hello, HelloReply, Open, Request, Response,
    StreamDone, StreamItem, frame,
};
use proptest::collection::vec;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes `msg` under the default limit and checks the frame: the header is
/// the body's length and the body decodes back to `msg`.
fn round_trip<T>(msg: &T) -> Result<Bytes, TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let encoded = frame::encode(msg, FrameLimit::default()).unwrap();
    prop_assert!(encoded.len() >= frame::HEADER_LEN);
    let (header, body) = encoded.split_at(frame::HEADER_LEN);
    let announced = u32::from_le_bytes(header.try_into().unwrap());
    prop_assert_eq!(announced as usize, body.len());
    let decoded: T = frame::decode(body).unwrap();
    prop_assert_eq!(&decoded, msg);
    Ok(encoded)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn open_round_trips(msg in open()) {
        round_trip(&msg)?;
    }

    #[test]
    fn request_round_trips(msg in request()) {
        round_trip(&msg)?;
    }

    #[test]
    fn response_round_trips(msg in response()) {
        round_trip(&msg)?;
    }

    #[test]
    fn one_way_round_trips(msg in one_way()) {
        round_trip(&msg)?;
    }

    /// A tagged frame: the header names the body's length and the tag; the
    /// body is the plain encoding.
    #[test]
    fn tagged_frames_round_trip(tag in any::<u64>(), request in request(), answer in answer()) {
        for (encoded, plain) in [
            (
                frame::encode_tagged(tag, &request, FrameLimit::DEFAULT).unwrap(),
                frame::encode(&request, FrameLimit::DEFAULT).unwrap(),
            ),
            (
                frame::encode_tagged(tag, &answer, FrameLimit::DEFAULT).unwrap(),
                frame::encode(&answer, FrameLimit::DEFAULT).unwrap(),
            ),
        ] {
            let (header, body) = encoded.split_at(frame::TAGGED_HEADER_LEN);
            let (got_tag, len) = frame::tagged_header(header.try_into().unwrap());
            prop_assert_eq!(got_tag, tag);
            prop_assert_eq!(len as usize, body.len());
            prop_assert_eq!(body, &plain[frame::HEADER_LEN..]);
        }
        let body = frame::encode_tagged(tag, &answer, FrameLimit::DEFAULT).unwrap();
        let decoded: Answer = frame::decode(&body[frame::TAGGED_HEADER_LEN..]).unwrap();
        prop_assert_eq!(decoded, answer);
    }

    #[test]
    fn stream_messages_round_trip(
        open in stream_open(),
        item in stream_item(),
        done in stream_done(),
    ) {
        round_trip(&open)?;
        round_trip(&item)?;
        round_trip(&done)?;
    }

    #[test]
    fn handshake_round_trips(hello in hello(), reply in hello_reply()) {
        round_trip(&hello)?;
        round_trip(&reply)?;
    }

    #[test]
    fn client_messages_round_trip(op in client_op(), reply in client_reply()) {
        round_trip(&op)?;
        round_trip(&reply)?;
    }

    /// Frames of any type, back to back on one stream and received in
    /// arbitrary chunks, come out of a `FrameReader` whole and in order.
    #[test]
    fn a_stream_of_frames_survives_any_chunking(
        frames in vec(any_frame(), 1..6),
        chunks in vec(1usize..200, 1..40),
    ) {
        let stream: Vec<u8> = frames.iter().flat_map(|f| f.encode()).collect();
        let mut reader = FrameReader::new(FrameLimit::default());
        let mut bodies = Vec::new();
        let mut rest = stream.as_slice();
        for &n in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            reader.extend(piece);
            while let Some(body) = reader.next_body().unwrap() {
                bodies.push(body);
            }
        }
        prop_assert_eq!(reader.buffered(), 0);
        prop_assert_eq!(bodies.len(), frames.len());
        for (body, sent) in bodies.iter().zip(&frames) {
            let received = match sent {
                Frame::Open(_) => Frame::Open(frame::decode(body).unwrap()),
                Frame::Response(_) => Frame::Response(frame::decode(body).unwrap()),
                Frame::Hello(_) => Frame::Hello(frame::decode(body).unwrap()),
                Frame::HelloReply(_) => Frame::HelloReply(frame::decode(body).unwrap()),
                Frame::StreamItem(_) => Frame::StreamItem(frame::decode(body).unwrap()),
                Frame::StreamDone(_) => Frame::StreamDone(frame::decode(body).unwrap()),
            };
            prop_assert_eq!(&received, sent);
        }
    }

    /// Under a small limit a message encodes exactly as under the default
    /// one if its body fits, and is refused with its true size if not.
    #[test]
    fn the_sender_enforces_its_limit(msg in open(), extra in 0u32..2048) {
        let whole = round_trip(&msg)?;
        let body_len = whole.len() - frame::HEADER_LEN;
        let limit = FrameLimit::new(1024 + extra).unwrap();
        match frame::encode(&msg, limit) {
            Ok(small) => {
                prop_assert!(body_len <= limit.get() as usize);
                prop_assert_eq!(small, whole);
            }
            Err(e) => prop_assert_eq!(
                e,
                Error::FrameTooLarge { len: body_len as u64, max: limit.get() }
            ),
        }
    }
}

/// A put of `value_len` bytes.
fn big_put(value_len: usize) -> Open {
    Open::Request(Request::Coordinate {
        layout: 7,
        op: ClientOp::Put {
            bucket: BucketName::new("photos").unwrap(),
            key: Key::new(b"cat.jpg".to_vec()).unwrap(),
            context: None,
            value: Bytes::from(vec![0xab; value_len]),
            w: Some(2),
            expiry: gyre_wire::Expiry::Default,
        },
        ticket: 0,
    })
}

#[test]
fn a_message_over_the_limit_is_refused() {
    let msg = big_put(5000);
    let body_len = frame::encode(&msg, FrameLimit::default()).unwrap().len() - frame::HEADER_LEN;
    assert!(body_len > 5000);
    let small = FrameLimit::new(1024).unwrap();
    assert_eq!(
        frame::encode(&msg, small),
        Err(Error::FrameTooLarge {
            len: body_len as u64,
            max: 1024
        })
    );
    // The limit is inclusive: a body of exactly the limit is sent.
    let exact = FrameLimit::new(body_len as u32).unwrap();
    assert_eq!(
        frame::encode(&msg, exact).unwrap().len(),
        frame::HEADER_LEN + body_len
    );
    let one_less = FrameLimit::new(body_len as u32 - 1).unwrap();
    assert!(matches!(
        frame::encode(&msg, one_less),
        Err(Error::FrameTooLarge { .. })
    ));
}

#[test]
fn limits_below_one_kib_are_refused() {
    assert!(matches!(FrameLimit::new(1023), Err(Error::Config(_))));
    assert_eq!(FrameLimit::new(1024).unwrap().get(), 1024);
    assert_eq!(FrameLimit::default(), FrameLimit::DEFAULT);
}

#[test]
fn objects_with_siblings_and_tombstones_round_trip() {
    let object = conflicted_object();
    let item = gyre_wire::Item {
        bucket: BucketName::default(),
        key: Key::new(b"k".to_vec()).unwrap(),
        n_val: 3,
        object: object.clone(),
    };
    for msg in [
        Response::Object(Some(object.clone())),
        Response::Items(vec![item.clone(), item.clone()]),
    ] {
        round_trip(&msg).unwrap();
    }
    round_trip(&StreamItem::Item(item)).unwrap();
    let decoded: Response = frame::decode(
        &frame::encode(&Response::Object(Some(object)), FrameLimit::DEFAULT).unwrap()[4..],
    )
    .unwrap();
    let Response::Object(Some(back)) = decoded else {
        panic!("not an object: {decoded:?}");
    };
    assert_eq!(back.sibling_count(), 3);
    assert_eq!(back.read().len(), 2, "the tombstone is kept, and not read");
}

#[test]
fn handshake_messages_round_trip() {
    let hello = Hello::new("prod", NodeId::new(42));
    round_trip(&hello).unwrap();
    let (refusal, _) = Hello::new("staging", NodeId::new(1))
        .answer("prod", NodeId::new(2))
        .unwrap_err();
    round_trip(&refusal).unwrap();
    let welcome = hello.answer("prod", NodeId::new(2)).unwrap();
    round_trip(&welcome).unwrap();
    assert_eq!(welcome.accepted().unwrap(), NodeId::new(2));
    assert!(matches!(refusal, HelloReply::Refused { .. }));
    round_trip(&StreamDone::Stored { received: 0 }).unwrap();
}
