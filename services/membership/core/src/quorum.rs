//! Quorum: Corosync votequorum semantics as a pure state machine.
//!
//! [`Quorum`] decides whether the partition this node belongs to may run
//! resources. It is fed agreed views ([`Quorum::view_changed`]), the passing
//! of time ([`Quorum::tick`]) and operator requests
//! ([`Quorum::set_expected_votes`], as `corosync-quorumtool -e`); it owns no
//! clock and does no I/O. Every node of a view runs the same machine over
//! the same views, so every node of a partition reaches the same answer.
//!
//! The rules below are those of votequorum(5) and corosync.conf(5); where
//! Vigil differs it says so ("Vigil:").
//!
//! # Votes and quorum
//!
//! * Each configured node has a number of votes (`quorum_votes`, default 1).
//!   The *total votes* are the votes of the nodes in the current view; a node
//!   that is not in the configuration carries no vote.
//! * *Expected votes* start as `expected_votes` when configured, otherwise
//!   as the sum of the configured votes. They are never below the total
//!   votes: whenever more votes are present, expected votes rise to match.
//!   They come down only through last man standing or
//!   [`Quorum::set_expected_votes`].
//! * *Highest expected* is the greatest expected votes any member reports
//!   (see [`PeerReport`]); without peer reports it equals expected votes.
//! * *Quorum* (the votes needed) is
//!   `max(floor(highest_expected / 2) + 1, floor(total_votes / 2) + 1)`, and
//!   never lower than it was, except when last man standing or
//!   [`Quorum::set_expected_votes`] recalculate it.
//! * The partition is *quorate* when `total_votes >= quorum`, subject to
//!   wait_for_all and helped by auto_tie_breaker below.
//!
//! # two_node
//!
//! Quorum is set to 1 while at most two nodes are members, so either node
//! of a two-node cluster stays quorate when the other is lost; fencing
//! decides which one survives. `two_node` implies `wait_for_all` unless
//! `wait_for_all` is set explicitly. Vigil: two_node is refused unless
//! there are exactly two configured nodes with one vote each and expected
//! votes are 2 (corosync silently stops applying it with a third node), and
//! together with auto_tie_breaker (corosync disables two_node then).
//! Because both halves are quorate by design, two_node is the one
//! configuration where two disjoint partitions may both be quorate.
//!
//! # wait_for_all
//!
//! While *waiting*, the partition is not quorate unless its total votes
//! equal expected votes, that is, unless all nodes are present at once.
//! Waiting starts at start-up, ends the first time that condition holds,
//! and — as in corosync — starts again whenever the partition is not
//! quorate: a partition that lost quorum must see all nodes again (or be
//! joined by a quorate node that is not waiting, see [`PeerReport`]) before
//! it is quorate again. Lowering expected votes with
//! [`Quorum::set_expected_votes`] to the votes present ends the wait.
//!
//! # last_man_standing
//!
//! A timer of `last_man_standing_window_ms` is (re)started by every view
//! change in which a node left and the remaining votes still reach quorum,
//! and, with auto_tie_breaker, by every view at or below quorum that holds
//! the tie-breaker node. When it expires and the partition is still quorate,
//! expected votes are recalculated to the current total votes and quorum to
//! a majority of them (this may lower both). So an 8-node cluster can shrink
//! 8 → 5 → 3 → 2 one window at a time; from 2 to 1 only with
//! auto_tie_breaker, whose tie-break keeps the lone holder of the tie-breaker
//! quorate long enough for the window to expire. When nodes return,
//! expected votes rise again with the total votes present. Every node must
//! have exactly one vote (corosync disables the option otherwise; Vigil
//! refuses the configuration). It should be combined with wait_for_all.
//!
//! # auto_tie_breaker
//!
//! When the total votes are exactly half of `expected_votes` (an even
//! split), the partition holding the tie-breaker is quorate, provided the
//! nodes that may be on the other side have fewer votes than quorum. Unlike
//! corosync, Vigil does not break a "half minus one" split of odd expected
//! votes (1 of 3, 2 of 5): the other side then holds a majority on its own,
//! and nodes hidden by a one-way cut may be on it, so both sides could be
//! quorate. The tie-breaker is:
//! * [`TieBreaker::Lowest`] / [`TieBreaker::Highest`]: the lowest / highest
//!   node id of the last view in which the partition was quorate by votes
//!   (none before the first such view);
//! * [`TieBreaker::List`]: the first listed node present in this view, and
//!   only if no node listed before it may be on the other side.
//!
//! "May be on the other side" means: was a member of some view since this
//! node was last quorate (that view included) and is not a member now.
//! Vigil differs from corosync here in two ways, both for safety. Corosync
//! looks at the previous view only, so a second view with the same members
//! (a new ring after a token loss) forgets the other side, and the losing
//! half of a split could then claim the tie-breaker; and corosync counts
//! nodes where Vigil counts votes, so unequal votes cannot defeat the test.
//! With an odd number of votes auto_tie_breaker requires wait_for_all
//! (corosync disables auto_tie_breaker, or refuses to start with
//! last_man_standing); Vigil refuses the configuration.
//!
//! # Safety
//!
//! For one configuration and history, two disjoint subsets of the current
//! view are never both quorate (two_node excepted, see above); the tests
//! check this over many generated configurations, histories, splits, later
//! losses and windows. Nodes from outside the view that return in the very
//! view of the split can still make a second quorate partition, as in
//! corosync: when expected votes were configured below the sum of votes or
//! lowered by last man standing, or when a half-minus-one tie-break (odd
//! expected votes) meets the return of the missing node. Against nodes that
//! return later, wait_for_all is the guard: a partition that lost quorum
//! must see all nodes again.
//!
//! Not implemented: quorum devices, `allow_downscale` (documented by
//! corosync as incomplete and unsupported, and it needs clean-leave
//! information views do not carry), `expected_votes_tracking` (needs disk)
//! and run-time changes of node votes.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

