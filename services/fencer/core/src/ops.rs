//! Fencing operations across the cluster: the state every fencer keeps
//! alike from the messages of the `fencing` group, delivered to all in the
//! same order.
//!
//! - Any node may ask to fence a target ([`Message::Request`]); requests
//!   for a target with an operation under way join it when they ask for
//!   the same action (one fencing, every asker told the result), or queue
//!   behind it. One operation per target at a time, whoever asks.
//! - Each operation has one executioner, chosen alike on every node: the
//!   node that asked, unless it is the target (or gone), else the first
//!   member by name that is not the target. When the executioner leaves,
//!   the next one takes over the operation.
//! - The executioner runs the devices and reports a [`Message::Result`];
//!   every node records it in the fence history.
//! - At every change of the group's members, each member sends its state
//!   ([`Message::State`]); once all states of the round are delivered,
//!   every member merges them alike (histories are united; of two
//!   operations for one target, the older runs first) and messages held
//!   during the round are applied. Members from different partitions
//!   thereby come to the same history and operations.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

/// The most history entries kept.
pub const HISTORY_LIMIT: usize = 500;

/// An operation's identity: the node that asked first and its counter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId {
    pub node: String,
    pub seq: u64,
}

impl std::fmt::Display for OpId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.node, self.seq)
    }
}

/// A request to fence a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: OpId,
    pub target: String,
    /// `off`, `reboot` or `on`.
    pub action: String,
    /// Who asked, in words (a bus client, `vigil fence`, the controller).
    pub client: String,
    /// How long to wait before fencing (the controller's
    /// `priority-fencing-delay`).
    pub delay_ms: u64,
    /// When, seconds since the epoch (the asker's clock).
    pub at: i64,
}

/// An operation: the request that opened it and those that joined it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub request: Request,
    /// Requests that joined (same target and action).
    pub joined: Vec<Request>,
    pub executioner: String,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Done,
    Failed,
    /// An operator confirmed the node is down (no device was run).
    Confirmed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::Confirmed => "confirmed",
        }
    }
}

/// One entry of the fence history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: OpId,
    pub target: String,
    pub action: String,
    /// The node that asked first, and its client.
    pub origin: String,
    pub client: String,
    /// The node that ran the devices.
    pub executioner: String,
    /// The devices that fenced it (those of the level that succeeded), or
    /// that were tried.
    pub devices: Vec<String>,
    pub outcome: Outcome,
    pub reason: String,
    pub requested_at: i64,
    pub completed_at: i64,
    /// How many requests it answered.
    pub requests: u32,
}

/// A message of the `fencing` group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Request(Request),
    /// The executioner's result for an operation.
    Result {
        op: OpId,
        executioner: String,
        devices: Vec<String>,
        ok: bool,
        reason: String,
        at: i64,
    },
    /// An operator confirms by hand that `target` is down: operations for
    /// it end as fenced.
    Confirm {
        id: OpId,
        target: String,
        client: String,
        at: i64,
    },
    /// A member's state, for the round of the group change `round` (the
    /// members, sorted).
    State {
        round: Vec<String>,
        node: String,
        ops: Vec<Op>,
        history: Vec<Entry>,
    },
}

/// What the daemon must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this to the group.
    Broadcast(Message),
    /// This node is the operation's executioner: run its devices (after
    /// the request's delay) and broadcast the result.
    Execute(Op),
    /// An operation ended: `entry` is in the history; `requests` are those
    /// it answers (reply to this node's own).
    Finished {
        entry: Entry,
        requests: Vec<Request>,
    },
}

#[derive(Debug, Clone)]
struct Round {
    members: Vec<String>,
    states: BTreeMap<String, (Vec<Op>, Vec<Entry>)>,
}

/// This node's view of the cluster's fencing.
#[derive(Debug)]
pub struct Fencing {
    me: String,
    members: Vec<String>,
    /// Per target: the running operation first, then those queued.
    queues: BTreeMap<String, VecDeque<Op>>,
    history: Vec<Entry>,
    round: Option<Round>,
    held: Vec<Message>,
    next_seq: u64,
}

impl Fencing {
    /// `seq_start` makes this node's operation ids unique across its
    /// restarts (e.g. its start time).
    pub fn new(me: &str, seq_start: u64) -> Fencing {
        Fencing {
            me: me.to_string(),
            members: vec![me.to_string()],
            queues: BTreeMap::new(),
            history: Vec::new(),
            round: None,
            held: Vec::new(),
            next_seq: seq_start,
        }
    }

