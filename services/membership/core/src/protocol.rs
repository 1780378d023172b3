//! The membership and ordering protocol.
//!
//! # Overview
//!
//! Every node sends a *heartbeat* to every configured node each
//! `heartbeat_ms`. A node it has not heard from for the token timeout is
//! *lost*; a configured node it hears from that is not in its view is
//! *found*. Either starts a view change.
//!
//! Inside a view, messages are totally ordered by a fixed *sequencer*, the
//! member with the lowest id: a sender sends each unit (a message fragment,
//! a group join or leave) to the sequencer, which gives it the next sequence
//! number and sends it to every member. Members deliver units in sequence
//! order, ask the sequencer again for gaps (`Nack`), and report what they
//! delivered (`Heartbeat`, `Ack`); units every member delivered are
//! *stable* and forgotten. The sequencer orders a sender's units in the
//! order the sender numbered them (FIFO per sender), and a sender resends a
//! unit until it sees it ordered.
//!
//! # View changes
//!
//! 1. **Propose.** The lowest node among those it hears (its candidate set)
//!    proposes a view: a ring id greater than any it has seen, and the
//!    candidates as members. (Any node proposes if the expected coordinator
//!    stays silent for `consensus_ms`.)
//! 2. **Accept.** A member accepts a proposal whose ring id is greater than
//!    any it accepted before, and answers with its current view's ring id and
//!    how far it delivered in it. From then on it delivers nothing more of
//!    its old view on its own, and sends nothing new.
//! 3. **Sync.** When every proposed member accepted, the coordinator tells,
//!    for each old view, the highest sequence any of its accepting members
//!    delivered and which member has it. Members behind fetch the missing
//!    units from that member and deliver them, then answer `Synced`.
//! 4. **Install.** When all answered, the coordinator installs the view and
//!    tells the members to. A member installs only the view it accepted.
//!    Units of the old view it has not delivered are dropped. Its own
//!    messages that were not delivered are sent again in the new view only
//!    if the old view's sequencer moved along with it (the sync step says
//!    who moved from which view): then everything the sequencer ordered was
//!    delivered in step 3, so those messages were ordered nowhere. Otherwise
//!    another partition may have delivered them, and sending them again
//!    would deliver a message twice or in two views; they are reported to
//!    their clients as `Undelivered` instead. Joins and leaves are always
//!    sent again (applying one twice changes nothing).
//!
//! Ring sequences only grow, across restarts too: the daemon keeps the
//! highest sequence seen ([`Membership::max_ring_seq`]) on disk and passes
//! it back as `Config::min_ring_seq`.
//!
//! A coordinator that does not get every answer within `consensus_ms`
//! proposes again without the silent members, with a greater ring id; a
//! member whose accepted view is not installed within twice that time
//! starts over.
//!
//! # Invariants
//!
//! - *Agreement*: a view (ring id) is installed with one member list, the
//!   one its coordinator proposed; ring ids a node installs only grow.
//! - *Total order*: members of a view deliver its units in sequence order,
//!   each at most once; messages complete when their last fragment is
//!   delivered, so messages have one order too.
//! - *Virtual synchrony*: members that install the same view after the same
//!   old view delivered the same units of the old view (step 3), and the
//!   `ViewChange` output comes after them and before anything of the new
//!   view.
//! - *Groups*: joins and leaves are ordered units; after a view change each
//!   member orders the list of its clients' groups, and once every member's
//!   list is delivered all members agree on every group again. Until then,
//!   messages of the new view are held, so that no client gets a message
//!   before the group change that lists it and the sender; held messages
//!   whose sender left meanwhile are delivered to nobody (the sender is
//!   told `Undelivered`), and so are those held when the view changes again.
//! - *Sender included*: every message a node accepted from a client is,
//!   while the node runs, either delivered back to that client or reported
//!   `Undelivered` to it, never both.
//! - *Flow control*: a node has at most `send_window` units waiting to be
//!   ordered; a sequencer orders nothing new while that many units are not
//!   stable. Senders beyond the window are told `Congested`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::quorum::{Quorum, QuorumStatus};
use crate::wire::{self, Body, Msg, Ordered, SyncTarget};
use crate::{ClientId, Config, GroupMember, Input, NodeId, Output, RingId, View};

/// Members of each process group.
type Groups = BTreeMap<String, BTreeSet<GroupMember>>;

/// One unit this node sent and has not yet seen delivered.
#[derive(Debug, Clone)]
struct Pending {
    /// Number within the current view (`sender_seq`).
    seq: u64,
    /// The message this unit belongs to (units of one message share it).
    msg: u64,
    body: Body,
    last_sent: u64,
    /// Already ordered (kept until the whole message is delivered, so
    /// that a view change resends the message whole).
    ordered: bool,
}

#[derive(Debug, Clone)]
struct AcceptInfo {
    old: RingId,
    delivered: u64,
}

#[derive(Debug, Clone)]
enum Change {
    /// This node coordinates the change to `ring`.
    Coordinating {
        ring: RingId,
        members: Vec<NodeId>,
        accepts: BTreeMap<NodeId, AcceptInfo>,
        synced: BTreeSet<NodeId>,
        sync_sent: bool,
        started: u64,
        last_sent: u64,
    },
    /// This node accepted `ring` from `coordinator`.
    Accepted {
        ring: RingId,
        coordinator: NodeId,
        members: Vec<NodeId>,
        started: u64,
        /// The old view's target and where to fetch it, once known.
        target: Option<(u64, NodeId)>,
        synced_sent: bool,
        last_sent: u64,
    },
}

impl Change {
    fn ring(&self) -> RingId {
        match self {
            Change::Coordinating { ring, .. } | Change::Accepted { ring, .. } => *ring,
        }
    }
}

/// The state machine of one node.
#[derive(Debug)]
pub struct Membership {
    cfg: Config,
    me: NodeId,
    now: u64,
    token_timeout: u64,
    view: View,
    /// Highest ring sequence seen anywhere.
    max_seq_seen: u64,
    /// Highest ring this node accepted or installed.
    max_accepted: RingId,
    last_heard: BTreeMap<NodeId, u64>,
    /// The ring each peer last reported, and when.
    peer_ring: BTreeMap<NodeId, RingId>,
    peer_ring_at: BTreeMap<NodeId, u64>,
    /// When the current view was installed.
    installed_at: u64,
    next_heartbeat: u64,
    /// When a view change became due without this node coordinating it.
    change_due_since: Option<u64>,
    change: Option<Change>,