use crate::NodeId;

/// Corosync's default `last_man_standing_window`, in milliseconds.
pub const DEFAULT_LAST_MAN_STANDING_WINDOW_MS: u64 = 10_000;

/// Which node breaks an even split (`auto_tie_breaker_node`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TieBreaker {
    /// The lowest node id of the last quorate view (corosync `lowest`).
    #[default]
    Lowest,
    /// The highest node id of the last quorate view (corosync `highest`).
    Highest,
    /// The first of these nodes that is present (corosync: a list of ids).
    List(Vec<NodeId>),
}

/// The `quorum { }` options of corosync.conf that Vigil implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumOptions {
    /// `expected_votes`; `None`: the sum of the configured votes.
    pub expected_votes: Option<u32>,
    /// `two_node`.
    pub two_node: bool,
    /// `wait_for_all`; `None`: the default, which is `two_node`.
    pub wait_for_all: Option<bool>,
    /// `last_man_standing`.
    pub last_man_standing: bool,
    /// `last_man_standing_window`, in milliseconds.
    pub last_man_standing_window_ms: u64,
    /// `auto_tie_breaker`.
    pub auto_tie_breaker: bool,
    /// `auto_tie_breaker_node`; only used with `auto_tie_breaker`.
    pub auto_tie_breaker_node: TieBreaker,
}

impl Default for QuorumOptions {
    fn default() -> Self {
        QuorumOptions {
            expected_votes: None,
            two_node: false,
            wait_for_all: None,
            last_man_standing: false,
            last_man_standing_window_ms: DEFAULT_LAST_MAN_STANDING_WINDOW_MS,
            auto_tie_breaker: false,
            auto_tie_breaker_node: TieBreaker::Lowest,
        }
    }
}

/// A configuration or request votequorum refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuorumError {
    #[error("the node list is empty: configure at least one node with its votes")]
    NoNodes,
    #[error("this node (id {0}) is not in the node list: add it, or fix the local node id")]
    LocalNodeNotConfigured(NodeId),
    #[error(
        "node {0} has quorum_votes 0: give it at least 1 vote, or remove it from the node list"
    )]
    ZeroVotes(NodeId),
    #[error("the configured votes add up to more than {max}: lower quorum_votes", max = u32::MAX)]
    TooManyVotes,
    #[error(
        "expected_votes is 0: leave it unset to use the sum of the node votes, or set it to at least 1"
    )]
    ZeroExpectedVotes,
    #[error(
        "two_node needs exactly 2 nodes with 1 vote each, but the node list has {nodes} node(s) \
         with {votes} vote(s): remove two_node, or fix the node list"
    )]
    TwoNodeNeedsTwoVotes { nodes: usize, votes: u64 },
    #[error(
        "two_node needs expected_votes 2, not {0}: leave expected_votes unset, or remove two_node"
    )]
    TwoNodeExpectedVotes(u32),
    #[error(
        "two_node and auto_tie_breaker are both set, but two_node leaves the choice to a fence \
         race and auto_tie_breaker to node ids: remove one of them"
    )]
    TwoNodeWithAutoTieBreaker,
    #[error(
        "last_man_standing needs every node to have exactly 1 vote, but node {node} has \
         {votes}: set its quorum_votes to 1, or remove last_man_standing"
    )]
    LastManStandingUnequalVotes { node: NodeId, votes: u32 },
    #[error(
        "auto_tie_breaker with an odd number of votes ({0}) needs wait_for_all, or an isolated \
         majority without the tie-breaker could become quorate on restart: set wait_for_all, \
         or remove auto_tie_breaker"
    )]
    AutoTieBreakerNeedsWaitForAll(u64),
    #[error("auto_tie_breaker_node is an empty list: list node ids, or use lowest or highest")]
    TieBreakerListEmpty,
    #[error(
        "auto_tie_breaker_node names node {0}, which is not in the node list: remove it from \
         auto_tie_breaker_node, or add the node"
    )]
    TieBreakerUnknownNode(NodeId),
    #[error("auto_tie_breaker_node names node {0} twice: list each node once")]
    TieBreakerDuplicateNode(NodeId),
    #[error("expected votes cannot be 0: give at least the {total} votes present")]
    SetExpectedZero { total: u32 },
    #[error(
        "expected votes {expected} are fewer than the {total} votes present: give at least \
         {total}"
    )]
    SetExpectedBelowTotal { expected: u32, total: u32 },
    #[error(
        "expected votes {expected} would need {quorum} votes for quorum but only {total} are \
         present, so the cluster would lose quorum: give at most {max}"
    )]
    SetExpectedWouldLoseQuorum {
        expected: u32,
        quorum: u32,
        total: u32,
        max: u32,
    },
    #[error("two_node is set, so expected votes must stay 2, not {0}: remove two_node first")]
    SetExpectedTwoNode(u32),
}

/// The flags `corosync-quorumtool -s` shows, besides `Quorate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuorumFlags {
    /// `2Node`: two_node is in effect.
    pub two_node: bool,
    /// `WaitForAll`: wait_for_all is in effect (set or implied by two_node).
    pub wait_for_all: bool,
    /// wait_for_all is still waiting for all nodes (corosync's
    /// `runtime.votequorum.wait_for_all_status`).
    pub wait_for_all_waiting: bool,
    /// `LastManStanding`.
    pub last_man_standing: bool,
    /// A last man standing window is running; see [`Quorum::next_tick_ms`].
    pub last_man_standing_pending: bool,
    /// `AutoTieBreaker`.
    pub auto_tie_breaker: bool,
}

