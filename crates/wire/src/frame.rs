//! Length-prefixed frames: `len u32 LE ‖ postcard body`, with a limit
//! checked before anything is allocated.
//!
//! Tagged frames, `len u32 LE ‖ tag u64 LE ‖ postcard body`, carry many
//! requests and their answers on one stream (an [`Open::Lane`]); the tag
//! pairs an answer with its request. `len` counts the body only, so a
//! receiver can skip an oversized body and still answer its tag.
//!
//! [`Open::Lane`]: crate::Open::Lane

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// Bytes of a frame's length prefix.
pub const HEADER_LEN: usize = 4;

/// Bytes of a tagged frame's header: the length, then the tag.
pub const TAGGED_HEADER_LEN: usize = HEADER_LEN + 8;

/// The largest frame a peer may send, checked on both sides: a sender
/// refuses to encode a larger one, a receiver refuses its header before
/// reading the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLimit(u32);

impl FrameLimit {
    /// The default: 72 MiB, room for the largest value a bucket may allow
    /// (64 MiB) with its key, context and siblings' metadata.
    pub const DEFAULT: Self = Self(72 << 20);

    /// A limit of `bytes` (at least 1 KiB, so that every control message fits).
    ///
    /// # Errors
    /// [`Error::Config`] below 1 KiB.
    pub fn new(bytes: u32) -> Result<Self> {
        if bytes < 1024 {
            return Err(Error::Config(format!(
                "frame limit {bytes} is below the 1 KiB minimum"
            )));
        }
        Ok(Self(bytes))
    }

    /// The limit in bytes.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Checks a received header: the length of the body that follows.
    ///
    /// # Errors
    /// [`Error::FrameTooLarge`] if the body would exceed the limit.
    pub fn body_len(self, header: [u8; HEADER_LEN]) -> Result<usize> {
        self.check(u32::from_le_bytes(header))
    }

    /// Checks an announced body length against the limit.
    ///
    /// # Errors
    /// [`Error::FrameTooLarge`] if `len` exceeds the limit.
    pub fn check(self, len: u32) -> Result<usize> {
        if len > self.0 {
            return Err(Error::FrameTooLarge {
                len: u64::from(len),
                max: self.0,
            });
        }
        Ok(len as usize)
    }
}

impl Default for FrameLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Encodes `msg` as one frame (header and body).
///
/// # Errors
/// [`Error::FrameTooLarge`] if the body exceeds `limit` (nothing is sent);
/// [`Error::Encode`] if the message cannot be serialised.
pub fn encode<T: Serialize + ?Sized>(msg: &T, limit: FrameLimit) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_u32_le(0);
    encode_after(buf, msg, limit)
}

/// Encodes `msg` as one tagged frame: `len ‖ tag ‖ body`.
///
/// # Errors
/// As [`encode`].
pub fn encode_tagged<T: Serialize + ?Sized>(tag: u64, msg: &T, limit: FrameLimit) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity(128);
    buf.put_u32_le(0);
    buf.put_u64_le(tag);
    encode_after(buf, msg, limit)
}

/// Appends `msg`'s body to `buf` (a header whose first four bytes are the
/// length to fill in) and fills in the length.
fn encode_after<T: Serialize + ?Sized>(buf: BytesMut, msg: &T, limit: FrameLimit) -> Result<Bytes> {
    let header = buf.len();
    let mut writer = buf.writer();
    postcard::to_io(msg, &mut writer).map_err(|e| Error::Encode(e.to_string()))?;
    let mut buf = writer.into_inner();
    let body = buf.len() - header;
    let len = u32::try_from(body)
        .ok()
        .filter(|&l| l <= limit.get())
        .ok_or(Error::FrameTooLarge {
            len: body as u64,
            max: limit.get(),
        })?;
    buf[..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    Ok(buf.freeze())
}

/// Splits a tagged frame's header into its tag and announced body length
/// (unchecked: pass the length to [`FrameLimit::check`]).
pub fn tagged_header(header: [u8; TAGGED_HEADER_LEN]) -> (u64, u32) {
    let [l0, l1, l2, l3, t @ ..] = header;
    (u64::from_le_bytes(t), u32::from_le_bytes([l0, l1, l2, l3]))
}

/// Decodes one frame body (without its header). The whole body must be one
/// message: trailing bytes are an error.
///
/// # Errors
/// [`Error::Decode`] for anything that is not exactly a valid message.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let (msg, rest) =
        postcard::take_from_bytes::<T>(body).map_err(|e| Error::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::Decode(format!(
            "{} unexpected bytes after the message",
            rest.len()
        )));
    }
    Ok(msg)
}

/// Splits whole frames off the front of a byte buffer, for readers that
/// receive bytes in arbitrary chunks.
#[derive(Debug)]
pub struct FrameReader {
    limit: FrameLimit,
    buf: BytesMut,
}

impl FrameReader {
    /// A reader that refuses frames over `limit`.
    pub fn new(limit: FrameLimit) -> Self {
        Self {
            limit,
            buf: BytesMut::new(),
        }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame's body, `None` if more bytes are needed.
    ///
    /// # Errors
    /// [`Error::FrameTooLarge`] as soon as a header announces too much; the
    /// stream cannot continue after that.
    pub fn next_body(&mut self) -> Result<Option<Bytes>> {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let mut h = [0; HEADER_LEN];
        h.copy_from_slice(header);
        let len = self.limit.body_len(h)?;
        if self.buf.len() < HEADER_LEN.saturating_add(len) {
            return Ok(None);
        }
        let mut frame = self.buf.split_to(HEADER_LEN + len);
        Ok(Some(frame.split_off(HEADER_LEN).freeze()))
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}
