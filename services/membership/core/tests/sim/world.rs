//! The simulated cluster: a clock, a queue of events (datagram arrivals and
//! per-node ticks), the nodes' state machines and their clients. Every step
//! feeds one input to one `Membership`, records what it output and checks
//! every invariant; a failure panics with the seed and the last events.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_membership::{ClientId, Config, Input, Membership, NodeId, Output, View};

use super::history::{History, LifeId, MsgInfo, client_id};
use super::invariants::{self, Invariant, Observed, life_name};
use super::net::{MAX_UDP_PAYLOAD, Net, NetParams, Time};
use super::payload::{self, MsgId};
use super::trace::Trace;

pub const MS: Time = 1000;

/// What a simulation is made of.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// How to run this simulation again (printed on failure).
    pub rerun: String,
    pub nodes: Vec<NodeId>,
    /// Every node's `Config`, but for `node_id` and `nodes`.
    pub membership: Config,
    /// Time between two ticks of a node, uniform in this range (µs).
    pub tick_us: (Time, Time),
    pub net: NetParams,
    /// The chance that a node handles a datagram or a client request
    /// with `handle_deferred`, keeping the datagrams it causes until a
    /// later input flushes them (as the daemon does while it drains its
    /// socket); ticks always flush.
    pub defer: f64,
}

impl SimConfig {
    /// A deterministic cluster of nodes 1..=n for the scenario test `test`:
    /// a tick every 10 ms, a perfect 1 ms network, default timings.
    pub fn scenario(test: &str, n: NodeId) -> SimConfig {
        let nodes = (1..=n).collect::<Vec<_>>();
        SimConfig {
            seed: 0,
            rerun: format!("cargo test -p vigil-membership --test simulation {test} -- --exact"),
            membership: Config::new(1, nodes.clone()),
            nodes,
            tick_us: (10 * MS, 10 * MS),
            net: NetParams::perfect(),
            defer: 0.0,
        }
    }

    /// The effective token timeout of this cluster, in µs.
    pub fn token_timeout(&self) -> Time {
        self.membership.timings.token_timeout_ms(self.nodes.len()) * MS
    }
}

#[derive(Debug)]
enum Event {
    Datagram {
        from: NodeId,
        to: NodeId,
        bytes: Vec<u8>,
    },
    Tick {
        node: NodeId,
        inc: u32,
    },
}

#[derive(Debug)]
pub enum NodeState {
    Up(Box<Membership>),
    /// Gets no ticks and no datagrams, keeps its state.
    Paused(Box<Membership>),
    Down,
}

#[derive(Debug)]
pub struct Node {
    pub id: NodeId,
    /// Incarnation: 1 at the first start, one more at each restart.
    pub inc: u32,
    pub state: NodeState,
    /// Between `Congested` and `Writable`.
    pub congested: bool,
    /// The highest ring sequence seen, kept across restarts as the daemon
    /// keeps it on disk.
    pub ring_seq_on_disk: u64,
}

/// What became of a client's send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    Accepted(MsgId),
    TooLarge,
    Congested,
    NotJoined,
    /// The node is down or paused.
    Unavailable,
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub steps: u64,
    pub views_installed: u64,
    pub deliveries: u64,
    pub accepted: u64,
    pub refused: u64,
    pub congested: u64,
    pub crashes: u64,
    pub pauses: u64,
    pub partitions: u64,
}

pub struct Sim {
    pub cfg: SimConfig,
    /// Simulated time, µs.
    pub now: Time,
    queue: BTreeMap<(Time, u64), Event>,
    next_event: u64,
    pub rng: ChaCha8Rng,
    pub nodes: BTreeMap<NodeId, Node>,
    pub net: Net,
    pub history: History,
    invariants: Vec<Box<dyn Invariant>>,
    trace: Trace,
    next_msg: MsgId,
    pub stats: Stats,
    /// A label for the current phase, printed on failure.
    pub phase: &'static str,
    /// The input being handled and what it output so far.
    step_now: Option<(String, Vec<String>)>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sim(seed {}, t={} ms)", self.cfg.seed, self.now / MS)
    }
}

