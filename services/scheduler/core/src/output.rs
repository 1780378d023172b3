//! What the scheduler decided, in crm_simulate's text: the transition
//! summary, the cluster status, and allocation scores.

use vigil_types::Role;

use crate::Scheduler;
use crate::model::*;

/// Builds summary lines with crm_simulate's column layout (its column
/// widths only ever grow while lines are produced).
struct ItemWriter {
    rsc_width: usize,
    detail_width: usize,
    lines: Vec<String>,
}

impl ItemWriter {
    fn item(&mut self, change: &str, rsc: &str, details: String, reason: Option<String>) {
        if rsc.len() > self.rsc_width {
            self.rsc_width = rsc.len() + 2;
        }
        if details.len() > self.detail_width {
            self.detail_width = details.len();
        }
        let reason = reason.map(|r| format!("  {r}")).unwrap_or_default();
        self.lines.push(format!(
            "  * {change:<8}   {rsc:<rw$}   ( {details:>dw$} ){reason}",
            rw = self.rsc_width,
            dw = self.detail_width
        ));
    }
}

/// Which sections [`Scheduler::simulate_text`] prints, as crm_simulate's
/// flags choose them.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// `-S`: execute the transition and show the revised status.
    pub simulate: bool,
    /// `-s`: show allocation scores.
    pub scores: bool,
    /// "Now" came from the CIB's execution-date, which crm_simulate says.
    pub original_date: bool,
}

