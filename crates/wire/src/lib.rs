//! Gyre's peer protocol: every message one node sends another, and how it
//! travels.
//!
//! - **Messages** ([`Open`], [`Request`], [`Response`], [`OneWay`],
//!   [`StreamItem`], …): replica reads and writes, forwarded client
//!   operations, hinted handoff, Merkle anti-entropy, gossip and partition
//!   handoff streams. They carry the data types of `gyre-types`,
//!   `gyre-versioning`, `gyre-merkle` and `gyre-ring`, whose deserialisers
//!   validate, so a decoded message is always well formed.
//! - **Frames** ([`frame`]): `len u32 LE ‖ postcard body`. A [`FrameLimit`]
//!   is checked before a body is read, so a peer cannot make a node
//!   allocate more than the limit; decoding arbitrary bytes returns an
//!   error, never panics (a property test and a fuzz target check both).
//! - **Handshake**: the connecting node sends a [`Hello`] (protocol version,
//!   cluster, node id) and gets a [`HelloReply`].
//!
//! This is the only crate of the workspace that imports postcard. It does
//! no IO: the transport reads and writes the frames.
//!
//! ```
//! use gyre_types::{BucketName, Key, NodeId};
//! use gyre_wire::{FrameLimit, FrameReader, Hello, Open, Request, frame};
//!
//! let limit = FrameLimit::default();
//! let hello = Hello::new("prod", NodeId::new(7));
//! let request = Open::Request(Request::ReplicaGet {
//!     layout: 3,
//!     bucket: BucketName::new("carts")?,
//!     key: Key::new(b"alice".to_vec())?,
//! });
//!
//! // Two frames on one stream, received in arbitrary chunks.
//! let mut bytes = frame::encode(&hello, limit)?.to_vec();
//! bytes.extend_from_slice(&frame::encode(&request, limit)?);
//! let mut reader = FrameReader::new(limit);
//! for chunk in bytes.chunks(5) {
//!     reader.extend(chunk);
//! }
//! let first = reader.next_body()?.expect("a whole frame");
//! let received: Hello = frame::decode(&first)?;
//! assert!(received.answer("prod", NodeId::new(1)).is_ok());
//! assert!(received.answer("staging", NodeId::new(1)).is_err());
//! let second = reader.next_body()?.expect("a whole frame");
//! assert_eq!(frame::decode::<Open>(&second)?, request);
//!
//! // Garbage is an error, not a panic.
//! assert!(frame::decode::<Open>(&[0xff; 9]).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod frame;
mod hello;
mod msg;

pub use error::{Error, Result};
pub use frame::{FrameLimit, FrameReader};
pub use msg::{
    Answer, BucketEntry, ClientOp, ClientReply, ErrorKind, Expiry, Hello, HelloReply, Item,
    KeyVersion, Object, OneWay, Open, PartitionSize, RemoteError, Request, Response, StreamDone,
    StreamItem, StreamOpen, limits,
};

/// The protocol version this crate speaks. Peers with another version are
/// refused at the handshake.
pub const PROTOCOL_VERSION: u16 = 4;
