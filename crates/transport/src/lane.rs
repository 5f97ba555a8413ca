//! Lanes: many small requests on one long-lived QUIC stream.
//!
//! A stream per request costs a UDP datagram or more per request each way,
//! whatever else is in flight: quinn sends as soon as a stream has data.
//! That caps a connection near 80k requests/s on loopback. A lane opens
//! once per connection ([`Open::Lane`]) and then carries tagged frames
//! (`len ‖ tag ‖ body`): [`Request`]s from the connecting node, [`Answer`]s
//! back, in any order. A writer task per side drains everything queued
//! into one write, so requests in flight together share datagrams.
//!
//! What a stream per request gave, a lane keeps:
//!
//! - a bad frame fails only its own request: an oversized body is skipped
//!   (read and dropped, never buffered) and a body that does not decode is
//!   answered with [`Answer::Failed`], and the lane carries on;
//! - a request the node drops unanswered fails at once
//!   ([`Answer::Failed`]), as a reset stream would;
//! - a peer cannot impose unbounded concurrency: the serving side stops
//!   reading the lane while `max_in_flight` requests are unanswered, and
//!   QUIC flow control then holds the sender.
//!
//! Only small requests ride the lane ([`rides_lane`]); bulk requests and
//! those whose answers may be large keep a stream of their own, so a big
//! transfer never queues ahead of small requests. Answers on a lane are
//! written in the order they are ready, so a large answer to a lane
//! request (a big object) delays the answers behind it by its transmission
//! time only.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, Bytes, BytesMut};
use gyre_types::NodeId;
use gyre_wire::{Answer, FrameLimit, Request, Response, frame};
use quinn::{RecvStream, SendStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::{Error, Inbound, Responder, Result};

/// Requests whose encoded frame is larger than this take a stream of their
/// own.
pub(crate) const LANE_MAX_FRAME: usize = 64 * 1024;

/// Frames a writer gathers into one write.
const WRITE_BATCH: usize = 256;

/// Whether `request` (encoded in `len` bytes) may ride a lane: small, and
/// not one whose answer may be large (key listings, fetched items,
/// layouts).
pub(crate) fn rides_lane(request: &Request, len: usize) -> bool {
    len <= LANE_MAX_FRAME
        && !matches!(
            request,
            Request::ListKeys { .. }
                | Request::Fetch { .. }
                | Request::PullLayout { .. }
                | Request::HandoffChunk { .. }
                | Request::PartitionSizes
        )
}

/// Writes every frame queued on `frames` to `send`, many per write, until
/// every sender is gone; then finishes the stream.
pub(crate) async fn write_loop(mut send: SendStream, mut frames: mpsc::UnboundedReceiver<Bytes>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while frames.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        // Let the tasks that are ready queue their frames too: one write,
        // and so one datagram, for all of them.
        tokio::task::yield_now().await;
        while batch.len() < WRITE_BATCH {
            match frames.try_recv() {
                Ok(frame) => batch.push(frame),
                Err(_) => break,
            }
        }
        if let Err(e) = send.write_all_chunks(&mut batch).await {
            tracing::debug!(error = %e, "a lane's stream closed");
            return;
        }
        batch.clear();
    }
    let _ = send.finish();
}

/// One tagged frame read off a lane.
enum Tagged {
    /// A whole body.
    Body(u64, Bytes),
    /// A body over the limit, skipped.
    TooLarge(u64, gyre_wire::Error),
}

/// Reads tagged frames off a stream in whatever chunks they arrive,
/// skipping (never buffering) bodies over the limit.
struct TaggedReader {
    recv: RecvStream,
    limit: FrameLimit,
    buf: BytesMut,
}

impl TaggedReader {
    fn new(recv: RecvStream, limit: FrameLimit) -> Self {
        Self {
            recv,
            limit,
            buf: BytesMut::new(),
        }
    }

