//! The cluster configuration file, `/etc/vigil/cluster.toml`.
//!
//! Every node of a cluster reads the same file. It says which nodes make up
//! the cluster, where they listen, how quickly a silent node is declared
//! lost and how quorum is counted: the `totem`, `nodelist` and `quorum`
//! sections of corosync.conf(5), written in TOML. The options keep
//! corosync's names and meanings wherever Vigil has the same option. Keep
//! the file identical on all nodes: nodes that disagree about timings or
//! quorum options behave unpredictably.
//!
//! ```toml
//! [cluster]
//! name = "demo"
//! port = 5405
//!
//! [timings]
//! token = "1000ms"
//!
//! [quorum]
//! wait_for_all = true
//!
//! [[node]]
//! id = 1
//! name = "n1"
//! addresses = ["192.0.2.11"]
//!
//! [[node]]
//! id = 2
//! name = "n2"
//! addresses = ["192.0.2.12"]
//!
//! [[node]]
//! id = 3
//! name = "n3"
//! addresses = ["192.0.2.13"]
//! ```
//!
//! # `[cluster]` (required)
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `name` | The cluster's name, 1 to 32 letters, digits, `_` or `-` (corosync `cluster_name`). Required. | — |
//! | `port` | The UDP port every node listens on and sends to (corosync `mcastport`). | `5405` |
//!
//! # `[timings]` (optional)
//!
//! A duration is a string with a unit, `"1000ms"`, `"1s"` or `"2.5s"`, or a
//! plain integer of milliseconds (`1000`). Durations must be whole
//! milliseconds, and at most one hour.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `token` | How long a node may stay silent before it is declared lost, in a two-node cluster (corosync `token`). Not zero. | `"1000ms"` |
//! | `token_coefficient` | Added to `token` for every node beyond two (corosync `token_coefficient`); the real token timeout is `token + (nodes - 2) * token_coefficient`. May be zero. | `"100ms"` |
//! | `heartbeat` | How often every node sends a heartbeat to every other node. Not zero, and shorter than `token`. | `"200ms"` |
//! | `consensus` | How long a view change may take before it starts over without the nodes that did not answer (corosync `consensus`). Not zero. | 1.2 × the real token timeout |
//! | `retransmit` | How long to wait before asking again for a lost datagram. Not zero. | `"50ms"` |
//! | `retransmits_before_loss` | Retransmissions of one request before its peer is considered lost (corosync `token_retransmits_before_loss_const`, in spirit). At least 1. | `20` |
//!
//! As corosync.conf(5) says, `consensus` should be at least 1.2 × the
//! real token timeout; like corosync, Vigil accepts a shorter one but warns.
//! Vigil also warns when `heartbeat` is more than half of `token` (one lost
//! heartbeat could then make a node lost) and when `retransmit` is not
//! shorter than `token`.
//!
//! # `[quorum]` (optional)
//!
//! Votequorum's options, with the meanings of votequorum(5):
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `expected_votes` | The votes of the whole cluster. At least the sum of the nodes' votes: fewer would let a minority of the nodes be quorate. | the sum of the nodes' votes |
//! | `two_node` | Two-node mode: either node alone is quorate and fencing decides which one survives. Needs exactly two nodes with one vote each (and `expected_votes`, if set, 2). Implies `wait_for_all` unless that is set. | `false` |
//! | `wait_for_all` | Quorate for the first time only once all nodes have been seen together. | `two_node` |
//! | `last_man_standing` | Recalculate expected votes downwards after `last_man_standing_window` when nodes are lost and the rest is still quorate. Every node must have one vote. Combine it with `wait_for_all`. | `false` |
//! | `last_man_standing_window` | A duration, as in `[timings]`. Not zero. | `"10s"` |
//! | `auto_tie_breaker` | In an even split, the half holding the tie-breaker node stays quorate. Not with `two_node`; with an odd number of votes it needs `wait_for_all`. | `false` |
//! | `auto_tie_breaker_node` | The tie-breaker: `"lowest"` or `"highest"` node id, or a list of node ids in order of preference such as `[1, 3]` (every one a configured node, each once). | `"lowest"` |
//!
//! Booleans are TOML's `true` and `false` (not corosync's `1` and `0`).
//!
//! # `[[node]]` (one table per node, at least one)
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `id` | The node id, unique, from 1 to 2147483647 (corosync `nodeid`). Required. | — |
//! | `name` | The node's host name, unique (compared without regard to case), letters, digits, `-`, `_` and `.`, at most 253 characters (corosync `name`; Pacemaker knows nodes by it). Required. | — |
//! | `addresses` | The node's IP addresses, one per link, IPv4 or IPv6 literals (host names are not resolved), at most 8 (corosync `ring0_addr`, `ring1_addr`, …). Every node lists the same number of addresses, and the Nth address of every node is of the same family. No address may belong to two nodes. Required. | — |
//! | `votes` | The node's votes (corosync `quorum_votes`). At least 1. | `1` |
//!
//! At most 384 nodes may be configured.
//!
//! # Mistakes
//!
//! Every mistake is reported, not only the first, each as
//! `FILE:LINE:COLUMN: what is wrong; how to fix it`, for instance
//! `cluster.toml:12:6: node id 2 is used twice (also at 8:6); give every node
//! a unique id`. Unknown keys are errors, with the closest known key (or
//! the Vigil name of a corosync option) suggested. Warnings read
//! `FILE:LINE:COLUMN: warning: …` and do not stop the cluster from starting.
//! When the file is not valid TOML, only the syntax errors are reported:
//! what the rest means is guesswork until they are fixed.
//!
//! # Finding the local node
//!
//! A node finds itself in the file ([`ClusterConfig::local_node`]) by, in
//! order: the node id it was given, if any; else its host name, as corosync
//! does (the name as is, then without its domain, then the short names of
//! both); else the one node whose addresses include one of this machine's
//! addresses.

// The daemon wires this module in bit by bit; until then not every item has
// a caller outside the tests.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

use thiserror::Error;
use toml::Spanned;
use toml::de::{DeTable, DeValue};
use vigil_membership::quorum::{
    DEFAULT_LAST_MAN_STANDING_WINDOW_MS, Quorum, QuorumOptions, TieBreaker,
};
use vigil_membership::{Config, NodeId, Timings};

/// Where the configuration lives on an installed system.
pub const DEFAULT_PATH: &str = "/etc/vigil/cluster.toml";
/// The UDP port used when `[cluster] port` is not given.
pub const DEFAULT_PORT: u16 = 5405;
/// The greatest node id: ids are positive signed 32-bit numbers, as some
/// clients (Pacemaker among them) expect.
pub const MAX_NODE_ID: NodeId = 0x7fff_ffff;
/// The most addresses (links) a node may have, as in corosync.
pub const MAX_ADDRESSES: usize = 8;
/// The most nodes a cluster may have (corosync's `PROCESSOR_COUNT_MAX`).
pub const MAX_NODES: usize = 384;
/// The longest duration accepted anywhere in the file.
pub const MAX_DURATION_MS: u64 = 3_600_000;
const MAX_CLUSTER_NAME: usize = 32;
const MAX_NODE_NAME: usize = 253;
const MAX_RETRANSMITS: i128 = 1000;

/// A parsed and validated cluster configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `[cluster] name`.
    pub name: String,
    /// `[cluster] port`.
    pub port: u16,
    pub timings: TimingSettings,
    pub quorum: QuorumOptions,
    /// In the order of the file.
    pub nodes: Vec<NodeConfig>,
    /// What [`parse`] found questionable but accepted, in file order. Not
    /// part of the configuration: [`fmt::Display`] ignores it.
    pub warnings: Vec<Diagnostic>,
}

/// `[timings]` as written, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimingSettings {
    pub token_ms: u64,
    pub token_coefficient_ms: u64,
    pub heartbeat_ms: u64,
    /// `None`: 1.2 × the real token timeout, which depends on the number of
    /// nodes (see [`TimingSettings::resolve`]).
    pub consensus_ms: Option<u64>,
    pub retransmit_ms: u64,
    pub retransmits_before_loss: u32,
}

impl Default for TimingSettings {
    fn default() -> Self {
        let t = Timings::default();
        TimingSettings {
            token_ms: t.token_ms,
            token_coefficient_ms: t.token_coefficient_ms,
            heartbeat_ms: t.heartbeat_ms,
            consensus_ms: None,
            retransmit_ms: t.retransmit_ms,
            retransmits_before_loss: t.retransmits_before_loss,
        }
    }
}

impl TimingSettings {
    /// The membership timings for a cluster of `nodes` nodes: `consensus`
    /// defaults to 1.2 × the real token timeout, rounded up.
    pub fn resolve(&self, nodes: usize) -> Timings {
        let mut t = Timings {
            token_ms: self.token_ms,
            token_coefficient_ms: self.token_coefficient_ms,
            heartbeat_ms: self.heartbeat_ms,
            consensus_ms: 0,
            retransmit_ms: self.retransmit_ms,
            retransmits_before_loss: self.retransmits_before_loss,
        };
        t.consensus_ms = self
            .consensus_ms
            .unwrap_or_else(|| default_consensus_ms(t.token_timeout_ms(nodes)));
        t
    }
}

/// 1.2 × `token_timeout_ms`, rounded up.
fn default_consensus_ms(token_timeout_ms: u64) -> u64 {
    token_timeout_ms.saturating_mul(6).div_ceil(5)
}

/// One `[[node]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub id: NodeId,
    pub name: String,
    /// One per link, in link order.
    pub addresses: Vec<IpAddr>,
    pub votes: u32,
}

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The file is refused.
    Error,
    /// The file is accepted, but probably not what was meant.
    Warning,
}

/// One mistake in the file, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The path given to [`parse`].
    pub path: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it (may be empty).
    pub fix: String,
}

impl fmt::Display for Diagnostic {
    /// `path:line:column: [warning: ]message; fix`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.path, self.line, self.column)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)?;
        if !self.fix.is_empty() {
            write!(f, "; {}", self.fix)?;
        }
        Ok(())
    }
}

/// Why [`parse`] refused a file: every error found, and the warnings, in
/// file order. Holds at least one error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigErrors {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }
}

impl fmt::Display for ConfigErrors {
    /// One diagnostic a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Why [`ClusterConfig::local_node`] found no node.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LocalNodeError {
    #[error("node id {0} is not configured: give the id of one of the [[node]] tables")]
    UnknownId(NodeId),
    #[error(
        "no configured node is named {hostname:?} or has one of this machine's addresses \
         ({addresses}): add this machine as a [[node]], or fix its name or addresses"
    )]
    NotFound { hostname: String, addresses: String },
    #[error(
        "this machine has addresses of several nodes ({0}): give the node id, or set the \
         nodes' names to the host names"
    )]
    Ambiguous(String),
}

