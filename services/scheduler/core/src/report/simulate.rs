//! The cluster state shown by the status blocks: as unpacked from the CIB
//! (before scheduling changed anything), and as the transition leaves it
//! once every graph action has run the way crm_simulate pretends it does
//! (everything succeeds, fencing takes its target down and wipes its
//! resource history).

use std::collections::BTreeSet;

use vigil_types::Role;

use crate::Scheduler;
use crate::model::*;

/// What the status shows of a node.
#[derive(Debug, Clone)]
pub(super) struct NodeView {
    pub online: bool,
    pub unclean: bool,
    pub pending: bool,
    pub standby: bool,
    pub standby_onfail: bool,
    pub maintenance: bool,
}

/// What the status shows of a primitive (or clone instance).
#[derive(Debug, Clone, Default)]
pub(super) struct RscView {
    /// Where it is active, with its role there, in history order.
    pub active: Vec<(NodeId, Role)>,
    pub failed: bool,
    /// A non-probe action in flight, and where (shown only before the
    /// transition, as crm_simulate shows pending actions only then).
    pub pending: Option<(String, NodeId)>,
    /// Shown as removed from the configuration (an instance beyond what
    /// its clone allows).
    pub removed: bool,
}

impl RscView {
    pub fn nodes(&self) -> Vec<NodeId> {
        self.active.iter().map(|(n, _)| *n).collect()
    }

    /// The resource's role: the highest among its active copies.
    pub fn role(&self) -> Role {
        self.active
            .iter()
            .map(|(_, r)| *r)
            .max()
            .unwrap_or(Role::Stopped)
    }
}

/// A cluster state to render.
#[derive(Debug, Clone)]
pub(super) struct Snapshot {
    pub nodes: Vec<NodeView>,
    pub rscs: Vec<RscView>,
    /// Nodes whose resource history is gone (fenced by the transition).
    pub wiped: BTreeSet<NodeId>,
    /// Whether pending actions are shown.
    pub show_pending: bool,
    /// Probes the transition ran: (primitive, node).
    pub probed: BTreeSet<(RscId, NodeId)>,
}

/// An action history result that clears an earlier failure.
fn clears_failure(task: &str, interval_ms: u64) -> bool {
    matches!(task, "start" | "stop" | "promote" | "migrate_from")
        || (task == "monitor" && interval_ms == 0)
}

impl Scheduler {
    /// The state as the CIB describes it, before any scheduling.
    pub(super) fn current_snapshot(&self) -> Snapshot {
        let nodes = self
            .nodes
            .iter()
            .map(|n| NodeView {
                online: n.online,
                unclean: n.unclean,
                pending: n.pending,
                standby: n.standby,
                standby_onfail: n.standby_onfail,
                maintenance: n.maintenance,
            })
            .collect();
        let rscs = self
            .resources
            .iter()
            .map(|r| {
                let role = match r.orig_role {
                    Role::Unknown | Role::Stopped => Role::Started,
                    role => role,
                };
                RscView {
                    active: r.running_on.iter().map(|n| (*n, role)).collect(),
                    failed: r.flags.failed,
                    pending: r.pending_task.clone(),
                    removed: false,
                }
            })
            .collect();
        Snapshot {
            nodes,
            rscs,
            wiped: BTreeSet::new(),
            show_pending: true,
            probed: BTreeSet::new(),
        }
    }