impl Scheduler {
    /// The whole text crm_simulate prints for these flags.
    pub fn simulate_text(&self, opts: &TextOptions) -> String {
        let date_line = opts.original_date.then(|| {
            format!(
                "Using the original execution date of: {}\n",
                vigil_cib::time::DateTime::from_epoch_seconds(self.settings.now)
            )
        });
        let mut out = String::new();
        if let Some(line) = &date_line {
            out.push_str(line);
        }
        for line in self.status_notices() {
            out.push_str(&line);
            out.push('\n');
        }
        if opts.simulate || !opts.scores {
            out.push_str("Current cluster status:\n");
            out.push_str(&self.cluster_status(false));
            out.push('\n');
        }
        if opts.scores {
            for l in self.score_lines() {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out.push_str("Transition Summary:\n");
        for l in self.transition_summary() {
            out.push_str(&l);
            out.push('\n');
        }
        if opts.simulate {
            out.push_str("\nExecuting Cluster Transition:\n");
            for l in self.executed_actions() {
                out.push_str(&l);
                out.push('\n');
            }
            if let Some(line) = &date_line {
                out.push_str(line);
            }
            out.push_str("\nRevised Cluster Status:\n");
            out.push_str(&self.cluster_status(true));
        }
        out
    }

    /// The node a resource is active on, as Pacemaker picks it: the first
    /// clean node unless the resource requires fencing.
    pub fn current_node(&self, r: RscId) -> Option<NodeId> {
        let rsc = &self.resources[r];
        let mut active: Option<NodeId> = None;
        for &n in &rsc.running_on {
            let happy = self.nodes[n].online && !self.nodes[n].unclean;
            if rsc.requires != Requires::Fencing
                && happy
                && active.is_none_or(|a| !self.nodes[a].online || self.nodes[a].unclean)
            {
                active = Some(n);
            }
            if active.is_none() {
                active = Some(n);
            }
            if rsc.requires == Requires::Fencing {
                break;
            }
        }
        active
    }

    /// The "Transition Summary" lines.
    pub fn transition_summary(&self) -> Vec<String> {
        let mut w = ItemWriter {
            rsc_width: 5,
            detail_width: 5,
            lines: Vec::new(),
        };
        // Node actions, newest first as Pacemaker lists them.
        for a in self.actions.iter().rev() {
            if a.rsc.is_some() || a.optional() {
                continue;
            }
            let task = match a.task.as_str() {
                "do_shutdown" => "Shutdown".to_string(),
                "stonith" => format!(
                    "Fence ({})",
                    a.meta.get("stonith_action").map_or("", String::as_str)
                ),
                _ => continue,
            };
            if let (Some(reason), Some(n)) = (&a.reason, a.node) {
                w.lines
                    .push(format!("  * {task} {} '{reason}'", self.nodes[n].uname));
            }
        }
        for &r in &self.top {
            self.output_rsc_actions(r, &mut w);
        }
        w.lines
    }

    fn output_rsc_actions(&self, r: RscId, w: &mut ItemWriter) {
        let children = self.children_of(r);
        if !children.is_empty() || self.resources[r].variant != Variant::Primitive {
            for c in children {
                self.output_rsc_actions(c, w);
            }
            return;
        }
        let rsc = &self.resources[r];
        let next = rsc.assigned;
        let mut current = None;
        let mut orig_role = rsc.orig_role;
        if !rsc.running_on.is_empty() {
            current = self.current_node(r);
            if orig_role == Role::Stopped {
                orig_role = Role::Started;
            }
        }
        if current.is_none() && rsc.flags.removed {
            return;
        }
        self.rsc_action_default(r, current, next, orig_role, w);
    }

    fn first_found(&self, r: RscId, task: &str, node: Option<NodeId>) -> Option<ActionId> {
        self.rsc_actions(r, task, node).first().copied()
    }

    #[allow(clippy::too_many_arguments)]
    fn item(
        &self,
        w: &mut ItemWriter,
        change: &str,
        r: RscId,
        orig_role: Role,
        origin: Option<NodeId>,
        destination: Option<NodeId>,
        action: Option<ActionId>,
        source: Option<ActionId>,
    ) {
        let Some(action) = action else { return };
        let rsc = &self.resources[r];
        let source = source.unwrap_or(action);
        let next_role = rsc.next_role;
        let need_role = orig_role > Role::Started || next_role > Role::Unpromoted;
        let same_host = origin == destination;
        let same_role = orig_role == next_role;
        let name = |n: Option<NodeId>| n.map_or("", |n| self.nodes[n].uname.as_str());
        let details = if need_role && origin.is_none() {
            format!("{} -> {} {}", orig_role, next_role, name(destination))
        } else if origin.is_none() {
            name(destination).to_string()
        } else if need_role && destination.is_none() {
            format!("{} {}", orig_role, name(origin))
        } else if destination.is_none() {
            name(origin).to_string()
        } else if need_role && same_role && same_host {
            format!("{} {}", orig_role, name(origin))
        } else if same_role && same_host {
            name(origin).to_string()
        } else if need_role && same_role {
            format!("{} -> {} {}", name(origin), name(destination), orig_role)
        } else if same_role {
            format!("{} -> {}", name(origin), name(destination))
        } else if same_host {
            format!("{} -> {} {}", orig_role, next_role, name(origin))
        } else {
            format!(
                "{} {} -> {} {}",
                orig_role,
                name(origin),
                next_role,
                name(destination)
            )
        };
        let act = &self.actions[action];
        let reason = match (&self.actions[source].reason, act.runnable()) {
            (Some(r), false) => Some(format!("due to {r} (blocked)")),
            (Some(r), true) => Some(format!("due to {r}")),
            (None, false) => Some("blocked".to_string()),
            (None, true) => None,
        };
        w.item(change, &rsc.id, details, reason);
    }

    fn rsc_action_default(
        &self,
        r: RscId,
        current: Option<NodeId>,
        next: Option<NodeId>,
        orig_role: Role,
        w: &mut ItemWriter,
    ) {
        let rsc = &self.resources[r];
        if !rsc.flags.managed || (current.is_none() && next.is_none()) {
            return;
        }
        let moving = current.is_some() && next.is_some() && current != next;
        let start = self.first_found(r, "start", next);
        let start_node = match start {
            Some(s) if self.actions[s].runnable() => current,
            _ => None,
        };
        let mut stop = self.first_found(r, "stop", start_node);
        if stop.is_none() && rsc.flags.stop_unexpected {
            stop = self.first_found(r, "stop", None);
        }
        let promote = self.first_found(r, "promote", next);
        let demote = self.first_found(r, "demote", next);
        let optional = |a: Option<ActionId>| a.is_none_or(|a| self.actions[a].optional());
        let runnable = |a: Option<ActionId>| a.is_some_and(|a| self.actions[a].runnable());

        if orig_role == rsc.next_role {
            let Some(next_n) = next else { return };
            let migrate = self.first_found(r, "migrate_from", Some(next_n));
            if migrate.is_some() && current.is_some() && runnable(migrate) {
                self.item(w, "Migrate", r, orig_role, current, next, start, None);
            } else if rsc.flags.reload {
                self.item(w, "Reload", r, orig_role, current, next, start, None);
            } else if start.is_none() || optional(start) {
                if demote.is_some() && promote.is_some() && !optional(demote) && !optional(promote)
                {
                    self.item(
                        w,
                        "Re-promote",
                        r,
                        orig_role,
                        current,
                        next,
                        promote,
                        demote,
                    );
                }
            } else if !runnable(start) {
                let reason_op = match stop {
                    Some(s) if self.actions[s].reason.is_some() => Some(s),
                    _ => start,
                };
                self.item(w, "Stop", r, orig_role, current, None, stop, reason_op);
            } else if moving && current.is_some() {
                let change = if rsc.flags.failed { "Recover" } else { "Move" };
                self.item(w, change, r, orig_role, current, next, stop, None);
            } else if rsc.flags.failed {
                self.item(w, "Recover", r, orig_role, current, None, stop, None);
            } else {
                self.item(w, "Restart", r, orig_role, current, next, start, None);
            }
            return;
        }

        if stop.is_some()
            && (rsc.next_role == Role::Stopped || (start.is_some() && !runnable(start)))
        {
            let key = format!("{}_stop_0", rsc.id);
            for &n in &rsc.running_on {
                let mut reason_op = start;
                let stop_op = rsc
                    .actions
                    .iter()
                    .copied()
                    .find(|a| self.actions[*a].uuid == key && self.actions[*a].node == Some(n));
                if let Some(s) = stop_op
                    && self.actions[s].reason.is_some()
                {
                    reason_op = Some(s);
                }
                self.item(w, "Stop", r, orig_role, Some(n), None, stop_op, reason_op);
            }
        } else if stop.is_some() && rsc.flags.failed && rsc.flags.stop_if_failed {
            self.item(w, "Recover", r, orig_role, current, next, stop, start);
        } else if moving {
            self.item(w, "Move", r, orig_role, current, next, stop, None);
        } else if rsc.flags.reload {
            self.item(w, "Reload", r, orig_role, current, next, start, None);
        } else if stop.is_some() && !optional(stop) {
            self.item(w, "Restart", r, orig_role, current, next, start, None);
        } else if orig_role == Role::Promoted {
            self.item(w, "Demote", r, orig_role, current, next, demote, None);
        } else if rsc.next_role == Role::Promoted {
            self.item(w, "Promote", r, orig_role, current, next, promote, None);
        } else if orig_role == Role::Stopped && rsc.next_role > Role::Stopped {
            self.item(w, "Start", r, orig_role, current, next, start, None);
        }
    }
}