impl fmt::Display for QuorumFlags {
    /// Space-separated names as `corosync-quorumtool` prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.two_node, "2Node"),
            (self.wait_for_all, "WaitForAll"),
            (self.last_man_standing, "LastManStanding"),
            (self.auto_tie_breaker, "AutoTieBreaker"),
        ];
        let mut first = true;
        for (on, name) in names {
            if on {
                if !first {
                    f.write_str(" ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Quorum as seen from this node, as `corosync-quorumtool -s` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    pub quorate: bool,
    /// This node's expected votes.
    pub expected_votes: u32,
    /// The highest expected votes of any member.
    pub highest_expected: u32,
    /// The votes of the current members.
    pub total_votes: u32,
    /// The votes needed to be quorate.
    pub quorum: u32,
    /// The current members, sorted.
    pub members: Vec<NodeId>,
    pub flags: QuorumFlags,
}

/// What a member says about its own quorum state when a view forms
/// (corosync's nodeinfo message); see [`Quorum::view_changed_with_peers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerReport {
    pub node: NodeId,
    /// The peer was quorate (in its previous view).
    pub quorate: bool,
    /// The peer's expected votes.
    pub expected_votes: u32,
    /// The peer is still waiting for all nodes.
    pub wait_for_all_waiting: bool,
}

/// The votequorum state machine of one node; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorum {
    me: NodeId,
    votes: BTreeMap<NodeId, u32>,
    two_node: bool,
    wait_for_all: bool,
    last_man_standing: bool,
    lms_window_ms: u64,
    tie_breaker: Option<TieBreaker>,

    expected: u32,
    quorum: u32,
    quorate: bool,
    wfa_waiting: bool,
    members: Vec<NodeId>,
    /// Every member of every view since the last view in which this node
    /// was quorate, that one included (sorted): who may be on the other
    /// side of a split.
    since_quorate: Vec<NodeId>,
    /// Expected votes reported by quorate members of the current view.
    peer_expected: BTreeMap<NodeId, u32>,
    /// Lowest and highest configured member of the last view that was
    /// quorate by votes (the tie-breakers for `Lowest` and `Highest`).
    lowest: Option<NodeId>,
    highest: Option<NodeId>,
    lms_deadline_ms: Option<u64>,
}

impl Quorum {
    /// Checks the configuration and starts with no view: not quorate until
    /// the first [`Quorum::view_changed`] (which is normally `[me]` alone,
    /// or more).
    pub fn new(
        options: QuorumOptions,
        votes: BTreeMap<NodeId, u32>,
        me: NodeId,
    ) -> Result<Quorum, QuorumError> {
        if votes.is_empty() {
            return Err(QuorumError::NoNodes);
        }
        if !votes.contains_key(&me) {
            return Err(QuorumError::LocalNodeNotConfigured(me));
        }
        if let Some((&node, _)) = votes.iter().find(|(_, v)| **v == 0) {
            return Err(QuorumError::ZeroVotes(node));
        }
        let sum: u64 = votes.values().map(|&v| u64::from(v)).sum();
        let sum32 = u32::try_from(sum).map_err(|_| QuorumError::TooManyVotes)?;
        let expected = match options.expected_votes {
            Some(0) => return Err(QuorumError::ZeroExpectedVotes),
            Some(e) => e,
            None => sum32,
        };
        let wait_for_all = options.wait_for_all.unwrap_or(options.two_node);
        if options.two_node {
            if options.auto_tie_breaker {
                return Err(QuorumError::TwoNodeWithAutoTieBreaker);
            }
            if votes.len() != 2 || votes.values().any(|&v| v != 1) {
                return Err(QuorumError::TwoNodeNeedsTwoVotes {
                    nodes: votes.len(),
                    votes: sum,
                });
            }
            if expected != 2 {
                return Err(QuorumError::TwoNodeExpectedVotes(expected));
            }
        }
        if options.last_man_standing
            && let Some((&node, &v)) = votes.iter().find(|(_, v)| **v != 1)
        {
            return Err(QuorumError::LastManStandingUnequalVotes { node, votes: v });
        }
        let tie_breaker = if options.auto_tie_breaker {
            if let TieBreaker::List(list) = &options.auto_tie_breaker_node {
                if list.is_empty() {
                    return Err(QuorumError::TieBreakerListEmpty);
                }
                for (i, n) in list.iter().enumerate() {
                    if !votes.contains_key(n) {
                        return Err(QuorumError::TieBreakerUnknownNode(*n));
                    }
                    if list[..i].contains(n) {
                        return Err(QuorumError::TieBreakerDuplicateNode(*n));
                    }
                }
            }
            let odd = if sum % 2 == 1 {
                Some(sum)
            } else if expected % 2 == 1 {
                Some(u64::from(expected))
            } else {
                None
            };
            if let (Some(odd), false) = (odd, wait_for_all) {
                return Err(QuorumError::AutoTieBreakerNeedsWaitForAll(odd));
            }
            Some(options.auto_tie_breaker_node)
        } else {
            None
        };
        let mut q = Quorum {
            me,
            votes,
            two_node: options.two_node,
            wait_for_all,
            last_man_standing: options.last_man_standing,
            lms_window_ms: options.last_man_standing_window_ms,
            tie_breaker,
            expected,
            quorum: 0,
            quorate: false,
            wfa_waiting: wait_for_all,
            members: Vec::new(),
            since_quorate: Vec::new(),
            peer_expected: BTreeMap::new(),
            lowest: None,
            highest: None,
            lms_deadline_ms: None,
        };
        q.quorum = q.calculate_quorum(q.expected, 0, true);
        Ok(q)
    }

    /// A new agreed view with these members (this node is counted even if
    /// left out). Same as [`Quorum::view_changed_with_peers`] without
    /// reports.
    pub fn view_changed(&mut self, now_ms: u64, members: &[NodeId]) -> QuorumStatus {
        self.view_changed_with_peers(now_ms, members, &[])
    }

    /// A new agreed view, with what its members reported about their own
    /// quorum state (corosync exchanges these while a view forms). Reports
    /// from nodes outside the view, or from this node, are ignored. A
    /// quorate peer makes a node that was not quorate before this view
    /// adopt its expected votes (so a restarted node takes up the expected
    /// votes last man standing lowered), counts towards highest expected,
    /// and, if it is not waiting for all, ends this node's wait_for_all.
    pub fn view_changed_with_peers(
        &mut self,
        now_ms: u64,
        members: &[NodeId],
        peers: &[PeerReport],
    ) -> QuorumStatus {
        let mut new: Vec<NodeId> = members.to_vec();
        new.push(self.me);
        new.sort_unstable();
        new.dedup();

        let left = self.members.iter().any(|n| new.binary_search(n).is_err());
        if self.last_man_standing {
            let total = self.votes_of(&new);
            let shrunk_with_quorum = left && total >= self.quorum;
            let holds_tie =
                total <= self.quorum && self.tie_breaker.is_some() && self.holds_tie_breaker(&new);
            if shrunk_with_quorum || holds_tie {
                self.lms_deadline_ms = Some(now_ms.saturating_add(self.lms_window_ms));
            }
        }
        let was_quorate = self.quorate;
        self.members = new;
        self.peer_expected.clear();

        let mut relevant: Vec<&PeerReport> = peers
            .iter()
            .filter(|p| p.node != self.me && self.is_member(p.node) && p.expected_votes > 0)
            .collect();
        relevant.sort_by_key(|p| p.node);
        let adopt = if was_quorate {
            None
        } else {
            relevant
                .iter()
                .filter(|p| p.quorate)
                .map(|p| p.expected_votes)
                .max()
        };
        for p in &relevant {
            if p.quorate {
                self.peer_expected.insert(p.node, p.expected_votes);
                if self.wait_for_all && !p.wait_for_all_waiting {
                    self.wfa_waiting = false;
                }
            }
        }
        if let Some(e) = adopt {
            self.expected = e;
        }
        self.recalculate(adopt.is_some(), false);
        self.status()
    }

    /// Time passes. Returns the new status when something changed: the last
    /// man standing window expired while quorate and expected votes and
    /// quorum were recalculated to the votes present.
    pub fn tick(&mut self, now_ms: u64) -> Option<QuorumStatus> {
        match self.lms_deadline_ms {
            Some(deadline) if now_ms >= deadline => {
                self.lms_deadline_ms = None;
                if !self.quorate {
                    return None;
                }
                let before = self.status();
                self.recalculate(true, true);
                let after = self.status();
                (after != before).then_some(after)
            }
            _ => None,
        }
    }

    /// When [`Quorum::tick`] next has something to do, if ever.
    pub fn next_tick_ms(&self) -> Option<u64> {
        self.lms_deadline_ms
    }

    /// Sets expected votes at run time, as `corosync-quorumtool -e`; this
    /// may lower quorum. Refused, as by corosync, when `expected` is below
    /// the votes present, or when a quorate partition would need more votes
    /// than it has. Vigil also refuses anything but 2 under two_node.
    pub fn set_expected_votes(
        &mut self,
        now_ms: u64,
        expected: u32,
    ) -> Result<QuorumStatus, QuorumError> {
        // Corosync's -e does not touch the last man standing window.
        let _ = now_ms;
        self.check_expected_votes(expected)?;
        self.expected = expected;
        self.peer_expected.clear();
        self.recalculate(true, false);
        Ok(self.status())
    }

    /// Whether [`Quorum::set_expected_votes`] would accept `expected` now,
    /// so that a request can be refused before it is sent to the cluster.
    ///
    /// # Errors
    ///
    /// The error `set_expected_votes` would return.
    pub fn check_expected_votes(&self, expected: u32) -> Result<(), QuorumError> {
        let total = self.total_votes();
        if expected == 0 {
            return Err(QuorumError::SetExpectedZero { total });
        }
        if self.two_node && expected != 2 {
            return Err(QuorumError::SetExpectedTwoNode(expected));
        }
        if expected < total {
            return Err(QuorumError::SetExpectedBelowTotal { expected, total });
        }
        let quorum = self.calculate_quorum(expected, total, true);
        if self.quorate && quorum > total {
            return Err(QuorumError::SetExpectedWouldLoseQuorum {
                expected,
                quorum,
                total,
                max: total.saturating_mul(2).saturating_sub(1).max(total),
            });
        }
        Ok(())
    }

    /// The current state.
    pub fn status(&self) -> QuorumStatus {
        QuorumStatus {
            quorate: self.quorate,
            expected_votes: self.expected,
            highest_expected: self.highest_expected(),
            total_votes: self.total_votes(),
            quorum: self.quorum,
            members: self.members.clone(),
            flags: QuorumFlags {
                two_node: self.two_node,
                wait_for_all: self.wait_for_all,
                wait_for_all_waiting: self.wait_for_all && self.wfa_waiting,
                last_man_standing: self.last_man_standing,
                last_man_standing_pending: self.lms_deadline_ms.is_some(),
                auto_tie_breaker: self.tie_breaker.is_some(),
            },
        }
    }

    /// What this node tells the members of a forming view (see
    /// [`Quorum::view_changed_with_peers`]).
    pub fn report(&self) -> PeerReport {
        PeerReport {
            node: self.me,
            quorate: self.quorate,
            expected_votes: self.expected,
            wait_for_all_waiting: self.wait_for_all && self.wfa_waiting,
        }
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.me
    }

    fn is_member(&self, n: NodeId) -> bool {
        self.members.binary_search(&n).is_ok()
    }

    fn votes_of(&self, nodes: &[NodeId]) -> u32 {
        // Fits: the configured votes add up to at most u32::MAX, and nodes
        // are distinct.
        nodes
            .iter()
            .map(|n| self.votes.get(n).copied().unwrap_or(0))
            .fold(0u32, u32::saturating_add)
    }

    fn total_votes(&self) -> u32 {
        self.votes_of(&self.members)
    }

    fn highest_expected(&self) -> u32 {
        self.members
            .iter()
            .filter_map(|n| self.peer_expected.get(n))
            .copied()
            .fold(self.expected, u32::max)
    }

    /// Votes needed with these expected and total votes; never below the
    /// current quorum unless `allow_decrease`.
    fn calculate_quorum(&self, highest_expected: u32, total: u32, allow_decrease: bool) -> u32 {
        let mut q = (highest_expected / 2 + 1).max(total / 2 + 1);
        if !allow_decrease {
            q = q.max(self.quorum);
        }
        if self.two_node && self.members.len() <= 2 {
            q = 1;
        }
        q
    }

    /// `by_current_members`: the last man standing recalculation, which
    /// sets expected votes to the votes present.
    fn recalculate(&mut self, allow_decrease: bool, by_current_members: bool) {
        let total = self.total_votes();
        if total > self.expected {
            self.expected = total;
        }
        let highest = if by_current_members {
            total
        } else {
            self.highest_expected()
        };
        self.quorum = self.calculate_quorum(highest, total, allow_decrease);
        if by_current_members {
            self.expected = total;
            self.peer_expected.clear();
        }
        self.evaluate(total);
    }

    fn evaluate(&mut self, total: u32) {
        let quorate = self.decide(total);
        self.quorate = quorate;
        if self.wait_for_all {
            self.wfa_waiting = !quorate;
        }
        if quorate {
            self.since_quorate.clone_from(&self.members);
        } else {
            self.since_quorate.extend_from_slice(&self.members);
            self.since_quorate.sort_unstable();
            self.since_quorate.dedup();
        }
    }

    fn decide(&mut self, total: u32) -> bool {
        if self.wait_for_all && self.wfa_waiting {
            if total != self.expected {
                return false;
            }
            self.wfa_waiting = false;
        }
        if self.quorum <= total {
            let mut configured = self
                .members
                .iter()
                .copied()
                .filter(|n| self.votes.contains_key(n));
            self.lowest = configured.next();
            self.highest = configured.next_back().or(self.lowest);
            return true;
        }
        // Only an exact half: with odd expected votes the other side of a
        // "half minus one" split has a majority by itself, and nodes alive
        // outside this node's last quorate view may be there (a one-way cut
        // hides them), so the tie-break could give both sides quorum.
        if self.tie_breaker.is_none() || u64::from(total) * 2 != u64::from(self.expected) {
            return false;
        }
        let maybe_other_side: Vec<NodeId> = self
            .since_quorate
            .iter()
            .copied()
            .filter(|n| !self.is_member(*n))
            .collect();
        self.votes_of(&maybe_other_side) < self.quorum && self.holds_tie_breaker(&self.members)
    }

    /// Whether `members` hold the tie-breaker.
    fn holds_tie_breaker(&self, members: &[NodeId]) -> bool {
        let has = |set: &[NodeId], n: &NodeId| set.binary_search(n).is_ok();
        match &self.tie_breaker {
            None => false,
            Some(TieBreaker::Lowest) => self.lowest.is_some_and(|n| has(members, &n)),
            Some(TieBreaker::Highest) => self.highest.is_some_and(|n| has(members, &n)),
            Some(TieBreaker::List(list)) => match list.iter().position(|n| has(members, n)) {
                // A node listed earlier that was with us since we were last
                // quorate may be on the other side now.
                Some(i) => !list[..i].iter().any(|n| has(&self.since_quorate, n)),
                None => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ones(n: NodeId) -> BTreeMap<NodeId, u32> {
        (1..=n).map(|i| (i, 1)).collect()
    }

    fn q(options: QuorumOptions, votes: BTreeMap<NodeId, u32>, me: NodeId) -> Quorum {
        Quorum::new(options, votes, me).expect("valid configuration")
    }

    fn summary(s: &QuorumStatus) -> (bool, u32, u32) {
        (s.quorate, s.expected_votes, s.quorum)
    }

    #[test]
    fn no_view_yet_is_not_quorate() {
        let qu = q(QuorumOptions::default(), ones(3), 1);
        let s = qu.status();
        assert_eq!(summary(&s), (false, 3, 2));
        assert!(s.members.is_empty());
        assert_eq!(s.total_votes, 0);
    }

    #[test]
    fn majority_of_three() {
        let mut qu = q(QuorumOptions::default(), ones(3), 1);
        assert_eq!(summary(&qu.view_changed(0, &[1])), (false, 3, 2));
        assert_eq!(summary(&qu.view_changed(1, &[1, 2])), (true, 3, 2));
        assert_eq!(summary(&qu.view_changed(2, &[1, 2, 3])), (true, 3, 2));
        assert_eq!(summary(&qu.view_changed(3, &[1])), (false, 3, 2));
    }

    #[test]
    fn local_node_is_always_a_member() {
        let mut qu = q(QuorumOptions::default(), ones(3), 2);
        let s = qu.view_changed(0, &[3]);
        assert_eq!(s.members, vec![2, 3]);
        assert!(s.quorate);
    }

    #[test]
    fn unknown_nodes_carry_no_vote() {
        let mut qu = q(QuorumOptions::default(), ones(3), 1);
        let s = qu.view_changed(0, &[1, 9]);
        assert_eq!(s.members, vec![1, 9]);
        assert_eq!(s.total_votes, 1);
        assert!(!s.quorate);
    }

    #[test]
    fn expected_rises_with_votes_present_and_quorum_never_falls() {
        let opts = QuorumOptions {
            expected_votes: Some(2),
            ..QuorumOptions::default()
        };
        let mut qu = q(opts, ones(5), 1);
        assert_eq!(summary(&qu.view_changed(0, &[1, 2])), (true, 2, 2));
        assert_eq!(summary(&qu.view_changed(1, &[1, 2, 3, 4])), (true, 4, 3));
        // Back to two: expected stays 4, quorum stays 3.
        assert_eq!(summary(&qu.view_changed(2, &[1, 2])), (false, 4, 3));
    }

    #[test]
    fn rejects_bad_configurations() {
        let e = |o: QuorumOptions, v: BTreeMap<NodeId, u32>, me| Quorum::new(o, v, me).unwrap_err();
        assert_eq!(
            e(QuorumOptions::default(), BTreeMap::new(), 1),
            QuorumError::NoNodes
        );
        assert_eq!(
            e(QuorumOptions::default(), ones(3), 4),
            QuorumError::LocalNodeNotConfigured(4)
        );
        assert_eq!(
            e(QuorumOptions::default(), [(1, 1), (2, 0)].into(), 1),
            QuorumError::ZeroVotes(2)
        );
        assert_eq!(
            e(QuorumOptions::default(), [(1, u32::MAX), (2, 1)].into(), 1),
            QuorumError::TooManyVotes
        );
        let zero = QuorumOptions {
            expected_votes: Some(0),
            ..QuorumOptions::default()
        };
        assert_eq!(e(zero, ones(3), 1), QuorumError::ZeroExpectedVotes);
        let two = QuorumOptions {
            two_node: true,
            ..QuorumOptions::default()
        };
        assert_eq!(
            e(two.clone(), ones(3), 1),
            QuorumError::TwoNodeNeedsTwoVotes { nodes: 3, votes: 3 }
        );
        assert_eq!(
            e(two.clone(), [(1, 2), (2, 1)].into(), 1),
            QuorumError::TwoNodeNeedsTwoVotes { nodes: 2, votes: 3 }
        );
        let two_ev = QuorumOptions {
            expected_votes: Some(3),
            ..two.clone()
        };
        assert_eq!(e(two_ev, ones(2), 1), QuorumError::TwoNodeExpectedVotes(3));
        let two_atb = QuorumOptions {
            auto_tie_breaker: true,
            ..two
        };
        assert_eq!(
            e(two_atb, ones(2), 1),
            QuorumError::TwoNodeWithAutoTieBreaker
        );
        let lms = QuorumOptions {
            last_man_standing: true,
            ..QuorumOptions::default()
        };
        assert_eq!(
            e(lms, [(1, 1), (2, 1), (3, 2)].into(), 1),
            QuorumError::LastManStandingUnequalVotes { node: 3, votes: 2 }
        );
        let atb = QuorumOptions {
            auto_tie_breaker: true,
            ..QuorumOptions::default()
        };
        assert_eq!(
            e(atb.clone(), ones(5), 1),
            QuorumError::AutoTieBreakerNeedsWaitForAll(5)
        );
        let atb_ev = QuorumOptions {
            expected_votes: Some(5),
            ..atb.clone()
        };
        assert_eq!(
            e(atb_ev, ones(4), 1),
            QuorumError::AutoTieBreakerNeedsWaitForAll(5)
        );
        let list = |l: Vec<NodeId>| QuorumOptions {
            auto_tie_breaker_node: TieBreaker::List(l),
            ..atb.clone()
        };
        assert_eq!(
            e(list(vec![]), ones(4), 1),
            QuorumError::TieBreakerListEmpty
        );
        assert_eq!(
            e(list(vec![2, 7]), ones(4), 1),
            QuorumError::TieBreakerUnknownNode(7)
        );
        assert_eq!(
            e(list(vec![2, 3, 2]), ones(4), 1),
            QuorumError::TieBreakerDuplicateNode(2)
        );
        // Odd with wait_for_all is fine; a list is ignored without ATB.
        let odd_wfa = QuorumOptions {
            wait_for_all: Some(true),
            ..atb
        };
        assert!(Quorum::new(odd_wfa, ones(5), 1).is_ok());
        let ignored = QuorumOptions {
            auto_tie_breaker_node: TieBreaker::List(vec![99]),
            ..QuorumOptions::default()
        };
        assert!(Quorum::new(ignored, ones(4), 1).is_ok());
    }

    #[test]
    fn error_messages_name_the_option_and_the_fix() {
        let msg = QuorumError::TwoNodeNeedsTwoVotes { nodes: 3, votes: 3 }.to_string();
        assert!(
            msg.contains("two_node") && msg.contains("remove two_node"),
            "{msg}"
        );
        let msg = QuorumError::TieBreakerUnknownNode(7).to_string();
        assert!(
            msg.contains("auto_tie_breaker_node") && msg.contains("node 7"),
            "{msg}"
        );
        let msg = QuorumError::SetExpectedBelowTotal {
            expected: 1,
            total: 3,
        }
        .to_string();
        assert!(msg.contains("at least 3"), "{msg}");
    }

    #[test]
    fn two_node_implies_wait_for_all() {
        let opts = QuorumOptions {
            two_node: true,
            ..QuorumOptions::default()
        };
        let mut qu = q(opts, ones(2), 1);
        let s = qu.view_changed(0, &[1]);
        assert_eq!(summary(&s), (false, 2, 1));
        assert!(s.flags.two_node && s.flags.wait_for_all && s.flags.wait_for_all_waiting);
        assert_eq!(s.flags.to_string(), "2Node WaitForAll");
        let s = qu.view_changed(1, &[1, 2]);
        assert_eq!(summary(&s), (true, 2, 1));
        assert!(!s.flags.wait_for_all_waiting);
        assert_eq!(summary(&qu.view_changed(2, &[1])), (true, 2, 1));
    }

    #[test]
    fn wait_for_all_rearms_after_quorum_loss() {
        let opts = QuorumOptions {
            wait_for_all: Some(true),
            ..QuorumOptions::default()
        };
        let mut qu = q(opts, ones(3), 1);
        assert!(!qu.view_changed(0, &[1, 2]).quorate);
        assert!(qu.view_changed(1, &[1, 2, 3]).quorate);
        assert!(qu.view_changed(2, &[1, 2]).quorate);
        let s = qu.view_changed(3, &[1]);
        assert!(!s.quorate && s.flags.wait_for_all_waiting);
        // A majority is no longer enough: all three must be seen again.
        assert!(!qu.view_changed(4, &[1, 2]).quorate);
        assert!(qu.view_changed(5, &[1, 2, 3]).quorate);
    }

    #[test]
    fn wait_for_all_ends_when_joined_by_a_quorate_peer() {
        let opts = QuorumOptions {
            wait_for_all: Some(true),
            ..QuorumOptions::default()
        };
        // Node 2 restarts while 1 (and 3, since lost) kept quorum.
        let mut qu = q(opts, ones(3), 2);
        assert!(!qu.view_changed(0, &[2]).quorate);
        let peer = PeerReport {
            node: 1,
            quorate: true,
            expected_votes: 3,
            wait_for_all_waiting: false,
        };
        let s = qu.view_changed_with_peers(1, &[1, 2], &[peer]);
        assert!(s.quorate && !s.flags.wait_for_all_waiting);
        // A waiting peer does not end the wait, nor does a non-member.
        let mut qu2 = q(
            QuorumOptions {
                wait_for_all: Some(true),
                ..QuorumOptions::default()
            },
            ones(3),
            2,
        );
        let waiting = PeerReport {
            wait_for_all_waiting: true,
            ..peer
        };
        let outsider = PeerReport { node: 3, ..peer };
        assert!(
            !qu2.view_changed_with_peers(1, &[1, 2], &[waiting, outsider])
                .quorate
        );
    }

    #[test]
    fn restarted_node_adopts_lowered_expected_votes() {
        let mut qu = q(QuorumOptions::default(), ones(5), 3);
        assert_eq!(summary(&qu.view_changed(0, &[3])), (false, 5, 3));
        let peers = [1, 2].map(|node| PeerReport {
            node,
            quorate: true,
            expected_votes: 2,
            wait_for_all_waiting: false,
        });
        // 1 and 2 shrank to expected 2 with last man standing.
        let s = qu.view_changed_with_peers(1, &[1, 2, 3], &peers);
        assert_eq!(summary(&s), (true, 3, 2));
        assert_eq!(s.highest_expected, 3);
    }

    #[test]
    fn higher_expected_of_a_quorate_peer_raises_quorum() {
        let mut qu = q(QuorumOptions::default(), ones(5), 1);
        assert!(qu.view_changed(0, &[1, 2, 3]).quorate);
        let peer = PeerReport {
            node: 4,
            quorate: true,
            expected_votes: 9,
            wait_for_all_waiting: false,
        };
        let s = qu.view_changed_with_peers(1, &[1, 2, 3, 4], &[peer]);
        assert_eq!(s.highest_expected, 9);
        assert_eq!(s.quorum, 5);
        assert!(!s.quorate);
        assert_eq!(qu.report().expected_votes, 5);
    }

    #[test]
    fn last_man_standing_timer_restarts_on_each_loss() {
        let opts = QuorumOptions {
            last_man_standing: true,
            last_man_standing_window_ms: 100,
            ..QuorumOptions::default()
        };
        let mut qu = q(opts, ones(5), 1);
        qu.view_changed(0, &[1, 2, 3, 4, 5]);
        assert_eq!(qu.next_tick_ms(), None);
        qu.view_changed(10, &[1, 2, 3, 4]);
        assert_eq!(qu.next_tick_ms(), Some(110));
        qu.view_changed(50, &[1, 2, 3]);
        assert_eq!(qu.next_tick_ms(), Some(150));
        assert_eq!(qu.tick(149), None);
        let s = qu.tick(150).expect("recalculated");
        assert_eq!(summary(&s), (true, 3, 2));
        assert!(!s.flags.last_man_standing_pending);
        assert_eq!(qu.tick(1000), None);
    }

    #[test]
    fn last_man_standing_does_nothing_when_not_quorate_at_expiry() {
        let opts = QuorumOptions {
            last_man_standing: true,
            last_man_standing_window_ms: 100,
            ..QuorumOptions::default()
        };
        let mut qu = q(opts, ones(5), 1);
        qu.view_changed(0, &[1, 2, 3, 4, 5]);
        qu.view_changed(10, &[1, 2, 3]);
        // A loss that leaves fewer votes than quorum does not restart the
        // window.
        qu.view_changed(20, &[1, 2]);
        assert_eq!(qu.next_tick_ms(), Some(110));
        assert_eq!(qu.tick(200), None);
        assert_eq!(summary(&qu.status()), (false, 5, 3));
    }

    #[test]
    fn set_expected_votes_rules() {
        let mut qu = q(QuorumOptions::default(), ones(5), 1);
        qu.view_changed(0, &[1, 2, 3]);
        assert_eq!(
            qu.set_expected_votes(1, 2),
            Err(QuorumError::SetExpectedBelowTotal {
                expected: 2,
                total: 3
            })
        );
        assert_eq!(
            qu.set_expected_votes(1, 0),
            Err(QuorumError::SetExpectedZero { total: 3 })
        );
        assert_eq!(
            qu.set_expected_votes(1, 6),
            Err(QuorumError::SetExpectedWouldLoseQuorum {
                expected: 6,
                quorum: 4,
                total: 3,
                max: 5
            })
        );
        assert_eq!(summary(&qu.set_expected_votes(1, 3).unwrap()), (true, 3, 2));
        assert_eq!(summary(&qu.set_expected_votes(1, 5).unwrap()), (true, 5, 3));
    }

    #[test]
    fn set_expected_votes_unblocks_a_waiting_partition() {
        let opts = QuorumOptions {
            wait_for_all: Some(true),
            ..QuorumOptions::default()
        };
        let mut qu = q(opts, ones(3), 1);
        assert!(!qu.view_changed(0, &[1, 2]).quorate);
        let s = qu.set_expected_votes(1, 2).unwrap();
        assert_eq!(summary(&s), (true, 2, 2));
        assert!(!s.flags.wait_for_all_waiting);
        // Not quorate: raising is allowed.
        let mut qu = q(QuorumOptions::default(), ones(3), 1);
        qu.view_changed(0, &[1]);
        assert_eq!(
            summary(&qu.set_expected_votes(1, 7).unwrap()),
            (false, 7, 4)
        );
    }

    #[test]
    fn two_node_expected_votes_are_fixed() {
        let opts = QuorumOptions {
            two_node: true,
            ..QuorumOptions::default()
        };
        let mut qu = q(opts, ones(2), 1);
        qu.view_changed(0, &[1, 2]);
        assert_eq!(
            qu.set_expected_votes(1, 3),
            Err(QuorumError::SetExpectedTwoNode(3))
        );
        assert_eq!(summary(&qu.set_expected_votes(1, 2).unwrap()), (true, 2, 1));
    }

    #[test]
    fn tie_breaker_list_defers_to_earlier_nodes_seen_before() {
        let opts = QuorumOptions {
            auto_tie_breaker: true,
            auto_tie_breaker_node: TieBreaker::List(vec![3, 2]),
            ..QuorumOptions::default()
        };
        // Node 3 was never up: node 2 decides.
        let mut a = q(opts.clone(), ones(4), 1);
        a.view_changed(0, &[1, 2, 4]);
        assert!(a.view_changed(1, &[1, 2]).quorate);
        // Node 3 was up and is gone (maybe on the other side): 2 does not
        // decide, and node 3's side (here 3 and 4) does.
        let mut b = q(opts.clone(), ones(4), 1);
        b.view_changed(0, &[1, 2, 3, 4]);
        assert!(!b.view_changed(1, &[1, 2]).quorate);
        let mut c = q(opts, ones(4), 4);
        c.view_changed(0, &[1, 2, 3, 4]);
        assert!(c.view_changed(1, &[3, 4]).quorate);
    }

    #[test]
    fn tie_breaker_counts_the_other_side_in_votes() {
        // Node 3 has 3 of 5 votes. {1, 2} is "half minus one" (2 == 5 / 2)
        // and holds the lowest id, but node 3 alone has quorum; counting
        // nodes (corosync: 3 - 2 < 3) would make both sides quorate.
        let opts = QuorumOptions {
            auto_tie_breaker: true,
            wait_for_all: Some(true),
            ..QuorumOptions::default()
        };
        let votes: BTreeMap<NodeId, u32> = [(1, 1), (2, 1), (3, 3)].into();
        let mut a = q(opts.clone(), votes.clone(), 1);
        assert!(a.view_changed(0, &[1, 2, 3]).quorate);
        assert!(!a.view_changed(1, &[1, 2]).quorate);
        let mut b = q(opts, votes, 3);
        assert!(b.view_changed(0, &[1, 2, 3]).quorate);
        assert!(b.view_changed(1, &[3]).quorate);
    }

    /// Corosync remembers only the previous view: a second view with the
    /// same members as the losing side of a split forgets who is on the
    /// other side, and the tie-breaker could then make both sides quorate.
    #[test]
    fn repeated_view_does_not_forget_the_other_side() {
        for tie_breaker in [TieBreaker::Lowest, TieBreaker::List(vec![1, 2])] {
            let opts = QuorumOptions {
                auto_tie_breaker: true,
                auto_tie_breaker_node: tie_breaker,
                last_man_standing: true,
                last_man_standing_window_ms: 10,
                ..QuorumOptions::default()
            };
            let mut a = q(opts.clone(), ones(4), 2);
            let mut b = q(opts, ones(4), 1);
            for qu in [&mut a, &mut b] {
                qu.view_changed(0, &[1, 2, 3, 4]);
                qu.view_changed(1, &[1, 2, 3]);
                // Expected votes 3 (odd): {1} is "half minus one".
                assert_eq!(summary(&qu.tick(11).unwrap()), (true, 3, 2));
            }
            assert!(a.view_changed(20, &[2, 3]).quorate);
            assert!(!b.view_changed(20, &[1]).quorate);
            assert!(!b.view_changed(21, &[1]).quorate);
            assert!(b.tick(100).is_none());
            assert!(!b.view_changed(101, &[1]).quorate);
        }
    }

    #[test]
    fn tie_breaker_needs_a_quorate_history_for_lowest() {
        let opts = QuorumOptions {
            auto_tie_breaker: true,
            ..QuorumOptions::default()
        };
        let mut qu = q(opts, ones(4), 1);
        // Never quorate: no lowest node known yet.
        assert!(!qu.view_changed(0, &[1, 2]).quorate);
    }

    #[test]
    fn flags_display_like_quorumtool() {
        let flags = QuorumFlags {
            wait_for_all: true,
            last_man_standing: true,
            auto_tie_breaker: true,
            ..QuorumFlags::default()
        };
        assert_eq!(
            flags.to_string(),
            "WaitForAll LastManStanding AutoTieBreaker"
        );
        assert_eq!(QuorumFlags::default().to_string(), "");
    }
}