impl ClusterConfig {
    /// The node with this id.
    pub fn node(&self, id: NodeId) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The node with this host name, as corosync looks it up: the name as
    /// is, then without its domain, then a configured name whose short
    /// form is the short host name. Case does not matter.
    pub fn node_by_name(&self, hostname: &str) -> Option<&NodeConfig> {
        let short = |s: &str| s.split('.').next().unwrap_or(s).to_owned();
        let host_short = short(hostname);
        self.nodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(hostname))
            .or_else(|| {
                self.nodes
                    .iter()
                    .find(|n| n.name.eq_ignore_ascii_case(&host_short))
            })
            .or_else(|| {
                self.nodes
                    .iter()
                    .find(|n| short(&n.name).eq_ignore_ascii_case(&host_short))
            })
    }

    /// The node that has one of `local_addresses` (this machine's
    /// addresses); `Ok(None)` if none has, an error if several have.
    pub fn node_by_address(
        &self,
        local_addresses: &[IpAddr],
    ) -> Result<Option<&NodeConfig>, LocalNodeError> {
        let found: Vec<&NodeConfig> = self
            .nodes
            .iter()
            .filter(|n| n.addresses.iter().any(|a| local_addresses.contains(a)))
            .collect();
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            many => Err(LocalNodeError::Ambiguous(
                many.iter()
                    .map(|n| format!("{} (id {})", n.name, n.id))
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// This machine's node: the one with `id` if given; else the one named
    /// `hostname` (see [`ClusterConfig::node_by_name`]); else the one with
    /// one of `local_addresses`. No I/O: the caller gathers the host name
    /// and addresses.
    pub fn local_node(
        &self,
        id: Option<NodeId>,
        hostname: Option<&str>,
        local_addresses: &[IpAddr],
    ) -> Result<&NodeConfig, LocalNodeError> {
        if let Some(id) = id {
            return self.node(id).ok_or(LocalNodeError::UnknownId(id));
        }
        if let Some(n) = hostname.and_then(|h| self.node_by_name(h)) {
            return Ok(n);
        }
        self.node_by_address(local_addresses)?
            .ok_or_else(|| LocalNodeError::NotFound {
                hostname: hostname.unwrap_or("").to_owned(),
                addresses: local_addresses
                    .iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The configured node ids, sorted.
    pub fn node_ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        ids
    }

    /// Every node's votes, as [`Quorum::new`] takes them.
    pub fn votes(&self) -> BTreeMap<NodeId, u32> {
        self.nodes.iter().map(|n| (n.id, n.votes)).collect()
    }

    /// The membership state machine's configuration for node `local`
    /// (which should be a configured node, see
    /// [`ClusterConfig::local_node`]): nodes, timings, quorum options and
    /// votes; the limits keep [`Config::new`]'s defaults.
    pub fn membership_config(&self, local: NodeId) -> Config {
        let mut cfg = Config::new(local, self.node_ids());
        cfg.timings = self.timings.resolve(self.nodes.len());
        cfg.quorum = self.quorum.clone();
        cfg.votes = self.votes();
        cfg.max_datagram = cfg.max_datagram.min(crate::transport::MAX_PLAINTEXT);
        cfg
    }
}

/// Reads a cluster configuration. `path` is only used in diagnostics.
pub fn parse(text: &str, path: &str) -> Result<ClusterConfig, ConfigErrors> {
    let mut c = Checker {
        text,
        path,
        diagnostics: Vec::new(),
    };
    let (root, syntax) = DeTable::parse_recoverable(text);
    let config = if syntax.is_empty() {
        Some(c.document(root.get_ref()))
    } else {
        for e in &syntax {
            c.syntax_error(e);
        }
        None
    };
    c.diagnostics
        .sort_by_key(|d| (d.line, d.column, d.severity == Severity::Warning));
    let failed = c.diagnostics.iter().any(|d| d.severity == Severity::Error);
    match config {
        Some(mut config) if !failed => {
            config.warnings = c.diagnostics;
            Ok(config)
        }
        _ => Err(ConfigErrors {
            diagnostics: c.diagnostics,
        }),
    }
}

type Span = Range<usize>;
type Value<'i> = Spanned<DeValue<'i>>;
/// Addresses with where each is, and where the list is.
type AddressList = (Vec<(IpAddr, Span)>, Span);

const TOP_KEYS: &[&str] = &["cluster", "timings", "quorum", "node"];
const CLUSTER_KEYS: &[&str] = &["name", "port"];
const TIMINGS_KEYS: &[&str] = &[
    "token",
    "token_coefficient",
    "heartbeat",
    "consensus",
    "retransmit",
    "retransmits_before_loss",
];
const QUORUM_KEYS: &[&str] = &[
    "expected_votes",
    "two_node",
    "wait_for_all",
    "last_man_standing",
    "last_man_standing_window",
    "auto_tie_breaker",
    "auto_tie_breaker_node",
];
const NODE_KEYS: &[&str] = &["id", "name", "addresses", "votes"];

/// The tables of the file, for unknown-key messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Top,
    Cluster,
    Timings,
    Quorum,
    Node,
}

impl Section {
    const ALL: [Section; 5] = [
        Section::Top,
        Section::Cluster,
        Section::Timings,
        Section::Quorum,
        Section::Node,
    ];

    fn keys(self) -> &'static [&'static str] {
        match self {
            Section::Top => TOP_KEYS,
            Section::Cluster => CLUSTER_KEYS,
            Section::Timings => TIMINGS_KEYS,
            Section::Quorum => QUORUM_KEYS,
            Section::Node => NODE_KEYS,
        }
    }

    fn header(self) -> &'static str {
        match self {
            Section::Top => "the top level",
            Section::Cluster => "[cluster]",
            Section::Timings => "[timings]",
            Section::Quorum => "[quorum]",
            Section::Node => "[[node]]",
        }
    }

    /// Corosync's names (and other likely guesses) for Vigil's keys:
    /// `(key, fix)`.
    fn aliases(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Section::Top => &[
                ("totem", "Vigil's timings go in [timings]"),
                ("nodelist", "write one [[node]] table per node"),
                ("nodes", "write one [[node]] table per node"),
                (
                    "logging",
                    "logging is set up by the service, not here; remove it",
                ),
            ],
            Section::Cluster => &[
                ("cluster_name", "write it as name"),
                ("mcastport", "write it as port"),
                (
                    "transport",
                    "Vigil always uses its own UDP transport; remove it",
                ),
            ],
            Section::Timings => &[
                (
                    "token_retransmits_before_loss_const",
                    "write it as retransmits_before_loss",
                ),
                ("token_retransmit", "write it as retransmit"),
            ],
            Section::Quorum => &[
                (
                    "provider",
                    "Vigil always counts votes as votequorum does; remove it",
                ),
                (
                    "quorum_votes",
                    "votes are set per node: write votes in [[node]]",
                ),
                ("votes", "votes are set per node: write votes in [[node]]"),
            ],
            Section::Node => &[
                ("nodeid", "write it as id"),
                ("node_id", "write it as id"),
                ("quorum_votes", "write it as votes"),
                (
                    "ring0_addr",
                    "write the node's addresses as addresses = [\"...\"]",
                ),
                (
                    "ring1_addr",
                    "list every link's address in addresses = [\"...\", \"...\"]",
                ),
                ("address", "write addresses = [\"...\"], a list"),
                ("addr", "write addresses = [\"...\"], a list"),
                ("ip", "write addresses = [\"...\"], a list"),
            ],
        }
    }
}

/// Walks the parsed document, collecting diagnostics.
struct Checker<'a> {
    text: &'a str,
    path: &'a str,
    diagnostics: Vec<Diagnostic>,
}

/// A `[[node]]` as far as it could be read, with where its parts are.
#[derive(Debug)]
struct NodeDraft {
    id: Option<(NodeId, Span)>,
    name: Option<(String, Span)>,
    /// `None` when missing or not a valid list.
    addresses: Option<AddressList>,
    votes: Option<(u32, Span)>,
    /// Every part was present and valid.
    complete: bool,
}

/// `[quorum]` as far as it could be read.
#[derive(Debug, Default)]
struct QuorumDraft {
    header: Option<Span>,
    expected_votes: Option<(u32, Span)>,
    two_node: Option<(bool, Span)>,
    wait_for_all: Option<(bool, Span)>,
    last_man_standing: Option<(bool, Span)>,
    last_man_standing_window: Option<(u64, Span)>,
    auto_tie_breaker: Option<(bool, Span)>,
    auto_tie_breaker_node: Option<(TieBreaker, Span)>,
    /// Some value was present but invalid (already reported).
    invalid: bool,
}

/// `[timings]` as far as it could be read.
#[derive(Debug, Default)]
struct TimingsDraft {
    token: Option<(u64, Span)>,
    token_coefficient: Option<(u64, Span)>,
    heartbeat: Option<(u64, Span)>,
    consensus: Option<(u64, Span)>,
    retransmit: Option<(u64, Span)>,
    retransmits_before_loss: Option<(u32, Span)>,
}

impl<'a> Checker<'a> {
    // ----- diagnostics -----

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// `line:column` of a span, for "also at" notes.
    fn at(&self, span: &Span) -> String {
        let (l, c) = self.position(span.start);
        format!("{l}:{c}")
    }

    fn push(&mut self, severity: Severity, span: &Span, message: String, fix: String) {
        let (line, column) = self.position(span.start);
        self.diagnostics.push(Diagnostic {
            severity,
            path: self.path.to_owned(),
            line,
            column,
            message,
            fix,
        });
    }

    fn error(&mut self, span: &Span, message: impl Into<String>, fix: impl Into<String>) {
        self.push(Severity::Error, span, message.into(), fix.into());
    }

    fn warning(&mut self, span: &Span, message: impl Into<String>, fix: impl Into<String>) {
        self.push(Severity::Warning, span, message.into(), fix.into());
    }