    // Ordering in the current view.
    delivered: u64,
    /// While changing views: deliver nothing of the current view beyond.
    deliver_limit: Option<u64>,
    received: BTreeMap<u64, Ordered>,
    /// Delivered units kept until stable, for retransmission and sync.
    log: BTreeMap<u64, Ordered>,
    member_delivered: BTreeMap<NodeId, u64>,
    last_nack: u64,
    /// Sequencer only: next sequence to assign, next unit expected per
    /// sender, units waiting for their turn.
    next_seq: u64,
    expect: BTreeMap<NodeId, u64>,
    early: BTreeMap<(NodeId, u64), Body>,
    /// Highest sequence the sequencer said it assigned.
    assigned_seen: u64,
    delivered_since_ack: u64,

    // Sending.
    next_sender_seq: u64,
    next_msg: u64,
    pending: VecDeque<Pending>,
    congested: bool,
    /// Reassembly of fragmented messages: (sender, msg) → fragments.
    partial: BTreeMap<NodeId, Vec<Vec<u8>>>,

    // Groups.
    groups: BTreeMap<String, BTreeSet<GroupMember>>,
    /// Local clients in each group, as ordered.
    local: BTreeMap<String, BTreeSet<ClientId>>,
    /// Local clients as requested (for join lists and send checks).
    requested: BTreeMap<String, BTreeSet<ClientId>>,
    /// After a view change, members whose join list is not yet delivered,
    /// and the groups being rebuilt.
    group_sync: Option<(BTreeSet<NodeId>, Groups)>,
    /// Deliveries held while `group_sync` rebuilds the groups, so that no
    /// client hears of a message before the group change listing it and
    /// the sender.
    held: Vec<(String, GroupMember, Vec<u8>)>,
    /// Whether the sequencer of the view being left moves to the next view
    /// with this node (set by the sync step). Only then is every unit it
    /// ordered known here, so that this node's units not seen ordered were
    /// ordered nowhere and may be sent again in the new view.
    old_sequencer_moves: bool,

    /// Quorum state (None when the configuration is refused).
    quorum: Option<Quorum>,

    out: Vec<Output>,
    /// Messages queued per peer, each already encoded.
    outbox: BTreeMap<NodeId, Vec<Vec<u8>>>,
}

impl Membership {
    /// A node starting alone, in a view of its own. Quorum options that
    /// votequorum would refuse are an error naming the option.
    pub fn try_new(cfg: Config, now_ms: u64) -> Result<Membership, crate::quorum::QuorumError> {
        let votes = cfg
            .nodes
            .iter()
            .map(|n| (*n, cfg.votes.get(n).copied().unwrap_or(1)))
            .collect();
        let quorum = Quorum::new(cfg.quorum.clone(), votes, cfg.node_id)?;
        let mut m = Membership::bare(cfg, now_ms);
        m.quorum = Some(quorum);
        Ok(m)
    }

    /// A node starting alone, in a view of its own, without quorum
    /// tracking if its quorum options are refused (see [`Self::try_new`]).
    pub fn new(cfg: Config, now_ms: u64) -> Membership {
        let votes = cfg
            .nodes
            .iter()
            .map(|n| (*n, cfg.votes.get(n).copied().unwrap_or(1)))
            .collect();
        let quorum = Quorum::new(cfg.quorum.clone(), votes, cfg.node_id).ok();
        let mut m = Membership::bare(cfg, now_ms);
        m.quorum = quorum;
        m
    }

    fn bare(cfg: Config, now_ms: u64) -> Membership {
        let me = cfg.node_id;
        let token_timeout = cfg.timings.token_timeout_ms(cfg.nodes.len());
        Membership {
            me,
            now: now_ms,
            token_timeout,
            view: View {
                ring: RingId { seq: 0, rep: me },
                members: vec![me],
            },
            max_seq_seen: cfg.min_ring_seq,
            max_accepted: RingId { seq: 0, rep: me },
            last_heard: BTreeMap::new(),
            peer_ring: BTreeMap::new(),
            peer_ring_at: BTreeMap::new(),
            installed_at: now_ms,
            next_heartbeat: now_ms,
            change_due_since: None,
            change: None,
            delivered: 0,
            deliver_limit: None,
            received: BTreeMap::new(),
            log: BTreeMap::new(),
            member_delivered: BTreeMap::new(),
            last_nack: 0,
            next_seq: 1,
            expect: BTreeMap::new(),
            early: BTreeMap::new(),
            assigned_seen: 0,
            delivered_since_ack: 0,
            next_sender_seq: 1,
            next_msg: 1,
            pending: VecDeque::new(),
            congested: false,
            partial: BTreeMap::new(),
            groups: BTreeMap::new(),
            local: BTreeMap::new(),
            requested: BTreeMap::new(),
            group_sync: None,
            held: Vec::new(),
            old_sequencer_moves: false,
            quorum: None,
            out: Vec::new(),
            outbox: BTreeMap::new(),
            cfg,
        }
    }

    /// The current quorum state, when quorum is tracked.
    pub fn quorum(&self) -> Option<QuorumStatus> {
        self.quorum.as_ref().map(Quorum::status)
    }

    pub fn node_id(&self) -> NodeId {
        self.me
    }

    /// The installed view.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The highest ring sequence seen: keep it across restarts and pass it
    /// back as [`Config::min_ring_seq`].
    pub fn max_ring_seq(&self) -> u64 {
        self.max_seq_seen
            .max(self.max_accepted.seq)
            .max(self.view.ring.seq)
    }

    /// Whether a view change is under way.
    pub fn changing(&self) -> bool {
        self.change.is_some()
    }

    /// The members of each process group, as agreed.
    pub fn groups(&self) -> &BTreeMap<String, BTreeSet<GroupMember>> {
        &self.groups
    }