    /// A new request from a local client (to broadcast).
    pub fn request(
        &mut self,
        target: &str,
        action: &str,
        client: &str,
        delay_ms: u64,
        at: i64,
    ) -> Request {
        self.next_seq += 1;
        Request {
            id: OpId {
                node: self.me.clone(),
                seq: self.next_seq,
            },
            target: target.to_string(),
            action: action.to_string(),
            client: client.to_string(),
            delay_ms,
            at,
        }
    }

    /// A new manual confirmation (to broadcast).
    pub fn confirm(&mut self, target: &str, client: &str, at: i64) -> Message {
        self.next_seq += 1;
        Message::Confirm {
            id: OpId {
                node: self.me.clone(),
                seq: self.next_seq,
            },
            target: target.to_string(),
            client: client.to_string(),
            at,
        }
    }

    pub fn history(&self) -> &[Entry] {
        &self.history
    }

    /// Operations under way or queued.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.queues.values().flatten()
    }

    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// Whether a round is under way (requests wait until it ends).
    pub fn syncing(&self) -> bool {
        self.round.is_some()
    }

    /// The group's members changed (names of the nodes with a fencer):
    /// a round starts, with this node's state.
    pub fn group_changed(&mut self, members: Vec<String>) -> Vec<Effect> {
        let mut members: Vec<String> = members
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !members.contains(&self.me) {
            members.push(self.me.clone());
            members.sort();
        }
        self.members = members.clone();
        self.round = Some(Round {
            members: members.clone(),
            states: BTreeMap::new(),
        });
        vec![Effect::Broadcast(Message::State {
            round: members,
            node: self.me.clone(),
            ops: self.ops().cloned().collect(),
            history: self.history.clone(),
        })]
    }

    /// A message of the group, in the total order.
    pub fn deliver(&mut self, msg: Message) -> Vec<Effect> {
        if let Message::State {
            round,
            node,
            ops,
            history,
        } = msg
        {
            return self.state(round, node, ops, history);
        }
        if self.round.is_some() {
            self.held.push(msg);
            return Vec::new();
        }
        self.apply(msg)
    }

    fn state(
        &mut self,
        round: Vec<String>,
        node: String,
        ops: Vec<Op>,
        history: Vec<Entry>,
    ) -> Vec<Effect> {
        let Some(r) = self.round.as_mut() else {
            return Vec::new();
        };
        if r.members != round || !r.members.contains(&node) {
            // A state of an earlier round.
            return Vec::new();
        }
        r.states.insert(node, (ops, history));
        if r.states.len() < r.members.len() {
            return Vec::new();
        }
        let r = self.round.take().expect("checked above");
        self.merge(r)
    }

    fn merge(&mut self, round: Round) -> Vec<Effect> {
        // Histories: the union, by id.
        let mut history: BTreeMap<OpId, Entry> = BTreeMap::new();
        let mut ops: BTreeMap<OpId, Op> = BTreeMap::new();
        for (h, o) in round.states.into_values().map(|(o, h)| (h, o)) {
            for e in h {
                history.entry(e.id.clone()).or_insert(e);
            }
            for op in o {
                ops.entry(op.request.id.clone()).or_insert(op);
            }
        }
        let mut entries: Vec<Entry> = history.into_values().collect();
        entries.sort_by(|a, b| (a.completed_at, &a.id).cmp(&(b.completed_at, &b.id)));
        let excess = entries.len().saturating_sub(HISTORY_LIMIT);
        entries.drain(..excess);
        let finished: BTreeSet<OpId> = entries.iter().map(|e| e.id.clone()).collect();
        self.history = entries;
        // Operations: those not finished, per target oldest first (by the
        // time asked, then id).
        let running_before: BTreeSet<OpId> = self
            .queues
            .values()
            .filter_map(|q| q.front())
            .filter(|op| op.executioner == self.me)
            .map(|op| op.request.id.clone())
            .collect();
        let mut queues: BTreeMap<String, VecDeque<Op>> = BTreeMap::new();
        let mut all: Vec<Op> = ops
            .into_values()
            .filter(|op| !finished.contains(&op.request.id))
            .collect();
        all.sort_by(|a, b| (a.request.at, &a.request.id).cmp(&(b.request.at, &b.request.id)));
        for op in all {
            queues
                .entry(op.request.target.clone())
                .or_default()
                .push_back(op);
        }
        self.queues = queues;
        let mut effects = Vec::new();
        // Executioners: kept while members, reassigned otherwise; a front
        // operation that is now this node's and was not before is run.
        let members = self.members.clone();
        for q in self.queues.values_mut() {
            for op in q.iter_mut() {
                if !members.contains(&op.executioner) {
                    op.executioner = executioner(&op.request, &members);
                }
            }
            if let Some(front) = q.front()
                && front.executioner == self.me
                && !running_before.contains(&front.request.id)
            {
                effects.push(Effect::Execute(front.clone()));
            }
        }
        self.fail_unexecutable(&mut effects);
        for msg in std::mem::take(&mut self.held) {
            effects.extend(self.apply(msg));
        }
        effects
    }

    /// Operations nobody can run (no member but the target) end failed.
    fn fail_unexecutable(&mut self, effects: &mut Vec<Effect>) {
        let stuck: Vec<String> = self
            .queues
            .iter()
            .filter(|(_, q)| q.front().is_some_and(|op| op.executioner.is_empty()))
            .map(|(t, _)| t.clone())
            .collect();
        for target in stuck {
            let reason = format!("no node but {target} itself is there to fence it");
            effects.extend(self.finish_front(
                &target,
                Outcome::Failed,
                reason,
                String::new(),
                Vec::new(),
                None,
            ));
        }
    }

    fn apply(&mut self, msg: Message) -> Vec<Effect> {
        match msg {
            Message::Request(req) => self.apply_request(req),
            Message::Result {
                op,
                executioner,
                devices,
                ok,
                reason,
                at,
            } => {
                let Some(target) = self
                    .queues
                    .iter()
                    .find(|(_, q)| {
                        q.front()
                            .is_some_and(|f| f.request.id == op && f.executioner == executioner)
                    })
                    .map(|(t, _)| t.clone())
                else {
                    // A late result of an operation reassigned or ended.
                    return Vec::new();
                };
                let outcome = if ok { Outcome::Done } else { Outcome::Failed };
                self.finish_front(&target, outcome, reason, executioner, devices, Some(at))
            }
            Message::Confirm {
                id,
                target,
                client,
                at,
            } => {
                let mut effects = Vec::new();
                // Everything pending for the target ends: it is down.
                while self.queues.get(&target).is_some_and(|q| !q.is_empty()) {
                    effects.extend(self.finish_front(
                        &target,
                        Outcome::Confirmed,
                        format!("confirmed down by {client}"),
                        id.node.clone(),
                        Vec::new(),
                        Some(at),
                    ));
                }
                if effects.is_empty() {
                    let entry = Entry {
                        id: id.clone(),
                        target,
                        action: "off".into(),
                        origin: id.node.clone(),
                        client,
                        executioner: id.node,
                        devices: Vec::new(),
                        outcome: Outcome::Confirmed,
                        reason: "confirmed down by an operator".into(),
                        requested_at: at,
                        completed_at: at,
                        requests: 1,
                    };
                    self.record(entry.clone());
                    effects.push(Effect::Finished {
                        entry,
                        requests: Vec::new(),
                    });
                }
                effects
            }
            Message::State { .. } => Vec::new(),
        }
    }

    fn apply_request(&mut self, req: Request) -> Vec<Effect> {
        let q = self.queues.entry(req.target.clone()).or_default();
        if let Some(same) = q.iter_mut().find(|op| op.request.action == req.action) {
            same.joined.push(req);
            return Vec::new();
        }
        let op = Op {
            executioner: executioner(&req, &self.members),
            request: req,
            joined: Vec::new(),
        };
        q.push_back(op.clone());
        if q.len() > 1 {
            return Vec::new();
        }
        let mut effects = Vec::new();
        if op.executioner == self.me {
            effects.push(Effect::Execute(op));
        }
        self.fail_unexecutable(&mut effects);
        effects
    }

    fn finish_front(
        &mut self,
        target: &str,
        outcome: Outcome,
        reason: String,
        executioner: String,
        devices: Vec<String>,
        at: Option<i64>,
    ) -> Vec<Effect> {
        let Some(q) = self.queues.get_mut(target) else {
            return Vec::new();
        };
        let Some(op) = q.pop_front() else {
            return Vec::new();
        };
        let next = q.front().cloned();
        if q.is_empty() {
            self.queues.remove(target);
        }
        let mut requests = vec![op.request.clone()];
        requests.extend(op.joined.iter().cloned());
        let entry = Entry {
            id: op.request.id.clone(),
            target: target.to_string(),
            action: op.request.action.clone(),
            origin: op.request.id.node.clone(),
            client: op.request.client.clone(),
            executioner,
            devices,
            outcome,
            reason,
            requested_at: op.request.at,
            completed_at: at.unwrap_or(op.request.at),
            requests: requests.len() as u32,
        };
        self.record(entry.clone());
        let mut effects = vec![Effect::Finished { entry, requests }];
        if let Some(next) = next
            && next.executioner == self.me
        {
            effects.push(Effect::Execute(next));
        }
        effects
    }

    fn record(&mut self, entry: Entry) {
        self.history.push(entry);
        let excess = self.history.len().saturating_sub(HISTORY_LIMIT);
        self.history.drain(..excess);
    }
}

