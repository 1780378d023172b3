//! The protocol loop: moves sealed datagrams between the UDP socket and the
//! state machine, drives its clock, serves bus commands, and publishes what
//! it outputs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use zbus::object_server::SignalEmitter;

use vigil_membership::{Input, Membership, NodeId, Output};

use crate::dbus::{self, Command, Dest, Shared};
use crate::transport::{AuthKey, ClusterTag, Opener, Sealer};

/// At most this many more datagrams (or bus commands) are handled after
/// the first one before the loop sends what they caused.
const DRAIN: usize = 63;
/// ... and for at most this long: what the first ones caused (heartbeats
/// among it) must not wait behind a long burst.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_millis(2);

/// Everything the loop owns.
pub struct Runtime {
    pub core: Membership,
    pub socket: UdpSocket,
    pub peers: BTreeMap<NodeId, SocketAddr>,
    pub key: AuthKey,
    pub tag: ClusterTag,
    pub sealer: Sealer,
    pub opener: Opener,
    pub shared: Shared,
    pub bus: zbus::Connection,
    pub start: Instant,
    pub ring_seq: crate::state::RingSeqFile,
    /// Links cut on purpose (the sandbox's partitions).
    pub cuts: Cuts,
}

/// Links to other nodes cut on purpose, as a file lists them
/// (`--cut-links-file`, for `vigil sandbox partition`, which has no root
/// to cut the network): the ids of the nodes this one neither hears nor
/// sends to, separated by white space; no file, or an empty one, cuts
/// nothing. The file is looked at every 100 ms.
#[derive(Debug, Default)]
pub struct Cuts {
    file: Option<std::path::PathBuf>,
    cut: std::collections::BTreeSet<NodeId>,
    seen: Option<Option<std::time::SystemTime>>,
    next_check_ms: u64,
}

impl Cuts {
    pub fn new(file: Option<std::path::PathBuf>) -> Cuts {
        Cuts {
            file,
            ..Cuts::default()
        }
    }

    /// Reads the file again when it changed.
    fn refresh(&mut self, now_ms: u64) {
        let Some(file) = &self.file else { return };
        if now_ms < self.next_check_ms {
            return;
        }
        self.next_check_ms = now_ms + 100;
        let modified = std::fs::metadata(file).and_then(|m| m.modified()).ok();
        if self.seen == Some(modified) {
            return;
        }
        self.seen = Some(modified);
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let mut cut = std::collections::BTreeSet::new();
        for word in text.split_whitespace() {
            match word.parse::<NodeId>() {
                Ok(id) => {
                    cut.insert(id);
                }
                Err(_) => tracing::warn!("{}: {word:?} is not a node id; ignored", file.display()),
            }
        }
        if cut != self.cut {
            if cut.is_empty() {
                tracing::warn!("links to every node restored ({})", file.display());
            } else {
                tracing::warn!(
                    cut = ?cut,
                    "links to nodes {cut:?} cut on purpose ({})",
                    file.display()
                );
            }
            self.cut = cut;
        }
    }

