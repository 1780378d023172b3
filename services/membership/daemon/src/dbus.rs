//! `org.vigil.membership1` on the bus: the node's view and quorum as
//! properties with change signals, and process groups as methods with
//! deliveries unicast to the joined client as signals.
//!
//! A client that sends or receives many messages opens a *channel*
//! (`Manager.OpenChannel`): a private peer-to-peer D-Bus connection to the
//! daemon over a socket pair, whose other end it receives as a file
//! descriptor. The channel serves the same `Group` interface at the same
//! path; the client is the channel (not its bus name), its deliveries and
//! group changes come as signals on the channel, and it leaves its groups
//! when it closes the channel. Messages then skip the bus daemon, which
//! would otherwise route every call, reply and signal.
//!
//! Who may call what: every method and property is open to whoever the bus
//! policy admits (root and group `haclient` on the system bus); the methods
//! only act on the caller's own group memberships, except
//! `SetExpectedVotes`, which changes the cluster and is for root.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_bytes::{ByteBuf, Bytes};
use tokio::sync::{mpsc, oneshot};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{fdo, interface};

use vigil_membership::{ClientId, NodeId};

/// The object path of every interface.
pub const PATH: &str = "/org/vigil/membership1";
/// The well-known bus name.
pub const NAME: &str = "org.vigil.membership1";

/// What the bus shows; updated by the protocol loop.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub cluster_name: String,
    /// Every configured node: id, name, first address.
    pub nodes: Vec<(NodeId, String, String)>,
    /// Configured votes per node.
    pub votes: Vec<(NodeId, u32)>,
    /// Datagrams dropped, per reason.
    pub dropped: BTreeMap<String, u64>,
    /// Datagrams accepted.
    pub accepted: u64,
    pub local: NodeId,
    pub ring: (u64, NodeId),
    pub members: Vec<NodeId>,
    pub quorate: bool,
    pub expected_votes: u32,
    pub total_votes: u32,
    pub quorum: u32,
    pub quorum_flags: String,
}

impl Snapshot {
    /// Takes over a new quorum status.
    pub fn set_quorum(&mut self, q: &vigil_membership::quorum::QuorumStatus) {
        self.quorate = q.quorate;
        self.expected_votes = q.expected_votes;
        self.total_votes = q.total_votes;
        self.quorum = q.quorum;
        self.quorum_flags = q.flags.to_string();
    }
}