/// The executioner of a request among `members` (sorted names): the node
/// that asked, unless it is the target or gone; else the first member that
/// is not the target; empty when there is none.
pub fn executioner(req: &Request, members: &[String]) -> String {
    let origin = &req.id.node;
    if origin != &req.target && members.contains(origin) {
        return origin.clone();
    }
    members
        .iter()
        .find(|m| **m != req.target)
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cluster of fencers with a perfect total order: every broadcast is
    /// delivered to every member, in one global order.
    struct Cluster {
        nodes: BTreeMap<String, Fencing>,
        wire: VecDeque<Message>,
        /// Execute effects seen, by node.
        executed: Vec<(String, OpId)>,
        finished: Vec<(String, Entry, Vec<Request>)>,
    }

    impl Cluster {
        fn new(names: &[&str]) -> Cluster {
            let mut c = Cluster {
                nodes: names
                    .iter()
                    .map(|n| (n.to_string(), Fencing::new(n, 0)))
                    .collect(),
                wire: VecDeque::new(),
                executed: Vec::new(),
                finished: Vec::new(),
            };
            c.view(names);
            c
        }

        fn view(&mut self, names: &[&str]) {
            let members: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            for n in names {
                let effects = self
                    .nodes
                    .get_mut(*n)
                    .unwrap()
                    .group_changed(members.clone());
                self.effects(n, effects);
            }
            self.run();
        }

        fn effects(&mut self, node: &str, effects: Vec<Effect>) {
            for e in effects {
                match e {
                    Effect::Broadcast(m) => self.wire.push_back(m),
                    Effect::Execute(op) => self.executed.push((node.to_string(), op.request.id)),
                    Effect::Finished { entry, requests } => {
                        self.finished.push((node.to_string(), entry, requests))
                    }
                }
            }
        }

        fn run(&mut self) {
            while let Some(m) = self.wire.pop_front() {
                let names: Vec<String> = self.nodes.keys().cloned().collect();
                for n in names {
                    let effects = self.nodes.get_mut(&n).unwrap().deliver(m.clone());
                    self.effects(&n, effects);
                }
            }
        }

        fn ask(&mut self, node: &str, target: &str, action: &str) -> OpId {
            let req = self
                .nodes
                .get_mut(node)
                .unwrap()
                .request(target, action, "test", 0, 100);
            let id = req.id.clone();
            self.wire.push_back(Message::Request(req));
            self.run();
            id
        }

        fn result(&mut self, op: &OpId, executioner: &str, ok: bool) {
            self.wire.push_back(Message::Result {
                op: op.clone(),
                executioner: executioner.into(),
                devices: vec!["dev".into()],
                ok,
                reason: String::new(),
                at: 200,
            });
            self.run();
        }

        fn same_everywhere(&self) {
            let first = self.nodes.values().next().unwrap();
            for f in self.nodes.values() {
                assert_eq!(f.history, first.history, "histories differ");
                assert_eq!(f.queues, first.queues, "operations differ");
            }
        }
    }

    #[test]
    fn one_operation_per_target_whoever_asks() {
        let mut c = Cluster::new(&["n1", "n2", "n3"]);
        let a = c.ask("n1", "n3", "reboot");
        let b = c.ask("n2", "n3", "reboot");
        // Only n1 (who asked first) runs it; n2's request joined.
        assert_eq!(c.executed, [("n1".to_string(), a.clone())]);
        c.result(&a, "n1", true);
        assert_eq!(c.finished.len(), 3, "every node learns the result");
        let (_, entry, requests) = &c.finished[0];
        assert_eq!(
            (entry.outcome, entry.requests, entry.executioner.as_str()),
            (Outcome::Done, 2, "n1")
        );
        assert_eq!(
            requests.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            [a, b]
        );
        c.same_everywhere();
        assert_eq!(c.nodes["n2"].history().len(), 1);
    }

    #[test]
    fn a_different_action_waits_its_turn() {
        let mut c = Cluster::new(&["n1", "n2", "n3"]);
        let off = c.ask("n1", "n3", "off");
        let on = c.ask("n2", "n3", "on");
        assert_eq!(c.executed.len(), 1);
        c.result(&off, "n1", true);
        assert_eq!(
            c.executed[1],
            ("n2".to_string(), on.clone()),
            "the queued one starts"
        );
        c.result(&on, "n2", false);
        let outcomes: Vec<_> = c.nodes["n1"]
            .history()
            .iter()
            .map(|e| (e.action.as_str(), e.outcome))
            .collect();
        assert_eq!(outcomes, [("off", Outcome::Done), ("on", Outcome::Failed)]);
        c.same_everywhere();
    }

    #[test]
    fn the_target_does_not_fence_itself_and_a_lost_executioner_is_replaced() {
        let mut c = Cluster::new(&["n1", "n2", "n3"]);
        // n3 asks to fence n3: n1 (first member that is not n3) runs it.
        let a = c.ask("n3", "n3", "reboot");
        assert_eq!(c.executed, [("n1".to_string(), a.clone())]);
        // n1 dies before reporting: n2 takes over.
        c.nodes.remove("n1");
        c.view(&["n2", "n3"]);
        assert_eq!(c.executed[1], ("n2".to_string(), a.clone()));
        // A late result from n1 would be ignored; n2's counts.
        c.result(&a, "n1", true);
        assert!(c.finished.is_empty());
        c.result(&a, "n2", true);
        assert_eq!(c.finished.len(), 2);
        c.same_everywhere();
    }

    #[test]
    fn requests_during_a_round_wait_for_it() {
        let mut c = Cluster::new(&["n1", "n2"]);
        let members = vec!["n1".to_string(), "n2".to_string()];
        let e1 = c
            .nodes
            .get_mut("n1")
            .unwrap()
            .group_changed(members.clone());
        c.effects("n1", e1);
        let req = c
            .nodes
            .get_mut("n2")
            .unwrap()
            .request("n1", "off", "t", 0, 1);
        // The request is ordered before n2's state: held everywhere.
        c.wire.push_front(Message::Request(req));
        let e2 = c.nodes.get_mut("n2").unwrap().group_changed(members);
        c.effects("n2", e2);
        c.run();
        assert_eq!(c.executed.len(), 1, "applied once the round ended");
        c.same_everywhere();
    }

    #[test]
    fn partitions_merge_their_histories_and_operations() {
        // Two halves that fenced on their own.
        let mut left = Cluster::new(&["n1"]);
        let a = left.ask("n1", "n2", "off");
        left.result(&a, "n1", true);
        let b = left.ask("n1", "n3", "reboot");
        let mut right = Cluster::new(&["n2", "n3"]);
        let c_op = right.ask("n2", "n1", "reboot");
        right.result(&c_op, "n2", true);
        // Healed.
        let mut all = Cluster {
            nodes: left.nodes.into_iter().chain(right.nodes).collect(),
            wire: VecDeque::new(),
            executed: Vec::new(),
            finished: Vec::new(),
        };
        all.view(&["n1", "n2", "n3"]);
        all.same_everywhere();
        assert_eq!(all.nodes["n3"].history().len(), 2);
        // n1's reboot of n3 is still under way, still n1's: not restarted.
        assert!(all.executed.is_empty(), "{:?}", all.executed);
        all.result(&b, "n1", true);
        assert_eq!(all.nodes["n2"].history().len(), 3);
        all.same_everywhere();
    }

    #[test]
    fn confirmation_by_hand_ends_what_waits() {
        let mut c = Cluster::new(&["n1", "n2"]);
        c.ask("n1", "n2", "reboot");
        let m = c
            .nodes
            .get_mut("n1")
            .unwrap()
            .confirm("n2", "operator", 300);
        c.wire.push_back(m);
        c.run();
        let e = &c.nodes["n2"].history()[0];
        assert_eq!(e.outcome, Outcome::Confirmed);
        assert_eq!(c.nodes["n1"].ops().count(), 0);
        // Nothing pending: still recorded.
        let m = c
            .nodes
            .get_mut("n1")
            .unwrap()
            .confirm("n2", "operator", 400);
        c.wire.push_back(m);
        c.run();
        assert_eq!(c.nodes["n2"].history().len(), 2);
        c.same_everywhere();
    }

    #[test]
    fn alone_with_the_target_nobody_can_fence() {
        let mut c = Cluster::new(&["n1"]);
        c.ask("n1", "n1", "off");
        let e = &c.nodes["n1"].history()[0];
        assert_eq!(e.outcome, Outcome::Failed);
        assert!(e.reason.contains("no node but n1"), "{}", e.reason);
    }
}
