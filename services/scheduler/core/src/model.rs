//! The scheduler's working state: nodes, resources, actions, constraints.
//!
//! Everything lives in arenas (`Vec`s) addressed by index, in a fixed order
//! (configuration order for nodes and resources, creation order for actions),
//! so that every iteration is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use vigil_cib::xml::Element;
use vigil_types::{Role, Score};

pub type NodeId = usize;
pub type RscId = usize;
pub type ActionId = usize;
pub type ColocId = usize;

/// A cluster node as the scheduler sees it.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub id: String,
    pub uname: String,
    /// Base score of the node (`score` attribute), -INFINITY once it cannot
    /// run resources.
    pub weight: Score,
    pub online: bool,
    pub unclean: bool,
    pub shutdown: bool,
    pub standby: bool,
    pub standby_onfail: bool,
    pub pending: bool,
    pub maintenance: bool,
    pub expected_up: bool,
    /// A node_state entry exists for it.
    pub seen: bool,
    pub unpacked: bool,
    pub is_dc: bool,
    /// Node attributes: permanent ones overlaid with transient ones.
    pub attrs: BTreeMap<String, String>,
    /// Number of resources assigned to it so far.
    pub num_resources: usize,
    /// Pacemaker's `priority` of a node, used by priority-fencing-delay.
    pub priority: i32,
}