    /// `span` widened to the whole bare word around it (the parser may
    /// point into the middle of `192.0.2.1`).
    fn word_at(&self, span: Span) -> Span {
        let bytes = self.text.as_bytes();
        let is_word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'_' | b'-');
        let (mut start, mut end) = (span.start.min(bytes.len()), span.end.min(bytes.len()));
        if start == end {
            return span;
        }
        while start > 0 && is_word(bytes[start - 1]) {
            start -= 1;
        }
        while end < bytes.len() && is_word(bytes[end]) {
            end += 1;
        }
        start..end
    }

    fn syntax_error(&mut self, e: &toml::de::Error) {
        let span = self.word_at(e.span().unwrap_or(0..0));
        let found = self.text.get(span.clone()).unwrap_or("").trim().to_owned();
        let message = e.message().trim().to_owned();
        if message.starts_with("duplicate key") {
            self.error(
                &span,
                format!("`{found}` is defined twice"),
                "remove one of them, or merge the two",
            );
        } else if !found.is_empty() && found.parse::<IpAddr>().is_ok() {
            self.error(
                &span,
                format!("the address {found} is not quoted"),
                format!("addresses are strings: write \"{found}\""),
            );
        } else if message.contains("must be quoted") {
            self.error(
                &span,
                format!("the text `{found}` is not quoted"),
                format!("strings and durations are quoted: write \"{found}\""),
            );
        } else {
            self.error(
                &span,
                format!("not valid TOML: {message}"),
                "fix the syntax here",
            );
        }
    }

    // ----- generic value readers -----

    fn unknown_keys(&mut self, table: &DeTable<'_>, section: Section) {
        for (key, _) in table.iter() {
            let key_str: &str = key.get_ref();
            if section.keys().contains(&key_str) {
                continue;
            }
            let message = if section == Section::Top {
                format!("unknown table or key `{key_str}`")
            } else {
                format!("unknown key `{key_str}` in {}", section.header())
            };
            let (fix, _) = suggest(key_str, section);
            self.error(&key.span(), message, fix);
        }
    }

    /// Reports `key` missing from `table` (at `span`), unless an unknown
    /// key of the table stands for it (already reported as misspelt).
    fn missing(
        &mut self,
        table: &DeTable<'_>,
        section: Section,
        key: &str,
        span: &Span,
        fix: &str,
    ) {
        let misspelt = table.iter().any(|(k, _)| {
            let k: &str = k.get_ref();
            !section.keys().contains(&k) && suggest(k, section).1 == Some(key)
        });
        if !misspelt {
            let message = match section {
                Section::Node => format!("this [[node]] has no `{key}`"),
                _ => format!("{} has no `{key}`", section.header()),
            };
            self.error(span, message, fix);
        }
    }

    fn type_error(&mut self, v: &Value<'_>, key: &str, expected: &str, example: &str) {
        let found = type_name(v.get_ref());
        self.error(
            &v.span(),
            format!("{} must be {expected}, not {found}", label(key)),
            format!("write {example}"),
        );
    }

    fn string(&mut self, v: &Value<'_>, key: &str, example: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.type_error(v, key, "a string", example);
                None
            }
        }
    }

    fn integer(&mut self, v: &Value<'_>, key: &str, example: &str) -> Option<i128> {
        match v.get_ref() {
            DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(
                        &v.span(),
                        format!("{} is far too large", label(key)),
                        format!("write {example}"),
                    );
                    None
                }
            },
            _ => {
                self.type_error(v, key, "an integer", example);
                None
            }
        }
    }

    /// An integer in `min..=max`; `fix` says what to give instead.
    fn integer_in(
        &mut self,
        v: &Value<'_>,
        key: &str,
        example: &str,
        (min, max): (i128, i128),
        fix: &str,
    ) -> Option<i128> {
        let n = self.integer(v, key, example)?;
        if n < min || n > max {
            self.error(
                &v.span(),
                format!("{} is {n}, but must be from {min} to {max}", label(key)),
                fix,
            );
            return None;
        }
        Some(n)
    }

    fn boolean(&mut self, v: &Value<'_>, key: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            DeValue::Integer(i) if matches!(i.as_str(), "0" | "1") => {
                let b = i.as_str() == "1";
                self.error(
                    &v.span(),
                    format!("`{key}` must be true or false, not {}", i.as_str()),
                    format!("write {key} = {b}"),
                );
                None
            }
            DeValue::String(s) if matches!(s.as_ref(), "true" | "false" | "yes" | "no") => {
                let b = matches!(s.as_ref(), "true" | "yes");
                self.error(
                    &v.span(),
                    format!("`{key}` must be true or false without quotes, not \"{s}\""),
                    format!("write {key} = {b}"),
                );
                None
            }
            _ => {
                self.type_error(v, key, "true or false", &format!("{key} = true"));
                None
            }
        }
    }

    /// A duration in milliseconds; `allow_zero` for those that may be 0.
    fn duration(&mut self, v: &Value<'_>, key: &str, allow_zero: bool) -> Option<u64> {
        let example = format!("{key} = \"1000ms\", \"1s\" or 1000 (milliseconds)");
        let ms = match v.get_ref() {
            DeValue::Integer(_) => {
                let n = self.integer(v, key, &example)?;
                if n < 0 {
                    self.error(
                        &v.span(),
                        format!("`{key}` is negative ({n})"),
                        "durations are 0 or more milliseconds",
                    );
                    return None;
                }
                u64::try_from(n).unwrap_or(u64::MAX)
            }
            DeValue::String(s) => match parse_duration(s) {
                Ok(ms) => ms,
                Err(why) => {
                    self.error(
                        &v.span(),
                        format!("`{key}` is \"{s}\", which is not a duration: {why}"),
                        format!("write {example}"),
                    );
                    return None;
                }
            },
            DeValue::Float(f) => {
                self.error(
                    &v.span(),
                    format!("`{key}` must be a duration with a unit, not the number {f}"),
                    format!("write {key} = \"{f}s\" for seconds, or whole milliseconds"),
                );
                return None;
            }
            _ => {
                self.type_error(v, key, "a duration", &example);
                return None;
            }
        };
        if ms == 0 && !allow_zero {
            self.error(
                &v.span(),
                format!("`{key}` is zero"),
                format!("give {key} a positive duration, or remove it for the default"),
            );
            return None;
        }
        if ms > MAX_DURATION_MS {
            self.error(
                &v.span(),
                format!("`{key}` is {ms}ms, longer than an hour"),
                "give a shorter duration (check the unit: \"ms\" or \"s\")",
            );
            return None;
        }
        Some(ms)
    }

    /// The table under `key` of `parent`, if present and a table.
    fn table<'t, 'i>(
        &mut self,
        parent: &'t DeTable<'i>,
        key: &str,
        example: &str,
    ) -> Option<(&'t DeTable<'i>, Span)> {
        let v = parent.get(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some((t, v.span())),
            _ => {
                self.type_error(v, key, "a table", example);
                None
            }
        }
    }

    // ----- the document -----

    fn document(&mut self, root: &DeTable<'_>) -> ClusterConfig {
        self.unknown_keys(root, Section::Top);
        let (name, port) = self.cluster(root);
        let timings = match self.table(root, "timings", "[timings] with token = \"1000ms\"") {
            Some((t, _)) => self.timings(t),
            None => TimingsDraft::default(),
        };
        let nodes = self.nodes(root);
        let quorum = match self.table(root, "quorum", "[quorum] with two_node = true") {
            Some((t, span)) => self.quorum(t, span),
            None => QuorumDraft::default(),
        };
        let timings = self.check_timings(&timings, nodes.len());
        self.check_nodes(&nodes);
        let quorum = self.check_quorum(&quorum, &nodes);
        ClusterConfig {
            name: name.unwrap_or_default(),
            port: port.unwrap_or(DEFAULT_PORT),
            timings,
            quorum,
            nodes: nodes
                .iter()
                .filter(|n| n.complete)
                .map(|n| NodeConfig {
                    id: n.id.as_ref().map_or(0, |x| x.0),
                    name: n.name.as_ref().map(|x| x.0.clone()).unwrap_or_default(),
                    addresses: n
                        .addresses
                        .as_ref()
                        .map(|(a, _)| a.iter().map(|x| x.0).collect())
                        .unwrap_or_default(),
                    votes: n.votes.as_ref().map_or(1, |x| x.0),
                })
                .collect(),
            warnings: Vec::new(),
        }
    }

    fn cluster(&mut self, root: &DeTable<'_>) -> (Option<String>, Option<u16>) {
        let example = "[cluster] with name = \"demo\"";
        let Some((t, span)) = self.table(root, "cluster", example) else {
            if root.get("cluster").is_none() {
                self.error(
                    &(0..0),
                    "the [cluster] table is missing",
                    "add [cluster] with name = \"...\" at the top",
                );
            }
            return (None, None);
        };
        self.unknown_keys(t, Section::Cluster);
        let name =
            match t.get("name") {
                None => {
                    let fix = "add name = \"...\", the cluster's name";
                    self.missing(t, Section::Cluster, "name", &span, fix);
                    None
                }
                Some(v) => self.string(v, "name", "name = \"demo\"").and_then(|name| {
                    match cluster_name_problem(&name) {
                        None => Some(name),
                        Some(why) => {
                            self.error(
                                &v.span(),
                                format!("the cluster name \"{name}\" {why}"),
                                format!("use 1 to {MAX_CLUSTER_NAME} letters, digits, `_` or `-`"),
                            );
                            None
                        }
                    }
                }),
            };
        let port = t.get("port").and_then(|v| {
            self.integer_in(
                v,
                "port",
                "port = 5405",
                (1, 65535),
                "give a UDP port from 1 to 65535 (the default is 5405)",
            )
            .and_then(|p| u16::try_from(p).ok())
        });
        (name, port)
    }

    fn timings(&mut self, t: &DeTable<'_>) -> TimingsDraft {
        self.unknown_keys(t, Section::Timings);
        let mut d = TimingsDraft::default();
        let dur = |c: &mut Self, key: &str, allow_zero: bool| {
            let v = t.get(key)?;
            c.duration(v, key, allow_zero).map(|ms| (ms, v.span()))
        };
        d.token = dur(self, "token", false);
        d.token_coefficient = dur(self, "token_coefficient", true);
        d.heartbeat = dur(self, "heartbeat", false);
        d.consensus = dur(self, "consensus", false);
        d.retransmit = dur(self, "retransmit", false);
        d.retransmits_before_loss = t.get("retransmits_before_loss").and_then(|v| {
            self.integer_in(
                v,
                "retransmits_before_loss",
                "retransmits_before_loss = 20",
                (1, MAX_RETRANSMITS),
                "give at least 1 retransmission (the default is 20)",
            )
            .and_then(|n| u32::try_from(n).ok())
            .map(|n| (n, v.span()))
        });
        d
    }

    fn check_timings(&mut self, d: &TimingsDraft, nodes: usize) -> TimingSettings {
        let def = TimingSettings::default();
        let get = |x: &Option<(u64, Span)>, default: u64| x.as_ref().map_or(default, |x| x.0);
        let s = TimingSettings {
            token_ms: get(&d.token, def.token_ms),
            token_coefficient_ms: get(&d.token_coefficient, def.token_coefficient_ms),
            heartbeat_ms: get(&d.heartbeat, def.heartbeat_ms),
            consensus_ms: d.consensus.as_ref().map(|x| x.0),
            retransmit_ms: get(&d.retransmit, def.retransmit_ms),
            retransmits_before_loss: d
                .retransmits_before_loss
                .as_ref()
                .map_or(def.retransmits_before_loss, |x| x.0),
        };
        let token_at = d.token.as_ref().map(|x| x.1.clone());
        // Relations: point at the value that was written; if neither was
        // written, the defaults are consistent.
        if let Some(span) = d.heartbeat.as_ref().map(|x| &x.1).or(token_at.as_ref()) {
            if s.heartbeat_ms >= s.token_ms {
                self.error(
                    span,
                    format!(
                        "heartbeat ({}ms) is not shorter than token ({}ms): nodes would be \
                         declared lost between two heartbeats",
                        s.heartbeat_ms, s.token_ms
                    ),
                    "make heartbeat at most half of token, e.g. a fifth",
                );
            } else if s.heartbeat_ms * 2 > s.token_ms {
                self.warning(
                    span,
                    format!(
                        "heartbeat ({}ms) is more than half of token ({}ms): one lost \
                         heartbeat could make a node lost",
                        s.heartbeat_ms, s.token_ms
                    ),
                    "make heartbeat at most half of token, e.g. a fifth",
                );
            }
        }
        if let Some(span) = d.retransmit.as_ref().map(|x| &x.1).or(token_at.as_ref())
            && s.retransmit_ms >= s.token_ms
        {
            self.warning(
                span,
                format!(
                    "retransmit ({}ms) is not shorter than token ({}ms): a lost datagram \
                         is asked for again only after its sender may be declared lost",
                    s.retransmit_ms, s.token_ms
                ),
                "make retransmit much shorter than token",
            );
        }
        if let Some((consensus, span)) = &d.consensus {
            let token = s.resolve(nodes).token_timeout_ms(nodes);
            if u128::from(*consensus) * 5 < u128::from(token) * 6 {
                let min = default_consensus_ms(token);
                self.warning(
                    span,
                    format!(
                        "consensus ({consensus}ms) is less than 1.2 × the token timeout \
                         ({token}ms with {nodes} node(s)), as corosync.conf(5) requires"
                    ),
                    format!("set consensus to at least {min}ms, or remove it for the default"),
                );
            }
        }
        s
    }

    fn nodes(&mut self, root: &DeTable<'_>) -> Vec<NodeDraft> {
        let Some(v) = root.get("node") else {
            self.error(
                &(0..0),
                "no node is configured",
                "add a [[node]] table with id, name and addresses for every node",
            );
            return Vec::new();
        };
        let items = match v.get_ref() {
            DeValue::Array(a) => a,
            DeValue::Table(_) => {
                self.error(
                    &v.span(),
                    "`node` is a single table, but nodes are a list of tables",
                    "write [[node]] (double brackets) for every node",
                );
                return Vec::new();
            }
            _ => {
                self.type_error(v, "node", "a list of tables", "[[node]] tables");
                return Vec::new();
            }
        };
        if items.is_empty() {
            self.error(
                &v.span(),
                "no node is configured",
                "add a [[node]] table with id, name and addresses for every node",
            );
        }
        let mut nodes = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let DeValue::Table(t) = item.get_ref() else {
                self.type_error(item, "node", "a table", "[[node]] tables");
                continue;
            };
            if i == MAX_NODES {
                self.error(
                    &item.span(),
                    format!("more than {MAX_NODES} nodes are configured"),
                    format!("configure at most {MAX_NODES} nodes"),
                );
            }
            nodes.push(self.node(t, item.span()));
        }
        nodes
    }

    fn node(&mut self, t: &DeTable<'_>, header: Span) -> NodeDraft {
        self.unknown_keys(t, Section::Node);
        let mut complete = true;
        let missing = |c: &mut Self, key: &str, fix: &str| {
            c.missing(t, Section::Node, key, &header, fix);
        };
        let id = match t.get("id") {
            None => {
                missing(self, "id", "add id = N, a number unique in the cluster");
                None
            }
            Some(v) => self
                .integer_in(
                    v,
                    "id",
                    "id = 1",
                    (1, i128::from(MAX_NODE_ID)),
                    "give a node id from 1 to 2147483647 (0 is reserved)",
                )
                .and_then(|n| NodeId::try_from(n).ok())
                .map(|n| (n, v.span())),
        };
        let name = match t.get("name") {
            None => {
                missing(self, "name", "add name = \"...\", the node's host name");
                None
            }
            Some(v) => self.string(v, "name", "name = \"n1\"").and_then(|name| {
                match node_name_problem(&name) {
                    None => Some((name, v.span())),
                    Some(why) => {
                        self.error(
                            &v.span(),
                            format!("the node name \"{name}\" {why}"),
                            "use the node's host name: letters, digits, `-`, `_` and `.`",
                        );
                        None
                    }
                }
            }),
        };
        let addresses = match t.get("addresses") {
            None => {
                missing(
                    self,
                    "addresses",
                    "add addresses = [\"...\"], the node's IP address(es)",
                );
                None
            }
            Some(v) => self.addresses(v),
        };
        let votes = t.get("votes").and_then(|v| {
            self.integer_in(
                v,
                "votes",
                "votes = 1",
                (1, i128::from(u32::MAX)),
                "give every node at least 1 vote (the default), or remove the node",
            )
            .and_then(|n| u32::try_from(n).ok())
            .map(|n| (n, v.span()))
        });
        complete &= id.is_some() && name.is_some() && addresses.is_some();
        complete &= t.get("votes").is_none() || votes.is_some();
        NodeDraft {
            id,
            name,
            addresses,
            votes,
            complete,
        }
    }

    fn addresses(&mut self, v: &Value<'_>) -> Option<AddressList> {
        let example = "addresses = [\"192.0.2.11\"]";
        let items = match v.get_ref() {
            DeValue::Array(a) => a,
            DeValue::String(s) => {
                self.error(
                    &v.span(),
                    "`addresses` must be a list, not a string",
                    format!("write addresses = [\"{s}\"]"),
                );
                return None;
            }
            _ => {
                self.type_error(v, "addresses", "a list of IP addresses", example);
                return None;
            }
        };
        if items.is_empty() {
            self.error(
                &v.span(),
                "`addresses` is empty",
                "give the node's IP address, e.g. addresses = [\"192.0.2.11\"]",
            );
            return None;
        }
        if items.len() > MAX_ADDRESSES {
            self.error(
                &items[MAX_ADDRESSES].span(),
                format!("more than {MAX_ADDRESSES} addresses"),
                format!("give at most {MAX_ADDRESSES} addresses (one per link)"),
            );
        }
        let mut out: Vec<(IpAddr, Span)> = Vec::new();
        let mut ok = items.len() <= MAX_ADDRESSES;
        for item in items.iter() {
            let DeValue::String(s) = item.get_ref() else {
                self.type_error(item, "every address", "a string", example);
                ok = false;
                continue;
            };
            match parse_address(s) {
                Ok(a) => {
                    if let Some((_, first)) = out.iter().find(|(b, _)| *b == a) {
                        let first = self.at(first);
                        self.error(
                            &item.span(),
                            format!("the address {a} is listed twice (also at {first})"),
                            "list each address once",
                        );
                        ok = false;
                    } else {
                        out.push((a, item.span()));
                    }
                }
                Err((why, fix)) => {
                    self.error(&item.span(), format!("\"{s}\" {why}"), fix);
                    ok = false;
                }
            }
        }
        ok.then(|| (out, v.span()))
    }

    /// Checks across nodes: unique ids, names and addresses; links.
    fn check_nodes(&mut self, nodes: &[NodeDraft]) {
        let mut ids: BTreeMap<NodeId, Span> = BTreeMap::new();
        let mut names: BTreeMap<String, Span> = BTreeMap::new();
        let mut addrs: BTreeMap<IpAddr, (String, Span)> = BTreeMap::new();
        for n in nodes {
            if let Some((id, span)) = &n.id {
                if let Some(first) = ids.get(id) {
                    let first = self.at(first);
                    self.error(
                        span,
                        format!("node id {id} is used twice (also at {first})"),
                        "give every node a unique id",
                    );
                } else {
                    ids.insert(*id, span.clone());
                }
            }
            if let Some((name, span)) = &n.name {
                let key = name.to_ascii_lowercase();
                if let Some(first) = names.get(&key) {
                    let first = self.at(first);
                    self.error(
                        span,
                        format!("node name \"{name}\" is used twice (also at {first})"),
                        "give every node its own host name",
                    );
                } else {
                    names.insert(key, span.clone());
                }
            }
            let label = node_label(n);
            for (a, span) in n.addresses.iter().flat_map(|(a, _)| a) {
                if let Some((owner, first)) = addrs.get(a) {
                    let first = self.at(first);
                    self.error(
                        span,
                        format!("the address {a} is also {owner}'s (at {first})"),
                        "give every node its own addresses",
                    );
                } else {
                    addrs.insert(*a, (label.clone(), span.clone()));
                }
            }
        }
        // Links: the Nth address of every node is on link N.
        let with_addrs: Vec<(&NodeDraft, &AddressList)> = nodes
            .iter()
            .filter_map(|n| n.addresses.as_ref().map(|a| (n, a)))
            .collect();
        let Some(&(first, (first_addrs, _))) = with_addrs.first() else {
            return;
        };
        for &(n, (list, list_span)) in &with_addrs[1..] {
            if list.len() != first_addrs.len() {
                self.error(
                    list_span,
                    format!(
                        "{} has {} address(es) but {} has {}",
                        node_label(n),
                        list.len(),
                        node_label(first),
                        first_addrs.len()
                    ),
                    "give every node one address per link, in the same link order",
                );
                continue;
            }
            for (link, ((a, span), (b, _))) in list.iter().zip(first_addrs).enumerate() {
                if a.is_ipv4() != b.is_ipv4() {
                    self.error(
                        span,
                        format!(
                            "link {link}: {a} is {} but {}'s address on that link, {b}, is {}",
                            family(a),
                            node_label(first),
                            family(b)
                        ),
                        "use one address family per link on every node",
                    );
                }
            }
        }
    }

    fn quorum(&mut self, t: &DeTable<'_>, span: Span) -> QuorumDraft {
        self.unknown_keys(t, Section::Quorum);
        let mut d = QuorumDraft {
            header: Some(span),
            ..QuorumDraft::default()
        };
        let mut invalid = false;
        let mut flag = |c: &mut Self, key: &str| -> Option<(bool, Span)> {
            let v = t.get(key)?;
            let b = c.boolean(v, key);
            invalid |= b.is_none();
            b.map(|b| (b, v.span()))
        };
        d.two_node = flag(self, "two_node");
        d.wait_for_all = flag(self, "wait_for_all");
        d.last_man_standing = flag(self, "last_man_standing");
        d.auto_tie_breaker = flag(self, "auto_tie_breaker");
        if let Some(v) = t.get("expected_votes") {
            d.expected_votes = self
                .integer_in(
                    v,
                    "expected_votes",
                    "expected_votes = 3",
                    (1, i128::from(u32::MAX)),
                    "give the votes of the whole cluster, or remove expected_votes to use \
                     the sum of the nodes' votes",
                )
                .and_then(|n| u32::try_from(n).ok())
                .map(|n| (n, v.span()));
            invalid |= d.expected_votes.is_none();
        }
        if let Some(v) = t.get("last_man_standing_window") {
            d.last_man_standing_window = self
                .duration(v, "last_man_standing_window", false)
                .map(|ms| (ms, v.span()));
            invalid |= d.last_man_standing_window.is_none();
        }
        if let Some(v) = t.get("auto_tie_breaker_node") {
            d.auto_tie_breaker_node = self.tie_breaker(v).map(|tb| (tb, v.span()));
            invalid |= d.auto_tie_breaker_node.is_none();
        }
        d.invalid = invalid;
        d
    }

    fn tie_breaker(&mut self, v: &Value<'_>) -> Option<TieBreaker> {
        let fix = "write auto_tie_breaker_node = \"lowest\", \"highest\" or a list of node ids \
                   such as [1, 3]";
        match v.get_ref() {
            DeValue::String(s) if s.eq_ignore_ascii_case("lowest") => Some(TieBreaker::Lowest),
            DeValue::String(s) if s.eq_ignore_ascii_case("highest") => Some(TieBreaker::Highest),
            DeValue::String(s) => {
                let ids: Option<Vec<&str>> =
                    Some(s.split_whitespace().collect()).filter(|w: &Vec<&str>| {
                        !w.is_empty() && w.iter().all(|x| x.parse::<u32>().is_ok())
                    });
                let fix = match ids {
                    Some(ids) => format!("write node ids as a TOML list: [{}]", ids.join(", ")),
                    None => fix.to_owned(),
                };
                self.error(
                    &v.span(),
                    format!("`auto_tie_breaker_node` is \"{s}\""),
                    fix,
                );
                None
            }
            DeValue::Integer(_) => {
                let n = self.integer(v, "auto_tie_breaker_node", fix)?;
                self.error(
                    &v.span(),
                    "`auto_tie_breaker_node` must be a list of node ids, not a number",
                    format!("write auto_tie_breaker_node = [{n}]"),
                );
                None
            }
            DeValue::Array(items) => {
                let mut list = Vec::new();
                let mut ok = true;
                for item in items.iter() {
                    let n = self.integer_in(
                        item,
                        "every tie-breaker node id",
                        "[1, 3]",
                        (1, i128::from(MAX_NODE_ID)),
                        "list node ids of [[node]] tables",
                    );
                    match n.and_then(|n| NodeId::try_from(n).ok()) {
                        Some(n) => list.push((n, item.span())),
                        None => ok = false,
                    }
                }
                ok.then(|| TieBreaker::List(list.into_iter().map(|x| x.0).collect()))
            }
            _ => {
                self.type_error(
                    v,
                    "auto_tie_breaker_node",
                    "\"lowest\", \"highest\" or a list",
                    fix,
                );
                None
            }
        }
    }

    /// Quorum rules (those of [`Quorum::new`], with places), then
    /// [`Quorum::new`] itself as the last word.
    fn check_quorum(&mut self, d: &QuorumDraft, nodes: &[NodeDraft]) -> QuorumOptions {
        let value = |x: &Option<(bool, Span)>| x.as_ref().is_some_and(|x| x.0);
        let options = QuorumOptions {
            expected_votes: d.expected_votes.as_ref().map(|x| x.0),
            two_node: value(&d.two_node),
            wait_for_all: d.wait_for_all.as_ref().map(|x| x.0),
            last_man_standing: value(&d.last_man_standing),
            last_man_standing_window_ms: d
                .last_man_standing_window
                .as_ref()
                .map_or(DEFAULT_LAST_MAN_STANDING_WINDOW_MS, |x| x.0),
            auto_tie_breaker: value(&d.auto_tie_breaker),
            auto_tie_breaker_node: d
                .auto_tie_breaker_node
                .as_ref()
                .map_or(TieBreaker::Lowest, |x| x.0.clone()),
        };
        // Node-level problems make the cross checks below guesswork.
        let nodes_ok = !nodes.is_empty() && nodes.iter().all(|n| n.complete);
        let votes: u64 = nodes
            .iter()
            .map(|n| u64::from(n.votes.as_ref().map_or(1, |x| x.0)))
            .sum();
        let header = d.header.clone().unwrap_or(0..0);
        let wait_for_all = options.wait_for_all.unwrap_or(options.two_node);

        if nodes_ok && votes > u64::from(u32::MAX) {
            let span = nodes
                .iter()
                .find_map(|n| n.votes.as_ref().map(|x| x.1.clone()));
            self.error(
                &span.unwrap_or(header.clone()),
                format!("the nodes' votes add up to {votes}, more than {}", u32::MAX),
                "give the nodes fewer votes",
            );
        }
        if let (Some((expected, span)), true) = (&d.expected_votes, nodes_ok)
            && u64::from(*expected) < votes
        {
            self.error(
                span,
                format!(
                    "expected_votes ({expected}) is less than the {votes} votes of the \
                         configured nodes: a minority of the nodes could be quorate"
                ),
                format!("set expected_votes to at least {votes}, or remove it"),
            );
        }
        if let Some((true, span)) = &d.two_node {
            if let Some((true, _)) = &d.auto_tie_breaker {
                self.error(
                    span,
                    "two_node and auto_tie_breaker are both set, but two_node leaves the \
                     choice to a fence race and auto_tie_breaker to node ids",
                    "remove one of them",
                );
            }
            if nodes_ok && nodes.len() != 2 {
                self.error(
                    span,
                    format!("two_node is set but {} node(s) are configured", nodes.len()),
                    "remove two_node, or configure exactly 2 nodes",
                );
            } else if let Some(n) = nodes
                .iter()
                .find(|n| n.votes.as_ref().is_some_and(|v| v.0 != 1))
            {
                let (v, vspan) = n.votes.clone().unwrap_or((1, header.clone()));
                let at = self.at(span);
                self.error(
                    &vspan,
                    format!(
                        "{} has {v} votes, but two_node (at {at}) needs 1 vote per node",
                        node_label(n)
                    ),
                    "give both nodes 1 vote, or remove two_node",
                );
            }
            if let Some((e, espan)) = &d.expected_votes
                && *e != 2
            {
                self.error(
                    espan,
                    format!("expected_votes is {e}, but two_node needs 2"),
                    "remove expected_votes, or remove two_node",
                );
            }
        }
        if let Some((true, span)) = &d.last_man_standing {
            for n in nodes {
                if let Some((v, vspan)) = &n.votes
                    && *v != 1
                {
                    let at = self.at(span);
                    self.error(
                        vspan,
                        format!(
                            "{} has {v} votes, but last_man_standing (at {at}) needs \
                                 1 vote per node",
                            node_label(n)
                        ),
                        "give every node 1 vote, or remove last_man_standing",
                    );
                }
            }
            if !wait_for_all {
                self.warning(
                    span,
                    "last_man_standing without wait_for_all: after a full restart a \
                     minority of the nodes could become quorate",
                    "set wait_for_all = true",
                );
            }
        } else if let Some((_, span)) = &d.last_man_standing_window {
            self.warning(
                span,
                "last_man_standing_window has no effect without last_man_standing",
                "set last_man_standing = true, or remove last_man_standing_window",
            );
        }
        if let Some((true, span)) = &d.auto_tie_breaker {
            if let Some((TieBreaker::List(list), lspan)) = &d.auto_tie_breaker_node {
                if list.is_empty() {
                    self.error(
                        lspan,
                        "auto_tie_breaker_node is an empty list",
                        "list node ids, or write \"lowest\" or \"highest\"",
                    );
                }
                for (i, id) in list.iter().enumerate() {
                    if list[..i].contains(id) {
                        self.error(
                            lspan,
                            format!("auto_tie_breaker_node lists node {id} twice"),
                            "list each node once",
                        );
                    } else if nodes_ok
                        && !nodes
                            .iter()
                            .any(|n| n.id.as_ref().is_some_and(|x| x.0 == *id))
                    {
                        self.error(
                            lspan,
                            format!(
                                "auto_tie_breaker_node lists node {id}, which is not configured"
                            ),
                            "list only ids of [[node]] tables",
                        );
                    }
                }
            }
            let expected = options.expected_votes.map_or(votes, u64::from);
            let odd = [votes, expected].into_iter().find(|v| v % 2 == 1);
            if let (Some(odd), false, true) = (odd, wait_for_all, nodes_ok) {
                self.error(
                    span,
                    format!(
                        "auto_tie_breaker with an odd number of votes ({odd}) needs \
                         wait_for_all, or a restarted majority without the tie-breaker \
                         could become quorate"
                    ),
                    "set wait_for_all = true, or remove auto_tie_breaker",
                );
            }
        } else if let Some((_, span)) = &d.auto_tie_breaker_node {
            self.warning(
                span,
                "auto_tie_breaker_node has no effect without auto_tie_breaker",
                "set auto_tie_breaker = true, or remove auto_tie_breaker_node",
            );
        }
        // The last word: what the quorum state machine accepts.
        let clean = !d.invalid
            && nodes_ok
            && !self
                .diagnostics
                .iter()
                .any(|x| x.severity == Severity::Error);
        if clean {
            let votes: BTreeMap<NodeId, u32> = nodes
                .iter()
                .filter_map(|n| Some((n.id.as_ref()?.0, n.votes.as_ref().map_or(1, |x| x.0))))
                .collect();
            if let Some(&me) = votes.keys().next()
                && let Err(e) = Quorum::new(options.clone(), votes, me)
            {
                self.error(&header, e.to_string(), "");
            }
        }
        options
    }
}

