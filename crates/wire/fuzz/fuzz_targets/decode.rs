//! Untrusted bytes from a peer: framing them and decoding every frame body as
//! each top-level message never panics, a frame over the limit is refused
//! from its header alone, and whatever decodes re-encodes to the same value.
//!
//! Input: one control byte (chunk size and frame limit), then the stream.

#![no_main]

use gyre_wire::{
    Error, FrameLimit, FrameReader, Hello, HelloReply, Open, Response, StreamDone, StreamItem,
    frame,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes `body` as a `T`; a success must survive an encode/decode round trip.
fn check<T>(body: &[u8])
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    match frame::decode::<T>(body) {
        Ok(value) => {
            let encoded = frame::encode(&value, FrameLimit::DEFAULT)
                .unwrap_or_else(|e| panic!("decoded {value:?} does not re-encode: {e}"));
            let len = u32::from_le_bytes([encoded[0], encoded[1], encoded[2], encoded[3]]);
            assert_eq!(len as usize, encoded.len() - frame::HEADER_LEN);
            let again = frame::decode::<T>(&encoded[frame::HEADER_LEN..])
                .unwrap_or_else(|e| panic!("re-encoded {value:?} does not decode: {e}"));
            assert_eq!(again, value);
        }
        Err(Error::Decode(_)) => {}
        Err(e) => panic!("decoding returned a non-decode error: {e}"),
    }
}

fn check_all(body: &[u8]) {
    check::<Open>(body);
    check::<Response>(body);
    check::<Hello>(body);
    check::<HelloReply>(body);
    check::<StreamItem>(body);
    check::<StreamDone>(body);
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    // Unframed: the whole stream as one body, so that the decoders get
    // coverage without the fuzzer first having to find a valid header.
    check_all(stream);

    // Framed: the stream arrives in chunks of 1..=64 bytes, under a limit of
    // 1, 2, 4 or 8 KiB.
    let chunk = usize::from(control & 0x3f) + 1;
    let max = 1024u32 << (control >> 6);
    let limit = FrameLimit::new(max).expect("at least 1 KiB");
    let mut reader = FrameReader::new(limit);
    let mut fed = 0;
    let mut taken = 0;
    for piece in stream.chunks(chunk) {
        reader.extend(piece);
        fed += piece.len();
        loop {
            match reader.next_body() {
                Ok(Some(body)) => {
                    assert!(body.len() <= max as usize);
                    taken += frame::HEADER_LEN + body.len();
                    check_all(&body);
                }
                Ok(None) => break,
                Err(Error::FrameTooLarge { len, max: m }) => {
                    assert_eq!(m, max);
                    assert!(len > u64::from(max));
                    // Refused from the header: nothing was waited for beyond
                    // the chunk that completed it.
                    assert!(reader.buffered() < frame::HEADER_LEN + chunk);
                    assert!(reader.next_body().is_err(), "the refusal must stick");
                    return;
                }
                Err(e) => panic!("framing returned a non-size error: {e}"),
            }
        }
        assert_eq!(taken + reader.buffered(), fed);
    }
});