    /// The state once the graph actions in `executed` have run.
    pub(super) fn revised_snapshot(&self, executed: &[ActionId]) -> Snapshot {
        let mut snap = self.current_snapshot();
        snap.show_pending = false;
        for rv in &mut snap.rscs {
            rv.pending = None;
        }
        // (resource, node) pairs where an executed action cleared a failure.
        let mut cleared: BTreeSet<(RscId, NodeId)> = BTreeSet::new();
        for &a in executed {
            let act = &self.actions[a];
            if act.task == "stonith" {
                let Some(n) = act.node else { continue };
                let op = act.meta.get("stonith_action").map_or("", String::as_str);
                if op.eq_ignore_ascii_case("on") {
                    continue;
                }
                let nv = &mut snap.nodes[n];
                nv.online = false;
                nv.unclean = false;
                nv.pending = false;
                nv.standby_onfail = false;
                snap.wiped.insert(n);
                for rv in &mut snap.rscs {
                    rv.active.retain(|(m, _)| *m != n);
                }
                continue;
            }
            if act.pseudo() {
                continue;
            }
            let (Some(r), Some(n)) = (act.rsc, act.node) else {
                continue;
            };
            if self.resources[r].variant != Variant::Primitive {
                continue;
            }
            if clears_failure(&act.task, act.interval_ms) {
                cleared.insert((r, n));
            }
            if act.task == "monitor" && act.interval_ms == 0 {
                snap.probed.insert((r, n));
            }
            let promotable = self.is_promotable(r);
            let rv = &mut snap.rscs[r];
            let set_role =
                |rv: &mut RscView, role: Role| match rv.active.iter_mut().find(|(m, _)| *m == n) {
                    Some(e) => e.1 = role,
                    None => rv.active.push((n, role)),
                };
            match act.task.as_str() {
                "stop" => rv.active.retain(|(m, _)| *m != n),
                "start" | "migrate_from" => {
                    let role = if promotable {
                        Role::Unpromoted
                    } else {
                        Role::Started
                    };
                    set_role(rv, role);
                }
                "promote" => set_role(rv, Role::Promoted),
                "demote" => set_role(rv, Role::Unpromoted),
                _ => {}
            }
        }
        for (r, rv) in snap.rscs.iter_mut().enumerate() {
            let rsc = &self.resources[r];
            // A start still pending in the history outlives the
            // transition: the injected results sort before it.
            if let Some((task, n)) = &rsc.pending_task
                && task == "start"
                && !snap.wiped.contains(n)
                && !rv.active.iter().any(|(m, _)| m == n)
            {
                rv.active.push((*n, Role::Started));
            }
            if rv.failed {
                // Being active on several nodes counts as failed; that
                // ends once only one copy is left.
                let was_multiple = rsc.running_on.len() > 1;
                rv.failed = !(was_multiple && rv.active.len() <= 1)
                    && rv.active.iter().any(|(n, _)| !cleared.contains(&(r, *n)));
            }
        }
        snap
    }

    /// Instances counted for the notice before the status: (instances,
    /// disabled, blocked). A clone counts every instance it may have.
    pub(super) fn instance_counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for &top in &self.top {
            let mut stack = vec![top];
            while let Some(r) = stack.pop() {
                let rsc = &self.resources[r];
                match rsc.variant {
                    Variant::Clone => {
                        let max = rsc
                            .meta
                            .get("clone-max")
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(self.nodes.len());
                        let mut members = Vec::new();
                        let mut inner: Vec<RscId> = rsc.children.clone();
                        while let Some(m) = inner.pop() {
                            if self.resources[m].variant == Variant::Primitive {
                                members.push(m);
                            } else {
                                inner.extend(self.resources[m].children.iter().copied());
                            }
                        }
                        counts.0 += max * members.len();
                        for m in members {
                            if self.rsc_disabled(m) {
                                counts.1 += max;
                            }
                        }
                        counts.2 += self
                            .children_of(r)
                            .iter()
                            .filter(|i| self.resources[**i].flags.blocked)
                            .count();
                    }
                    Variant::Primitive => {
                        if rsc.flags.removed
                            && rsc.orig_role <= Role::Stopped
                            && rsc.running_on.is_empty()
                        {
                            continue;
                        }
                        counts.0 += 1;
                        if self.rsc_disabled(r) {
                            counts.1 += 1;
                        }
                        if rsc.flags.blocked {
                            counts.2 += 1;
                        }
                    }
                    _ => stack.extend(rsc.children.iter().copied()),
                }
            }
        }
        counts
    }

    /// Whether a resource's target role disables it.
    pub(super) fn rsc_disabled(&self, r: RscId) -> bool {
        let Some(v) = self.resources[r].meta.get("target-role") else {
            return false;
        };
        match Role::parse(v) {
            Some(Role::Stopped) => true,
            Some(Role::Unpromoted) => self.is_promotable(r),
            _ => false,
        }
    }
}