/// "node n1" or "the node at 12:1" for messages.
/// A key in backticks; a description (with a space) as is.
fn label(key: &str) -> String {
    if key.contains(' ') {
        key.to_owned()
    } else {
        format!("`{key}`")
    }
}

fn node_label(n: &NodeDraft) -> String {
    match (&n.name, &n.id) {
        (Some((name, _)), _) => format!("node {name}"),
        (None, Some((id, _))) => format!("node {id}"),
        (None, None) => "a node".to_owned(),
    }
}

fn family(a: &IpAddr) -> &'static str {
    if a.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a number with a fraction",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// Why a cluster name is refused, if it is.
fn cluster_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".to_owned());
    }
    if name.chars().count() > MAX_CLUSTER_NAME {
        return Some(format!("is longer than {MAX_CLUSTER_NAME} characters"));
    }
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        .map(|c| format!("contains {c:?}"))
}

/// Why a node name is refused, if it is.
fn node_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".to_owned());
    }
    if name.chars().count() > MAX_NODE_NAME {
        return Some(format!("is longer than {MAX_NODE_NAME} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!("contains {c:?}"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("does not start with a letter or digit".to_owned());
    }
    None
}

/// An address literal, or why it is refused and how to fix it.
fn parse_address(s: &str) -> Result<IpAddr, (String, String)> {
    let refuse = |why: &str, fix: &str| Err((why.to_owned(), fix.to_owned()));
    let Ok(a) = s.trim().parse::<IpAddr>() else {
        if s.contains('/') {
            return refuse(
                "is a network, not an address",
                "write the node's address without the prefix length",
            );
        }
        if s.contains('%') {
            return refuse(
                "is a scoped IPv6 address, which is not supported",
                "use a global or unique-local IPv6 address, or an IPv4 address",
            );
        }
        if s.starts_with('[') || s.parse::<std::net::SocketAddr>().is_ok() {
            return refuse(
                "has a port or brackets",
                "write the bare address; the port is [cluster] port",
            );
        }
        return refuse(
            "is not an IP address (host names are not resolved)",
            "write the node's IPv4 or IPv6 address, e.g. \"192.0.2.11\"",
        );
    };
    let bad = match a {
        IpAddr::V4(v4) if v4.is_broadcast() => Some("is the broadcast address"),
        _ if a.is_unspecified() => Some("is the unspecified address"),
        _ if a.is_multicast() => Some("is a multicast address"),
        _ => None,
    };
    match bad {
        Some(why) => refuse(why, "write the node's own unicast address"),
        None => Ok(a),
    }
}

/// `"1000ms"`, `"1s"`, `"2.5s"` (whole milliseconds) in milliseconds.
fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(digits_end);
    let number = number.replace('_', "");
    let scale: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1000,
        "" => return Err("it has no unit (\"ms\" or \"s\")".to_owned()),
        u => return Err(format!("the unit \"{u}\" is not \"ms\" or \"s\"")),
    };
    let (int, frac) = number.split_once('.').unwrap_or((&number, ""));
    if int.is_empty() || frac.contains('.') || (number.contains('.') && frac.is_empty()) {
        return Err("the number is malformed".to_owned());
    }
    let too_long = || "it is far too long".to_owned();
    let int: u64 = int.parse().map_err(|_| too_long())?;
    let mut ms = int.checked_mul(scale).ok_or_else(too_long)?;
    // The fraction, in units of 1/scale: whole milliseconds only.
    let mut unit_ms = scale;
    for d in frac.bytes() {
        let d = u64::from(d - b'0');
        if !unit_ms.is_multiple_of(10) {
            if d != 0 {
                return Err("it is not a whole number of milliseconds".to_owned());
            }
            continue;
        }
        unit_ms /= 10;
        ms = ms.checked_add(d * unit_ms).ok_or_else(too_long)?;
    }
    Ok(ms)
}