impl Sim {
    /// Starts every node at time 0.
    pub fn new(cfg: SimConfig) -> Sim {
        let mut sim = Sim {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            net: Net::new(cfg.net.clone()),
            invariants: invariants::all(cfg.membership.send_window, cfg.nodes.len() as u32),
            cfg,
            now: 0,
            queue: BTreeMap::new(),
            next_event: 0,
            nodes: BTreeMap::new(),
            history: History::default(),
            trace: Trace::default(),
            next_msg: 1,
            stats: Stats::default(),
            phase: "setup",
            step_now: None,
        };
        for id in sim.cfg.nodes.clone() {
            sim.start(id);
        }
        sim
    }

    pub fn token_timeout(&self) -> Time {
        self.cfg.token_timeout()
    }

    // ----- time ---------------------------------------------------------

    /// Processes the next event; false when nothing is left to do.
    pub fn step(&mut self) -> bool {
        let Some(((at, _), event)) = self.queue.pop_first() else {
            return false;
        };
        self.now = at;
        self.stats.steps += 1;
        match event {
            Event::Tick { node, inc } => {
                let n = &self.nodes[&node];
                if n.inc != inc || matches!(n.state, NodeState::Down) {
                    return true; // the tick chain of a dead life
                }
                let up = matches!(n.state, NodeState::Up(_));
                let next = self.now + self.tick_interval();
                self.schedule(next, Event::Tick { node, inc });
                if up {
                    let now_ms = self.now / MS;
                    self.handle(node, Input::Tick { now_ms }, "tick".into(), None);
                }
            }
            Event::Datagram { from, to, bytes } => {
                if self.net.is_cut(from, to) {
                    self.net.stats.cut += 1;
                } else if matches!(self.nodes[&to].state, NodeState::Up(_)) {
                    let what = format!("datagram from n{from} ({} B)", bytes.len());
                    self.handle(to, Input::Datagram { from, bytes }, what, None);
                } else {
                    self.net.stats.to_dead_node += 1;
                }
            }
        }
        true
    }

    /// Runs every event up to `t` (µs); the clock then reads `t`.
    pub fn advance_to(&mut self, t: Time) {
        while self
            .queue
            .first_key_value()
            .is_some_and(|((at, _), _)| *at <= t)
        {
            self.step();
        }
        self.now = self.now.max(t);
    }

    pub fn advance_ms(&mut self, ms: u64) {
        self.advance_to(self.now + ms * MS);
    }