    pub fn is_cut(&self, node: NodeId) -> bool {
        self.cut.contains(&node)
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("node", &self.core.node_id())
            .field("view", self.core.view())
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

/// What the loop publishes on the bus, handed to a separate task so that
/// the protocol never waits on the bus.
#[derive(Debug)]
enum Event {
    View((u64, u32), Vec<u32>),
    Quorum(bool, u32, u32),
    GroupChanged {
        group: String,
        members: Vec<(u32, u64)>,
        joined: Vec<(u32, u64)>,
        left: Vec<(u32, u64)>,
    },
    Undelivered {
        dest: Dest,
        group: String,
        payload: Vec<u8>,
    },
    /// Consecutive deliveries to one client in one group.
    Delivered {
        dest: Dest,
        group: String,
        messages: Vec<(u32, u64, Vec<u8>)>,
    },
}

/// Deliveries to one client being gathered into one signal: client,
/// group, messages (node, client, payload), payload bytes.
type Batch = (u64, String, Vec<(u32, u64, Vec<u8>)>, usize);

/// Deliveries to one client are batched into a signal up to this many
/// payload bytes.
const SIGNAL_BYTES: usize = 1 << 20;

impl Runtime {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Runs until the command channel closes.
    pub async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) -> anyhow::Result<()> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        tokio::spawn(publish(self.bus.clone(), self.shared.clone(), events_rx));
        tokio::spawn(watch_clients(self.bus.clone(), self.shared.clone()));
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut buf = vec![0u8; 65_536];
        let mut next_stats = 0;
        let mut warned: BTreeMap<(&'static str, SocketAddr), u64> = BTreeMap::new();
        loop {
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((len, addr)) = r else { continue };
                    // Everything the socket has ready is handled before
                    // anything is sent, so that the answers to many
                    // datagrams travel together.
                    let mut outs = self.receive(&buf[..len], addr, &mut warned);
                    let drain_until = Instant::now() + DRAIN_TIME;
                    for _ in 0..DRAIN {
                        if Instant::now() >= drain_until {
                            break;
                        }
                        let Ok((len, addr)) = self.socket.try_recv_from(&mut buf) else {
                            break;
                        };
                        outs.extend(self.receive(&buf[..len], addr, &mut warned));
                    }
                    outs.extend(self.core.flush());
                    self.dispatch(outs, &events_tx, None).await;
                }
                _ = tick.tick() => {
                    let now_ms = self.now_ms();
                    self.cuts.refresh(now_ms);
                    let outs = self.core.handle(Input::Tick { now_ms });
                    self.dispatch(outs, &events_tx, None).await;
                    if now_ms >= next_stats {
                        next_stats = now_ms + 1000;
                        self.publish_stats();
                    }
                }
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return Ok(()) };
                    self.command(cmd, &events_tx).await;
                    // A burst of sends leaves in a few datagrams.
                    let drain_until = Instant::now() + DRAIN_TIME;
                    for _ in 0..DRAIN {
                        if Instant::now() >= drain_until {
                            break;
                        }
                        let Ok(cmd) = commands.try_recv() else { break };
                        self.command(cmd, &events_tx).await;
                    }
                    let outs = self.core.flush();
                    self.dispatch(outs, &events_tx, None).await;
                }
            }
        }
    }

    /// Opens one datagram and hands it to the state machine, deferring
    /// the datagrams it causes; returns the other outputs.
    fn receive(
        &mut self,
        datagram: &[u8],
        addr: SocketAddr,
        warned: &mut BTreeMap<(&'static str, SocketAddr), u64>,
    ) -> Vec<Output> {
        match self.opener.open(&self.key, self.tag, datagram) {
            Ok((from, _)) if self.cuts.is_cut(from) => Vec::new(),
            Ok((from, bytes)) => self.core.handle_deferred(Input::Datagram { from, bytes }),
            Err(reason) => {
                let now = self.now_ms();
                let last = warned.entry((reason.as_str(), addr)).or_insert(0);
                if *last == 0 || now >= *last + 60_000 {
                    *last = now.max(1);
                    tracing::warn!(
                        reason = reason.as_str(),
                        %addr,
                        "dropping datagrams from {addr}: {reason} (said once a minute per sender and reason)"
                    );
                }
                Vec::new()
            }
        }
    }

    /// Copies the transport's counters to the bus snapshot.
    fn publish_stats(&self) {
        let stats = self.opener.stats();
        if let Ok(mut s) = self.shared.snapshot.lock() {
            s.accepted = self.opener.accepted();
            s.dropped = stats
                .iter()
                .map(|(reason, n)| (reason.as_str().to_string(), n))
                .collect();
        }
    }

    /// Serves one bus command; the datagrams it causes stay queued for the
    /// caller to flush.
    async fn command(&mut self, cmd: Command, events: &mpsc::UnboundedSender<Event>) {
        let (input, reply) = match cmd {
            Command::Join {
                group,
                client,
                reply,
            } => (Input::Join { group, client }, reply),
            Command::Leave {
                group,
                client,
                reply,
            } => (Input::Leave { group, client }, reply),
            Command::Send {
                group,
                client,
                payloads,
                reply,
            } => {
                let mut accepted = 0u32;
                let mut refusal = None;
                for payload in payloads {
                    let outs = self.core.handle_deferred(Input::Send {
                        group: group.clone(),
                        client,
                        payload,
                    });
                    let mut result = Ok(());
                    self.dispatch(outs, events, Some(&mut result)).await;
                    if let Err(e) = result {
                        refusal = Some(e);
                        break;
                    }
                    accepted += 1;
                }
                let _ = reply.send(match refusal {
                    Some(e) if accepted == 0 => Err(e),
                    _ => Ok(accepted),
                });
                return;
            }
            Command::SetExpectedVotes { votes, reply } => {
                (Input::SetExpectedVotes { votes }, reply)
            }
            Command::Disconnected { client } => {
                let outs = self.core.handle_deferred(Input::Disconnect { client });
                self.dispatch(outs, events, None).await;
                return;
            }
        };
        // The caller flushes the datagrams.
        let outs = self.core.handle_deferred(input);
        let mut result = Ok(());
        self.dispatch(outs, events, Some(&mut result)).await;
        let _ = reply.send(result);
    }

    /// Carries out the state machine's outputs. Refusals become the result
    /// of the command being served, if any.
    async fn dispatch(
        &mut self,
        outs: Vec<Output>,
        events: &mpsc::UnboundedSender<Event>,
        mut result: Option<&mut Result<(), String>>,
    ) {
        // Before anything of a new ring leaves this node, it is on disk.
        let seq = self.core.max_ring_seq();
        if seq > self.ring_seq.saved()
            && let Err(e) = self.ring_seq.save(seq)
        {
            tracing::error!(
                "cannot save the ring sequence {seq}: {e}; after a restart this node may reuse ring ids"
            );
        }
        let mut batch: Option<Batch> = None;
        for o in outs {
            if !matches!(o, Output::Deliver { .. }) {
                self.send_batch(batch.take(), events);
            }
            match o {
                Output::Datagram { to, bytes } => {
                    let Some(addr) = self.peers.get(&to).copied() else {
                        continue;
                    };
                    if self.cuts.is_cut(to) {
                        continue;
                    }
                    if let Ok(d) = self.sealer.seal(&self.key, self.tag, &bytes) {
                        let _ = self.socket.send_to(&d, addr).await;
                    }
                }
                Output::ViewChange(view) => {
                    tracing::info!(
                        ring = %view.ring,
                        members = ?view.members,
                        "new membership view"
                    );
                    let ring = (view.ring.seq, view.ring.rep);
                    if let Ok(mut s) = self.shared.snapshot.lock() {
                        s.ring = ring;
                        s.members = view.members.clone();
                    }
                    status_line(&self.shared);
                    let _ = events.send(Event::View(ring, view.members));
                }
                Output::Quorum(q) => {
                    if let Ok(mut s) = self.shared.snapshot.lock() {
                        s.set_quorum(&q);
                    }
                    status_line(&self.shared);
                    let _ = events.send(Event::Quorum(q.quorate, q.expected_votes, q.total_votes));
                }
                Output::GroupChange {
                    group,
                    members,
                    joined,
                    left,
                } => {
                    let conv = |v: Vec<vigil_membership::GroupMember>| {
                        v.into_iter().map(|m| (m.node, m.client)).collect()
                    };
                    let _ = events.send(Event::GroupChanged {
                        group,
                        members: conv(members),
                        joined: conv(joined),
                        left: conv(left),
                    });
                }
                Output::Deliver {
                    group,
                    to,
                    from,
                    payload,
                } => {
                    let message = (from.node, from.client, payload);
                    // Joins the batch of the previous delivery when that
                    // went to the same client in the same group.
                    if let Some(b) = batch.as_mut()
                        && b.0 == to
                        && b.1 == group
                        && b.3 + message.2.len() <= SIGNAL_BYTES
                    {
                        b.3 += message.2.len();
                        b.2.push(message);
                        continue;
                    }
                    self.send_batch(batch.take(), events);
                    let size = message.2.len();
                    batch = Some((to, group, vec![message], size));
                    continue;
                }
                Output::TooLarge { .. } => {
                    if let Some(r) = result.as_deref_mut() {
                        *r = Err("the message is larger than 1 MiB".into());
                    }
                }
                Output::Congested { .. } => {
                    if let Some(r) = result.as_deref_mut() {
                        *r = Err(
                            "congested: too many messages waiting to be ordered; retry shortly"
                                .into(),
                        );
                    }
                }
                Output::NotJoined { group, .. } => {
                    if let Some(r) = result.as_deref_mut() {
                        *r = Err(format!("join group '{group}' before sending to it"));
                    }
                }
                Output::Refused { reason } => match result.as_deref_mut() {
                    Some(r) => *r = Err(reason),
                    None => tracing::warn!("{reason}"),
                },
                Output::Writable => {}
                Output::Undelivered {
                    group,
                    client,
                    payload,
                } => {
                    let dest = self.shared.client_dest(client);
                    tracing::info!(
                        group = %group,
                        client,
                        bytes = payload.len(),
                        "a message was not delivered: the view changed before it was ordered"
                    );
                    if let Some(dest) = dest {
                        let _ = events.send(Event::Undelivered {
                            dest,
                            group,
                            payload,
                        });
                    }
                }
            }
        }
        self.send_batch(batch, events);
    }

    /// Hands a batch of deliveries to the publisher, if the client is
    /// still there.
    fn send_batch(&self, batch: Option<Batch>, events: &mpsc::UnboundedSender<Event>) {
        let Some((client, group, messages, _)) = batch else {
            return;
        };
        match self.shared.client_dest(client) {
            Some(dest) => {
                let _ = events.send(Event::Delivered {
                    dest,
                    group,
                    messages,
                });
            }
            None => tracing::debug!(client, "deliveries to a client that is gone are dropped"),
        }
    }
}

