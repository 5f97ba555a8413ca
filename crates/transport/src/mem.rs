//! An in-process network: [`MemNetwork`] connects [`MemTransport`]s, one per
//! node, and injects seeded faults — lost, duplicated and delayed (hence
//! reordered) messages, partitions one-way or both ways, isolated nodes,
//! nodes that vanish and come back.
//!
//! It is what the simulator runs a cluster on, and what fast tests use. It
//! passes the same conformance suite as the QUIC transport.
//!
//! [`MemNetwork`] documents what each fault does and how runs stay
//! reproducible.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use gyre_transport::{Error, Inbound, MemNetwork, Transport};
//! use gyre_types::NodeId;
//! use gyre_wire::{Request, Response};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Builder::new_current_thread()
//!     .enable_time()
//!     .build()?;
//! runtime.block_on(async {
//!     let network = MemNetwork::new(42);
//!     let (a, _a_inbound) = network.join(NodeId::new(1));
//!     let (b, mut b_inbound) = network.join(NodeId::new(2));
//!
//!     // Node b answers pings.
//!     tokio::spawn(async move {
//!         while let Some(inbound) = b_inbound.recv().await {
//!             if let Inbound::Request { reply, .. } = inbound {
//!                 reply.respond(Response::Pong);
//!             }
//!         }
//!     });
//!
//!     let deadline = Duration::from_millis(50);
//!     let answer = a.request(b.local(), Request::Ping, deadline).await?;
//!     assert_eq!(answer, Response::Pong);
//!
//!     // Cut the link: the ping is lost and the requester times out.
//!     network.partition(a.local(), b.local());
//!     let lost = a.request(b.local(), Request::Ping, deadline).await;
//!     assert!(matches!(lost, Err(Error::Timeout { .. })));
//!
//!     // Heal it: pings get through again.
//!     network.heal();
//!     let answer = a.request(b.local(), Request::Ping, deadline).await?;
//!     assert_eq!(answer, Response::Pong);
//!     Ok::<_, Error>(())
//! })?;
//! # Ok(())
//! # }
//! ```

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use gyre_types::NodeId;
use gyre_wire::{OneWay, Request, Response, StreamItem, StreamOpen};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::{Error, InStream, Inbound, OutStream, Responder, Result, Transport};

/// Capacity of a node's inbound channel. Deliveries beyond it wait in
/// their own task rather than being lost.
const INBOUND_BUFFER: usize = 1024;

/// The faults a [`MemNetwork`] injects into every message: requests,
/// answers, one-way messages and bulk-stream setups. The default is a
/// perfect network.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Probability that a message is lost, drawn per message (a request's
    /// question and its answer separately). `0.0` never, `1.0` always.
    pub drop: f64,
    /// Probability that a request or one-way message is delivered twice.
    pub duplicate: f64,
    /// Each message's delay is drawn uniformly from `min..=max` in whole
    /// milliseconds above `min` (tokio's timers tick in milliseconds anyway);
    /// a span under a millisecond, or `max < min`, always gives `min`.
    /// Different delays reorder messages.
    pub delay: (Duration, Duration),
}

/// An in-process network of [`MemTransport`]s with seeded fault injection.
///
/// Cheap to clone: clones share the same network. Nodes
/// [`join`](Self::join) it to get their transport and inbound channel;
/// [`set_faults`](Self::set_faults), [`partition`](Self::partition),
/// [`partition_one_way`](Self::partition_one_way),
/// [`isolate`](Self::isolate), [`heal`](Self::heal) and
/// [`leave`](Self::leave) change it while it runs.
///
/// # What the faults do
///
/// - A **lost** message (dropped by [`Faults::drop`], sent over a cut link,
///   or addressed to a node that left or restarted while it was in flight)
///   simply never arrives, as on a real network: a request whose question or
///   answer is lost ends in [`Error::Timeout`]. Only a peer that is not in
///   the network at all gives [`Error::Unreachable`], at once, and a peer
///   that drops a request without answering gives [`Error::Broken`].
/// - A request travels twice: the question from requester to peer and the
///   answer back, each with its own draw of loss and delay, each needing its
///   own direction of the link. So after
///   [`partition_one_way(a, b)`](Self::partition_one_way), `b`'s
///   one-way messages still reach `a`, and `a` even receives `b`'s requests,
///   but their answers are lost and `b` times out.
/// - A **duplicated** request or message is delivered twice, each copy with
///   its own delay. Only the first copy's answer reaches the requester; the
///   other copy's is discarded. Answers and bulk streams are never
///   duplicated.
/// - A **bulk stream** is set up by a message that the faults treat like any
///   other (a lost setup breaks the stream: the sender's next
///   [`OutStream::send`] or [`OutStream::finish`] fails). Its items are not
///   delayed or dropped one by one, but the stream breaks as soon as either
///   direction of its link is cut or either end leaves or restarts.
///
/// # Determinism
///
/// Every random choice comes from one seeded generator, drawn when a message
/// is sent (or an answer given) under the network's lock, and delayed
/// messages due at the same instant are delivered in the order they were
/// sent. So on tokio's paused clock with a current-thread runtime, the same
/// seed and the same program give the same run. On a real clock (still
/// current-thread), a burst of messages sent at once arrives in the same
/// order for the same seed (delays are whole milliseconds, see
/// [`Faults::delay`]).
#[derive(Clone)]
pub struct MemNetwork {
    shared: Arc<Shared>,
}