    /// Processes one input and returns what it causes.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        self.apply(input);
        self.flush()
    }

    /// Processes one input and returns what it causes, except datagrams:
    /// those stay queued until [`Self::flush`], so that the messages of
    /// many inputs (all the datagrams a socket has ready, a burst of
    /// sends) travel in a few large datagrams instead of one each. A
    /// caller that defers must flush before it waits for anything.
    pub fn handle_deferred(&mut self, input: Input) -> Vec<Output> {
        self.apply(input);
        std::mem::take(&mut self.out)
    }

    /// Returns everything queued: outputs, and the queued messages as
    /// datagrams, each peer's packed into as few datagrams of at most
    /// [`Config::max_datagram`] bytes as they fit in.
    pub fn flush(&mut self) -> Vec<Output> {
        let outbox = std::mem::take(&mut self.outbox);
        let budget = self.cfg.max_datagram;
        for (to, msgs) in outbox {
            for bytes in wire::pack(&msgs, budget) {
                self.out.push(Output::Datagram { to, bytes });
            }
        }
        std::mem::take(&mut self.out)
    }

    fn apply(&mut self, input: Input) {
        match input {
            Input::Tick { now_ms } => {
                self.now = self.now.max(now_ms);
                self.on_tick();
            }
            Input::Datagram { from, bytes } => {
                if from != self.me
                    && self.cfg.nodes.contains(&from)
                    && let Some(msgs) = wire::decode(&bytes)
                {
                    self.last_heard.insert(from, self.now);
                    for m in msgs {
                        self.on_msg(from, m);
                    }
                }
            }
            Input::Join { group, client } => {
                let set = self.requested.entry(group.clone()).or_default();
                if set.insert(client) {
                    self.submit(Body::Join { group, client });
                }
            }
            Input::Leave { group, client } => {
                if self
                    .requested
                    .get_mut(&group)
                    .is_some_and(|s| s.remove(&client))
                {
                    self.submit(Body::Leave { group, client });
                }
            }
            Input::Disconnect { client } => {
                let groups: Vec<String> = self
                    .requested
                    .iter_mut()
                    .filter_map(|(g, s)| s.remove(&client).then(|| g.clone()))
                    .collect();
                for group in groups {
                    self.submit(Body::Leave { group, client });
                }
            }
            Input::Send {
                group,
                client,
                payload,
            } => self.send(group, client, payload),
            Input::SetExpectedVotes { votes } => match &self.quorum {
                // Checked here so the requester hears why at once; every
                // node checks again when it applies the ordered request.
                Some(q) => match q.check_expected_votes(votes) {
                    Ok(()) => self.submit(Body::ExpectedVotes { votes }),
                    Err(e) => self.out.push(Output::Refused {
                        reason: e.to_string(),
                    }),
                },
                None => self.out.push(Output::Refused {
                    reason: "quorum is not computed on this node".into(),
                }),
            },
        }
    }

    // ---- sending ----

    fn send(&mut self, group: String, client: ClientId, payload: Vec<u8>) {
        if !self
            .requested
            .get(&group)
            .is_some_and(|s| s.contains(&client))
        {
            self.out.push(Output::NotJoined { group, client });
            return;
        }
        if payload.len() > self.cfg.max_message {
            self.out.push(Output::TooLarge { group, client });
            return;
        }
        let size = self.cfg.fragment_size.max(1);
        let frags = payload.len().div_ceil(size).max(1);
        if self.backlog() + frags > self.cfg.send_window {
            self.congested = true;
            self.out.push(Output::Congested { group, client });
            return;
        }
        let msg = self.next_msg;
        self.next_msg += 1;
        for i in 0..frags {
            let chunk = payload[(i * size).min(payload.len())..((i + 1) * size).min(payload.len())]
                .to_vec();
            self.queue_unit(
                msg,
                Body::App {
                    group: group.clone(),
                    client,
                    frag: i as u32,
                    frags: frags as u32,
                    payload: chunk,
                },
            );
        }
    }

    /// Queues a control unit (join, leave, join list).
    fn submit(&mut self, body: Body) {
        let msg = self.next_msg;
        self.next_msg += 1;
        self.queue_unit(msg, body);
    }

    fn queue_unit(&mut self, msg: u64, body: Body) {
        let seq = self.next_sender_seq;
        self.next_sender_seq += 1;
        self.pending.push_back(Pending {
            seq,
            msg,
            body,
            last_sent: 0,
            ordered: false,
        });
        // Only the new unit goes now (units due again go on the next
        // tick), so that a send costs the same however long the queue is.
        if self.change.is_none() && self.pending.len() <= self.cfg.send_window {
            let now = self.now.max(1);
            let ring = self.view.ring;
            let p = self.pending.back_mut().expect("just pushed");
            p.last_sent = now;
            let m = Msg::Data {
                ring,
                sender_seq: p.seq,
                body: p.body.clone(),
            };
            let sequencer = self.sequencer();
            if sequencer == self.me {
                self.on_data(self.me, m);
            } else {
                self.queue(sequencer, m);
            }
        }
    }

    /// Sends units not yet sent (or due again) to the sequencer, unless the
    /// view is changing.
    fn send_pending(&mut self) {
        if self.change.is_some() {
            return;
        }
        let sequencer = self.sequencer();
        let ring = self.view.ring;
        let now = self.now;
        let retransmit = self.cfg.timings.retransmit_ms;
        let mut batch = Vec::new();
        for p in self.pending.iter_mut().take(self.cfg.send_window) {
            if !p.ordered && (p.last_sent == 0 || now >= p.last_sent + retransmit) {
                p.last_sent = now.max(1);
                batch.push(Msg::Data {
                    ring,
                    sender_seq: p.seq,
                    body: p.body.clone(),
                });
            }
        }
        for m in batch {
            if sequencer == self.me {
                self.on_data(self.me, m);
            } else {
                self.queue(sequencer, m);
            }
        }
    }

    /// This node's messages not yet delivered back to it: units waiting to
    /// be ordered, and its messages held during a group rebuild.
    fn backlog(&self) -> usize {
        self.pending.len() + self.held.iter().filter(|h| h.1.node == self.me).count()
    }

    fn maybe_writable(&mut self) {
        if self.congested && self.backlog() <= self.cfg.send_window / 2 {
            self.congested = false;
            self.out.push(Output::Writable);
        }
    }

    fn sequencer(&self) -> NodeId {
        self.view.members[0]
    }

    fn queue(&mut self, to: NodeId, m: Msg) {
        self.outbox
            .entry(to)
            .or_default()
            .push(wire::encode_one(&m));
    }

    /// Queues one message for every other member, encoded once.
    fn queue_members(&mut self, m: &Msg) {
        let bytes = wire::encode_one(m);
        for &n in &self.view.members {
            if n != self.me {
                self.outbox.entry(n).or_default().push(bytes.clone());
            }
        }
    }

    // ---- time ----

    fn alive(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .cfg
            .nodes
            .iter()
            .copied()
            .filter(|n| {
                *n == self.me
                    || self
                        .last_heard
                        .get(n)
                        .is_some_and(|t| self.now < t + self.token_timeout)
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    fn on_tick(&mut self) {
        if self.now >= self.next_heartbeat {
            self.next_heartbeat = self.now + self.cfg.timings.heartbeat_ms;
            let hb = Msg::Heartbeat {
                ring: self.view.ring,
                max_seq_seen: self.max_seq_seen.max(self.view.ring.seq),
                delivered: self.delivered,
                assigned: if self.sequencer() == self.me {
                    self.next_seq - 1
                } else {
                    0
                },
            };
            let bytes = wire::encode_one(&hb);
            for &n in &self.cfg.nodes {
                if n != self.me {
                    self.outbox.entry(n).or_default().push(bytes.clone());
                }
            }
        }
        if let Some(q) = &mut self.quorum
            && let Some(status) = q.tick(self.now)
        {
            self.out.push(Output::Quorum(status));
        }
        self.check_membership();
        self.progress_change();
        self.send_pending();
        self.request_missing();
    }

    /// Starts a view change when the live nodes differ from the view.
    fn check_membership(&mut self) {
        let alive = self.alive();
        // A member in another view: it moved on without us, or it
        // restarted (reports an older view well after we installed ours).
        let settle = self.installed_at + 2 * self.cfg.timings.heartbeat_ms;
        let stale = self.view.members.iter().any(|m| {
            *m != self.me
                && self.peer_ring.get(m).is_some_and(|r| {
                    *r > self.view.ring
                        || (*r < self.view.ring
                            && self.peer_ring_at.get(m).is_some_and(|t| *t > settle))
                })
        });
        let due = alive != self.view.members || stale;
        if self.change.is_some() {
            return;
        }
        if !due {
            self.change_due_since = None;
            return;
        }
        let since = *self.change_due_since.get_or_insert(self.now);
        if alive[0] == self.me || self.now >= since + self.cfg.timings.consensus_ms {
            self.propose(alive);
        }
    }

    fn propose(&mut self, members: Vec<NodeId>) {
        let seq = self
            .max_seq_seen
            .max(self.max_accepted.seq)
            .max(self.view.ring.seq)
            + 1;
        let ring = RingId { seq, rep: self.me };
        self.max_seq_seen = seq;
        self.max_accepted = ring;
        self.old_sequencer_moves = false;
        self.change_due_since = None;
        let mut accepts = BTreeMap::new();
        accepts.insert(
            self.me,
            AcceptInfo {
                old: self.view.ring,
                delivered: self.delivered,
            },
        );
        self.deliver_limit = Some(self.delivered);
        self.change = Some(Change::Coordinating {
            ring,
            members: members.clone(),
            accepts,
            synced: BTreeSet::new(),
            sync_sent: false,
            started: self.now,
            last_sent: self.now,
        });
        let m = Msg::Propose {
            ring,
            members: members.clone(),
        };
        for n in members {
            if n != self.me {
                self.queue(n, m.clone());
            }
        }
        self.coordinator_step();
    }

    /// Timeouts and resends during a view change.
    fn progress_change(&mut self) {
        let consensus = self.cfg.timings.consensus_ms;
        let retransmit = self.cfg.timings.retransmit_ms * 4;
        let now = self.now;
        match self.change.clone() {
            None => {}
            Some(Change::Coordinating {
                ring,
                members,
                accepts,
                synced,
                sync_sent,
                started,
                last_sent,
            }) => {
                if now >= started + consensus {
                    // Start over with those who answered (and are alive).
                    let alive = self.alive();
                    let answered: Vec<NodeId> = members
                        .iter()
                        .copied()
                        .filter(|n| {
                            (accepts.contains_key(n)
                                && (!sync_sent || synced.contains(n) || *n == self.me))
                                && alive.contains(n)
                        })
                        .collect();
                    let mut next = answered;
                    if !next.contains(&self.me) {
                        next.push(self.me);
                        next.sort_unstable();
                    }
                    self.change = None;
                    self.propose(next);
                } else if now >= last_sent + retransmit {
                    if let Some(Change::Coordinating { last_sent, .. }) = &mut self.change {
                        *last_sent = now;
                    }
                    let m = Msg::Propose {
                        ring,
                        members: members.clone(),
                    };
                    for n in &members {
                        if *n != self.me && !accepts.contains_key(n) {
                            self.queue(*n, m.clone());
                        }
                    }
                    if sync_sent {
                        self.send_sync();
                    }
                }
            }
            Some(Change::Accepted {
                ring,
                coordinator,
                started,
                target,
                synced_sent,
                last_sent,
                ..
            }) => {
                if now >= started + 2 * consensus {
                    // The coordinator went silent: start over.
                    self.change = None;
                    self.change_due_since = Some(now.saturating_sub(consensus));
                    self.check_membership();
                } else if now >= last_sent + retransmit {
                    if let Some(Change::Accepted { last_sent, .. }) = &mut self.change {
                        *last_sent = now;
                    }
                    if synced_sent {
                        self.queue(coordinator, Msg::Synced { ring });
                    } else if target.is_none() {
                        self.queue(
                            coordinator,
                            Msg::Accept {
                                ring,
                                old: self.view.ring,
                                delivered: self.delivered,
                            },
                        );
                    }
                    self.sync_progress();
                }
            }
        }
    }

    // ---- messages ----

    fn on_msg(&mut self, from: NodeId, m: Msg) {
        match m {
            Msg::Heartbeat {
                ring,
                max_seq_seen,
                delivered,
                assigned,
            } => {
                self.max_seq_seen = self.max_seq_seen.max(max_seq_seen).max(ring.seq);
                self.peer_ring.insert(from, ring);
                self.peer_ring_at.insert(from, self.now);
                // Our Install was lost but the view we synced for is in
                // place: install it too.
                if let Some(Change::Accepted {
                    ring: accepted,
                    members,
                    synced_sent: true,
                    ..
                }) = &self.change
                    && *accepted == ring
                    && members.contains(&from)
                {
                    let members = members.clone();
                    self.install(ring, members);
                    return;
                }
                if ring == self.view.ring {
                    self.note_delivered(from, delivered);
                    if from == self.sequencer() {
                        self.assigned_seen = self.assigned_seen.max(assigned);
                    }
                }
            }
            Msg::Ack { ring, delivered } => {
                if ring == self.view.ring {
                    self.note_delivered(from, delivered);
                }
            }
            Msg::Propose { ring, members } => self.on_propose(from, ring, members),
            Msg::Accept {
                ring,
                old,
                delivered,
            } => {
                if let Some(Change::Coordinating {
                    ring: r,
                    members,
                    accepts,
                    ..
                }) = &mut self.change
                    && *r == ring
                    && members.contains(&from)
                {
                    accepts.entry(from).or_insert(AcceptInfo { old, delivered });
                    self.coordinator_step();
                }
            }
            Msg::Sync { ring, targets } => {
                let old = self.view.ring;
                let sequencer = self.sequencer();
                if let Some(Change::Accepted {
                    ring: r, target, ..
                }) = &mut self.change
                    && *r == ring
                    && target.is_none()
                {
                    let mine = targets.iter().find(|t| t.old == old);
                    *target = mine.map(|t| (t.target, t.source));
                    self.old_sequencer_moves = mine.is_some_and(|t| t.movers.contains(&sequencer));
                    if let Some((t, _)) = *target {
                        self.deliver_limit = Some(t.max(self.delivered));
                    }
                    self.sync_progress();
                }
            }
            Msg::Synced { ring } => {
                if let Some(Change::Coordinating {
                    ring: r, synced, ..
                }) = &mut self.change
                    && *r == ring
                {
                    synced.insert(from);
                    self.coordinator_step();
                }
            }
            Msg::Install { ring, members } => {
                if let Some(Change::Accepted {
                    ring: r,
                    coordinator,
                    ..
                }) = &self.change
                    && *r == ring
                    && *coordinator == from
                    && members.contains(&self.me)
                {
                    self.install(ring, members);
                }
            }
            Msg::Data { .. } => self.on_data(from, m),
            Msg::Ordered(o) => self.on_ordered(o),
            Msg::Nack { ring, from: lo, to } => {
                let units: Vec<Ordered> = self
                    .log
                    .range(lo..=to)
                    .chain(self.received.range(lo..=to))
                    .filter(|(_, o)| o.ring == ring)
                    .map(|(_, o)| o.clone())
                    .take(256)
                    .collect();
                for o in units {
                    self.queue(from, Msg::Ordered(o));
                }
            }
        }
    }

    fn on_propose(&mut self, from: NodeId, ring: RingId, members: Vec<NodeId>) {
        self.max_seq_seen = self.max_seq_seen.max(ring.seq);
        if ring <= self.max_accepted || !members.contains(&self.me) || ring.rep != from {
            return;
        }
        if let Some(Change::Coordinating { .. }) = &self.change
            && self.change.as_ref().is_some_and(|c| c.ring() > ring)
        {
            return;
        }
        self.max_accepted = ring;
        self.change_due_since = None;
        self.deliver_limit = Some(self.delivered);
        self.old_sequencer_moves = false;
        self.change = Some(Change::Accepted {
            ring,
            coordinator: from,
            members,
            started: self.now,
            target: None,
            synced_sent: false,
            last_sent: self.now,
        });
        self.queue(
            from,
            Msg::Accept {
                ring,
                old: self.view.ring,
                delivered: self.delivered,
            },
        );
    }

    /// Coordinator: moves the change on when answers are complete.
    fn coordinator_step(&mut self) {
        let Some(Change::Coordinating {
            members,
            accepts,
            synced,
            sync_sent,
            ..
        }) = &self.change
        else {
            return;
        };
        if !*sync_sent {
            if members.iter().all(|m| accepts.contains_key(m)) {
                self.send_sync();
                self.sync_progress();
                self.coordinator_step();
            }
            return;
        }
        let me = self.me;
        let self_synced = self.deliver_limit.is_none_or(|l| self.delivered >= l);
        if self_synced && members.iter().all(|m| *m == me || synced.contains(m)) {
            let (ring, members) = match &self.change {
                Some(Change::Coordinating { ring, members, .. }) => (*ring, members.clone()),
                _ => return,
            };
            let m = Msg::Install {
                ring,
                members: members.clone(),
            };
            for n in &members {
                if *n != self.me {
                    self.queue(*n, m.clone());
                }
            }
            self.install(ring, members);
        }
    }

    /// Coordinator: tells every member its old view's target.
    fn send_sync(&mut self) {
        let Some(Change::Coordinating {
            ring,
            members,
            accepts,
            sync_sent,
            ..
        }) = &mut self.change
        else {
            return;
        };
        *sync_sent = true;
        let ring = *ring;
        let mut by_old: BTreeMap<RingId, (u64, NodeId, Vec<NodeId>)> = BTreeMap::new();
        for (n, a) in accepts.iter() {
            let e = by_old.entry(a.old).or_insert((a.delivered, *n, Vec::new()));
            if a.delivered > e.0 {
                (e.0, e.1) = (a.delivered, *n);
            }
            e.2.push(*n);
        }
        let targets: Vec<SyncTarget> = by_old
            .into_iter()
            .map(|(old, (target, source, movers))| SyncTarget {
                old,
                target,
                source,
                movers,
            })
            .collect();
        let members = members.clone();
        if let Some(t) = targets.iter().find(|t| t.old == self.view.ring) {
            self.deliver_limit = Some(t.target.max(self.delivered));
            self.old_sequencer_moves = t.movers.contains(&self.sequencer());
        }
        let m = Msg::Sync { ring, targets };
        for n in members {
            if n != self.me {
                self.queue(n, m.clone());
            }
        }
    }

    /// Member: fetches missing old-view units, and says when it has them.
    fn sync_progress(&mut self) {
        self.deliver_ready();
        let Some(limit) = self.deliver_limit else {
            return;
        };
        match &self.change {
            Some(Change::Accepted {
                ring,
                coordinator,
                target: Some((_, source)),
                synced_sent,
                ..
            }) => {
                let (ring, coordinator, source, synced_sent) =
                    (*ring, *coordinator, *source, *synced_sent);
                if self.delivered >= limit {
                    if !synced_sent {
                        if let Some(Change::Accepted { synced_sent, .. }) = &mut self.change {
                            *synced_sent = true;
                        }
                        self.queue(coordinator, Msg::Synced { ring });
                    }
                } else if source != self.me {
                    self.queue(
                        source,
                        Msg::Nack {
                            ring: self.view.ring,
                            from: self.delivered + 1,
                            to: limit,
                        },
                    );
                }
            }
            Some(Change::Coordinating {
                accepts,
                sync_sent: true,
                ..
            }) if self.delivered < limit => {
                let source = accepts
                    .iter()
                    .filter(|(_, a)| a.old == self.view.ring && a.delivered >= limit)
                    .map(|(n, _)| *n)
                    .next();
                if let Some(s) = source
                    && s != self.me
                {
                    self.queue(
                        s,
                        Msg::Nack {
                            ring: self.view.ring,
                            from: self.delivered + 1,
                            to: limit,
                        },
                    );
                }
            }
            _ => {}
        }
    }

    fn install(&mut self, ring: RingId, members: Vec<NodeId>) {
        let old_members = self.view.members.clone();
        self.change = None;
        self.change_due_since = None;
        self.deliver_limit = None;
        self.max_accepted = self.max_accepted.max(ring);
        self.max_seq_seen = self.max_seq_seen.max(ring.seq);
        self.view = View { ring, members };
        self.installed_at = self.now;
        // Fresh ordering state for the new view.
        self.delivered = 0;
        self.received.clear();
        self.log.clear();
        self.member_delivered.clear();
        self.next_seq = 1;
        self.expect.clear();
        self.early.clear();
        self.assigned_seen = 0;
        self.delivered_since_ack = 0;
        self.partial.clear();
        self.out.push(Output::ViewChange(self.view.clone()));
        if let Some(q) = &mut self.quorum {
            let status = q.view_changed(self.now, &self.view.members);
            self.out.push(Output::Quorum(status));
        }
        // This node's units not delivered in the old view are sent again,
        // whole messages at a time, renumbered for the new view, if the old
        // sequencer came along: then none of them was ordered. Otherwise
        // another partition may have delivered them, and sending them again
        // would deliver them twice or in two views; they are dropped.
        let old = std::mem::take(&mut self.pending);
        self.next_sender_seq = 1;
        // Joins, leaves and expected votes are sent again in any case:
        // applying them twice changes nothing. A stale join list is not:
        // a new one follows.
        let all = std::mem::take(&mut self.old_sequencer_moves);
        let mut resend: Vec<(u64, Body)> = Vec::new();
        // Per message: group, client and its fragments (number, bytes).
        type Fragments = Vec<(u32, Vec<u8>)>;
        let mut dropped: BTreeMap<u64, (String, ClientId, Fragments)> = BTreeMap::new();
        for p in old {
            match p.body {
                Body::App {
                    group,
                    client,
                    frag,
                    payload,
                    ..
                } if !all => {
                    let e = dropped
                        .entry(p.msg)
                        .or_insert_with(|| (group, client, Vec::new()));
                    e.2.push((frag, payload));
                }
                Body::JoinList { .. } => {}
                body => resend.push((p.msg, body)),
            }
        }
        for (_, (group, client, mut frags)) in dropped {
            frags.sort_by_key(|f| f.0);
            let payload = frags.into_iter().flat_map(|f| f.1).collect();
            self.out.push(Output::Undelivered {
                group,
                client,
                payload,
            });
        }
        // Deliveries held for a group rebuild that did not finish are
        // dropped by every member that moves with this one alike; this
        // node's own are reported to their senders.
        for (group, from, payload) in std::mem::take(&mut self.held) {
            if from.node == self.me {
                self.out.push(Output::Undelivered {
                    group,
                    client: from.client,
                    payload,
                });
            }
        }
        // Rebuild groups: every member orders the list of its clients.
        let waiting: BTreeSet<NodeId> = self.view.members.iter().copied().collect();
        self.group_sync = Some((waiting, BTreeMap::new()));
        let entries: Vec<(String, ClientId)> = self
            .local
            .iter()
            .flat_map(|(g, cs)| cs.iter().map(move |c| (g.clone(), *c)))
            .collect();
        let _ = old_members;
        let msg = self.next_msg;
        self.next_msg += 1;
        self.queue_unit(msg, Body::JoinList { entries });
        for (msg, body) in resend {
            self.queue_unit(msg, body);
        }
        self.maybe_writable();
        // Anyone else in the view may need our progress soon.
        self.send_pending();
    }

    // ---- ordering ----

    fn on_data(&mut self, from: NodeId, m: Msg) {
        let Msg::Data {
            ring,
            sender_seq,
            body,
        } = m
        else {
            return;
        };
        if ring != self.view.ring || self.sequencer() != self.me || self.change.is_some() {
            return;
        }
        if !self.view.contains(from) {
            return;
        }
        let expected = *self.expect.get(&from).unwrap_or(&1);
        if sender_seq < expected {
            return; // already ordered
        }
        self.early.insert((from, sender_seq), body);
        // Order what is now in sequence, within the stability window.
        loop {
            let expected = *self.expect.get(&from).unwrap_or(&1);
            let unstable = self.next_seq - 1 - self.stable();
            if unstable as usize >= self.cfg.send_window * self.view.members.len().max(1) {
                break;
            }
            let Some(body) = self.early.remove(&(from, expected)) else {
                break;
            };
            self.expect.insert(from, expected + 1);
            let o = Ordered {
                ring,
                seq: self.next_seq,
                sender: from,
                sender_seq: expected,
                body,
            };
            self.next_seq += 1;
            self.queue_members(&Msg::Ordered(o.clone()));
            self.on_ordered(o);
        }
    }

    fn stable(&self) -> u64 {
        self.view
            .members
            .iter()
            .map(|m| {
                if *m == self.me {
                    self.delivered
                } else {
                    *self.member_delivered.get(m).unwrap_or(&0)
                }
            })
            .min()
            .unwrap_or(0)
    }

    fn note_delivered(&mut self, from: NodeId, delivered: u64) {
        let e = self.member_delivered.entry(from).or_insert(0);
        if delivered > *e {
            *e = delivered;
        }
        if self.change.is_none() {
            let stable = self.stable();
            self.log = self.log.split_off(&(stable + 1));
        }
    }

    fn on_ordered(&mut self, o: Ordered) {
        if o.ring != self.view.ring || o.seq <= self.delivered {
            return;
        }
        self.assigned_seen = self.assigned_seen.max(o.seq);
        self.received.entry(o.seq).or_insert(o);
        self.deliver_ready();
        if self.change.is_some() {
            self.sync_progress();
            self.coordinator_step();
        }
    }

    /// Delivers units in sequence order, up to the limit while changing.
    fn deliver_ready(&mut self) {
        loop {
            let next = self.delivered + 1;
            if self.deliver_limit.is_some_and(|l| next > l) {
                break;
            }
            let Some(o) = self.received.remove(&next) else {
                break;
            };
            self.delivered = next;
            self.deliver(&o);
            self.log.insert(next, o);
            self.delivered_since_ack += 1;
        }
        if self.delivered_since_ack >= 64 && self.sequencer() != self.me {
            self.delivered_since_ack = 0;
            let ack = Msg::Ack {
                ring: self.view.ring,
                delivered: self.delivered,
            };
            self.queue_members(&ack);
        }
        self.maybe_writable();
    }

    fn request_missing(&mut self) {
        let highest = self
            .received
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(self.assigned_seen);
        let mut to = highest;
        if let Some(l) = self.deliver_limit {
            to = to.min(l);
        }
        if to <= self.delivered || self.now < self.last_nack + self.cfg.timings.retransmit_ms {
            return;
        }
        self.last_nack = self.now;
        let sequencer = self.sequencer();
        if sequencer == self.me {
            return;
        }
        // Ask for the gaps only (at most 16 of them at a time), not for the
        // units already here.
        let mut gaps = Vec::new();
        let mut next = self.delivered + 1;
        for &k in self.received.range(next..=to).map(|(k, _)| k) {
            if k > next {
                gaps.push((next, k - 1));
            }
            next = k + 1;
        }
        if next <= to {
            gaps.push((next, to));
        }
        for (from, to) in gaps.into_iter().take(16) {
            self.queue(
                sequencer,
                Msg::Nack {
                    ring: self.view.ring,
                    from,
                    to,
                },
            );
        }
    }

    /// Hands one ordered unit to the application layer.
    fn deliver(&mut self, o: &Ordered) {
        // The sequencer orders a sender's units in its order, so the unit
        // is found at once, behind at most the fragments of its message.
        if o.sender == self.me
            && let Some(i) = self.pending.iter().position(|p| p.seq == o.sender_seq)
        {
            let complete = match &self.pending[i].body {
                Body::App { frag, frags, .. } => frag + 1 >= *frags,
                _ => true,
            };
            if complete {
                let msg = self.pending[i].msg;
                if self.pending.iter().take(i + 1).all(|p| p.msg == msg) {
                    self.pending.drain(..=i);
                } else {
                    self.pending.retain(|p| p.msg != msg);
                }
            } else {
                self.pending[i].ordered = true;
            }
        }
        match &o.body {
            Body::App {
                group,
                client,
                frag,
                frags,
                payload,
            } => {
                let parts = self.partial.entry(o.sender).or_default();
                if *frag == 0 {
                    parts.clear();
                }
                if parts.len() as u32 != *frag {
                    // A fragment of a message begun in another view.
                    parts.clear();
                    return;
                }
                parts.push(payload.clone());
                if frag + 1 < *frags {
                    return;
                }
                let whole: Vec<u8> = std::mem::take(parts).concat();
                let from = GroupMember {
                    node: o.sender,
                    client: *client,
                };
                let to: Vec<ClientId> = self
                    .local
                    .get(group)
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                if self.group_sync.is_some() {
                    self.held.push((group.clone(), from, whole));
                    return;
                }
                for c in to {
                    self.out.push(Output::Deliver {
                        group: group.clone(),
                        to: c,
                        from,
                        payload: whole.clone(),
                    });
                }
            }
            Body::Join { group, client } => {
                let member = GroupMember {
                    node: o.sender,
                    client: *client,
                };
                if o.sender == self.me {
                    self.local.entry(group.clone()).or_default().insert(*client);
                }
                self.group_event(group, member, true);
            }
            Body::Leave { group, client } => {
                let member = GroupMember {
                    node: o.sender,
                    client: *client,
                };
                if o.sender == self.me
                    && let Some(s) = self.local.get_mut(group)
                {
                    s.remove(client);
                    if s.is_empty() {
                        self.local.remove(group);
                    }
                }
                self.group_event(group, member, false);
            }
            Body::ExpectedVotes { votes } => {
                if let Some(q) = &mut self.quorum {
                    match q.set_expected_votes(self.now, *votes) {
                        Ok(status) => self.out.push(Output::Quorum(status)),
                        Err(e) => {
                            if o.sender == self.me {
                                self.out.push(Output::Refused {
                                    reason: e.to_string(),
                                });
                            }
                        }
                    }
                }
            }
            Body::JoinList { entries } => {
                let Some((waiting, building)) = &mut self.group_sync else {
                    return;
                };
                waiting.remove(&o.sender);
                for (g, c) in entries {
                    building.entry(g.clone()).or_default().insert(GroupMember {
                        node: o.sender,
                        client: *c,
                    });
                }
                if waiting.is_empty() {
                    let (_, built) = self.group_sync.take().expect("checked above");
                    self.replace_groups(built);
                    self.release_held();
                }
            }
        }
    }

    fn group_event(&mut self, group: &str, member: GroupMember, join: bool) {
        if let Some((_, building)) = &mut self.group_sync {
            let set = building.entry(group.to_string()).or_default();
            if join {
                set.insert(member);
            } else {
                set.remove(&member);
            }
            return;
        }
        let set = self.groups.entry(group.to_string()).or_default();
        let changed = if join {
            set.insert(member)
        } else {
            set.remove(&member)
        };
        if !changed {
            return;
        }
        let members: Vec<GroupMember> = set.iter().copied().collect();
        if members.is_empty() {
            self.groups.remove(group);
        }
        self.out.push(Output::GroupChange {
            group: group.to_string(),
            members,
            joined: if join { vec![member] } else { vec![] },
            left: if join { vec![] } else { vec![member] },
        });
    }

    /// Delivers what was held during the group rebuild, now that the group
    /// changes are out: from senders still in the group, to the clients
    /// the group changes just listed (every member decides alike, at the
    /// same point of the order).
    fn release_held(&mut self) {
        let held = std::mem::take(&mut self.held);
        self.maybe_writable();
        for (group, from, payload) in held {
            if !self.groups.get(&group).is_some_and(|s| s.contains(&from)) {
                // Its sender left meanwhile: nobody gets it, and the
                // sender hears so.
                if from.node == self.me {
                    self.out.push(Output::Undelivered {
                        group,
                        client: from.client,
                        payload,
                    });
                }
                continue;
            }
            let to: Vec<ClientId> = self
                .local
                .get(&group)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            for c in to {
                self.out.push(Output::Deliver {
                    group: group.clone(),
                    to: c,
                    from,
                    payload: payload.clone(),
                });
            }
        }
    }

    /// Installs the groups rebuilt after a view change, reporting changes.
    fn replace_groups(&mut self, built: BTreeMap<String, BTreeSet<GroupMember>>) {
        let mut built = built;
        built.retain(|_, s| !s.is_empty());
        let names: BTreeSet<String> = self.groups.keys().chain(built.keys()).cloned().collect();
        for g in names {
            let old = self.groups.get(&g).cloned().unwrap_or_default();
            let new = built.get(&g).cloned().unwrap_or_default();
            // A group re-formed unchanged is reported too (nothing joined
            // or left): members that came from different old views may see
            // different changes, or none, and every member must learn at
            // the same point of the order that the group went through a
            // view change.
            if new.is_empty() && old.is_empty() {
                continue;
            }
            self.out.push(Output::GroupChange {
                group: g.clone(),
                members: new.iter().copied().collect(),
                joined: new.difference(&old).copied().collect(),
                left: old.difference(&new).copied().collect(),
            });
        }
        self.groups = built;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A perfect network of nodes, stepped in 10 ms ticks.
    struct Net {
        nodes: BTreeMap<NodeId, Membership>,
        now: u64,
        down: BTreeSet<NodeId>,
        log: BTreeMap<NodeId, Vec<Output>>,
    }

    impl Net {
        fn new(n: u32) -> Net {
            let ids: Vec<NodeId> = (1..=n).collect();
            let nodes = ids
                .iter()
                .map(|&i| (i, Membership::new(Config::new(i, ids.clone()), 0)))
                .collect();
            Net {
                nodes,
                now: 0,
                down: BTreeSet::new(),
                log: BTreeMap::new(),
            }
        }

        fn input(&mut self, n: NodeId, i: Input) {
            let mut queue = vec![(n, i)];
            while let Some((n, i)) = queue.pop() {
                if self.down.contains(&n) {
                    continue;
                }
                let outs = self.nodes.get_mut(&n).expect("node").handle(i);
                for o in outs {
                    if let Output::Datagram { to, bytes } = o {
                        queue.insert(0, (to, Input::Datagram { from: n, bytes }));
                    } else {
                        self.log.entry(n).or_default().push(o);
                    }
                }
            }
        }

        fn run(&mut self, ms: u64) {
            let end = self.now + ms;
            while self.now < end {
                self.now += 10;
                let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
                for n in ids {
                    self.input(n, Input::Tick { now_ms: self.now });
                }
            }
        }

        fn view(&self, n: NodeId) -> &View {
            self.nodes[&n].view()
        }

        fn delivered(&self, n: NodeId) -> Vec<Vec<u8>> {
            self.log
                .get(&n)
                .into_iter()
                .flatten()
                .filter_map(|o| match o {
                    Output::Deliver { payload, .. } => Some(payload.clone()),
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn three_nodes_agree_order_and_survive_a_loss() {
        let mut net = Net::new(3);
        net.run(500);
        for n in 1..=3 {
            assert_eq!(net.view(n).members, vec![1, 2, 3], "node {n}");
        }
        assert_eq!(net.view(1).ring, net.view(3).ring);
        for n in 1..=3 {
            net.input(
                n,
                Input::Join {
                    group: "g".into(),
                    client: 1,
                },
            );
        }
        net.run(100);
        for i in 0..20u8 {
            let sender = (i % 3 + 1) as NodeId;
            net.input(
                sender,
                Input::Send {
                    group: "g".into(),
                    client: 1,
                    payload: vec![i],
                },
            );
        }
        let big = vec![7u8; 300_000];
        net.input(
            2,
            Input::Send {
                group: "g".into(),
                client: 1,
                payload: big.clone(),
            },
        );
        net.run(300);
        let d1 = net.delivered(1);
        assert_eq!(d1.len(), 21, "all messages delivered once");
        assert!(d1.contains(&big));
        assert_eq!(d1, net.delivered(2));
        assert_eq!(d1, net.delivered(3));

        // Node 3 dies; 1 and 2 agree on a new view within the token
        // timeout plus a little.
        let before = net.view(1).ring;
        net.down.insert(3);
        let t0 = net.now;
        let mut t_view = None;
        for _ in 0..300 {
            net.run(10);
            if net.view(1).members == vec![1, 2] && net.view(2).members == vec![1, 2] {
                t_view = Some(net.now - t0);
                break;
            }
        }
        let took = t_view.expect("a 2-node view");
        assert!(took <= 1300, "took {took} ms");
        assert_eq!(net.view(1).ring, net.view(2).ring);
        assert!(net.view(1).ring > before);

        // It comes back with fresh state and is merged in.
        net.down.remove(&3);
        net.nodes
            .insert(3, Membership::new(Config::new(3, vec![1, 2, 3]), net.now));
        net.run(1500);
        for n in 1..=3 {
            assert_eq!(net.view(n).members, vec![1, 2, 3], "node {n} after restart");
        }
    }

    #[test]
    fn a_disconnected_client_leaves_every_group_everywhere() {
        let mut net = Net::new(2);
        net.run(300);
        for g in ["a", "b"] {
            net.input(
                1,
                Input::Join {
                    group: g.into(),
                    client: 5,
                },
            );
        }
        net.input(
            2,
            Input::Join {
                group: "a".into(),
                client: 9,
            },
        );
        net.run(100);
        let on = |net: &Net, n: NodeId, g: &str| {
            net.nodes[&n]
                .groups()
                .get(g)
                .is_some_and(|s| s.contains(&GroupMember { node: 1, client: 5 }))
        };
        assert!(on(&net, 2, "a") && on(&net, 2, "b"));
        net.input(1, Input::Disconnect { client: 5 });
        net.run(100);
        for n in 1..=2 {
            assert!(!on(&net, n, "a") && !on(&net, n, "b"), "node {n}");
            assert!(net.nodes[&n].groups()["a"].contains(&GroupMember { node: 2, client: 9 }));
        }
        // Sending for the gone client is refused as not joined.
        net.input(
            1,
            Input::Send {
                group: "a".into(),
                client: 5,
                payload: vec![1],
            },
        );
        assert!(
            net.log[&1]
                .iter()
                .any(|o| matches!(o, Output::NotJoined { client: 5, .. }))
        );
    }
}