    /// The next frame; `Ok(None)` at a clean end of the stream (between
    /// frames).
    async fn next(&mut self) -> std::result::Result<Option<Tagged>, String> {
        while self.buf.len() < frame::TAGGED_HEADER_LEN {
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err("the lane ended inside a frame header".to_owned())
                };
            }
        }
        let mut header = [0; frame::TAGGED_HEADER_LEN];
        header.copy_from_slice(&self.buf[..frame::TAGGED_HEADER_LEN]);
        let (tag, len) = frame::tagged_header(header);
        self.buf.advance(frame::TAGGED_HEADER_LEN);
        match self.limit.check(len) {
            Ok(len) => {
                while self.buf.len() < len {
                    if !self.fill().await? {
                        return Err("the lane ended inside a frame".to_owned());
                    }
                }
                Ok(Some(Tagged::Body(tag, self.buf.split_to(len).freeze())))
            }
            Err(e) => {
                let mut left = len as usize;
                loop {
                    let here = left.min(self.buf.len());
                    self.buf.advance(here);
                    left -= here;
                    if left == 0 {
                        break;
                    }
                    if !self.fill().await? {
                        return Err("the lane ended inside a frame".to_owned());
                    }
                }
                Ok(Some(Tagged::TooLarge(tag, e)))
            }
        }
    }

    /// Reads one more chunk into the buffer; `false` at the end.
    async fn fill(&mut self) -> std::result::Result<bool, String> {
        match self.recv.read_chunk(usize::MAX, true).await {
            Ok(Some(chunk)) => {
                self.buf.extend_from_slice(&chunk.bytes);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The connecting side of a lane: sends requests, pairs answers with them.
#[derive(Debug)]
pub(crate) struct Lane {
    peer: NodeId,
    limit: FrameLimit,
    frames: mpsc::UnboundedSender<Bytes>,
    next_tag: AtomicU64,
    pending: Arc<Mutex<Pending>>,
}

/// Requests awaiting their answers.
#[derive(Debug, Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Answer>>,
    /// Why the lane is gone, once it is.
    closed: Option<String>,
}

fn lock(pending: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    // Each update is a single insert or remove: nothing half-done to see.
    pending.lock().unwrap_or_else(|p| p.into_inner())
}

impl Lane {
    /// Starts a lane on a stream whose [`Open::Lane`] frame was written.
    ///
    /// [`Open::Lane`]: gyre_wire::Open::Lane
    pub(crate) fn start(
        peer: NodeId,
        limit: FrameLimit,
        send: SendStream,
        recv: RecvStream,
    ) -> Self {
        let (frames, queued) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(send, queued));
        let pending = Arc::new(Mutex::new(Pending::default()));
        tokio::spawn(read_answers(
            TaggedReader::new(recv, limit),
            Arc::clone(&pending),
        ));
        Self {
            peer,
            limit,
            frames,
            next_tag: AtomicU64::new(0),
            pending,
        }
    }

    /// Whether the lane still carries requests.
    pub(crate) fn is_open(&self) -> bool {
        lock(&self.pending).closed.is_none() && !self.frames.is_closed()
    }

    /// Sends one request and waits for its answer; `None` if the request
    /// does not ride a lane ([`rides_lane`]) and needs a stream of its own.
    /// Dropping the future forgets the request.
    pub(crate) async fn call(&self, request: &Request) -> Option<Result<Response>> {
        let broken = |reason: String| Error::Broken {
            peer: self.peer,
            reason,
        };
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        let frame = match frame::encode_tagged(tag, request, self.limit) {
            Ok(f) if rides_lane(request, f.len()) => f,
            Ok(_) => return None,
            Err(e) => return Some(Err(e.into())),
        };
        let (tx, rx) = oneshot::channel();
        {
            let mut p = lock(&self.pending);
            if let Some(reason) = &p.closed {
                return Some(Err(broken(reason.clone())));
            }
            p.waiting.insert(tag, tx);
        }
        let _forget = Forget {
            pending: &self.pending,
            tag,
        };
        if self.frames.send(frame).is_err() {
            return Some(Err(broken("the lane's stream closed".to_owned())));
        }
        Some(match rx.await {
            Ok(Answer::Response(response)) => Ok(response),
            Ok(Answer::Failed { reason }) => Err(broken(reason)),
            Err(_) => Err(broken(
                lock(&self.pending)
                    .closed
                    .clone()
                    .unwrap_or_else(|| "the lane closed".to_owned()),
            )),
        })
    }
}

/// Removes a request's entry when its caller stops waiting (answered,
/// failed, or cancelled by a deadline).
struct Forget<'a> {
    pending: &'a Mutex<Pending>,
    tag: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.pending).waiting.remove(&self.tag);
    }
}