/// One node's handle on a [`MemNetwork`].
///
/// It stops working ([`Error::Shutdown`]) once its node
/// [`leave`](MemNetwork::leave)s or joins again.
#[derive(Clone, Debug)]
pub struct MemTransport {
    network: MemNetwork,
    local: NodeId,
    incarnation: u64,
}

struct Shared {
    seed: u64,
    state: Mutex<State>,
    /// Bumped whenever links or members change, so that bulk streams can
    /// check whether they are cut.
    topology: watch::Sender<u64>,
}

struct State {
    rng: SplitMix64,
    faults: Faults,
    members: HashMap<NodeId, Member>,
    incarnations: u64,
    /// Directed links that are down.
    cut: HashSet<(NodeId, NodeId)>,
    /// Nodes paused until the instant given (as by SIGSTOP): what is
    /// sent to them meanwhile arrives when they resume.
    paused: HashMap<NodeId, Instant>,
    /// Nodes whose every link is down.
    isolated: HashSet<NodeId>,
    /// Delayed messages, earliest (then first sent) first.
    in_flight: BinaryHeap<Reverse<InFlight>>,
    sent: u64,
}

struct Member {
    incarnation: u64,
    inbound: mpsc::Sender<Inbound>,
}

/// A message on its way to a node.
struct Delivery {
    from: NodeId,
    to: NodeId,
    /// The incarnation of `to` it was sent to; lost if that one is gone.
    incarnation: u64,
    inbound: Inbound,
    /// For a request's first copy: set once it is in the peer's inbound
    /// channel, so that the requester tells a peer that dropped the request
    /// (`Broken`) from a network that lost it (`Timeout`).
    delivered: Option<Arc<AtomicBool>>,
}

/// A delivery that may go, outside the lock.
struct Ready {
    inbound: mpsc::Sender<Inbound>,
    message: Inbound,
    delivered: Option<Arc<AtomicBool>>,
}

/// A delayed delivery, ordered by when it is due, then by when it was sent.
struct InFlight {
    due: Instant,
    seq: u64,
    delivery: Delivery,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// SplitMix64: tiny, fast, and good enough to draw faults from.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`; draws nothing when `p` is 0 or 1 (or not
    /// a number, taken as 0).
    fn chance(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            let unit = (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
            unit < p
        }
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn delay(&mut self, (min, max): (Duration, Duration)) -> Duration {
        let steps = max.saturating_sub(min).as_millis();
        if steps == 0 {
            return min;
        }
        let choices = u64::try_from(steps).unwrap_or(u64::MAX - 1) + 1;
        min + Duration::from_millis(self.below(choices))
    }
}

impl State {
    fn link_up(&self, from: NodeId, to: NodeId) -> bool {
        from == to
            || !(self.isolated.contains(&from)
                || self.isolated.contains(&to)
                || self.cut.contains(&(from, to)))
    }

    fn incarnation(&self, node: NodeId) -> Option<u64> {
        self.members.get(&node).map(|member| member.incarnation)
    }

    /// The fate of one message: the delay of each copy that will travel
    /// (none if it is lost).
    fn draw(&mut self, duplicable: bool) -> Vec<Duration> {
        let faults = self.faults;
        if self.rng.chance(faults.drop) {
            return Vec::new();
        }
        let copies = if duplicable && self.rng.chance(faults.duplicate) {
            2
        } else {
            1
        };
        (0..copies).map(|_| self.rng.delay(faults.delay)).collect()
    }

