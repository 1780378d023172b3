//! vigil-membership: who is in the cluster, one order for every message,
//! and whether this partition has quorum — as a sans-IO state machine.
//!
//! [`Membership::handle`] takes an [`Input`] (a datagram from a peer, a
//! timer tick, a local client's request) and returns the [`Output`]s it
//! causes (datagrams to send, views and messages to deliver). It owns no
//! socket, thread or clock: time arrives in `Input::Tick`, and the daemon
//! (`vigil-membershipd`) moves bytes and timers in and out.
//!
//! The protocol is described in [`protocol`]; quorum rules in [`quorum`].

pub mod protocol;
pub mod quorum;
mod wire;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use protocol::Membership;

/// A configured node's numeric id (as in corosync's `nodeid`).
pub type NodeId = u32;

/// A local client of the daemon (a D-Bus connection, say), unique on its
/// node.
pub type ClientId = u64;

/// Identifies one agreed view. Ring ids only grow: a new view always has a
/// greater ring id than every view any of its members installed before.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct RingId {
    /// Compared first.
    pub seq: u64,
    /// The node that formed the view.
    pub rep: NodeId,
}

impl fmt::Display for RingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.rep, self.seq)
    }
}

/// An agreed view: its ring id and its members, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct View {
    pub ring: RingId,
    pub members: Vec<NodeId>,
}

impl View {
    pub fn contains(&self, n: NodeId) -> bool {
        self.members.binary_search(&n).is_ok()
    }
}

/// A process group member: a client on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupMember {
    pub node: NodeId,
    pub client: ClientId,
}

/// Timings and limits, with Corosync's meanings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timings {
    /// How long a member may stay silent before it is declared lost
    /// (corosync `token`), for a two-node cluster.
    pub token_ms: u64,
    /// Added to `token_ms` for each node beyond two (corosync
    /// `token_coefficient`).
    pub token_coefficient_ms: u64,
    /// How often each node sends a heartbeat.
    pub heartbeat_ms: u64,
    /// How long a view change may take before it starts over with the
    /// nodes that answered (corosync `consensus`).
    pub consensus_ms: u64,
    /// How long to wait before asking again for a lost datagram.
    pub retransmit_ms: u64,
    /// Retransmissions of one request before its peer is considered lost
    /// (corosync `fail_recv_const`, in spirit).
    pub retransmits_before_loss: u32,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            token_ms: 1000,
            token_coefficient_ms: 100,
            heartbeat_ms: 200,
            consensus_ms: 1200,
            retransmit_ms: 50,
            retransmits_before_loss: 20,
        }
    }
}

impl Timings {
    /// The effective token timeout for a cluster of `nodes` nodes.
    pub fn token_timeout_ms(&self, nodes: usize) -> u64 {
        self.token_ms + self.token_coefficient_ms * (nodes.saturating_sub(2) as u64)
    }
}

/// What a node needs to know to take part.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node.
    pub node_id: NodeId,
    /// Every configured node (this one included).
    pub nodes: Vec<NodeId>,
    pub timings: Timings,
    /// Largest message a client may send (1 MiB).
    pub max_message: usize,
    /// Payload bytes per datagram fragment.
    pub fragment_size: usize,
    /// Largest datagram (before the transport's sealing) the node builds
    /// when it packs several messages together; one message larger than
    /// this still goes alone.
    pub max_datagram: usize,
    /// Messages a node may have sent but not yet seen ordered; beyond it,
    /// sends are refused with [`Output::Congested`] until the backlog
    /// drains.
    pub send_window: usize,
    /// Quorum rules (votequorum's options).
    pub quorum: quorum::QuorumOptions,
    /// Votes per node; a node not listed has one vote.
    pub votes: std::collections::BTreeMap<NodeId, u32>,
    /// The highest ring sequence this node saw in earlier runs (the daemon
    /// keeps [`Membership::max_ring_seq`] on disk): rings this node
    /// proposes are numbered above it, so a restarted node never reuses a
    /// ring id.
    pub min_ring_seq: u64,
}

impl Config {
    pub fn new(node_id: NodeId, nodes: Vec<NodeId>) -> Config {
        Config {
            node_id,
            nodes,
            timings: Timings::default(),
            max_message: 1 << 20,
            fragment_size: 1100,
            max_datagram: 60_000,
            send_window: 1024,
            quorum: quorum::QuorumOptions::default(),
            votes: std::collections::BTreeMap::new(),
            min_ring_seq: 0,
        }
    }
}

/// Something that happened to the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Time has passed; `now_ms` only grows.
    Tick { now_ms: u64 },
    /// A datagram from a peer, already authenticated by the transport.
    Datagram { from: NodeId, bytes: Vec<u8> },
    /// A local client joins a process group.
    Join { group: String, client: ClientId },
    /// A local client leaves a process group.
    Leave { group: String, client: ClientId },
    /// A local client went away (its process or bus connection ended): it
    /// leaves every group it joined or asked to join.
    Disconnect { client: ClientId },
    /// Change the expected votes cluster-wide (as `corosync-quorumtool
    /// -e`); applied by every node at the same point of the total order.
    SetExpectedVotes { votes: u32 },
    /// A local client sends a message to a group it has joined.
    Send {
        group: String,
        client: ClientId,
        payload: Vec<u8>,
    },
}

/// Something the state machine wants done or reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this datagram to that peer.
    Datagram { to: NodeId, bytes: Vec<u8> },
    /// A new view is agreed and installed; everything delivered before
    /// belongs to the previous view.
    ViewChange(View),
    /// Quorum was computed anew (after a view change, a timer, or a change
    /// of expected votes).
    Quorum(quorum::QuorumStatus),
    /// A request was refused (for example expected votes out of range).
    Refused { reason: String },
    /// A group's membership changed (in the total order), or the group
    /// was re-formed by a view change (then possibly with nothing joined
    /// or left: every member of the new view reports each group once per
    /// view change, at the same point of the order).
    GroupChange {
        group: String,
        members: Vec<GroupMember>,
        joined: Vec<GroupMember>,
        left: Vec<GroupMember>,
    },
    /// A message for a local client in `group`, in the total order.
    Deliver {
        group: String,
        to: ClientId,
        from: GroupMember,
        payload: Vec<u8>,
    },
    /// A send was refused: the message is larger than `max_message`.
    TooLarge { group: String, client: ClientId },
    /// A send was refused for flow control; retry after a later
    /// `Output::Writable`.
    Congested { group: String, client: ClientId },
    /// Sends are accepted again after `Congested`.
    Writable,
    /// A message this client sent was not delivered, and never will be:
    /// the view changed before this node saw it ordered, and the old view's
    /// sequencer did not come along, so other nodes may or may not have
    /// delivered it (in the old view). The client decides whether to send
    /// it again, in the new view.
    Undelivered {
        group: String,
        client: ClientId,
        payload: Vec<u8>,
    },
    /// A send for a group the client has not joined.
    NotJoined { group: String, client: ClientId },
}