    /// Runs until `cond` holds (checked after every step) or until
    /// `deadline` (µs); returns the time at which it held.
    pub fn run_until(
        &mut self,
        deadline: Time,
        mut cond: impl FnMut(&Sim) -> bool,
    ) -> Option<Time> {
        loop {
            if cond(self) {
                return Some(self.now);
            }
            match self.queue.first_key_value() {
                Some(((at, _), _)) if *at <= deadline => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return cond(self).then_some(self.now);
                }
            }
        }
    }

    fn tick_interval(&mut self) -> Time {
        let (lo, hi) = self.cfg.tick_us;
        if lo == hi {
            lo
        } else {
            self.rng.random_range(lo..=hi)
        }
    }

    fn schedule(&mut self, at: Time, event: Event) {
        self.queue.insert((at, self.next_event), event);
        self.next_event += 1;
    }

    // ----- nodes --------------------------------------------------------

    fn config_for(&self, id: NodeId) -> Config {
        let mut c = self.cfg.membership.clone();
        c.node_id = id;
        c.nodes = self.cfg.nodes.clone();
        c
    }

    /// Starts (or restarts, with a fresh state machine) node `id`.
    fn start(&mut self, id: NodeId) {
        let mut config = self.config_for(id);
        let ring_seq_on_disk = self.nodes.get(&id).map_or(0, |n| n.ring_seq_on_disk);
        config.min_ring_seq = ring_seq_on_disk;
        let now_ms = self.now / MS;
        let m = match catch_unwind(|| Membership::new(config, now_ms)) {
            Ok(m) => m,
            Err(e) => self.fail(
                "protocol panicked",
                &format!("Membership::new panicked: {}", panic_text(&*e)),
            ),
        };
        let inc = self.nodes.get(&id).map_or(1, |n| n.inc + 1);
        let initial = m.view().clone();
        self.trace.push(
            self.now,
            format!(
                "n{id}#{inc} STARTS, initial view {} {:?}",
                initial.ring, initial.members
            ),
            true,
        );
        self.history.start_life((id, inc), self.now, initial);
        self.nodes.insert(
            id,
            Node {
                id,
                inc,
                state: NodeState::Up(Box::new(m)),
                congested: false,
                ring_seq_on_disk,
            },
        );
        let first = self.now + self.tick_interval();
        self.schedule(first, Event::Tick { node: id, inc });
    }

    /// The life of node `id` (its current incarnation).
    pub fn life(&self, id: NodeId) -> LifeId {
        (id, self.nodes[&id].inc)
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        matches!(self.nodes[&id].state, NodeState::Up(_))
    }

    pub fn is_down(&self, id: NodeId) -> bool {
        matches!(self.nodes[&id].state, NodeState::Down)
    }

    pub fn is_paused(&self, id: NodeId) -> bool {
        matches!(self.nodes[&id].state, NodeState::Paused(_))
    }

    /// Drops node `id`'s state machine (a crash).
    pub fn crash(&mut self, id: NodeId) {
        if self.is_down(id) {
            return;
        }
        let life = self.life(id);
        let n = self.nodes.get_mut(&id).expect("configured");
        n.state = NodeState::Down;
        n.congested = false;
        self.history.end_life(life, self.now);
        self.stats.crashes += 1;
        self.trace
            .push(self.now, format!("{} CRASHES", life_name(life)), true);
    }

    /// Starts node `id` again with a new state machine (same id).
    pub fn restart(&mut self, id: NodeId) {
        if self.is_down(id) {
            self.start(id);
        }
    }

    /// Node `id` stops getting ticks and datagrams (they are lost).
    pub fn pause(&mut self, id: NodeId) {
        let n = self.nodes.get_mut(&id).expect("configured");
        if let NodeState::Up(m) = std::mem::replace(&mut n.state, NodeState::Down) {
            n.state = NodeState::Paused(m);
            let life = (id, n.inc);
            self.history.lives.get_mut(&life).expect("live").paused = true;
            self.stats.pauses += 1;
            self.trace
                .push(self.now, format!("{} PAUSES", life_name(life)), true);
        } else {
            n.state = std::mem::replace(&mut n.state, NodeState::Down);
        }
    }

    /// Node `id` runs again with the state it had when paused.
    pub fn resume(&mut self, id: NodeId) {
        let n = self.nodes.get_mut(&id).expect("configured");
        if let NodeState::Paused(m) = std::mem::replace(&mut n.state, NodeState::Down) {
            n.state = NodeState::Up(m);
            let life = (id, n.inc);
            self.history.lives.get_mut(&life).expect("live").paused = false;
            self.trace
                .push(self.now, format!("{} RESUMES", life_name(life)), true);
        } else {
            unreachable!("resume of a node that is not paused");
        }
    }

    // ----- network ------------------------------------------------------

    /// Cuts every link between nodes on different sides (both ways);
    /// returns the links cut, for [`Sim::uncut`].
    pub fn partition(&mut self, sides: &[Vec<NodeId>]) -> Vec<(NodeId, NodeId)> {
        let mut links = Vec::new();
        for (i, a) in sides.iter().enumerate() {
            for (j, b) in sides.iter().enumerate() {
                if i != j {
                    for &x in a {
                        for &y in b {
                            links.push((x, y));
                        }
                    }
                }
            }
        }
        self.stats.partitions += 1;
        self.trace
            .push(self.now, format!("PARTITION {sides:?}"), true);
        for &(a, b) in &links {
            self.net.cut(a, b);
        }
        links
    }

    /// Cuts `from → to` only (a one-way partition).
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) -> Vec<(NodeId, NodeId)> {
        self.stats.partitions += 1;
        self.trace
            .push(self.now, format!("CUT n{from} -> n{to} (one way)"), true);
        self.net.cut(from, to);
        vec![(from, to)]
    }

    pub fn uncut(&mut self, links: &[(NodeId, NodeId)]) {
        self.trace.push(self.now, format!("HEAL {links:?}"), true);
        for &(a, b) in links {
            self.net.uncut(a, b);
        }
    }

    /// No more faults: every link works, with `params`.
    pub fn heal_network(&mut self, params: NetParams) {
        self.trace
            .push(self.now, format!("NETWORK HEALED: {params:?}"), true);
        self.net.heal_all(params);
    }

    // ----- clients ------------------------------------------------------

    /// The id of local client number `k` of node `id`'s current life.
    pub fn client(&self, id: NodeId, k: u32) -> ClientId {
        client_id(self.nodes[&id].inc, k)
    }

    pub fn join(&mut self, id: NodeId, k: u32, group: &str) {
        if !self.is_up(id) {
            return;
        }
        let client = self.client(id, k);
        let life = self.life(id);
        let l = self.history.lives.get_mut(&life).expect("live");
        l.wants.entry(client).or_default().insert(group.to_string());
        l.ever_joined.insert((client, group.to_string()));
        let input = Input::Join {
            group: group.to_string(),
            client,
        };
        let refusals = self.handle(id, input, format!("client {client} joins {group:?}"), None);
        if !refusals.is_empty() {
            self.fail("client API", &format!("Join answered {refusals:?}"));
        }
    }

    pub fn leave(&mut self, id: NodeId, k: u32, group: &str) {
        if !self.is_up(id) {
            return;
        }
        let client = self.client(id, k);
        let life = self.life(id);
        let l = self.history.lives.get_mut(&life).expect("live");
        l.wants.entry(client).or_default().remove(group);
        l.leave_inputs.insert((client, group.to_string()), self.now);
        let input = Input::Leave {
            group: group.to_string(),
            client,
        };
        let refusals = self.handle(id, input, format!("client {client} leaves {group:?}"), None);
        if !refusals.is_empty() {
            self.fail("client API", &format!("Leave answered {refusals:?}"));
        }
    }

    /// Client `k` of node `id` goes away: it leaves every group (and, in
    /// the simulation, never joins one again).
    pub fn disconnect(&mut self, id: NodeId, k: u32) {
        if !self.is_up(id) {
            return;
        }
        let client = self.client(id, k);
        let life = self.life(id);
        let now = self.now;
        let l = self.history.lives.get_mut(&life).expect("live");
        l.wants.remove(&client);
        for g in super::random::GROUPS {
            l.leave_inputs.entry((client, g.to_string())).or_insert(now);
        }
        let refusals = self.handle(
            id,
            Input::Disconnect { client },
            format!("client {client} disconnects"),
            None,
        );
        if !refusals.is_empty() {
            self.fail("client API", &format!("Disconnect answered {refusals:?}"));
        }
    }

    /// Client `k` of node `id` sends a `len`-byte message to `group`.
    pub fn send(&mut self, id: NodeId, k: u32, group: &str, len: usize) -> SendOutcome {
        if !self.is_up(id) {
            return SendOutcome::Unavailable;
        }
        let client = self.client(id, k);
        let life = self.life(id);
        let msg = self.next_msg;
        self.next_msg += 1;
        let bytes = payload::make(msg, id, client, len);
        let len = bytes.len();
        self.history.msgs.insert(
            msg,
            MsgInfo {
                id: msg,
                life,
                client,
                group: group.to_string(),
                len,
                sent_at: self.now,
                accepted: true,
                undelivered: false,
            },
        );
        self.history
            .lives
            .get_mut(&life)
            .expect("live")
            .unordered
            .insert(msg);
        let input = Input::Send {
            group: group.to_string(),
            client,
            payload: bytes,
        };
        let refusals = self.handle(
            id,
            input,
            format!("client {client} sends m{msg} ({len} B) to {group:?}"),
            Some(msg),
        );
        let outcome = match refusals.first() {
            None => SendOutcome::Accepted(msg),
            Some(Output::TooLarge { .. }) => SendOutcome::TooLarge,
            Some(Output::Congested { .. }) => SendOutcome::Congested,
            Some(Output::NotJoined { .. }) => SendOutcome::NotJoined,
            Some(other) => unreachable!("not a refusal: {other:?}"),
        };
        if let SendOutcome::Accepted(msg) = outcome {
            self.stats.accepted += 1;
            self.observe(Observed::Accepted { life, msg });
        } else {
            self.stats.refused += 1;
        }
        outcome
    }

    // ----- the state machines ---------------------------------------------

    /// Feeds `input` to node `id`; records and checks its outputs; returns
    /// the refusals (TooLarge, Congested, NotJoined) among them.
    fn handle(
        &mut self,
        id: NodeId,
        input: Input,
        what: String,
        sending: Option<MsgId>,
    ) -> Vec<Output> {
        let life = self.life(id);
        let NodeState::Up(m) = &mut self.nodes.get_mut(&id).expect("configured").state else {
            unreachable!("handle on a node that is not up");
        };
        let defer = !matches!(input, Input::Tick { .. })
            && self.cfg.defer > 0.0
            && self.rng.random_bool(self.cfg.defer);
        let result = catch_unwind(AssertUnwindSafe(|| {
            let out = if defer {
                m.handle_deferred(input)
            } else {
                m.handle(input)
            };
            (out, m.view().clone(), m.node_id(), m.max_ring_seq())
        }));
        let (outputs, view, node_id) = match result {
            Ok((out, view, node_id, ring_seq)) => {
                let n = self.nodes.get_mut(&id).expect("configured");
                n.ring_seq_on_disk = n.ring_seq_on_disk.max(ring_seq);
                (out, view, node_id)
            }
            Err(e) => {
                self.trace.push(
                    self.now,
                    format!("{} {what} -> PANIC", life_name(life)),
                    true,
                );
                self.fail(
                    "protocol panicked",
                    &format!(
                        "{} panicked handling {what}: {}",
                        life_name(life),
                        panic_text(&*e)
                    ),
                )
            }
        };
        if node_id != id {
            self.fail(
                "client API",
                &format!("node_id() of n{id} returns {node_id}"),
            );
        }
        let mut refusals = Vec::new();
        let mut datagrams = 0;
        self.step_now = Some((format!("{} {what}", life_name(life)), Vec::new()));
        // A refused send must be known as such before its outputs are checked.
        if let Some(msg) = sending
            && outputs.iter().any(is_refusal)
        {
            self.history
                .msgs
                .get_mut(&msg)
                .expect("registered")
                .accepted = false;
            self.history
                .lives
                .get_mut(&life)
                .expect("live")
                .unordered
                .remove(&msg);
        }
        for out in outputs {
            match out {
                Output::Datagram { to, bytes } => {
                    datagrams += 1;
                    self.datagram(id, to, bytes);
                }
                Output::ViewChange(v) => {
                    self.note(format!("VIEW {} {:?}", v.ring, v.members));
                    self.stats.views_installed += 1;
                    self.history.install(life, self.now, v);
                    self.observe(Observed::Installed { life });
                }
                Output::GroupChange {
                    group,
                    members,
                    joined,
                    left,
                } => {
                    self.note(format!(
                        "GROUP {group:?} members {} +{joined:?} -{left:?}",
                        short_members(&members)
                    ));
                    let previous = self.history.group_change(life, &group, members.clone());
                    self.observe(Observed::GroupChanged {
                        life,
                        group,
                        previous,
                        members,
                        joined,
                        left,
                    });
                }
                Output::Deliver {
                    group,
                    to,
                    from,
                    payload,
                } => {
                    self.stats.deliveries += 1;
                    let msg = payload::parse(&payload)
                        .ok()
                        .map(|h| h.msg)
                        .filter(|m| self.history.msgs.contains_key(m));
                    if let Some(m) = msg
                        && self.history.msgs[&m].undelivered
                        && self.history.msgs[&m].life == life
                    {
                        self.fail(
                            "client API",
                            &format!(
                                "{} delivered message {m}, which it had reported undelivered to its sender",
                                life_name(life)
                            ),
                        );
                    }
                    let first_here =
                        msg.is_some_and(|m| self.history.deliver(life, self.now, &group, to, m));
                    self.note(match msg {
                        Some(m) => format!("DELIVER m{m} to {to}"),
                        None => format!("DELIVER ? ({} B) to {to}", payload.len()),
                    });
                    self.observe(Observed::Delivered {
                        life,
                        group,
                        to,
                        from,
                        payload,
                        msg,
                        first_here,
                    });
                }
                Output::Quorum(status) => {
                    self.note(format!(
                        "QUORUM {} ({}/{} votes, quorum {})",
                        if status.quorate { "yes" } else { "no" },
                        status.total_votes,
                        status.expected_votes,
                        status.quorum
                    ));
                    self.history.lives.get_mut(&life).expect("live").quorum = Some(status);
                    self.observe(Observed::QuorumChanged { life });
                }
                Output::Refused { reason } => {
                    self.fail(
                        "client API",
                        &format!("{} refused a request: {reason}", life_name(life)),
                    );
                }
                Output::Undelivered {
                    group,
                    client,
                    payload,
                } => {
                    let msg = payload::parse(&payload)
                        .ok()
                        .map(|h| h.msg)
                        .filter(|m| self.history.msgs.contains_key(m));
                    let Some(msg) = msg else {
                        self.fail(
                            "client API",
                            &format!(
                                "{} reported an unknown message ({} B) undelivered to client {client}",
                                life_name(life),
                                payload.len()
                            ),
                        );
                    };
                    self.note(format!("UNDELIVERED m{msg} to {client} ({group})"));
                    let info = self.history.msgs[&msg].clone();
                    if info.life != life || info.client != client || info.group != group {
                        self.fail(
                            "client API",
                            &format!(
                                "{} reported message {msg} undelivered to client {client} in {group:?}, \
                                 but {} sent it in {:?}",
                                life_name(life),
                                info.client,
                                info.group
                            ),
                        );
                    }
                    self.history.msgs.get_mut(&msg).expect("known").undelivered = true;
                    if self.history.lives[&life]
                        .client_deliveries
                        .contains(&(client, msg))
                    {
                        self.fail(
                            "client API",
                            &format!(
                                "{} reported message {msg} undelivered after delivering it to its sender",
                                life_name(life)
                            ),
                        );
                    }
                    self.history
                        .lives
                        .get_mut(&life)
                        .expect("live")
                        .unordered
                        .remove(&msg);
                }
                Output::Writable => {
                    self.note("WRITABLE".into());
                    self.nodes.get_mut(&id).expect("configured").congested = false;
                }
                refusal @ (Output::TooLarge { .. }
                | Output::Congested { .. }
                | Output::NotJoined { .. }) => {
                    if let Output::Congested { .. } = refusal {
                        self.stats.congested += 1;
                        self.nodes.get_mut(&id).expect("configured").congested = true;
                    }
                    self.note(format!("{refusal:?}"));
                    refusals.push(refusal);
                }
            }
        }
        let notes = self.step_now.take().map(|(_, n)| n).unwrap_or_default();
        let notable =
            !notes.is_empty() || !what.starts_with("tick") && !what.starts_with("datagram");
        let notes = if self.trace.verbose() {
            notes.join(", ")
        } else {
            compress(notes)
        };
        let sep = if notes.is_empty() { "" } else { ", " };
        self.trace.push(
            self.now,
            format!(
                "{} {what} -> {datagrams} datagram(s){sep}{notes}",
                life_name(life)
            ),
            notable,
        );
        self.observe(Observed::StepEnd { life, view });
        refusals
    }

    fn note(&mut self, note: String) {
        if let Some((_, notes)) = &mut self.step_now {
            notes.push(note);
        }
    }

    fn datagram(&mut self, from: NodeId, to: NodeId, bytes: Vec<u8>) {
        if bytes.len() > MAX_UDP_PAYLOAD {
            self.fail(
                "transport limits",
                &format!("n{from} sent a {}-byte datagram to n{to}; UDP carries at most {MAX_UDP_PAYLOAD}", bytes.len()),
            );
        }
        if !self.cfg.nodes.contains(&to) || to == from {
            self.fail(
                "transport limits",
                &format!("n{from} sent a datagram to n{to}, which is not a peer"),
            );
        }
        let arrivals = self
            .net
            .fate(&mut self.rng, self.now, from, to, bytes.len());
        if let Some((last, others)) = arrivals.split_last() {
            for &at in others {
                let bytes = bytes.clone();
                self.schedule(at, Event::Datagram { from, to, bytes });
            }
            self.schedule(*last, Event::Datagram { from, to, bytes });
        }
    }

    fn observe(&mut self, ev: Observed) {
        let mut error = None;
        for inv in &mut self.invariants {
            if let Err(e) = inv.observe(&self.history, &ev) {
                error = Some((inv.name(), inv.id(), e));
                break;
            }
        }
        if let Some((name, id, e)) = error {
            self.fail(
                &format!("invariant \"{name}\" (to look past it: VIGIL_SIM_SKIP={id})"),
                &e,
            );
        }
    }

    /// The end-of-run checks (call when everything sent has had time to
    /// arrive).
    pub fn finish(&mut self) {
        let mut error = None;
        for inv in &mut self.invariants {
            if let Err(e) = inv.at_end(&self.history) {
                error = Some((inv.name(), inv.id(), e));
                break;
            }
        }
        if let Some((name, id, e)) = error {
            self.fail(
                &format!("invariant \"{name}\" at the end (to look past it: VIGIL_SIM_SKIP={id})"),
                &e,
            );
        }
    }

    // ----- views ----------------------------------------------------------

    /// The current view of node `id`, if it is running (or paused).
    pub fn view(&self, id: NodeId) -> Option<&View> {
        self.history.live(id).map(|l| &l.current().view)
    }

    /// Whether every node in `nodes` is up and has installed the same view,
    /// whose members are exactly `nodes`.
    pub fn agreed_on(&self, nodes: &[NodeId]) -> bool {
        let mut ring = None;
        nodes.iter().all(|&n| {
            self.is_up(n)
                && self.history.live(n).is_some_and(|l| {
                    let cur = l.current();
                    cur.installed
                        && cur.view.members == nodes
                        && *ring.get_or_insert(cur.view.ring) == cur.view.ring
                })
        })
    }

    /// One line per node: its life and current view.
    pub fn describe_nodes(&self) -> String {
        self.nodes
            .values()
            .map(|n| {
                let state = match n.state {
                    NodeState::Up(_) => "up",
                    NodeState::Paused(_) => "paused",
                    NodeState::Down => "down",
                };
                let view = self
                    .history
                    .live(n.id)
                    .map(|l| {
                        format!(
                            "ring {} {:?}",
                            l.current().view.ring,
                            l.current().view.members
                        )
                    })
                    .unwrap_or_default();
                format!("  n{}#{} {state} {view}\n", n.id, n.inc)
            })
            .collect()
    }

    /// Panics with everything needed to understand and replay the failure.
    pub fn fail(&self, what: &str, detail: &str) -> ! {
        let cut = self.net.cut_links();
        panic!(
            "\nSIMULATION FAILURE — {what}\n{detail}\n\n\
             seed {seed}, {n} nodes, phase {phase}, simulated time {t}.{us:03} ms\n\
             rerun just this: {rerun}\n\n\
             nodes:\n{nodes}network: {params:?}, cut links {cut:?}\n\n\
             {trace}{step}",
            seed = self.cfg.seed,
            n = self.cfg.nodes.len(),
            phase = self.phase,
            t = self.now / MS,
            us = self.now % MS,
            rerun = self.cfg.rerun,
            nodes = self.describe_nodes(),
            params = self.net.params,
            trace = self.trace.render(),
            step = match &self.step_now {
                Some((what, notes)) => format!("failing step:\n  {what} -> {}\n", notes.join(", ")),
                None => String::new(),
            },
        )
    }
}