/// A request from a bus client to the protocol loop.
#[derive(Debug)]
pub enum Command {
    Join {
        group: String,
        client: ClientId,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Leave {
        group: String,
        client: ClientId,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Sends payloads in order until one is refused; the reply is the
    /// number accepted, or the refusal of the first.
    Send {
        group: String,
        client: ClientId,
        payloads: Vec<Vec<u8>>,
        reply: oneshot::Sender<Result<u32, String>>,
    },
    SetExpectedVotes {
        votes: u32,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// A bus client's connection ended.
    Disconnected { client: ClientId },
}

/// Where a client's unicast signals go.
#[derive(Debug, Clone)]
pub enum Dest {
    /// A client on the bus, by unique name.
    Bus(String),
    /// A client on its own channel.
    Channel(zbus::Connection),
}

/// Clients and the client ids the protocol knows them by: bus clients by
/// unique name, channel clients by their connection.
#[derive(Debug, Default)]
pub struct Clients {
    by_name: BTreeMap<String, ClientId>,
    by_id: BTreeMap<ClientId, String>,
    channels: BTreeMap<ClientId, zbus::Connection>,
    next: ClientId,
}

impl Clients {
    /// Client ids of this run start above `base`. Give each run of the
    /// daemon another base (see [`Clients::for_this_run`]): a restarted
    /// daemon's clients must not reuse the ids of the previous run's, or
    /// peers could not tell that the old clients left and new ones joined.
    pub fn starting_at(base: ClientId) -> Clients {
        Clients {
            next: base,
            ..Clients::default()
        }
    }

    /// Ids above this run's start time in milliseconds, shifted left by 20
    /// bits: later runs get higher ids, and a run may have a million
    /// clients before it reaches the next millisecond's range.
    pub fn for_this_run() -> Clients {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let ms = u64::try_from(ms).unwrap_or(0) & ((1 << 44) - 1);
        Clients::starting_at(ms << 20)
    }

    pub fn id_for(&mut self, name: &str) -> ClientId {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        let id = self.new_id();
        self.by_name.insert(name.to_string(), id);
        self.by_id.insert(id, name.to_string());
        id
    }

    /// A client id not used before.
    pub fn new_id(&mut self) -> ClientId {
        self.next += 1;
        self.next
    }

    /// Where the client's signals go, while it is connected.
    pub fn dest(&self, id: ClientId) -> Option<Dest> {
        if let Some(name) = self.by_id.get(&id) {
            return Some(Dest::Bus(name.clone()));
        }
        self.channels.get(&id).cloned().map(Dest::Channel)
    }

    /// Every open channel.
    pub fn channels(&self) -> Vec<zbus::Connection> {
        self.channels.values().cloned().collect()
    }

    /// Forgets a client that left the bus, returning its id.
    pub fn remove(&mut self, name: &str) -> Option<ClientId> {
        let id = self.by_name.remove(name)?;
        self.by_id.remove(&id);
        Some(id)
    }
}

/// State shared by the interfaces.
#[derive(Debug, Clone)]
pub struct Shared {
    pub snapshot: Arc<Mutex<Snapshot>>,
    pub clients: Arc<Mutex<Clients>>,
    pub commands: mpsc::UnboundedSender<Command>,
}

impl Shared {
    /// Where a client's signals go, if it is still connected.
    pub fn client_dest(&self, id: ClientId) -> Option<Dest> {
        self.clients.lock().ok().and_then(|c| c.dest(id))
    }

    /// Every open channel.
    pub fn channels(&self) -> Vec<zbus::Connection> {
        self.clients
            .lock()
            .map(|c| c.channels())
            .unwrap_or_default()
    }

    fn snap(&self) -> Snapshot {
        self.snapshot.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// A bus caller's client id.
    fn caller(&self, header: &Header<'_>) -> fdo::Result<ClientId> {
        let name = header
            .sender()
            .ok_or_else(|| fdo::Error::AccessDenied("the call has no sender".into()))?;
        Ok(self
            .clients
            .lock()
            .map_err(|_| fdo::Error::Failed("internal state is poisoned".into()))?
            .id_for(name.as_str()))
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Command,
    ) -> fdo::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| fdo::Error::Failed("the membership daemon is stopping".into()))?;
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(fdo::Error::Failed(e)),
            Err(_) => Err(fdo::Error::Failed(
                "the membership daemon is stopping".into(),
            )),
        }
    }
}

/// `org.vigil.membership1.Manager`: this node and the agreed view.
#[derive(Debug)]
pub struct Manager(pub Shared);

#[interface(name = "org.vigil.membership1.Manager")]
impl Manager {
    /// This node's id.
    #[zbus(property(emits_changed_signal = "const"))]
    fn local_node_id(&self) -> u32 {
        self.0.snap().local
    }

    /// The cluster's name.
    #[zbus(property(emits_changed_signal = "const"))]
    fn cluster_name(&self) -> String {
        self.0.snap().cluster_name
    }

    /// Every configured node: (id, name, address, member of the agreed
    /// view).
    #[zbus(property)]
    fn nodes(&self) -> Vec<(u32, String, String, bool)> {
        let s = self.0.snap();
        s.nodes
            .into_iter()
            .map(|(id, name, addr)| {
                let member = s.members.contains(&id);
                (id, name, addr, member)
            })
            .collect()
    }

    /// Datagrams this node accepted from its peers (updated every second;
    /// no change signal).
    #[zbus(property(emits_changed_signal = "false"))]
    fn datagrams_accepted(&self) -> u64 {
        self.0.snap().accepted
    }

    /// Datagrams dropped, by reason: `bad_tag` (wrong key or tampered),
    /// `replay`, `other_cluster`, `unknown_sender`, `too_short`,
    /// `bad_magic`, `oversize`, `from_self`, `bad_counter` (updated every
    /// second; no change signal).
    #[zbus(property(emits_changed_signal = "false"))]
    fn datagrams_dropped(&self) -> BTreeMap<String, u64> {
        self.0.snap().dropped
    }