impl Node {
    /// Whether the node can run resources at all.
    pub fn available(&self) -> bool {
        self.online && !self.shutdown && !self.unclean && !self.standby && !self.maintenance
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Primitive,
    Group,
    Clone,
    Bundle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OnFail {
    Ignore,
    Demote,
    Restart,
    RestartContainer,
    ResetRemote,
    Ban,
    Block,
    Stop,
    StandbyNode,
    FenceNode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultipleActive {
    Restart,
    StopOnly,
    Block,
    StopUnexpected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requires {
    Nothing,
    Quorum,
    Fencing,
}

/// A configured operation (`<op>`).
#[derive(Debug, Clone)]
pub struct OpConfig {
    pub id: String,
    pub name: String,
    pub interval_ms: u64,
    pub role: Option<Role>,
    pub enabled: bool,
    pub meta: BTreeMap<String, String>,
    pub xml: Element,
}

/// Resource flags, named after what they mean.
#[derive(Debug, Clone, Default)]
pub struct RscFlags {
    pub managed: bool,
    pub failed: bool,
    pub stop_if_failed: bool,
    pub blocked: bool,
    pub unassigned: bool,
    pub assigning: bool,
    pub updating_nodes: bool,
    pub removed: bool,
    pub critical: bool,
    pub unique: bool,
    pub fence_device: bool,
    pub start_pending: bool,
    pub reload: bool,
    pub restarting: bool,
    pub stop_unexpected: bool,
    pub ignore_failure: bool,
    pub exclusive_probes: bool,
    pub maintenance: bool,
    pub migratable: bool,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub id: String,
    pub variant: Variant,
    pub parent: Option<RscId>,
    pub children: Vec<RscId>,
    pub xml: Element,
    pub class: String,
    pub provider: Option<String>,
    pub agent: String,
    pub meta: BTreeMap<String, String>,
    pub params: BTreeMap<String, String>,
    pub ops: Vec<OpConfig>,
    pub priority: i32,
    pub stickiness: i32,
    pub migration_threshold: i32,
    pub failure_timeout_ms: u64,
    pub requires: Requires,
    pub multiple_active: MultipleActive,
    pub flags: RscFlags,
    pub orig_role: Role,
    pub next_role: Role,
    pub running_on: Vec<NodeId>,
    /// Allowed nodes and their scores (Pacemaker's allowed_nodes table).
    pub allowed: BTreeMap<NodeId, Score>,
    pub probe_mode: BTreeMap<NodeId, ProbeMode>,
    pub assigned: Option<NodeId>,
    pub probed: BTreeSet<NodeId>,
    pub this_with: Vec<ColocId>,
    pub with_this: Vec<ColocId>,
    pub actions: Vec<ActionId>,
    /// The resource's actions by uuid and by task, in creation order
    /// (lookup indexes; never iterated for output).
    pub by_uuid: rustc_hash::FxHashMap<String, Vec<ActionId>>,
    pub by_task: rustc_hash::FxHashMap<String, Vec<ActionId>>,
    pub locations: Vec<usize>,
    /// Recorded operation digests per (node, op key) used for change checks.
    pub pending_task: Option<(String, NodeId)>,
    /// Group: members are ordered / colocated.
    pub group_ordered: bool,
    pub group_colocated: bool,
    /// The resource whose start launches this one (`container` meta).
    pub launcher: Option<RscId>,
    /// Resources this one launches.
    pub launched: Vec<RscId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum ProbeMode {
    #[default]
    Always,
    Never,
    Exclusive,
}

/// Action flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AFlags(pub u32);

impl AFlags {
    pub const OPTIONAL: u32 = 1;
    pub const RUNNABLE: u32 = 2;
    pub const PSEUDO: u32 = 4;
    pub const ALWAYS_IN_GRAPH: u32 = 8;
    pub const MIGRATABLE: u32 = 16;
    pub const ON_DC: u32 = 32;
    pub const ATTRS_EVALUATED: u32 = 64;
    pub const MIGRATION_ABORT: u32 = 128;
    pub const DEDUP: u32 = 256;
    pub const REQUIRES_ANY: u32 = 512;

    pub fn has(self, f: u32) -> bool {
        self.0 & f != 0
    }
}

/// Ordering relation flags (Pacemaker's `pcmk__ar_*`).
pub mod ar {
    pub const NONE: u32 = 0;
    pub const ORDERED: u32 = 1 << 0;
    pub const THEN_IMPLIES_FIRST: u32 = 1 << 4;
    pub const PROMOTED_THEN_IMPLIES_FIRST: u32 = 1 << 5;
    pub const MIN_RUNNABLE: u32 = 1 << 6;
    pub const UNRUNNABLE_FIRST_BLOCKS: u32 = 1 << 7;
    pub const FIRST_ELSE_THEN: u32 = 1 << 8;
    pub const FIRST_IMPLIES_THEN: u32 = 1 << 9;
    pub const INTERMEDIATE_STOP: u32 = 1 << 10;
    pub const SERIALIZE: u32 = 1 << 11;
    pub const ASYMMETRIC: u32 = 1 << 12;
    pub const IF_ON_SAME_NODE: u32 = 1 << 13;
    pub const THEN_CANCELS_FIRST: u32 = 1 << 14;
    pub const NESTED_REMOTE_PROBE: u32 = 1 << 15;
    pub const IF_ON_SAME_NODE_OR_TARGET: u32 = 1 << 16;
    pub const FIRST_IMPLIES_SAME_NODE_THEN: u32 = 1 << 17;
    pub const IF_REQUIRED_ON_SAME_NODE: u32 = 1 << 18;
    pub const FIRST_IMPLIES_THEN_GRAPHED: u32 = 1 << 19;
    pub const THEN_IMPLIES_FIRST_GRAPHED: u32 = 1 << 20;
    pub const UNMIGRATABLE_THEN_BLOCKS: u32 = 1 << 21;
    pub const GUEST_ALLOWED: u32 = 1 << 22;
}

#[derive(Debug, Clone)]
pub struct Action {
    pub id: ActionId,
    /// `RSC_TASK_INTERVAL` for resource actions, the task for others.
    pub uuid: String,
    pub task: String,
    pub rsc: Option<RscId>,
    pub node: Option<NodeId>,
    pub interval_ms: u64,
    pub flags: AFlags,
    pub reason: Option<String>,
    pub needs: Requires,
    pub meta: BTreeMap<String, String>,
    /// The result that counts as success when it is not the default
    /// (7 for monitors of where a resource should not run, 8 for promoted).
    pub target_rc: Option<i32>,
    pub before: Vec<(ActionId, u32)>,
    pub after: Vec<(ActionId, u32)>,
    pub required_runnable_before: usize,
    pub runnable_before: usize,
    /// Whether this action is part of the final graph.
    pub graphed: bool,
}

impl Action {
    pub fn optional(&self) -> bool {
        self.flags.has(AFlags::OPTIONAL)
    }
    pub fn runnable(&self) -> bool {
        self.flags.has(AFlags::RUNNABLE)
    }
    pub fn pseudo(&self) -> bool {
        self.flags.has(AFlags::PSEUDO)
    }
}

#[derive(Debug, Clone)]
pub struct Colocation {
    pub id: String,
    pub dependent: RscId,
    pub primary: RscId,
    pub score: Score,
    pub dependent_role: Role,
    pub primary_role: Role,
    pub node_attribute: String,
    pub influence: bool,
    pub explicit: bool,
}

#[derive(Debug, Clone)]
pub struct Location {
    pub id: String,
    pub rsc: RscId,
    pub role_filter: Role,
    pub probe_mode: ProbeMode,
    /// Node and score pairs.
    pub nodes: Vec<(NodeId, Score)>,
}

/// An ordering between two (possibly not yet existing) actions.
#[derive(Debug, Clone)]
pub struct Ordering {
    pub rsc1: Option<RscId>,
    pub task1: Option<String>,
    pub action1: Option<ActionId>,
    pub rsc2: Option<RscId>,
    pub task2: Option<String>,
    pub action2: Option<ActionId>,
    pub flags: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoQuorumPolicy {
    Stop,
    Freeze,
    Ignore,
    Demote,
    Fence,
}

/// Cluster-wide settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub options: BTreeMap<String, String>,
    pub fencing_enabled: bool,
    pub have_fencing: bool,
    pub symmetric: bool,
    pub no_quorum_policy: NoQuorumPolicy,
    pub quorate: bool,
    pub stop_all: bool,
    pub stop_removed: bool,
    pub maintenance: bool,
    pub startup_fencing: bool,
    pub probe_resources: bool,
    pub concurrent_fencing: bool,
    pub fence_action: String,
    pub placement_strategy: String,
    pub now: i64,
    pub priority_fencing_ms: u64,
    pub enable_unfencing: bool,
    pub shutdown_lock: bool,
    pub start_failure_fatal: bool,
}

/// What the scheduler reports besides the graph.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}