/// How to fix an unknown key in `section`, and the known key it stands
/// for, if it is one of this section's.
fn suggest(key: &str, section: Section) -> (String, Option<&'static str>) {
    if let Some((_, fix)) = section.aliases().iter().find(|(k, _)| *k == key) {
        let target = section
            .keys()
            .iter()
            .copied()
            .find(|k| fix.contains(&format!("as {k}")) || fix.contains(&format!("write {k}")));
        return ((*fix).to_owned(), target);
    }
    let norm = key.to_ascii_lowercase().replace('-', "_");
    let closest = section
        .keys()
        .iter()
        .map(|k| (edit_distance(&norm, k), *k))
        .min();
    if let Some((d, k)) = closest
        && d <= (key.len() / 3).clamp(1, 3)
    {
        return (format!("did you mean `{k}`?"), Some(k));
    }
    for other in Section::ALL {
        if other != section && other != Section::Top && other.keys().contains(&norm.as_str()) {
            return (
                format!("`{norm}` belongs in {}; move it there", other.header()),
                None,
            );
        }
    }
    let known: Vec<String> = section.keys().iter().map(|k| format!("`{k}`")).collect();
    (format!("the known keys are {}", known.join(", ")), None)
}

/// Edit distance counting a swap of two neighbours as one edit (optimal
/// string alignment), so `prot` is one edit from `port`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

// ----- rendering -----

/// A duration the way a person writes it.
fn duration_text(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("\"{}s\"", ms / 1000)
    } else {
        format!("\"{ms}ms\"")
    }
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

impl fmt::Display for ClusterConfig {
    /// The configuration as a `cluster.toml` that [`parse`] reads back to
    /// the same configuration. Only values that differ from the defaults
    /// are written, except the port.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[cluster]")?;
        writeln!(f, "name = {}", quoted(&self.name))?;
        writeln!(f, "port = {}", self.port)?;

        let t = &self.timings;
        let d = TimingSettings::default();
        let mut timings = Vec::new();
        let mut dur = |key: &str, v: u64, def: Option<u64>| {
            if Some(v) != def {
                timings.push(format!("{key} = {}", duration_text(v)));
            }
        };
        dur("token", t.token_ms, Some(d.token_ms));
        dur(
            "token_coefficient",
            t.token_coefficient_ms,
            Some(d.token_coefficient_ms),
        );
        dur("heartbeat", t.heartbeat_ms, Some(d.heartbeat_ms));
        if let Some(c) = t.consensus_ms {
            dur("consensus", c, None);
        }
        dur("retransmit", t.retransmit_ms, Some(d.retransmit_ms));
        if t.retransmits_before_loss != d.retransmits_before_loss {
            timings.push(format!(
                "retransmits_before_loss = {}",
                t.retransmits_before_loss
            ));
        }
        if !timings.is_empty() {
            writeln!(f, "\n[timings]")?;
            for line in timings {
                writeln!(f, "{line}")?;
            }
        }