fn is_refusal(out: &Output) -> bool {
    matches!(
        out,
        Output::TooLarge { .. } | Output::Congested { .. } | Output::NotJoined { .. }
    )
}

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

fn short_members(m: &[vigil_membership::GroupMember]) -> String {
    let v = m
        .iter()
        .map(|m| format!("n{}/{}", m.node, m.client))
        .collect::<Vec<_>>();
    format!("[{}]", v.join(" "))
}

/// "DELIVER m1 to 1000, DELIVER m2 to 1000, ..." gets long: keep it short.
fn compress(notes: Vec<String>) -> String {
    let delivers = notes.iter().filter(|n| n.starts_with("DELIVER")).count();
    if delivers <= 6 {
        return notes.join(", ");
    }
    let mut out = notes
        .iter()
        .filter(|n| !n.starts_with("DELIVER"))
        .cloned()
        .collect::<Vec<_>>();
    let first = notes
        .iter()
        .find(|n| n.starts_with("DELIVER"))
        .cloned()
        .unwrap_or_default();
    let last = notes
        .iter()
        .rev()
        .find(|n| n.starts_with("DELIVER"))
        .cloned()
        .unwrap_or_default();
    out.push(format!("{delivers} deliveries ({first} ... {last})"));
    out.join(", ")
}
