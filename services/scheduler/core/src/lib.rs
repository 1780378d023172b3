//! vigil-scheduler: the policy engine.
//!
//! A pure function from a CIB (configuration and status) and "now" to a
//! transition: the actions the cluster must take and their ordering, the
//! placement scores that led there, a human summary, and diagnostics. Its
//! semantics follow Pacemaker's scheduler so that existing configurations
//! and Pacemaker's regression corpus apply unchanged.
//!
//! The phases, in order (see ARCHITECTURE.md for how each scales):
//! 1. [`unpack`](crate::unpack): options, nodes, resources, node states and
//!    operation history;
//! 2. constraints: location, colocation and order, with resource sets;
//! 3. assignment: stickiness, failure thresholds, colocations, best node;
//! 4. actions: what each resource must do to reach its next role, probes,
//!    recurring monitors, fencing and shutdown;
//! 5. orderings: relations between actions and the propagation of
//!    "required" and "runnable" along them;
//! 6. output: the summary, the graph and the scores.

mod actions;
mod assign;
mod constraints;
pub mod digest;
pub mod explain;
mod history;
pub mod model;
mod nvpairs;
mod ordering;
pub mod output;
mod probes;
mod report;
pub use report::failures;
mod rsc_actions;
mod unpack;

use std::collections::{BTreeMap, BTreeSet};

use vigil_cib::xml::{Document, Element};

use model::*;

/// The scheduler's whole working state for one run.
#[derive(Debug)]
pub struct Scheduler {
    pub settings: Settings,
    pub nodes: Vec<Node>,
    pub resources: Vec<Resource>,
    /// Top-level resources in scheduling order (by priority, stable).
    pub top: Vec<RscId>,
    pub actions: Vec<Action>,
    pub colocations: Vec<Colocation>,
    pub locations: Vec<Location>,
    pub orderings: Vec<Ordering>,
    pub diag: Diagnostics,
    pub dc: Option<NodeId>,
    /// Elements that something refers to with `id-ref`.
    pub(crate) ids: BTreeMap<String, Element>,
    pub(crate) templates: BTreeMap<String, Element>,
    /// Tags and templates, with the resources they stand for.
    pub(crate) tags: BTreeMap<String, Vec<String>>,
    /// Configured resources (not clone instances) by id.
    pub(crate) rsc_by_id: BTreeMap<String, RscId>,
    pub(crate) rsc_defaults: Option<Element>,
    pub(crate) op_defaults: Option<Element>,
    /// Actions without a resource, by uuid.
    pub(crate) singletons: BTreeMap<String, ActionId>,
    /// Clone instances by clone, and the template each was made from.
    pub(crate) instances: BTreeMap<RscId, Vec<RscId>>,
    pub(crate) instance_template: BTreeMap<RscId, RscId>,
    /// Failed operations: (history id, node, resource, entry).
    pub failed_ops: Vec<(String, NodeId, RscId, Element)>,
    /// The earliest future time (seconds since the epoch) at which this
    /// answer may change with nothing else changing: a date in a rule
    /// passes, a failure expires (`failure-timeout`). The controller runs
    /// the scheduler again then (Pacemaker's `recheck-by`).
    pub recheck_by: Option<i64>,
    pub(crate) expired_recurring: BTreeSet<(RscId, NodeId, String)>,
    /// Allocation score lines, as crm_simulate -s prints them.
    pub(crate) scores: Vec<(&'static str, RscId, NodeId, vigil_types::Score)>,
    /// The CIB's feature set (for digests).
    pub(crate) feature_set: Option<String>,
}

/// Inputs besides the CIB.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// "Now" in seconds since the epoch (the CIB's execution-date when
    /// absent, else 0).
    pub now: Option<i64>,
}

impl Scheduler {
    fn new(now: i64) -> Scheduler {
        Scheduler {
            settings: Settings {
                options: BTreeMap::new(),
                fencing_enabled: true,
                have_fencing: false,
                symmetric: true,
                no_quorum_policy: NoQuorumPolicy::Stop,
                quorate: false,
                stop_all: false,
                stop_removed: true,
                maintenance: false,
                startup_fencing: true,
                probe_resources: true,
                concurrent_fencing: true,
                fence_action: "reboot".into(),
                placement_strategy: "default".into(),
                now,
                priority_fencing_ms: 0,
                enable_unfencing: false,
                shutdown_lock: false,
                start_failure_fatal: true,
            },
            nodes: Vec::new(),
            resources: Vec::new(),
            top: Vec::new(),
            actions: Vec::new(),
            colocations: Vec::new(),
            locations: Vec::new(),
            orderings: Vec::new(),
            diag: Diagnostics::default(),
            dc: None,
            ids: BTreeMap::new(),
            templates: BTreeMap::new(),
            rsc_by_id: BTreeMap::new(),
            tags: BTreeMap::new(),
            rsc_defaults: None,
            op_defaults: None,
            singletons: BTreeMap::new(),
            instances: BTreeMap::new(),
            instance_template: BTreeMap::new(),
            failed_ops: Vec::new(),
            recheck_by: None,
            expired_recurring: BTreeSet::new(),
            scores: Vec::new(),
            feature_set: None,
        }
    }

    /// Runs the whole scheduler on a CIB.
    pub fn run(doc: &Document, opts: &Options) -> Scheduler {
        let now = opts
            .now
            .or_else(|| {
                doc.root
                    .attr("execution-date")
                    .and_then(|v| v.parse::<i64>().ok())
            })
            .unwrap_or(0);
        let mut s = Scheduler::new(now);
        s.feature_set = doc.root.attr("crm_feature_set").map(str::to_string);
        s.unpack(doc);
        s.schedule(doc.root.child("status"));
        s
    }

    /// Notes that the answer may change at `t` (kept when in the future
    /// and earlier than what is noted).
    pub(crate) fn note_recheck(&mut self, t: i64) {
        if t > self.settings.now && self.recheck_by.is_none_or(|old| t < old) {
            self.recheck_by = Some(t);
        }
    }

    fn schedule(&mut self, status: Option<&Element>) {
        self.apply_node_criteria();
        self.create_internal_constraints();
        self.handle_rsc_config_changes(status);
        self.assign_resources();
        self.schedule_resource_actions();
        self.schedule_fencing_and_shutdowns();
        self.settle_priority_fencing_delays();
        self.apply_orderings();
    }

    /// Display name of a node.
    pub fn node_name(&self, n: NodeId) -> &str {
        &self.nodes[n].uname
    }
}