        let q = &self.quorum;
        let mut quorum = Vec::new();
        if let Some(e) = q.expected_votes {
            quorum.push(format!("expected_votes = {e}"));
        }
        if q.two_node {
            quorum.push("two_node = true".to_owned());
        }
        if let Some(w) = q.wait_for_all {
            quorum.push(format!("wait_for_all = {w}"));
        }
        if q.last_man_standing {
            quorum.push("last_man_standing = true".to_owned());
        }
        if q.last_man_standing_window_ms != DEFAULT_LAST_MAN_STANDING_WINDOW_MS {
            quorum.push(format!(
                "last_man_standing_window = {}",
                duration_text(q.last_man_standing_window_ms)
            ));
        }
        if q.auto_tie_breaker {
            quorum.push("auto_tie_breaker = true".to_owned());
        }
        match &q.auto_tie_breaker_node {
            TieBreaker::Lowest => {}
            TieBreaker::Highest => quorum.push("auto_tie_breaker_node = \"highest\"".to_owned()),
            TieBreaker::List(ids) => {
                let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
                quorum.push(format!("auto_tie_breaker_node = [{}]", ids.join(", ")));
            }
        }
        if !quorum.is_empty() {
            writeln!(f, "\n[quorum]")?;
            for line in quorum {
                writeln!(f, "{line}")?;
            }
        }

