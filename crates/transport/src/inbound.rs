//! What a transport hands to its node, and the bulk-stream halves both
//! transports share (bounded channels, so a slow receiver slows its sender).

use gyre_types::NodeId;
use gyre_wire::{Item, OneWay, Request, Response, StreamDone, StreamItem, StreamOpen};
use tokio::sync::{mpsc, oneshot};

use crate::lane::LaneReply;
use crate::{Error, Result};

/// Items a bulk stream buffers between sender and receiver before the
/// sender waits.
pub(crate) const STREAM_BUFFER: usize = 64;

/// Something a peer sent this node.
#[derive(Debug)]
pub enum Inbound {
    /// A request; answer it through `reply`.
    Request {
        /// The (authenticated) sender.
        from: NodeId,
        /// What it asks.
        request: Request,
        /// Where the answer goes.
        reply: Responder,
    },
    /// A one-way message.
    Message {
        /// The (authenticated) sender.
        from: NodeId,
        /// The message.
        message: OneWay,
    },
    /// A bulk stream; read its items, then finish it.
    Stream {
        /// The (authenticated) sender.
        from: NodeId,
        /// What the stream carries.
        open: StreamOpen,
        /// The items.
        stream: InStream,
    },
}

/// The way back for one request's answer. Dropping it unanswered fails
/// the request at once (the requester sees [`Error::Broken`]).
#[derive(Debug)]
pub struct Responder(Reply);

#[derive(Debug)]
enum Reply {
    /// Through the task serving the request's own stream (or the
    /// in-memory network).
    Once(oneshot::Sender<Response>),
    /// Onto a QUIC lane.
    Lane(LaneReply),
}

impl Responder {
    pub(crate) fn once(tx: oneshot::Sender<Response>) -> Self {
        Self(Reply::Once(tx))
    }

    pub(crate) fn lane(reply: LaneReply) -> Self {
        Self(Reply::Lane(reply))
    }

    /// Sends the answer. If the requester gave up meanwhile (deadline,
    /// broken connection), the answer is dropped.
    pub fn respond(self, response: Response) {
        match self.0 {
            Reply::Once(tx) => drop(tx.send(response)),
            Reply::Lane(reply) => reply.respond(response),
        }
    }
}

/// The sending half of a bulk stream.
#[derive(Debug)]
pub struct OutStream {
    pub(crate) peer: NodeId,
    pub(crate) items: mpsc::Sender<StreamItem>,
    pub(crate) done: oneshot::Receiver<Result<StreamDone>>,
    pub(crate) sent: u64,
}

impl OutStream {
    /// A connected pair of halves: what one writes the other reads. `to`
    /// receives, `from` sends.
    pub(crate) fn pair(from: NodeId, to: NodeId) -> (Self, InStream) {
        let (items_tx, items_rx) = mpsc::channel(STREAM_BUFFER);
        let (done_tx, done_rx) = oneshot::channel();
        let out = Self {
            peer: to,
            items: items_tx,
            done: done_rx,
            sent: 0,
        };
        let input = InStream {
            peer: from,
            items: items_rx,
            done: Some(done_tx),
            ended: false,
        };
        (out, input)
    }

    /// Sends one item; waits while the receiver is behind.
    ///
    /// # Errors
    /// [`Error::Broken`] if the stream or its connection is gone.
    pub async fn send(&mut self, item: Item) -> Result<()> {
        self.items
            .send(StreamItem::Item(item))
            .await
            .map_err(|_| self.broken("the receiver went away"))?;
        self.sent += 1;
        Ok(())
    }

    /// Ends the stream and waits for the receiver's verdict (every item
    /// durable, or why not).
    ///
    /// # Errors
    /// [`Error::Broken`] if the stream or its connection broke first.
    pub async fn finish(self) -> Result<StreamDone> {
        let end = StreamItem::End { sent: self.sent };
        let peer = self.peer;
        let broken = |reason: &str| Error::Broken {
            peer,
            reason: reason.to_owned(),
        };
        self.items
            .send(end)
            .await
            .map_err(|_| broken("the receiver went away"))?;
        drop(self.items);
        self.done
            .await
            .map_err(|_| broken("the stream ended without a verdict"))?
    }

    fn broken(&self, reason: &str) -> Error {
        Error::Broken {
            peer: self.peer,
            reason: reason.to_owned(),
        }
    }
}

/// The receiving half of a bulk stream.
#[derive(Debug)]
pub struct InStream {
    pub(crate) peer: NodeId,
    pub(crate) items: mpsc::Receiver<StreamItem>,
    pub(crate) done: Option<oneshot::Sender<Result<StreamDone>>>,
    pub(crate) ended: bool,
}

impl InStream {
    /// The next item; `Ok(None)` once the sender ended the stream.
    ///
    /// # Errors
    /// [`Error::Broken`] if the sender vanished before ending the stream.
    pub async fn next(&mut self) -> Result<Option<Item>> {
        if self.ended {
            return Ok(None);
        }
        match self.items.recv().await {
            Some(StreamItem::Item(item)) => Ok(Some(item)),
            Some(StreamItem::End { .. }) => {
                self.ended = true;
                Ok(None)
            }
            None => Err(Error::Broken {
                peer: self.peer,
                reason: "the sender vanished before ending the stream".to_owned(),
            }),
        }
    }

    /// Tells the sender how it went (call once every item is durable).
    pub fn finish(mut self, done: StreamDone) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(Ok(done));
        }
    }
}