    /// Where a delivery goes now, or `None` if it is lost.
    fn route(&self, delivery: Delivery) -> Option<Ready> {
        let member = self.members.get(&delivery.to)?;
        (member.incarnation == delivery.incarnation && self.link_up(delivery.from, delivery.to))
            .then(|| Ready {
                inbound: member.inbound.clone(),
                message: delivery.inbound,
                delivered: delivery.delivered,
            })
    }
}

impl Ready {
    fn deliver(self) {
        let Self {
            inbound,
            message,
            delivered,
        } = self;
        // Marked before the peer can see the request, unmarked before a
        // failed delivery drops it: the requester reads the mark only after
        // the request was dropped.
        let mark = |value: bool| {
            if let Some(flag) = &delivered {
                flag.store(value, Ordering::SeqCst);
            }
        };
        mark(true);
        match inbound.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Closed(message)) => {
                mark(false);
                drop(message);
            }
            Err(TrySendError::Full(message)) => {
                tokio::spawn(async move {
                    if let Err(mpsc::error::SendError(message)) = inbound.send(message).await {
                        if let Some(flag) = &delivered {
                            flag.store(false, Ordering::SeqCst);
                        }
                        drop(message);
                    }
                });
            }
        }
    }
}

impl MemNetwork {
    /// An empty network without faults, whose random choices all derive
    /// from `seed`.
    pub fn new(seed: u64) -> Self {
        let (topology, _) = watch::channel(0);
        Self {
            shared: Arc::new(Shared {
                seed,
                state: Mutex::new(State {
                    rng: SplitMix64(seed),
                    faults: Faults::default(),
                    members: HashMap::new(),
                    incarnations: 0,
                    cut: HashSet::new(),
                    paused: HashMap::new(),
                    isolated: HashSet::new(),
                    in_flight: BinaryHeap::new(),
                    sent: 0,
                }),
                topology,
            }),
        }
    }

    /// The seed the network was created with (worth printing when a
    /// simulation fails).
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// Adds `node` to the network: its transport, and the channel on which
    /// whatever peers send it arrives.
    ///
    /// Joining with the id of a node already in the network replaces it, as
    /// a restart would: the old transport stops working, the old channel
    /// ends, and messages in flight to the old node are lost.
    pub fn join(&self, node: NodeId) -> (MemTransport, mpsc::Receiver<Inbound>) {
        let (inbound, receiver) = mpsc::channel(INBOUND_BUFFER);
        let incarnation = {
            let mut state = self.lock();
            state.incarnations += 1;
            let incarnation = state.incarnations;
            state.members.insert(
                node,
                Member {
                    incarnation,
                    inbound,
                },
            );
            incarnation
        };
        self.topology_changed();
        let transport = MemTransport {
            network: self.clone(),
            local: node,
            incarnation,
        };
        (transport, receiver)
    }

    /// Removes `node`, as if it crashed: messages to it are lost, requests
    /// to it fail with [`Error::Unreachable`], its bulk streams break, its
    /// inbound channel ends and its transport returns [`Error::Shutdown`].
    /// It may [`join`](Self::join) again later.
    pub fn leave(&self, node: NodeId) {
        let removed = self.lock().members.remove(&node);
        drop(removed);
        self.topology_changed();
    }

    /// Replaces the faults injected from now on (messages already in flight
    /// keep their fate).
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// The faults currently injected.
    pub fn faults(&self) -> Faults {
        self.lock().faults
    }

    /// Cuts the link between `a` and `b`, both ways, until [`heal`](Self::heal).
    pub fn partition(&self, a: NodeId, b: NodeId) {
        {
            let mut state = self.lock();
            state.cut.insert((a, b));
            state.cut.insert((b, a));
        }
        self.topology_changed();
    }

    /// Cuts the link from `from` to `to` only, until [`heal`](Self::heal):
    /// `to` still reaches `from`, but nothing `from` sends reaches `to`,
    /// including answers to `to`'s requests.
    pub fn partition_one_way(&self, from: NodeId, to: NodeId) {
        self.lock().cut.insert((from, to));
        self.topology_changed();
    }

    /// Cuts every link of `node`, both ways (including to nodes that join
    /// later), until [`heal`](Self::heal). The node still reaches itself.
    pub fn isolate(&self, node: NodeId) {
        self.lock().isolated.insert(node);
        self.topology_changed();
    }

    /// Pauses `node` for `pause`, as SIGSTOP would: every message sent to
    /// it meanwhile (requests, answers to its requests, one-way messages)
    /// is held and arrives when the pause ends, late but not lost. What
    /// it sends is not held.
    pub fn pause_inbound(&self, node: NodeId, pause: Duration) {
        let until = Instant::now() + pause;
        self.lock().paused.insert(node, until);
    }