    /// The ring id of the agreed view: (sequence, representative node).
    #[zbus(property)]
    fn ring_id(&self) -> (u64, u32) {
        self.0.snap().ring
    }

    /// The members of the agreed view, by node id.
    #[zbus(property)]
    fn members(&self) -> Vec<u32> {
        self.0.snap().members
    }

    /// Opens a channel: a private peer-to-peer D-Bus connection to this
    /// daemon, for clients that send or receive many group messages. The
    /// caller gets one end of a socket pair; it speaks D-Bus on it (as the
    /// client: no bus, no names) and finds the `Group` interface at this
    /// object's path. On the channel the caller is the channel itself:
    /// deliveries, undelivered messages and group changes arrive there as
    /// signals, and closing it leaves every group joined through it.
    async fn open_channel(&self) -> fdo::Result<zbus::OwnedFd> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| fdo::Error::Failed(format!("cannot create a socket pair: {e}")))?;
        let client = self
            .0
            .clients
            .lock()
            .map_err(|_| fdo::Error::Failed("internal state is poisoned".into()))?
            .new_id();
        tokio::spawn(serve_channel(self.0.clone(), client, ours));
        Ok(std::os::fd::OwnedFd::from(theirs).into())
    }

    /// A new view was agreed.
    #[zbus(signal)]
    pub async fn view_changed(
        emitter: &SignalEmitter<'_>,
        ring: (u64, u32),
        members: Vec<u32>,
    ) -> zbus::Result<()>;
}

/// `org.vigil.membership1.Quorum`: votequorum's state.
#[derive(Debug)]
pub struct QuorumIface(pub Shared);

#[interface(name = "org.vigil.membership1.Quorum")]
impl QuorumIface {
    /// Whether this partition has quorum.
    #[zbus(property)]
    fn quorate(&self) -> bool {
        self.0.snap().quorate
    }

    /// Expected votes.
    #[zbus(property)]
    fn expected_votes(&self) -> u32 {
        self.0.snap().expected_votes
    }

    /// Votes present in the view.
    #[zbus(property)]
    fn total_votes(&self) -> u32 {
        self.0.snap().total_votes
    }

    /// Votes needed for quorum.
    #[zbus(property)]
    fn quorum(&self) -> u32 {
        self.0.snap().quorum
    }

    /// Configured votes of every node: (id, votes).
    #[zbus(property(emits_changed_signal = "const"))]
    fn node_votes(&self) -> Vec<(u32, u32)> {
        self.0.snap().votes
    }

    /// Active options, as corosync-quorumtool shows them.
    #[zbus(property)]
    fn flags(&self) -> String {
        self.0.snap().quorum_flags
    }

    /// Changes the expected votes cluster-wide (root only by policy).
    async fn set_expected_votes(&self, votes: u32) -> fdo::Result<()> {
        self.0
            .ask(|reply| Command::SetExpectedVotes { votes, reply })
            .await
    }

    /// Quorum was computed anew.
    #[zbus(signal)]
    pub async fn quorum_state_changed(
        emitter: &SignalEmitter<'_>,
        quorate: bool,
        expected_votes: u32,
        total_votes: u32,
    ) -> zbus::Result<()>;
}

/// Serves a channel: the daemon's end of the socket pair, the `Group`
/// interface on it for `client`, until the client closes it.
async fn serve_channel(shared: Shared, client: ClientId, socket: std::os::unix::net::UnixStream) {
    let built = zbus::connection::Builder::unix_stream(socket)
        .server(zbus::Guid::generate())
        .p2p()
        .serve_at(PATH, Group::channel(shared.clone(), client))
        .build()
        .await;
    let conn = match built {
        Ok(conn) => conn,
        Err(e) => {
            tracing::info!(client, "a channel was opened but never set up: {e}");
            return;
        }
    };
    tracing::debug!(client, "channel set up");
    conn.closed().await;
    tracing::debug!(client, "channel closed");
    let known = shared
        .clients
        .lock()
        .ok()
        .and_then(|mut c| c.channels.remove(&client));
    if known.is_some() {
        let _ = shared.commands.send(Command::Disconnected { client });
    }
}