        for n in &self.nodes {
            writeln!(f, "\n[[node]]")?;
            writeln!(f, "id = {}", n.id)?;
            writeln!(f, "name = {}", quoted(&n.name))?;
            let addrs: Vec<String> = n.addresses.iter().map(|a| quoted(&a.to_string())).collect();
            writeln!(f, "addresses = [{}]", addrs.join(", "))?;
            if n.votes != 1 {
                writeln!(f, "votes = {}", n.votes)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three valid nodes, for appending after the sections under test.
    macro_rules! three_nodes {
        () => {
            r#"
[[node]]
id = 1
name = "n1"
addresses = ["192.0.2.11"]

[[node]]
id = 2
name = "n2"
addresses = ["192.0.2.12"]

[[node]]
id = 3
name = "n3"
addresses = ["192.0.2.13"]
"#
        };
    }

    /// Parses `text` and compares its diagnostics, in order, with
    /// `expected`: each is the start of a diagnostic without the
    /// `cluster.toml:` prefix, e.g. `"3:8: unknown key"`. No diagnostics
    /// expected: the file must be accepted without warnings.
    fn check(text: &str, expected: &[&str]) -> Result<(), String> {
        let diagnostics = match parse(text, "cluster.toml") {
            Ok(c) => c.warnings,
            Err(e) => {
                if e.errors().next().is_none() {
                    return Err(format!("refused without an error: {e}"));
                }
                if expected.iter().all(|x| x.contains("warning:")) {
                    return Err(format!("refused, expected acceptance:\n{e}"));
                }
                e.diagnostics
            }
        };
        let got: Vec<String> = diagnostics
            .iter()
            .map(|d| {
                let s = d.to_string();
                s.strip_prefix("cluster.toml:").unwrap_or(&s).to_owned()
            })
            .collect();
        let matches =
            got.len() == expected.len() && got.iter().zip(expected).all(|(g, e)| g.starts_with(e));
        if matches {
            Ok(())
        } else {
            Err(format!(
                "expected:\n  {}\ngot:\n  {}",
                expected.join("\n  "),
                got.join("\n  ")
            ))
        }
    }

    /// `(what, file, expected diagnostics)`: one case per kind of mistake.
    const CASES: &[(&str, &str, &[&str])] = &[
        (
            "minimal",
            concat!("[cluster]\nname = \"demo\"\n", three_nodes!()),
            &[],
        ),
        (
            "every option, valid",
            r#"[cluster]
name = "demo_2-b"
port = 6000
[timings]
token = "3s"
token_coefficient = 0
heartbeat = "0.5s"
consensus = "3600ms"
retransmit = 100
retransmits_before_loss = 10
[quorum]
expected_votes = 5
wait_for_all = true
last_man_standing = true
last_man_standing_window = "20s"
auto_tie_breaker = true
auto_tie_breaker_node = [3, 1]
[[node]]
id = 1
name = "n1.example.com"
addresses = ["192.0.2.11", "2001:db8::11"]
[[node]]
id = 2
name = "n2.example.com"
addresses = ["192.0.2.12", "2001:db8::12"]
[[node]]
id = 3
name = "n3.example.com"
addresses = ["192.0.2.13", "2001:db8::13"]
[[node]]
id = 2147483647
name = "n4.example.com"
addresses = ["192.0.2.14", "2001:db8::14"]
"#,
            &[],
        ),
        (
            "dotted keys and inline tables",
            r#"cluster.name = "demo"
node = [
  { id = 1, name = "n1", addresses = ["127.0.0.1"] },
  { id = 2, name = "n2", addresses = ["127.0.0.2"] },
]
"#,
            &[],
        ),
        (
            "syntax errors, all of them",
            "[cluster]\nname = demo\nport = 5405\nport = 1\n[[node]\nid = 1\n",
            &[
                "2:8: the text `demo` is not quoted; strings and durations are quoted: \
                 write \"demo\"",
                "4:1: `port` is defined twice; remove one of them, or merge the two",
                "5:8: not valid TOML: unclosed array table, expected `]`; fix the syntax here",
            ],
        ),
        (
            "unquoted address",
            "[cluster]\nname = \"demo\"\n[[node]]\nid = 1\nname = \"n1\"\naddresses = [192.0.2.1]\n",
            &[
                "6:14: the address 192.0.2.1 is not quoted; addresses are strings: write \"192.0.2.1\"",
            ],
        ),
        (
            "unquoted duration",
            concat!(
                "[cluster]\nname = \"demo\"\n[timings]\ntoken = 1000ms\n",
                three_nodes!()
            ),
            &[
                "4:9: the text `1000ms` is not quoted; strings and durations are quoted: write \"1000ms\"",
            ],
        ),
        (
            "table defined twice",
            concat!(
                "[cluster]\nname = \"demo\"\n[cluster]\nport = 1\n",
                three_nodes!()
            ),
            &["3:2: `cluster` is defined twice"],
        ),
        (
            "empty file",
            "",
            &[
                "1:1: the [cluster] table is missing; add [cluster] with name = \"...\" at the top",
                "1:1: no node is configured; add a [[node]] table",
            ],
        ),
        (
            "no [cluster]",
            three_nodes!(),
            &["1:1: the [cluster] table is missing"],
        ),
        (
            "no cluster name",
            concat!("[cluster]\nport = 5405\n", three_nodes!()),
            &["1:1: [cluster] has no `name`; add name = \"...\", the cluster's name"],
        ),
        (
            "cluster is not a table",
            concat!("cluster = \"demo\"\n", three_nodes!()),
            &[
                "1:11: `cluster` must be a table, not a string; write [cluster] with name = \"demo\"",
            ],
        ),
        (
            "empty cluster name",
            concat!("[cluster]\nname = \"\"\n", three_nodes!()),
            &["2:8: the cluster name \"\" is empty; use 1 to 32 letters, digits, `_` or `-`"],
        ),
        (
            "cluster name with a space",
            concat!("[cluster]\nname = \"my cluster\"\n", three_nodes!()),
            &["2:8: the cluster name \"my cluster\" contains ' '"],
        ),
        (
            "cluster name too long",
            concat!(
                "[cluster]\nname = \"abcdefghijabcdefghijabcdefghijabc\"\n",
                three_nodes!()
            ),
            &[
                "2:8: the cluster name \"abcdefghijabcdefghijabcdefghijabc\" is longer than 32 characters",
            ],
        ),
        (
            "cluster name of the wrong type",
            concat!("[cluster]\nname = 7\n", three_nodes!()),
            &["2:8: `name` must be a string, not an integer; write name = \"demo\""],
        ),
        (
            "port 0",
            concat!("[cluster]\nname = \"demo\"\nport = 0\n", three_nodes!()),
            &["3:8: `port` is 0, but must be from 1 to 65535; give a UDP port from 1 to 65535"],
        ),
        (
            "port too large",
            concat!("[cluster]\nname = \"demo\"\nport = 65536\n", three_nodes!()),
            &["3:8: `port` is 65536, but must be from 1 to 65535"],
        ),
        (
            "port quoted",
            concat!(
                "[cluster]\nname = \"demo\"\nport = \"5405\"\n",
                three_nodes!()
            ),
            &["3:8: `port` must be an integer, not a string; write port = 5405"],
        ),
        (
            "column counts characters",
            concat!("[cluster]\nname = \"démo\"; port = 0\n", three_nodes!()),
            &["2:14: not valid TOML"],
        ),
        (
            "unknown keys, with suggestions",
            concat!(
                "[cluster]\nname = \"demo\"\nprot = 1\ntwo_node = true\nfoo = 1\n",
                "[totem]\n[timings]\ntokn = \"1s\"\nHeartbeat = \"100ms\"\n",
                "[quorum]\nprovider = \"corosync_votequorum\"\n",
                three_nodes!()
            ),
            &[
                "3:1: unknown key `prot` in [cluster]; did you mean `port`?",
                "4:1: unknown key `two_node` in [cluster]; `two_node` belongs in [quorum]; move it there",
                "5:1: unknown key `foo` in [cluster]; the known keys are `name`, `port`",
                "6:2: unknown table or key `totem`; Vigil's timings go in [timings]",
                "8:1: unknown key `tokn` in [timings]; did you mean `token`?",
                "9:1: unknown key `Heartbeat` in [timings]; did you mean `heartbeat`?",
                "11:1: unknown key `provider` in [quorum]; Vigil always counts votes",
            ],
        ),
        (
            "corosync names stand for the missing keys",
            "[cluster]\ncluster_name = \"demo\"\n[[node]]\nnodeid = 1\nring0_addr = \"192.0.2.1\"\nnmae = \"n1\"\n",
            &[
                "2:1: unknown key `cluster_name` in [cluster]; write it as name",
                "4:1: unknown key `nodeid` in [[node]]; write it as id",
                "5:1: unknown key `ring0_addr` in [[node]]; write the node's addresses as addresses",
                "6:1: unknown key `nmae` in [[node]]; did you mean `name`?",
            ],
        ),
        (
            "[node] instead of [[node]]",
            "[cluster]\nname = \"demo\"\n[node]\nid = 1\n",
            &[
                "3:1: `node` is a single table, but nodes are a list of tables; write [[node]] (double brackets)",
            ],
        ),
        (
            "node that is not a table",
            "node = [1]\n[cluster]\nname = \"demo\"\n",
            &["1:9: `node` must be a table, not an integer"],
        ),
        (
            "no nodes",
            "[cluster]\nname = \"demo\"\n",
            &[
                "1:1: no node is configured; add a [[node]] table with id, name and addresses for every node",
            ],
        ),
        (
            "empty node list",
            "node = []\n[cluster]\nname = \"demo\"\n",
            &["1:8: no node is configured"],
        ),
        (
            "missing node keys",
            "[cluster]\nname = \"demo\"\n[[node]]\nvotes = 1\n",
            &[
                "3:1: this [[node]] has no `id`; add id = N, a number unique in the cluster",
                "3:1: this [[node]] has no `name`; add name = \"...\", the node's host name",
                "3:1: this [[node]] has no `addresses`; add addresses = [\"...\"]",
            ],
        ),
        (
            "duplicate node ids, names and addresses",
            r#"[cluster]
name = "demo"
[[node]]
id = 2
name = "n1"
addresses = ["192.0.2.11"]
[[node]]
id = 2
name = "N1"
addresses = ["192.0.2.11"]
[[node]]
id = 3
name = "n3"
addresses = ["2001:db8::1", "2001:DB8:0::1"]
"#,
            &[
                "8:6: node id 2 is used twice (also at 4:6); give every node a unique id",
                "9:8: node name \"N1\" is used twice (also at 5:8); give every node its own host name",
                "10:14: the address 192.0.2.11 is also node n1's (at 6:14); give every node its own addresses",
                "14:29: the address 2001:db8::1 is listed twice (also at 14:14); list each address once",
            ],
        ),
        (
            "node ids out of range",
            r#"[cluster]
name = "demo"
[[node]]
id = 0
name = "n1"
addresses = ["192.0.2.11"]
[[node]]
id = 2147483648
name = "n2"
addresses = ["192.0.2.12"]
[[node]]
id = -1
name = "n3"
addresses = ["192.0.2.13"]
[[node]]
id = 0x7fffffff
name = "n4"
addresses = ["192.0.2.14"]
"#,
            &[
                "4:6: `id` is 0, but must be from 1 to 2147483647; give a node id from 1 to 2147483647 (0 is reserved)",
                "8:6: `id` is 2147483648, but must be from 1 to 2147483647",
                "12:6: `id` is -1, but must be from 1 to 2147483647",
            ],
        ),
        (
            "bad addresses",
            r#"[cluster]
name = "demo"
[[node]]
id = 1
name = "n1"
addresses = [
  "n1.example.com",
  "192.0.2.0/24",
  "fe80::1%eth0",
  "192.0.2.1:5405",
  "0.0.0.0",
  "224.0.0.1",
  "255.255.255.255",
  "::",
  7,
]
"#,
            &[
                "7:3: \"n1.example.com\" is not an IP address (host names are not resolved); write the node's IPv4 or IPv6 address",
                "8:3: \"192.0.2.0/24\" is a network, not an address",
                "9:3: \"fe80::1%eth0\" is a scoped IPv6 address, which is not supported",
                "10:3: \"192.0.2.1:5405\" has a port or brackets; write the bare address; the port is [cluster] port",
                "11:3: \"0.0.0.0\" is the unspecified address",
                "12:3: \"224.0.0.1\" is a multicast address",
                "13:3: \"255.255.255.255\" is the broadcast address",
                "14:3: \"::\" is the unspecified address",
                "15:3: more than 8 addresses; give at most 8 addresses (one per link)",
                "15:3: every address must be a string, not an integer",
            ],
        ),
        (
            "addresses not a list, or empty",
            r#"[cluster]
name = "demo"
[[node]]
id = 1
name = "n1"
addresses = "192.0.2.11"
[[node]]
id = 2
name = "n2"
addresses = []
"#,
            &[
                "6:13: `addresses` must be a list, not a string; write addresses = [\"192.0.2.11\"]",
                "10:13: `addresses` is empty",
            ],
        ),
        (
            "links: count and address family",
            r#"[cluster]
name = "demo"
[[node]]
id = 1
name = "n1"
addresses = ["192.0.2.11", "2001:db8::11"]
[[node]]
id = 2
name = "n2"
addresses = ["2001:db8::12", "192.0.2.12"]
[[node]]
id = 3
name = "n3"
addresses = ["192.0.2.13"]
"#,
            &[
                "10:14: link 0: 2001:db8::12 is IPv6 but node n1's address on that link, 192.0.2.11, is IPv4",
                "10:30: link 1: 192.0.2.12 is IPv4 but node n1's address on that link, 2001:db8::11, is IPv6",
                "14:13: node n3 has 1 address(es) but node n1 has 2; give every node one address per link",
            ],
        ),
        (
            "bad node names",
            r#"[cluster]
name = "demo"
[[node]]
id = 1
name = "-n1"
addresses = ["192.0.2.11"]
[[node]]
id = 2
name = "n 2"
addresses = ["192.0.2.12"]
"#,
            &[
                "5:8: the node name \"-n1\" does not start with a letter or digit; use the node's host name",
                "9:8: the node name \"n 2\" contains ' '",
            ],
        ),
        (
            "votes 0",
            "[cluster]\nname = \"demo\"\n[[node]]\nid = 1\nname = \"n1\"\naddresses = [\"192.0.2.11\"]\nvotes = 0\n",
            &[
                "7:9: `votes` is 0, but must be from 1 to 4294967295; give every node at least 1 vote",
            ],
        ),
        (
            "durations that are not",
            concat!(
                "[cluster]\nname = \"demo\"\n[timings]\n",
                "token = \"1000\"\ntoken_coefficient = \"1 min\"\nheartbeat = 0\n",
                "consensus = \"1.5ms\"\nretransmit = 2.5\nretransmits_before_loss = 0\n",
                three_nodes!()
            ),
            &[
                "4:9: `token` is \"1000\", which is not a duration: it has no unit (\"ms\" or \"s\"); \
                 write token = \"1000ms\", \"1s\" or 1000 (milliseconds)",
                "5:21: `token_coefficient` is \"1 min\", which is not a duration: the unit \"min\" is not \"ms\" or \"s\"",
                "6:13: `heartbeat` is zero; give heartbeat a positive duration, or remove it for the default",
                "7:13: `consensus` is \"1.5ms\", which is not a duration: it is not a whole number of milliseconds",
                "8:14: `retransmit` must be a duration with a unit, not the number 2.5; write retransmit = \"2.5s\"",
                "9:27: `retransmits_before_loss` is 0, but must be from 1 to 1000",
            ],
        ),
        (
            "durations out of range",
            concat!(
                "[cluster]\nname = \"demo\"\n[timings]\n",
                "heartbeat = \"0s\"\nconsensus = -5\nretransmit = \"7200s\"\ntoken = [1]\n",
                three_nodes!()
            ),
            &[
                "4:13: `heartbeat` is zero",
                "5:13: `consensus` is negative (-5)",
                "6:14: `retransmit` is 7200000ms, longer than an hour",
                "7:9: `token` must be a duration, not a list",
            ],
        ),
        (
            "consensus below 1.2 x token (a warning, as in corosync)",
            concat!(
                "[cluster]\nname = \"demo\"\n[timings]\ntoken = \"1s\"\nconsensus = \"1200ms\"\n",
                three_nodes!()
            ),
            &[
                "5:13: warning: consensus (1200ms) is less than 1.2 × the token timeout (1100ms with 3 node(s)), \
               as corosync.conf(5) requires; set consensus to at least 1320ms, or remove it for the default",
            ],
        ),
        (
            "heartbeat more than half of token",
            concat!(
                "[cluster]\nname = \"demo\"\n[timings]\ntoken = \"300ms\"\n",
                three_nodes!()
            ),
            &["4:9: warning: heartbeat (200ms) is more than half of token (300ms)"],
        ),
        (
            "heartbeat not shorter than token",
            concat!(
                "[cluster]\nname = \"demo\"\n[timings]\nheartbeat = \"1s\"\nretransmit = \"2s\"\n",
                three_nodes!()
            ),
            &[
                "4:13: heartbeat (1000ms) is not shorter than token (1000ms)",
                "5:14: warning: retransmit (2000ms) is not shorter than token (1000ms)",
            ],
        ),
        (
            "two_node with three nodes",
            concat!(
                "[cluster]\nname = \"demo\"\n[quorum]\ntwo_node = true\n",
                three_nodes!()
            ),
            &[
                "4:12: two_node is set but 3 node(s) are configured; remove two_node, or configure exactly 2 nodes",
            ],
        ),
        (
            "two_node with votes, expected_votes and auto_tie_breaker",
            r#"[cluster]
name = "demo"
[quorum]
two_node = true
auto_tie_breaker = true
expected_votes = 3
[[node]]
id = 1
name = "n1"
addresses = ["192.0.2.11"]
votes = 2
[[node]]
id = 2
name = "n2"
addresses = ["192.0.2.12"]
"#,
            &[
                "4:12: two_node and auto_tie_breaker are both set",
                "6:18: expected_votes is 3, but two_node needs 2; remove expected_votes, or remove two_node",
                "11:9: node n1 has 2 votes, but two_node (at 4:12) needs 1 vote per node",
            ],
        ),
        (
            "auto_tie_breaker_node: unknown and repeated ids",
            concat!(
                "[cluster]\nname = \"demo\"\n[quorum]\nwait_for_all = true\nauto_tie_breaker = true\n",
                "auto_tie_breaker_node = [3, 4, 3]\n",
                three_nodes!()
            ),
            &[
                "6:25: auto_tie_breaker_node lists node 4, which is not configured; list only ids of [[node]] tables",
                "6:25: auto_tie_breaker_node lists node 3 twice; list each node once",
            ],
        ),
        (
            "auto_tie_breaker_node: an empty list",
            concat!(
                "[cluster]\nname = \"demo\"\n[quorum]\nwait_for_all = true\nauto_tie_breaker = true\n",
                "auto_tie_breaker_node = []\n",
                three_nodes!()
            ),
            &["6:25: auto_tie_breaker_node is an empty list"],
        ),
        (
            "auto_tie_breaker with odd votes needs wait_for_all; corosync's list syntax",
            concat!(
                "[cluster]\nname = \"demo\"\n[quorum]\nauto_tie_breaker = true\n",
                "auto_tie_breaker_node = \"1 3\"\n",
                three_nodes!()
            ),
            &[
                "4:20: auto_tie_breaker with an odd number of votes (3) needs wait_for_all",
                "5:25: `auto_tie_breaker_node` is \"1 3\"; write node ids as a TOML list: [1, 3]",
            ],
        ),
        (
            "quorum values of the wrong kind",
            concat!(
                "[cluster]\nname = \"demo\"\n[quorum]\nauto_tie_breaker_node = \"middle\"\n",
                "two_node = 1\nwait_for_all = \"yes\"\nlast_man_standing = 1.0\n",
                three_nodes!()
            ),
            &[
                "4:25: `auto_tie_breaker_node` is \"middle\"; write auto_tie_breaker_node = \"lowest\", \"highest\"",
                "5:12: `two_node` must be true or false, not 1; write two_node = true",
                "6:16: `wait_for_all` must be true or false without quotes, not \"yes\"; write wait_for_all = true",
                "7:21: `last_man_standing` must be true or false, not a number with a fraction",
            ],
        ),
        (
            "a tie-breaker that is a number",
            concat!(
                "[cluster]\nname = \"demo\"\n[quorum]\nlast_man_standing_window = \"5s\"\n",
                "auto_tie_breaker_node = 2\n",
                three_nodes!()
            ),
            &[
                "4:28: warning: last_man_standing_window has no effect",
                "5:25: `auto_tie_breaker_node` must be a list of node ids, not a number; write auto_tie_breaker_node = [2]",
            ],
        ),
        (
            "options without the option they tune (warnings only)",
            concat!(
                "[cluster]\nname = \"demo\"\n[quorum]\nlast_man_standing_window = \"5s\"\n",
                "auto_tie_breaker_node = \"highest\"\n",
                three_nodes!()
            ),
            &[
                "4:28: warning: last_man_standing_window has no effect without last_man_standing",
                "5:25: warning: auto_tie_breaker_node has no effect without auto_tie_breaker",
            ],
        ),
        (
            "expected_votes below the nodes' votes",
            concat!(
                "[cluster]\nname = \"demo\"\n[quorum]\nexpected_votes = 2\n",
                three_nodes!()
            ),
            &[
                "4:18: expected_votes (2) is less than the 3 votes of the configured nodes: a minority of \
               the nodes could be quorate; set expected_votes to at least 3, or remove it",
            ],
        ),
        (
            "expected_votes 0",
            concat!(
                "[cluster]\nname = \"demo\"\n[quorum]\nexpected_votes = 0\n",
                three_nodes!()
            ),
            &["4:18: `expected_votes` is 0, but must be from 1 to 4294967295"],
        ),
        (
            "last_man_standing: votes, window, wait_for_all",
            r#"[cluster]
name = "demo"
[quorum]
last_man_standing = true
last_man_standing_window = 0
[[node]]
id = 1
name = "n1"
addresses = ["192.0.2.11"]
votes = 2
"#,
            &[
                "4:21: warning: last_man_standing without wait_for_all",
                "5:28: `last_man_standing_window` is zero",
                "10:9: node n1 has 2 votes, but last_man_standing (at 4:21) needs 1 vote per node",
            ],
        ),
        (
            "a section of the wrong type",
            concat!(
                "timings = \"fast\"\nquorum = 3\n[cluster]\nname = \"demo\"\n",
                three_nodes!()
            ),
            &[
                "1:11: `timings` must be a table, not a string",
                "2:10: `quorum` must be a table, not an integer",
            ],
        ),
        (
            "an integer too large for anything",
            "[cluster]\nname = \"demo\"\n[[node]]\nid = 999999999999999999999999999999999999999999\n",
            &[
                "3:1: this [[node]] has no `name`",
                "3:1: this [[node]] has no `addresses`",
                "4:6: `id` is far too large; write id = 1",
            ],
        ),
    ];

    #[test]
    fn cases() {
        let mut failures = Vec::new();
        for (what, text, expected) in CASES {
            if let Err(e) = check(text, expected) {
                failures.push(format!("--- {what}\n{e}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Every option set, none at its default.
    const FULL: &str = r#"[cluster]
name = "demo"
port = 6000

[timings]
token = "3s"
token_coefficient = "650ms"
heartbeat = "500ms"
consensus = "6s"
retransmit = "100ms"
retransmits_before_loss = 10

[quorum]
expected_votes = 4
wait_for_all = true
last_man_standing = true
last_man_standing_window = "20s"
auto_tie_breaker = true
auto_tie_breaker_node = [3, 1]

[[node]]
id = 1
name = "n1.example.com"
addresses = ["192.0.2.11", "2001:db8::11"]

[[node]]
id = 2
name = "n2.example.com"
addresses = ["192.0.2.12", "2001:db8::12"]

[[node]]
id = 3
name = "n3.example.com"
addresses = ["192.0.2.13", "2001:db8::13"]

[[node]]
id = 7
name = "n7.example.com"
addresses = ["192.0.2.17", "2001:db8::17"]
"#;

    fn parsed(text: &str) -> ClusterConfig {
        match parse(text, "cluster.toml") {
            Ok(c) => c,
            Err(e) => panic!("refused:\n{e}\n--- text:\n{text}"),
        }
    }

    #[test]
    fn reads_every_option() {
        let c = parsed(FULL);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.name, "demo");
        assert_eq!(c.port, 6000);
        assert_eq!(
            c.timings,
            TimingSettings {
                token_ms: 3000,
                token_coefficient_ms: 650,
                heartbeat_ms: 500,
                consensus_ms: Some(6000),
                retransmit_ms: 100,
                retransmits_before_loss: 10,
            }
        );
        assert_eq!(
            c.quorum,
            QuorumOptions {
                expected_votes: Some(4),
                two_node: false,
                wait_for_all: Some(true),
                last_man_standing: true,
                last_man_standing_window_ms: 20_000,
                auto_tie_breaker: true,
                auto_tie_breaker_node: TieBreaker::List(vec![3, 1]),
            }
        );
        assert_eq!(c.node_ids(), vec![1, 2, 3, 7]);
        assert_eq!(
            c.nodes[3],
            NodeConfig {
                id: 7,
                name: "n7.example.com".into(),
                addresses: vec![
                    "192.0.2.17".parse().unwrap(),
                    "2001:db8::17".parse().unwrap()
                ],
                votes: 1,
            }
        );
        assert_eq!(c.votes(), BTreeMap::from([(1, 1), (2, 1), (3, 1), (7, 1)]));
    }

    #[test]
    fn defaults() {
        let c = parsed(concat!("[cluster]\nname = \"demo\"\n", three_nodes!()));
        assert_eq!(c.port, DEFAULT_PORT);
        assert_eq!(c.timings, TimingSettings::default());
        assert_eq!(c.quorum, QuorumOptions::default());
        assert!(c.nodes.iter().all(|n| n.votes == 1));
    }

    #[test]
    fn display_round_trips() {
        let full = parsed(FULL);
        assert_eq!(full.to_string(), FULL, "only the defaults are left out");
        for text in [
            FULL,
            concat!("[cluster]\nname = \"demo\"\n", three_nodes!()),
        ] {
            let a = parsed(text);
            let b = parsed(&a.to_string());
            assert_eq!(a, b, "{a}");
        }
        // Built by hand, as `vigil cluster setup` will: odd values too.
        let built = ClusterConfig {
            name: "x".into(),
            port: 5405,
            timings: TimingSettings {
                token_ms: 1234,
                consensus_ms: Some(1500),
                ..TimingSettings::default()
            },
            quorum: QuorumOptions {
                wait_for_all: Some(false),
                last_man_standing_window_ms: 10_500,
                auto_tie_breaker_node: TieBreaker::Highest,
                ..QuorumOptions::default()
            },
            nodes: vec![
                NodeConfig {
                    id: 5,
                    name: "a".into(),
                    addresses: vec!["::1".parse().unwrap()],
                    votes: 3,
                },
                NodeConfig {
                    id: 2,
                    name: "b".into(),
                    addresses: vec!["::2".parse().unwrap()],
                    votes: 1,
                },
            ],
            warnings: Vec::new(),
        };
        let text = built.to_string();
        let mut back = parsed(&text);
        assert_eq!(back.warnings.len(), 2, "{:?}", back.warnings); // window, tie-breaker unused
        back.warnings.clear();
        assert_eq!(back, built, "{text}");
        assert!(text.contains("token = \"1234ms\"\n"), "{text}");
        assert!(text.contains("votes = 3\n"), "{text}");
    }

    #[test]
    fn display_quotes_names() {
        let mut c = parsed(concat!("[cluster]\nname = \"demo\"\n", three_nodes!()));
        c.nodes[0].name = "we\"ird\\name".into();
        let text = c.to_string();
        let back = DeTable::parse(&text).expect("valid TOML");
        let nodes = back.get_ref().get("node").expect("nodes");
        let DeValue::Array(nodes) = nodes.get_ref() else {
            panic!("not an array")
        };
        let DeValue::Table(first) = nodes[0].get_ref() else {
            panic!("not a table")
        };
        assert_eq!(
            first.get("name").and_then(|v| v.get_ref().as_str()),
            Some("we\"ird\\name")
        );
    }

    #[test]
    fn membership_config_maps_timings() {
        // Three nodes: token timeout 1000 + 1 × 100; consensus 1.2 × that.
        let c = parsed(concat!("[cluster]\nname = \"demo\"\n", three_nodes!()));
        let m = c.membership_config(2);
        assert_eq!(m.node_id, 2);
        assert_eq!(m.nodes, vec![1, 2, 3]);
        assert_eq!(m.timings.token_timeout_ms(m.nodes.len()), 1100);
        assert_eq!(m.timings.consensus_ms, 1320);
        assert_eq!(m.timings.heartbeat_ms, 200);
        assert_eq!(m.timings.retransmit_ms, 50);
        assert_eq!(m.timings.retransmits_before_loss, 20);

        let c = parsed(FULL);
        let m = c.membership_config(7);
        assert_eq!(m.nodes, vec![1, 2, 3, 7]);
        assert_eq!(
            m.timings,
            Timings {
                token_ms: 3000,
                token_coefficient_ms: 650,
                heartbeat_ms: 500,
                consensus_ms: 6000,
                retransmit_ms: 100,
                retransmits_before_loss: 10,
            }
        );
        assert_eq!(m.quorum, c.quorum);
        assert_eq!(m.votes, c.votes());
        // The parsed quorum options are what the quorum machine takes.
        assert!(Quorum::new(m.quorum, m.votes, 7).is_ok());
    }

    #[test]
    fn default_consensus_rounds_up() {
        assert_eq!(default_consensus_ms(1000), 1200);
        assert_eq!(default_consensus_ms(1001), 1202);
        let t = TimingSettings {
            token_ms: 1001,
            ..TimingSettings::default()
        };
        assert_eq!(t.resolve(2).consensus_ms, 1202);
    }

    #[test]
    fn finds_the_local_node() {
        let c = parsed(FULL);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let id = |r: Result<&NodeConfig, LocalNodeError>| r.map(|n| n.id);
        // By id, which wins over everything else.
        assert_eq!(id(c.local_node(Some(3), Some("n1"), &[])), Ok(3));
        assert_eq!(
            id(c.local_node(Some(4), None, &[])),
            Err(LocalNodeError::UnknownId(4))
        );
        // By host name: as is, short, or short against the configured FQDN.
        assert_eq!(id(c.local_node(None, Some("n2.example.com"), &[])), Ok(2));
        assert_eq!(id(c.local_node(None, Some("N2.EXAMPLE.COM"), &[])), Ok(2));
        assert_eq!(id(c.local_node(None, Some("n2"), &[])), Ok(2));
        assert_eq!(id(c.local_node(None, Some("n2.other.org"), &[])), Ok(2));
        let short = parsed(concat!("[cluster]\nname = \"demo\"\n", three_nodes!()));
        assert_eq!(
            id(short.local_node(None, Some("n3.example.com"), &[])),
            Ok(3)
        );
        // By address, when the name is not configured.
        let addrs = [ip("127.0.0.1"), ip("2001:db8::13")];
        assert_eq!(id(c.local_node(None, Some("elsewhere"), &addrs)), Ok(3));
        assert_eq!(id(c.local_node(None, None, &addrs)), Ok(3));
        assert!(matches!(
            c.local_node(None, None, &[ip("192.0.2.11"), ip("192.0.2.12")]),
            Err(LocalNodeError::Ambiguous(_))
        ));
        let err = c
            .local_node(None, Some("elsewhere"), &[ip("127.0.0.1")])
            .unwrap_err();
        assert_eq!(
            err,
            LocalNodeError::NotFound {
                hostname: "elsewhere".into(),
                addresses: "127.0.0.1".into()
            }
        );
        assert!(err.to_string().contains("\"elsewhere\""), "{err}");
        assert_eq!(c.node(7).map(|n| n.name.as_str()), Some("n7.example.com"));
        assert!(c.node_by_name("nope").is_none());
        assert_eq!(c.node_by_address(&[]), Ok(None));
    }

    #[test]
    fn durations() {
        for (text, ms) in [
            ("1000ms", 1000),
            ("1s", 1000),
            ("2.5s", 2500),
            ("0.001s", 1),
            ("1.0000s", 1000),
            ("1_000ms", 1000),
            (" 3 s ", 3000),
            ("0ms", 0),
            ("1.0ms", 1),
        ] {
            assert_eq!(parse_duration(text), Ok(ms), "{text}");
        }
        for text in [
            "",
            "ms",
            "1",
            "1.s",
            ".5s",
            "1.2.3s",
            "1.0005s",
            "1.5ms",
            "5m",
            "1 min",
            "-1s",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("prot", "port"), 1);
        assert_eq!(edit_distance("tokn", "token"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            suggest("wait_for_al", Section::Quorum).1,
            Some("wait_for_all")
        );
        assert_eq!(suggest("two-node", Section::Quorum).1, Some("two_node"));
        assert_eq!(suggest("nodeid", Section::Node).1, Some("id"));
        assert_eq!(suggest("zzz", Section::Node).1, None);
    }

    #[test]
    fn too_many_nodes() {
        let mut text = String::from("[cluster]\nname = \"big\"\n");
        for i in 1..=MAX_NODES + 1 {
            text += &format!(
                "[[node]]\nid = {i}\nname = \"n{i}\"\naddresses = [\"10.0.{}.{}\"]\n",
                i / 256,
                i % 256
            );
        }
        let e = parse(&text, "big.toml").unwrap_err();
        let line = 3 + 4 * MAX_NODES;
        assert_eq!(
            e.to_string(),
            format!(
                "big.toml:{line}:1: more than {MAX_NODES} nodes are configured; configure at \
                 most {MAX_NODES} nodes"
            )
        );
    }

    #[test]
    fn reports_render_with_the_path() {
        let text = "[cluster]\nname = \"\"\n[quorum]\nlast_man_standing_window = \"5s\"\n";
        let e = parse(text, DEFAULT_PATH).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/vigil/cluster.toml:1:1: no node is configured; add a [[node]] table with id, \
             name and addresses for every node\n\
             /etc/vigil/cluster.toml:2:8: the cluster name \"\" is empty; use 1 to 32 letters, \
             digits, `_` or `-`\n\
             /etc/vigil/cluster.toml:4:28: warning: last_man_standing_window has no effect \
             without last_man_standing; set last_man_standing = true, or remove \
             last_man_standing_window"
        );
        assert_eq!(e.errors().count(), 2);
        assert_eq!(e.warnings().count(), 1);
        let d = Diagnostic {
            severity: Severity::Error,
            path: "f".into(),
            line: 1,
            column: 2,
            message: "m".into(),
            fix: String::new(),
        };
        assert_eq!(d.to_string(), "f:1:2: m");
    }
}