    /// Whether what `from` sends reaches `to` now (the link is neither cut
    /// nor isolated; message faults aside).
    pub fn link_up(&self, from: NodeId, to: NodeId) -> bool {
        self.lock().link_up(from, to)
    }

    /// Restores every link cut by [`partition`](Self::partition),
    /// [`partition_one_way`](Self::partition_one_way) or
    /// [`isolate`](Self::isolate). Lost messages stay lost.
    pub fn heal(&self) {
        {
            let mut state = self.lock();
            state.cut.clear();
            state.isolated.clear();
        }
        self.topology_changed();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn topology_changed(&self) {
        self.shared.topology.send_modify(|version| *version += 1);
    }

    /// Sends a message from `from` (which must still be incarnation
    /// `from_incarnation`) to `to`: draws its fate, then builds one inbound
    /// message per copy with `copies` and delivers each now or after its
    /// delay. Returns the incarnation of `to` it went to.
    fn post(
        &self,
        (from, from_incarnation): (NodeId, u64),
        to: NodeId,
        duplicable: bool,
        copies: impl FnOnce(usize) -> Vec<(Inbound, Option<Arc<AtomicBool>>)>,
    ) -> Result<u64> {
        let now = Instant::now();
        let mut ready = Vec::new();
        let mut timers = Vec::new();
        let incarnation = {
            let mut state = self.lock();
            if state.incarnation(from) != Some(from_incarnation) {
                return Err(Error::Shutdown);
            }
            let Some(incarnation) = state.incarnation(to) else {
                return Err(Error::Unreachable {
                    peer: to,
                    reason: "not in the network".to_owned(),
                });
            };
            let mut delays = state.draw(duplicable);
            if !state.link_up(from, to) {
                delays.clear();
            }
            if let Some(&until) = state.paused.get(&to) {
                let held = until.saturating_duration_since(now);
                for delay in &mut delays {
                    *delay = (*delay).max(held);
                }
            }
            let inbounds = copies(delays.len());
            for (delay, (inbound, delivered)) in delays.into_iter().zip(inbounds) {
                let delivery = Delivery {
                    from,
                    to,
                    incarnation,
                    inbound,
                    delivered,
                };
                if delay.is_zero() {
                    ready.extend(state.route(delivery));
                } else if let Some(due) = now.checked_add(delay) {
                    let seq = state.sent;
                    state.sent += 1;
                    state
                        .in_flight
                        .push(Reverse(InFlight { due, seq, delivery }));
                    timers.push(due);
                }
                // A delay beyond the clock's range: the copy never arrives.
            }
            incarnation
        };
        for due in timers {
            let network = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(due).await;
                network.deliver_due(due.max(Instant::now()));
            });
        }
        for delivery in ready {
            delivery.deliver();
        }
        Ok(incarnation)
    }

    /// Delivers every delayed message due by `now`, in order.
    fn deliver_due(&self, now: Instant) {
        let ready = {
            let mut state = self.lock();
            let mut ready = Vec::new();
            while state
                .in_flight
                .peek()
                .is_some_and(|Reverse(next)| next.due <= now)
            {
                if let Some(Reverse(next)) = state.in_flight.pop() {
                    ready.extend(state.route(next.delivery));
                }
            }
            ready
        };
        for delivery in ready {
            delivery.deliver();
        }
    }

    /// The fate of an answer from `from` to `to`: its delay, or `None` if
    /// it is lost.
    fn answer(&self, from: NodeId, to: NodeId) -> Option<Duration> {
        let mut state = self.lock();
        state.incarnation(from)?;
        let delay = state.draw(false).pop()?;
        let held = state.paused.get(&to).map_or(Duration::ZERO, |&until| {
            until.saturating_duration_since(Instant::now())
        });
        state.link_up(from, to).then_some(delay.max(held))
    }

    /// Whether a bulk stream between these incarnations still stands: both
    /// ends in the network, both directions of the link up.
    fn stream_alive(&self, (from, from_inc): (NodeId, u64), (to, to_inc): (NodeId, u64)) -> bool {
        let state = self.lock();
        state.incarnation(from) == Some(from_inc)
            && state.incarnation(to) == Some(to_inc)
            && state.link_up(from, to)
            && state.link_up(to, from)
    }
}

impl fmt::Debug for MemNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemNetwork")
            .field("seed", &self.shared.seed)
            .finish_non_exhaustive()
    }
}