/// `org.vigil.membership1.Group`: closed process groups with totally
/// ordered delivery, on the bus or on a channel.
#[derive(Debug)]
pub struct Group {
    shared: Shared,
    /// On a channel: the client the channel is.
    channel: Option<ClientId>,
}

impl Group {
    /// The interface on the bus: callers are known by their bus names.
    pub fn bus(shared: Shared) -> Group {
        Group {
            shared,
            channel: None,
        }
    }

    /// The interface on a channel: the caller is `client`.
    pub fn channel(shared: Shared, client: ClientId) -> Group {
        Group {
            shared,
            channel: Some(client),
        }
    }

    /// Who calls: the channel's client (its connection registered for
    /// signals before anything can be delivered to it), or the bus
    /// sender.
    fn caller(&self, header: &Header<'_>, conn: &zbus::Connection) -> fdo::Result<ClientId> {
        match self.channel {
            Some(client) => {
                self.shared
                    .clients
                    .lock()
                    .map_err(|_| fdo::Error::Failed("internal state is poisoned".into()))?
                    .channels
                    .entry(client)
                    .or_insert_with(|| conn.clone());
                Ok(client)
            }
            None => self.shared.caller(header),
        }
    }
}

#[interface(name = "org.vigil.membership1.Group")]
impl Group {
    /// Joins `group`; messages to it are then delivered to the caller as
    /// `Delivered` signals.
    async fn join(
        &self,
        group: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> fdo::Result<()> {
        let client = self.caller(&header, conn)?;
        self.shared
            .ask(|reply| Command::Join {
                group,
                client,
                reply,
            })
            .await
    }

    /// Leaves `group`.
    async fn leave(
        &self,
        group: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> fdo::Result<()> {
        let client = self.caller(&header, conn)?;
        self.shared
            .ask(|reply| Command::Leave {
                group,
                client,
                reply,
            })
            .await
    }

    /// Sends `payload` (at most 1 MiB) to every member of `group`, in the
    /// cluster's total order. Fails with a reason when the caller has not
    /// joined, the payload is too large, or the node is congested (retry).
    async fn send(
        &self,
        group: String,
        payload: ByteBuf,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> fdo::Result<()> {
        let client = self.caller(&header, conn)?;
        self.shared
            .ask(|reply| Command::Send {
                group,
                client,
                payloads: vec![payload.into_vec()],
                reply,
            })
            .await
            .map(|_| ())
    }

    /// Sends several messages to `group`, in this order, each as `Send`
    /// would. Returns how many were accepted: all of them, or those
    /// before the first the node refused as congested (send the rest
    /// again shortly). Fails, accepting none, when the first is refused.
    async fn send_batch(
        &self,
        group: String,
        payloads: Vec<ByteBuf>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> fdo::Result<u32> {
        let client = self.caller(&header, conn)?;
        if payloads.is_empty() {
            return Ok(0);
        }
        let payloads = payloads.into_iter().map(ByteBuf::into_vec).collect();
        self.shared
            .ask(|reply| Command::Send {
                group,
                client,
                payloads,
                reply,
            })
            .await
    }

    /// Messages of `group` for the receiving client (unicast), in the
    /// total order: each the sender's node and client, and the payload.
    /// Messages delivered together come in one signal.
    #[zbus(signal)]
    pub async fn delivered(
        emitter: &SignalEmitter<'_>,
        group: &str,
        messages: &[(u32, u64, &Bytes)],
    ) -> zbus::Result<()>;

    /// A message the receiving client sent was not delivered and never
    /// will be (unicast): the membership changed before this node saw it
    /// ordered, and other nodes may or may not have delivered it. Send it
    /// again if it still matters.
    #[zbus(signal)]
    pub async fn undelivered(
        emitter: &SignalEmitter<'_>,
        group: &str,
        payload: &Bytes,
    ) -> zbus::Result<()>;

    /// A group's membership changed: all members, then who joined and who
    /// left, as (node, client) pairs.
    #[zbus(signal)]
    pub async fn group_changed(
        emitter: &SignalEmitter<'_>,
        group: &str,
        members: Vec<(u32, u64)>,
        joined: Vec<(u32, u64)>,
        left: Vec<(u32, u64)>,
    ) -> zbus::Result<()>;
}