/// Hands each answer to its waiting request; when the lane ends, fails
/// every request still waiting.
async fn read_answers(mut reader: TaggedReader, pending: Arc<Mutex<Pending>>) {
    let reason = loop {
        let (tag, answer) = match reader.next().await {
            Ok(Some(Tagged::Body(tag, body))) => match frame::decode::<Answer>(&body) {
                Ok(answer) => (tag, answer),
                Err(e) => (
                    tag,
                    Answer::Failed {
                        reason: format!("an answer that did not decode: {e}"),
                    },
                ),
            },
            Ok(Some(Tagged::TooLarge(tag, e))) => (
                tag,
                Answer::Failed {
                    reason: format!("an answer over the frame limit: {e}"),
                },
            ),
            Ok(None) => break "the peer closed the lane".to_owned(),
            Err(reason) => break reason,
        };
        if let Some(tx) = lock(&pending).waiting.remove(&tag) {
            let _ = tx.send(answer);
        }
    };
    let mut p = lock(&pending);
    p.closed = Some(reason);
    // Dropping the senders wakes every waiting request with the reason.
    p.waiting.clear();
}

/// The way back for one request that arrived on a lane. Dropped
/// unanswered, it answers [`Answer::Failed`].
#[derive(Debug)]
pub(crate) struct LaneReply {
    tag: u64,
    limit: FrameLimit,
    frames: mpsc::UnboundedSender<Bytes>,
    answered: bool,
    /// One of the lane's `max_in_flight`, held until answered.
    _permit: OwnedSemaphorePermit,
}

impl LaneReply {
    pub(crate) fn respond(mut self, response: Response) {
        self.answered = true;
        self.answer(Answer::Response(response));
    }

    fn answer(&self, answer: Answer) {
        let frame = frame::encode_tagged(self.tag, &answer, self.limit).unwrap_or_else(|e| {
            failed(
                self.tag,
                format!("the response could not be sent: {e}"),
                self.limit,
            )
        });
        // A closed lane: the requester is gone, nobody to tell.
        let _ = self.frames.send(frame);
    }
}

impl Drop for LaneReply {
    fn drop(&mut self) {
        if !self.answered {
            self.answer(Answer::Failed {
                reason: "the peer dropped the request unanswered".to_owned(),
            });
        }
    }
}

/// Serves a lane a peer opened: each request to the node, each answer
/// back, at most `max_in_flight` unanswered at once.
pub(crate) async fn serve(
    from: NodeId,
    limit: FrameLimit,
    max_in_flight: usize,
    inbound: mpsc::Sender<Inbound>,
    send: SendStream,
    recv: RecvStream,
) {
    let (frames, queued) = mpsc::unbounded_channel();
    tokio::spawn(write_loop(send, queued));
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let mut reader = TaggedReader::new(recv, limit);
    loop {
        let (tag, body) = match reader.next().await {
            Ok(Some(Tagged::Body(tag, body))) => (tag, body),
            Ok(Some(Tagged::TooLarge(tag, e))) => {
                tracing::warn!(peer = %from, error = %e, "an oversized frame on a lane; skipped");
                let _ = frames.send(failed(tag, format!("refused: {e}"), limit));
                continue;
            }
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(peer = %from, error = %e, "a lane broke");
                return;
            }
        };
        let request = match frame::decode::<Request>(&body) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(peer = %from, error = %e, "a bad frame on a lane; refused");
                let _ = frames.send(failed(tag, format!("refused: {e}"), limit));
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let reply = LaneReply {
            tag,
            limit,
            frames: frames.clone(),
            answered: false,
            _permit: permit,
        };
        let delivered = inbound
            .send(Inbound::Request {
                from,
                request,
                reply: Responder::lane(reply),
            })
            .await;
        if delivered.is_err() {
            // The node is shutting down; the reply inside answers Failed
            // as it drops.
            return;
        }
    }
}

/// An [`Answer::Failed`] frame; empty if even that cannot be encoded.
fn failed(tag: u64, reason: String, limit: FrameLimit) -> Bytes {
    frame::encode_tagged(tag, &Answer::Failed { reason }, limit).unwrap_or_default()
}