/// Turns bus clients that disconnect into `Command::Disconnected`, so their
/// group memberships end with them.
async fn watch_clients(bus: zbus::Connection, shared: Shared) {
    use futures_util::StreamExt;
    let Ok(proxy) = zbus::fdo::DBusProxy::new(&bus).await else {
        tracing::warn!("cannot watch bus clients; groups of vanished clients stay joined");
        return;
    };
    let Ok(mut changes) = proxy.receive_name_owner_changed().await else {
        tracing::warn!("cannot watch bus clients; groups of vanished clients stay joined");
        return;
    };
    while let Some(signal) = changes.next().await {
        let Ok(args) = signal.args() else { continue };
        if args.new_owner().is_some() {
            continue;
        }
        let name = args.name().as_str();
        let gone = shared.clients.lock().ok().and_then(|mut c| c.remove(name));
        if let Some(client) = gone
            && shared
                .commands
                .send(Command::Disconnected { client })
                .is_err()
        {
            return;
        }
    }
}

/// Emits bus signals for the loop's events, in order.
async fn publish(
    bus: zbus::Connection,
    shared: Shared,
    mut events: mpsc::UnboundedReceiver<Event>,
) {
    let Ok(emitter) = SignalEmitter::new(&bus, dbus::PATH) else {
        return;
    };
    let server = bus.object_server();
    while let Some(e) = events.recv().await {
        let r = match e {
            Event::View(ring, members) => {
                if let Ok(iface) = server.interface::<_, dbus::Manager>(dbus::PATH).await {
                    let m = iface.get().await;
                    let _ = m.ring_id_changed(&emitter).await;
                    let _ = m.members_changed(&emitter).await;
                }
                dbus::Manager::view_changed(&emitter, ring, members).await
            }
            Event::Quorum(q, e, t) => {
                if let Ok(iface) = server.interface::<_, dbus::QuorumIface>(dbus::PATH).await {
                    let m = iface.get().await;
                    let _ = m.quorate_changed(&emitter).await;
                    let _ = m.expected_votes_changed(&emitter).await;
                    let _ = m.total_votes_changed(&emitter).await;
                    let _ = m.quorum_changed(&emitter).await;
                }
                dbus::QuorumIface::quorum_state_changed(&emitter, q, e, t).await
            }
            Event::GroupChanged {
                group,
                members,
                joined,
                left,
            } => {
                // Channels hear of every group change, as bus clients do.
                for conn in shared.channels() {
                    if let Ok(on) = SignalEmitter::new(&conn, dbus::PATH) {
                        let _ = dbus::Group::group_changed(
                            &on,
                            &group,
                            members.clone(),
                            joined.clone(),
                            left.clone(),
                        )
                        .await;
                    }
                }
                dbus::Group::group_changed(&emitter, &group, members, joined, left).await
            }
            Event::Undelivered {
                dest,
                group,
                payload,
            } => match unicast(&emitter, dest) {
                Some(to) => {
                    dbus::Group::undelivered(&to, &group, serde_bytes::Bytes::new(&payload)).await
                }
                None => Ok(()),
            },
            Event::Delivered {
                dest,
                group,
                messages,
            } => match unicast(&emitter, dest) {
                Some(to) => {
                    let messages: Vec<(u32, u64, &serde_bytes::Bytes)> = messages
                        .iter()
                        .map(|(node, client, payload)| {
                            (*node, *client, serde_bytes::Bytes::new(payload))
                        })
                        .collect();
                    dbus::Group::delivered(&to, &group, &messages).await
                }
                None => Ok(()),
            },
        };
        if let Err(e) = r {
            tracing::debug!("signal not sent: {e}");
        }
    }
}