impl MemTransport {
    /// The network this transport belongs to.
    pub fn network(&self) -> &MemNetwork {
        &self.network
    }

    fn me(&self) -> (NodeId, u64) {
        (self.local, self.incarnation)
    }
}

impl Transport for MemTransport {
    fn local(&self) -> NodeId {
        self.local
    }

    async fn request(&self, peer: NodeId, request: Request, timeout: Duration) -> Result<Response> {
        let local = self.local;
        let (reply, answer) = oneshot::channel();
        let delivered = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&delivered);
        self.network.post(self.me(), peer, true, move |copies| {
            let mut first = Some((reply, flag));
            std::iter::repeat_n(request, copies)
                .map(|request| {
                    // Only the first copy's answer goes back.
                    let (reply, flag) = match first.take() {
                        Some((reply, flag)) => (reply, Some(flag)),
                        None => (oneshot::channel().0, None),
                    };
                    let inbound = Inbound::Request {
                        from: local,
                        request,
                        reply: Responder::once(reply),
                    };
                    (inbound, flag)
                })
                .collect()
        })?;
        let exchange = async {
            let response = match answer.await {
                Ok(response) => response,
                Err(_) if delivered.load(Ordering::SeqCst) => {
                    return Err(Error::Broken {
                        peer,
                        reason: "the peer dropped the request without answering".to_owned(),
                    });
                }
                // Lost on the way: wait for the deadline, as on a network.
                Err(_) => return future::pending().await,
            };
            match self.network.answer(peer, local) {
                Some(delay) => {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Ok(response)
                }
                None => future::pending().await,
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(Error::Timeout {
                peer,
                after: timeout,
            }))
    }

    async fn send(&self, peer: NodeId, message: OneWay) -> Result<()> {
        let from = self.local;
        self.network.post(self.me(), peer, true, move |copies| {
            std::iter::repeat_n(message, copies)
                .map(|message| (Inbound::Message { from, message }, None))
                .collect()
        })?;
        Ok(())
    }

    async fn open_stream(&self, peer: NodeId, open: StreamOpen) -> Result<OutStream> {
        let from = self.local;
        // The sender's half feeds a relay that watches the link; the relay
        // feeds the half the peer gets.
        let (out, relay_in) = OutStream::pair(from, peer);
        let (relay_out, input) = OutStream::pair(from, peer);
        let peer_incarnation = self.network.post(self.me(), peer, false, move |copies| {
            // Never duplicated: at most one copy.
            Some((input, open))
                .into_iter()
                .take(copies)
                .map(|(stream, open)| (Inbound::Stream { from, open, stream }, None))
                .collect()
        })?;
        tokio::spawn(relay(
            self.network.clone(),
            self.me(),
            (peer, peer_incarnation),
            relay_in,
            relay_out,
        ));
        Ok(out)
    }
}

/// Carries a bulk stream's items from the sender's half to the peer's, and
/// the peer's verdict back, until the link is cut or either side goes away.
/// Returning drops both halves, which the sender and the peer see as a
/// broken stream.
async fn relay(
    network: MemNetwork,
    from: (NodeId, u64),
    to: (NodeId, u64),
    mut input: InStream,
    output: OutStream,
) {
    let mut topology = network.shared.topology.subscribe();
    let alive = || network.stream_alive(from, to);
    let OutStream {
        items: forward,
        done: verdict,
        ..
    } = output;
    loop {
        if !alive() {
            return;
        }
        let item = tokio::select! {
            changed = topology.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            () = forward.closed() => return,
            item = input.items.recv() => item,
        };
        // `None`: the sender dropped its half without finishing.
        let Some(item) = item else { return };
        let end = matches!(item, StreamItem::End { .. });
        let permit = loop {
            tokio::select! {
                changed = topology.changed() => {
                    if changed.is_err() || !alive() {
                        return;
                    }
                }
                permit = forward.reserve() => match permit {
                    Ok(permit) => break permit,
                    Err(_) => return,
                },
            }
        };
        if !alive() {
            return;
        }
        permit.send(item);
        if end {
            break;
        }
    }
    drop(forward);
    let mut verdict = verdict;
    let result = loop {
        tokio::select! {
            changed = topology.changed() => {
                if changed.is_err() || !alive() {
                    return;
                }
            }
            result = &mut verdict => match result {
                Ok(result) => break result,
                Err(_) => return,
            },
        }
    };
    if alive()
        && let Some(done) = input.done.take()
    {
        let _ = done.send(result);
    }
}