/// An emitter for a client's own signals: on the bus with the client as
/// destination, or on its channel.
fn unicast(bus: &SignalEmitter<'static>, dest: Dest) -> Option<SignalEmitter<'static>> {
    match dest {
        Dest::Bus(name) => zbus::names::BusName::try_from(name)
            .ok()
            .map(|name| bus.clone().set_destination(name)),
        Dest::Channel(conn) => SignalEmitter::new(&conn, dbus::PATH).ok(),
    }
}

/// Updates systemd's status line from the snapshot.
fn status_line(shared: &dbus::Shared) {
    if let Ok(s) = shared.snapshot.lock() {
        vigil_runtime::notify_status(&format!(
            "ring {}.{}, {} member(s), {}",
            s.ring.1,
            s.ring.0,
            s.members.len(),
            if s.quorate { "quorate" } else { "not quorate" }
        ));
    }
}

/// Socket buffers of several MiB: the kernel's default of about 200 KiB
/// overflows in bursts, and every lost datagram costs a retransmission.
/// The kernel caps the sizes at `net.core.rmem_max`/`wmem_max`.
pub fn enlarge_socket_buffers(sock: &std::net::UdpSocket) {
    use nix::sys::socket::{setsockopt, sockopt};
    const BUFFER: usize = 4 << 20;
    if let Err(e) = setsockopt(sock, sockopt::RcvBuf, &BUFFER) {
        tracing::warn!("cannot enlarge the UDP receive buffer: {e}");
    }
    if let Err(e) = setsockopt(sock, sockopt::SndBuf, &BUFFER) {
        tracing::warn!("cannot enlarge the UDP send buffer: {e}");
    }
}
