//! What each resource must do: configuration-change checks, the actions
//! that take a resource from its current role to its next one, its
//! internal orderings, recurring monitors, and node fencing and shutdown.

use std::collections::BTreeMap;

use vigil_cib::time::parse_interval_ms;
use vigil_cib::xml::Element;
use vigil_types::Role;

use crate::Scheduler;
use crate::actions::op_key;
use crate::digest::{self, ConfigChange, DigestInput, RecordedDigests};
use crate::model::*;
use crate::unpack::HistoryOp;

/// The next role on the way from one role to another.
fn next_step(from: Role, to: Role) -> Role {
    use Role::*;
    match (from, to) {
        (Unknown, Unknown) => Unknown,
        (Unknown, _) => Stopped,
        (Stopped, Unknown | Stopped) => Stopped,
        (Stopped, Started) => Started,
        (Stopped, Unpromoted | Promoted) => Unpromoted,
        (Started, Unknown | Stopped) => Stopped,
        (Started, Started) => Started,
        (Started, Unpromoted) => Unpromoted,
        (Started, Promoted) => Promoted,
        (Unpromoted, Unknown | Stopped | Started) => Stopped,
        (Unpromoted, Unpromoted) => Unpromoted,
        (Unpromoted, Promoted) => Promoted,
        (Promoted, Unknown) => Stopped,
        (Promoted, Stopped | Started | Unpromoted) => Unpromoted,
        (Promoted, Promoted) => Promoted,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Stop,
    Start,
    Demote,
    Promote,
    Nothing,
    Error,
}

/// The action that moves a resource directly from one role to the next.
fn transition_fn(from: Role, to: Role) -> Step {
    use Role::*;
    match (from, to) {
        (Unknown, Stopped) => Step::Stop,
        (Unknown, _) => Step::Error,
        (Stopped, Stopped) => Step::Nothing,
        (Stopped, Started | Unpromoted) => Step::Start,
        (Stopped, _) => Step::Error,
        (Started, Stopped) => Step::Stop,
        (Started, Started | Unpromoted) => Step::Nothing,
        (Started, Promoted) => Step::Promote,
        (Started, Unknown) => Step::Error,
        (Unpromoted, Stopped | Started) => Step::Stop,
        (Unpromoted, Unpromoted) => Step::Nothing,
        (Unpromoted, Promoted) => Step::Promote,
        (Unpromoted, Unknown) => Step::Error,
        (Promoted, Stopped | Started | Unpromoted) => Step::Demote,
        (Promoted, Promoted) => Step::Nothing,
        (Promoted, Unknown) => Step::Error,
    }
}

impl Scheduler {
    // ---- configuration changes ----

    /// Normalised timeout (ms) of an operation, as Pacemaker computes it.
    pub(crate) fn op_timeout_ms(&self, rsc: RscId, task: &str, interval_ms: u64) -> u64 {
        let cfg = self.find_op_config(rsc, task, interval_ms, true);
        let mut spec = cfg.and_then(|i| self.resources[rsc].ops[i].meta.get("timeout").cloned());
        if spec.is_none() && task == "monitor" && interval_ms == 0 {
            // Probes use the most frequent monitor's timeout.
            let r = &self.resources[rsc];
            let mut best: Option<&OpConfig> = None;
            for o in &r.ops {
                if o.name == "monitor" && o.interval_ms > 0 && o.enabled {
                    match best {
                        Some(b) if b.interval_ms <= o.interval_ms => {}
                        _ => best = Some(o),
                    }
                }
            }
            spec = best.and_then(|b| b.xml.attr("timeout").map(str::to_string));
        }
        let spec = spec.or_else(|| self.op_default("timeout"));
        match spec.as_deref().and_then(parse_interval_ms) {
            Some(ms) if ms > 0 => ms,
            _ => 20_000,
        }
    }

    /// Digests of a history entry's operation under the current config.
    fn compute_op_digests(
        &mut self,
        rsc: RscId,
        n: NodeId,
        entry: &Element,
    ) -> (digest::Digests, DigestInputOwned) {
        let task = entry.attr("operation").unwrap_or("");
        let interval_ms: u64 = entry
            .attr("interval")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let params = self.rsc_params_on(rsc, n);
        let cfg = self.find_op_config(rsc, task, interval_ms, true);
        let mut op_params = BTreeMap::new();
        if let Some(i) = cfg {
            let xml = self.resources[rsc].ops[i].xml.clone();
            let attrs = self.nodes[n].attrs.clone();
            let ctx = vigil_cib::rules::RuleContext {
                now: self.now_dt(),
                node_attrs: Some(&attrs),
                ..Default::default()
            };
            self.nvpairs(&xml, "instance_attributes", &ctx, &mut op_params, false);
        }
        let timeout_ms = self.op_timeout_ms(rsc, task, interval_ms);
        let owned = DigestInputOwned {
            params,
            op_params,
            interval_ms: interval_ms as u32,
            timeout_ms: timeout_ms as u32,
            fencing: self.resources[rsc].class.eq_ignore_ascii_case("stonith"),
        };
        let input = DigestInput {
            params: &owned.params,
            op_params: &owned.op_params,
            interval_ms: owned.interval_ms,
            timeout_ms: owned.timeout_ms,
            fencing: owned.fencing,
            cib_feature_set: self.feature_set.as_deref(),
        };
        let recorded = RecordedDigests::from_op(entry);
        let d = digest::compute_digests(&input, Some(&recorded), true);
        (d, owned)
    }

    /// Instance parameters of a resource evaluated for a node.
    pub(crate) fn rsc_params_on(&mut self, rsc: RscId, n: NodeId) -> BTreeMap<String, String> {
        let attrs = self.nodes[n].attrs.clone();
        let ctx = vigil_cib::rules::RuleContext {
            now: self.now_dt(),
            node_attrs: Some(&attrs),
            ..Default::default()
        };
        let mut params = BTreeMap::new();
        let mut cur = Some(rsc);
        let mut first = true;
        while let Some(r) = cur {
            let xml = if first {
                self.template_xml(r)
            } else {
                self.resources[r].xml.clone()
            };
            first = false;
            self.nvpairs(&xml, "instance_attributes", &ctx, &mut params, false);
            cur = self.resources[r].parent;
        }
        params
    }

    fn template_xml(&self, r: RscId) -> Element {
        match self.instance_template.get(&r) {
            Some(t) => self.resources[*t].xml.clone(),
            None => self.resources[r].xml.clone(),
        }
    }

    /// Whether a failed operation's parameters changed since (so its
    /// failure is cleared).
    pub(crate) fn digests_changed(&mut self, rsc: RscId, n: NodeId, entry: &Element) -> bool {
        let (d, _) = self.compute_op_digests(rsc, n, entry);
        let recorded = RecordedDigests::from_op(entry);
        !matches!(
            digest::compare(&recorded, &d),
            digest::DigestMatch::Match | digest::DigestMatch::Unknown
        )
    }

    pub(crate) fn handle_rsc_config_changes(&mut self, status: Option<&Element>) {
        let Some(status) = status else { return };
        let mut states: std::collections::HashMap<&str, &Element> = Default::default();
        for st in status.children_named("node_state") {
            if let Some(u) = st.attr("uname") {
                states.entry(u).or_insert(st);
            }
        }
        let mut primitives: std::collections::HashMap<String, Vec<RscId>> = Default::default();
        for r in 0..self.resources.len() {
            if self.resources[r].variant == Variant::Primitive && !self.is_clone_template(r) {
                primitives
                    .entry(self.resources[r].id.clone())
                    .or_default()
                    .push(r);
            }
        }
        for n in 0..self.nodes.len() {
            if !(self.nodes[n].maintenance || self.nodes[n].available()) {
                continue;
            }
            let Some(state) = states.get(self.nodes[n].uname.as_str()) else {
                continue;
            };
            let Some(list) = state.child("lrm").and_then(|l| l.child("lrm_resources")) else {
                continue;
            };
            for entry in list.children_named("lrm_resource") {
                if entry.children.is_empty() {
                    continue;
                }
                let Some(id) = entry.attr("id") else { continue };
                for &r in primitives.get(id).map_or(&[][..], Vec::as_slice) {
                    self.process_rsc_history(entry, r, n);
                }
            }
        }
    }

    fn is_clone_template(&self, r: RscId) -> bool {
        self.resources[r].parent.is_some_and(|p| {
            let top = self.top_of(p);
            self.resources[top].variant == Variant::Clone
        }) && !self.instance_template.contains_key(&r)
    }

    fn process_rsc_history(&mut self, entry: &Element, r: RscId, n: NodeId) {
        if self.resources[r].flags.removed {
            self.schedule_cleanup(r, n, false);
            return;
        }
        if !self.resources[r].running_on.contains(&n) {
            return;
        }
        let ops = HistoryOp::sorted_from_entry(entry);
        let (start_index, stop_index) = crate::unpack::active_ops(&ops);
        if start_index < stop_index {
            return;
        }
        for (offset, op) in ops.iter().enumerate() {
            if (offset as i64) < start_index {
                continue;
            }
            let interval = op.interval_ms;
            if interval > 0 && (self.resources[r].flags.maintenance || self.nodes[n].maintenance) {
                self.schedule_cancel(r, &op.task, interval, n);
            } else if (interval > 0
                || matches!(
                    op.task.as_str(),
                    "monitor" | "start" | "promote" | "migrate_from"
                ))
                && self.check_action_config(r, n, op)
                && self.failcount(n, r, true).0 != 0
            {
                self.clear_failcount(r, n, "action definition changed");
            }
        }
    }

    fn check_action_config(&mut self, r: RscId, n: NodeId, op: &HistoryOp<'_>) -> bool {
        let interval = op.interval_ms;
        if interval > 0 && self.find_op_config(r, &op.task, interval, false).is_none() {
            self.schedule_cancel(r, &op.task, interval, n);
            return true;
        }
        let task = digest::digest_task(&op.task, interval as u32).to_string();
        let expired_key = (r, n, op.id.clone());
        let (mut d, _) = self.compute_op_digests(r, n, op.xml);
        let mut recorded = RecordedDigests::from_op(op.xml);
        if self.expired_recurring.contains(&expired_key) {
            recorded.restart = Some("calculated-failure-timeout");
            if d.restart.is_none() {
                d.restart = Some(String::new());
            }
        }
        match digest::config_change(&recorded, &d, interval as u32, true) {
            ConfigChange::Unchanged => false,
            ConfigChange::Restart => {
                self.force_restart(r, &task, interval);
                true
            }
            ConfigChange::Reschedule => {
                self.reschedule_recurring(r, &op.task, interval, n);
                true
            }
            ConfigChange::Reload => {
                self.schedule_reload(r, Some(n));
                true
            }
        }
    }

    fn force_restart(&mut self, r: RscId, task: &str, interval_ms: u64) {
        let key = op_key(&self.resources[r].id, task, interval_ms);
        let a = self.custom_action(Some(r), key, task, None, false);
        self.set_reason(a, Some("resource definition change"), true);
    }

    fn schedule_reload(&mut self, r: RscId, node: Option<NodeId>) {
        let Some(n) = node else { return };
        if !self.resources[r].flags.managed || self.resources[r].flags.failed {
            return;
        }
        if self.resources[r].flags.start_pending {
            self.stop_action(r, n, false);
            return;
        }
        self.resources[r].flags.reload = true;
        let key = op_key(&self.resources[r].id, "reload-agent", 0);
        let reload = self.custom_action(Some(r), key, "reload-agent", Some(n), false);
        self.set_reason(reload, Some("resource definition change"), false);
        let stop = op_key(&self.resources[r].id, "stop", 0);
        let demote = op_key(&self.resources[r].id, "demote", 0);
        self.new_ordering(
            None,
            None,
            Some(reload),
            Some(r),
            Some(stop),
            None,
            ar::ORDERED | ar::THEN_CANCELS_FIRST,
        );
        self.new_ordering(
            None,
            None,
            Some(reload),
            Some(r),
            Some(demote),
            None,
            ar::ORDERED | ar::THEN_CANCELS_FIRST,
        );
    }

    fn reschedule_recurring(&mut self, r: RscId, task: &str, interval_ms: u64, n: NodeId) {
        let key = op_key(&self.resources[r].id, task, interval_ms);
        let a = self.custom_action(Some(r), key, task, Some(n), true);
        self.actions[a]
            .meta
            .insert("reschedule".into(), "true".into());
    }

    fn schedule_cancel(&mut self, r: RscId, task: &str, interval_ms: u64, n: NodeId) {
        self.new_cancel_action(r, task, interval_ms, n);
    }

    /// Removes a resource's history from a node after stopping it.
    fn schedule_cleanup(&mut self, r: RscId, n: NodeId, optional: bool) {
        if self.resources[r].flags.failed || self.nodes[n].unclean || !self.nodes[n].online {
            return;
        }
        let key = op_key(&self.resources[r].id, "delete", 0);
        self.custom_action(Some(r), key, "delete", Some(n), optional);
        let flag = if optional {
            ar::FIRST_IMPLIES_THEN
        } else {
            ar::ORDERED
        };
        self.order_rsc_actions(r, "stop", r, "delete", flag);
        self.order_rsc_actions(r, "delete", r, "start", flag);
    }

    /// A removed resource's fail counts are cleared wherever it failed.
    fn clear_failcounts_if_removed(&mut self, r: RscId) {
        if !self.resources[r].flags.removed {
            return;
        }
        for n in 0..self.nodes.len() {
            if !self.nodes[n].online || self.failcount(n, r, true).0 == 0 {
                continue;
            }
            let clear = self.clear_failcount(r, n, "it is removed");
            let stop = op_key(&self.resources[r].id, "stop", 0);
            self.new_ordering(
                Some(r),
                None,
                Some(clear),
                Some(r),
                Some(stop),
                None,
                ar::ORDERED,
            );
        }
    }

    // ---- internal constraints ----

    pub(crate) fn create_internal_constraints(&mut self) {
        for r in self.top.clone() {
            self.internal_constraints(r);
        }
    }

    fn internal_constraints(&mut self, r: RscId) {
        match self.resources[r].variant {
            Variant::Primitive => self.primitive_internal_constraints(r),
            Variant::Group => self.group_internal_constraints(r),
            Variant::Clone | Variant::Bundle => {}
        }
    }

    fn primitive_internal_constraints(&mut self, r: RscId) {
        if !self.resources[r].flags.managed {
            return;
        }
        self.order_rsc_actions(
            r,
            "stop",
            r,
            "start",
            ar::ORDERED | ar::FIRST_IMPLIES_THEN | ar::INTERMEDIATE_STOP,
        );
        if self.is_promotable(r) || self.resources[r].orig_role > Role::Unpromoted {
            self.order_rsc_actions(r, "demote", r, "stop", ar::PROMOTED_THEN_IMPLIES_FIRST);
            self.order_rsc_actions(r, "start", r, "promote", ar::UNRUNNABLE_FIRST_BLOCKS);
        }
        self.order_rsc_actions(
            r,
            "lrm_delete",
            r,
            "monitor",
            ar::IF_ON_SAME_NODE | ar::THEN_CANCELS_FIRST,
        );
        if let Some(l) = self.resources[r].launcher {
            // A launched resource starts after, and stops before, its
            // launcher, and runs where it does.
            self.order_rsc_actions(
                l,
                "start",
                r,
                "start",
                ar::FIRST_IMPLIES_THEN | ar::UNRUNNABLE_FIRST_BLOCKS,
            );
            self.order_rsc_actions(r, "stop", l, "stop", ar::THEN_IMPLIES_FIRST);
            let influence = self.resources[r].flags.critical;
            self.new_colocation(
                "#resource-with-container",
                None,
                vigil_types::Score::INFINITY,
                r,
                l,
                None,
                None,
                influence,
                false,
            );
        }
    }

    fn group_internal_constraints(&mut self, g: RscId) {
        self.order_rsc_actions(g, "stop", g, "stopped", ar::UNRUNNABLE_FIRST_BLOCKS);
        self.order_rsc_actions(g, "stopped", g, "start", ar::ORDERED);
        self.order_rsc_actions(g, "start", g, "running", ar::UNRUNNABLE_FIRST_BLOCKS);
        let ordered = self.resources[g].group_ordered;
        let colocated = self.resources[g].group_colocated;
        let mut previous: Option<RscId> = None;
        let mut last_active: Option<RscId> = None;
        for m in self.resources[g].children.clone() {
            let mut down_flags = ar::THEN_IMPLIES_FIRST_GRAPHED;
            let mut post_down_flags = ar::FIRST_IMPLIES_THEN_GRAPHED;
            self.internal_constraints(m);
            match previous {
                None if ordered => {
                    down_flags |= ar::ORDERED;
                    post_down_flags = ar::FIRST_IMPLIES_THEN;
                }
                Some(p) if colocated => {
                    let influence = self.resources[m].flags.critical;
                    self.new_colocation(
                        "#group-members",
                        None,
                        vigil_types::Score::INFINITY,
                        m,
                        p,
                        None,
                        None,
                        influence,
                        false,
                    );
                }
                _ => {}
            }
            self.order_rsc_actions(g, "stop", m, "stop", down_flags);
            self.order_rsc_actions(m, "stop", g, "stopped", post_down_flags);
            self.order_rsc_actions(g, "start", m, "start", ar::THEN_IMPLIES_FIRST_GRAPHED);
            self.order_rsc_actions(
                m,
                "start",
                g,
                "running",
                ar::UNRUNNABLE_FIRST_BLOCKS
                    | ar::FIRST_IMPLIES_THEN
                    | ar::FIRST_IMPLIES_THEN_GRAPHED,
            );
            if !ordered {
                self.order_rsc_actions(
                    g,
                    "start",
                    m,
                    "start",
                    ar::FIRST_IMPLIES_THEN
                        | ar::UNRUNNABLE_FIRST_BLOCKS
                        | ar::THEN_IMPLIES_FIRST_GRAPHED,
                );
            } else if let Some(p) = previous {
                self.order_rsc_actions(
                    p,
                    "start",
                    m,
                    "start",
                    ar::FIRST_IMPLIES_THEN | ar::UNRUNNABLE_FIRST_BLOCKS,
                );
                self.order_rsc_actions(m, "stop", p, "stop", ar::ORDERED | ar::INTERMEDIATE_STOP);
                if !self.resources[m].running_on.is_empty()
                    && self.resources[p].running_on.is_empty()
                {
                    self.order_rsc_actions(
                        m,
                        "stop",
                        p,
                        "start",
                        ar::THEN_IMPLIES_FIRST | ar::UNRUNNABLE_FIRST_BLOCKS,
                    );
                }
            } else {
                self.order_rsc_actions(g, "start", m, "start", ar::NONE);
            }
            if !self.resources[m].running_on.is_empty() {
                if ordered
                    && let (Some(p), Some(la)) = (previous, last_active)
                    && self.resources[p].running_on.is_empty()
                    && !self.resources[la].running_on.is_empty()
                {
                    self.order_rsc_actions(m, "stop", la, "stop", ar::ORDERED);
                }
                last_active = Some(m);
            }
            previous = Some(m);
        }
    }

    // ---- actions ----

    pub(crate) fn schedule_resource_actions(&mut self) {
        if self.settings.probe_resources {
            self.schedule_probes();
        }
        if self.settings.stop_removed {
            for r in self.top.clone() {
                self.clear_failcounts_if_removed(r);
            }
        }
        for r in self.top.clone() {
            self.create_actions(r);
        }
    }

    fn create_actions(&mut self, r: RscId) {
        match self.resources[r].variant {
            Variant::Primitive => self.primitive_create_actions(r),
            Variant::Group => {
                for m in self.resources[r].children.clone() {
                    self.create_actions(m);
                }
                for task in ["start", "running", "stop", "stopped"] {
                    self.rsc_pseudo_op(r, task, true);
                }
            }
            Variant::Clone | Variant::Bundle => {
                for c in self.children_of(r) {
                    self.create_recurring_for_kept(c);
                }
            }
        }
    }

    /// Clone instances left in place keep their recurring monitors.
    fn create_recurring_for_kept(&mut self, r: RscId) {
        if self.resources[r].variant != Variant::Primitive {
            return;
        }
        if self.resources[r].next_role == Role::Unknown {
            let role = if self.resources[r].assigned.is_some() {
                self.resources[r].orig_role
            } else {
                Role::Stopped
            };
            self.resources[r].next_role = role;
        }
    }

    fn primitive_create_actions(&mut self, r: RscId) {
        if self.resources[r].next_role == Role::Unknown {
            self.resources[r].next_role = if self.resources[r].assigned.is_none() {
                Role::Stopped
            } else {
                Role::Started
            };
        }
        let current = self.current_node(r);
        let assigned = self.resources[r].assigned;
        let mut need_stop = false;
        let mut need_promote = false;
        let mut is_moving = false;
        if let (Some(c), Some(a)) = (current, assigned)
            && c != a
            && self.resources[r].next_role >= Role::Started
        {
            is_moving = true;
            need_stop = true;
        }
        let num_all = self.resources[r].running_on.len();
        let num_clean = self.resources[r]
            .running_on
            .iter()
            .filter(|n| !self.nodes[**n].unclean)
            .count();
        let multiply_active = if self.resources[r].requires == Requires::Fencing {
            num_all > 1
        } else {
            num_clean > 1
        };
        if multiply_active {
            match self.resources[r].multiple_active {
                MultipleActive::Restart => need_stop = true,
                MultipleActive::StopUnexpected => {
                    need_stop = true;
                    self.resources[r].flags.stop_unexpected = true;
                }
                _ => {}
            }
        } else {
            self.resources[r].flags.stop_unexpected = false;
        }
        if self.resources[r].flags.start_pending {
            let a = self.start_action(r, assigned, true);
            self.actions[a].flags.0 |= AFlags::ALWAYS_IN_GRAPH;
        }
        if is_moving {
        } else if self.resources[r].flags.failed {
            if self.resources[r].flags.stop_if_failed {
                need_stop = true;
            } else if self.resources[r].next_role == Role::Promoted {
                need_promote = true;
            }
        } else if self.resources[r].flags.blocked {
            need_stop = true;
        } else if self.resources[r].orig_role > Role::Started
            && current.is_some()
            && assigned.is_some()
        {
            let start = self.start_action(r, assigned, true);
            if !self.actions[start].optional() {
                need_stop = true;
            }
        }
        self.schedule_restart_actions(r, current, need_stop, need_promote);
        self.schedule_role_transition_actions(r);
        self.create_recurring_actions(r);
    }

    fn run_step(&mut self, r: RscId, step: Step, node: Option<NodeId>, optional: bool) -> bool {
        match step {
            Step::Nothing => return false,
            Step::Error => {
                self.diag.errors.push(format!(
                    "no way to move {} between roles",
                    self.resources[r].id
                ));
                return false;
            }
            Step::Stop => self.stop_resource(r, optional),
            Step::Start => {
                if let Some(n) = node {
                    self.start_resource(r, n, optional);
                }
            }
            Step::Demote => self.demote_resource(r, optional),
            Step::Promote => {
                if let Some(n) = node {
                    self.promote_resource(r, n, optional);
                }
            }
        }
        true
    }

    fn schedule_restart_actions(
        &mut self,
        r: RscId,
        _current: Option<NodeId>,
        need_stop: bool,
        need_promote: bool,
    ) {
        self.resources[r].flags.restarting = true;
        let mut role = self.resources[r].orig_role;
        while role != Role::Stopped {
            let next = next_step(role, Role::Stopped);
            let step = transition_fn(role, next);
            if !self.run_step(r, step, None, !need_stop) {
                break;
            }
            role = next;
        }
        let orig = self.resources[r].orig_role;
        while orig <= self.resources[r].next_role
            && role != orig
            && !self.resources[r].flags.blocked
        {
            let next = next_step(role, orig);
            let required = need_stop || (next == Role::Promoted && need_promote);
            let step = transition_fn(role, next);
            let node = self.resources[r].assigned;
            if !self.run_step(r, step, node, !required) {
                break;
            }
            role = next;
        }
        self.resources[r].flags.restarting = false;
    }

    fn schedule_role_transition_actions(&mut self, r: RscId) {
        let mut role = self.resources[r].orig_role;
        while role != self.resources[r].next_role {
            let next = next_step(role, self.resources[r].next_role);
            let step = transition_fn(role, next);
            let node = self.resources[r].assigned;
            if !self.run_step(r, step, node, false) {
                break;
            }
            role = next;
        }
    }

    fn is_expected_node(&self, r: RscId, n: NodeId) -> bool {
        let rsc = &self.resources[r];
        rsc.flags.stop_unexpected
            && rsc.flags.restarting
            && rsc.next_role > Role::Stopped
            && rsc.assigned == Some(n)
    }

    fn stop_resource(&mut self, r: RscId, optional: bool) {
        for current in self.resources[r].running_on.clone() {
            if self.is_expected_node(r, current) {
                continue;
            }
            let stop = self.stop_action(r, current, optional);
            if self.resources[r].assigned.is_none() {
                self.set_reason(stop, Some("node availability"), true);
            } else if self.resources[r].flags.restarting && self.resources[r].flags.stop_unexpected
            {
                self.set_reason(stop, Some("being multiply active"), true);
            }
            if !self.resources[r].flags.managed {
                self.actions[stop].flags.0 &= !AFlags::RUNNABLE;
            }
        }
    }

    fn start_resource(&mut self, r: RscId, n: NodeId, optional: bool) {
        let start = self.start_action(r, Some(n), true);
        if self.actions[start].runnable() && !optional {
            self.actions[start].flags.0 &= !AFlags::OPTIONAL;
        }
        if self.is_expected_node(r, n) {
            self.actions[start].flags.0 |= AFlags::PSEUDO;
        }
    }

    fn promote_resource(&mut self, r: RscId, n: NodeId, optional: bool) {
        let starts: Vec<ActionId> = self
            .rsc_actions(r, "start", Some(n))
            .into_iter()
            .filter(|a| self.actions[*a].node == Some(n))
            .collect();
        let runnable = starts.iter().all(|a| self.actions[*a].runnable());
        if runnable {
            let p = self.rsc_action(r, "promote", Some(n), optional);
            if self.is_expected_node(r, n) {
                self.actions[p].flags.0 |= AFlags::PSEUDO;
            }
        } else {
            let p = self.rsc_action(r, "promote", Some(n), true);
            self.actions[p].flags.0 &= !AFlags::RUNNABLE;
        }
    }

    fn demote_resource(&mut self, r: RscId, optional: bool) {
        for current in self.resources[r].running_on.clone() {
            if self.is_expected_node(r, current) {
                continue;
            }
            self.rsc_action(r, "demote", Some(current), optional);
        }
    }

    /// Recurring monitors for the role a resource will have, and for the
    /// Stopped role where it will not run.
    fn create_recurring_actions(&mut self, r: RscId) {
        if self.resources[r].flags.blocked || self.resources[r].flags.maintenance {
            return;
        }
        let assigned = self.resources[r].assigned;
        let mut start = None;
        if let Some(n) = assigned
            && !self.nodes[n].maintenance
            && (self.resources[r].next_role != Role::Stopped || !self.resources[r].flags.managed)
        {
            start = Some(self.start_action(r, Some(n), true));
        }
        for op in self.resources[r].ops.clone() {
            if !self.is_recurring_config(r, &op) {
                continue;
            }
            if let Some(start) = start {
                self.recurring_op_for_active(r, start, &op);
            }
            self.recurring_op_for_inactive(r, assigned, &op);
        }
    }

    /// Whether a configured op is a valid, enabled recurring operation.
    fn is_recurring_config(&mut self, r: RscId, op: &OpConfig) -> bool {
        if op.interval_ms == 0 {
            return false;
        }
        if matches!(
            op.name.as_str(),
            "stop"
                | "start"
                | "demote"
                | "promote"
                | "reload-agent"
                | "migrate_to"
                | "migrate_from"
        ) {
            self.diag.errors.push(format!(
                "{}: ignoring {} because {} cannot be recurring",
                op.xml.pos, op.id, op.name
            ));
            return false;
        }
        let same = self.resources[r]
            .ops
            .iter()
            .filter(|o| o.name == op.name && o.interval_ms == op.interval_ms)
            .count();
        if same > 1 {
            self.diag.errors.push(format!(
                "{}: operation {} of {} duplicates another with the same name and interval",
                op.xml.pos, op.id, self.resources[r].id
            ));
            return false;
        }
        if let Some(role) = op.xml.attr("role")
            && Role::parse(role).is_none()
        {
            return false;
        }
        self.find_op_config(r, &op.name, op.interval_ms, false)
            .is_some()
    }

    fn recurring_op_for_active(&mut self, r: RscId, start: ActionId, op: &OpConfig) {
        let role = op.role.unwrap_or(Role::Unknown);
        if role == Role::Stopped {
            return;
        }
        let node = self.resources[r].assigned;
        let key = op_key(&self.resources[r].id, &op.name, op.interval_ms);
        let is_optional = match node {
            None => false,
            Some(n) => {
                if self.actions[start].flags.0 & AFlags::OPTIONAL == 0 {
                    false
                } else {
                    let existing: Vec<ActionId> = self
                        .uuid_actions(r, &key)
                        .iter()
                        .copied()
                        .filter(|a| self.actions[*a].node == Some(n))
                        .collect();
                    !existing.is_empty()
                        && !existing
                            .iter()
                            .any(|a| self.actions[*a].meta.contains_key("reschedule"))
                }
            }
        };
        let next = self.resources[r].next_role;
        let role_match = if role == Role::Unknown {
            next != Role::Promoted
        } else {
            next == role
        };
        if !role_match {
            if is_optional && let Some(n) = node {
                let cancel = self.new_cancel_action(r, &op.name, op.interval_ms, n);
                let after = match self.resources[r].orig_role {
                    Role::Unpromoted | Role::Started => match next {
                        Role::Promoted => Some("promote"),
                        Role::Stopped => Some("stop"),
                        _ => None,
                    },
                    Role::Promoted => Some("demote"),
                    _ => None,
                };
                if let Some(t) = after {
                    let k = op_key(&self.resources[r].id, t, 0);
                    self.new_ordering(
                        Some(r),
                        None,
                        Some(cancel),
                        Some(r),
                        Some(k),
                        None,
                        ar::UNRUNNABLE_FIRST_BLOCKS,
                    );
                }
            }
            return;
        }
        let mon = self.custom_action(Some(r), key, &op.name, node, is_optional);
        if !self.actions[start].runnable()
            || node.is_none_or(|n| !self.nodes[n].online || self.nodes[n].unclean)
        {
            self.actions[mon].flags.0 &= !AFlags::RUNNABLE;
        }
        if next == Role::Promoted {
            self.actions[mon].target_rc = Some(8);
        }
        if node.is_none() || self.resources[r].flags.managed {
            let id = self.resources[r].id.clone();
            let uuid = self.actions[mon].uuid.clone();
            for t in ["start", "reload-agent"] {
                self.new_ordering(
                    Some(r),
                    Some(op_key(&id, t, 0)),
                    None,
                    None,
                    Some(uuid.clone()),
                    Some(mon),
                    ar::FIRST_IMPLIES_THEN | ar::UNRUNNABLE_FIRST_BLOCKS,
                );
            }
            let after = if next == Role::Promoted {
                Some("promote")
            } else if self.resources[r].orig_role == Role::Promoted {
                Some("demote")
            } else {
                None
            };
            if let Some(t) = after {
                self.new_ordering(
                    Some(r),
                    Some(op_key(&id, t, 0)),
                    None,
                    Some(r),
                    None,
                    Some(mon),
                    ar::ORDERED | ar::UNRUNNABLE_FIRST_BLOCKS,
                );
            }
        }
    }

    fn new_cancel_action(&mut self, r: RscId, task: &str, interval_ms: u64, n: NodeId) -> ActionId {
        let key = op_key(&self.resources[r].id, "cancel", interval_ms);
        let a = self.custom_action(Some(r), key, "cancel", Some(n), false);
        self.actions[a].meta.insert("task".into(), task.to_string());
        self.actions[a]
            .meta
            .insert("interval".into(), interval_ms.to_string());
        a
    }

    fn recurring_op_for_inactive(&mut self, r: RscId, node: Option<NodeId>, op: &OpConfig) {
        if op.role != Some(Role::Stopped) {
            return;
        }
        if !self.resources[r].flags.unique {
            return;
        }
        let key = op_key(&self.resources[r].id, &op.name, op.interval_ms);
        for stop_node in 0..self.nodes.len() {
            let exists = self
                .uuid_actions(r, &key)
                .iter()
                .any(|a| self.actions[*a].node == Some(stop_node));
            if Some(stop_node) == node {
                if exists {
                    let cancel = self.new_cancel_action(r, &op.name, op.interval_ms, stop_node);
                    if matches!(
                        self.resources[r].next_role,
                        Role::Started | Role::Unpromoted
                    ) {
                        let k = op_key(&self.resources[r].id, "start", 0);
                        self.new_ordering(
                            Some(r),
                            None,
                            Some(cancel),
                            Some(r),
                            Some(k),
                            None,
                            ar::UNRUNNABLE_FIRST_BLOCKS,
                        );
                    }
                }
                continue;
            }
            let mon = self.custom_action(Some(r), key.clone(), &op.name, Some(stop_node), exists);
            self.actions[mon].target_rc = Some(7);
            if self.resources[r].flags.managed {
                let probe = op_key(&self.resources[r].id, "monitor", 0);
                let probes: Vec<ActionId> = self
                    .uuid_actions(r, &probe)
                    .iter()
                    .copied()
                    .filter(|a| {
                        self.actions[*a].node.is_none() || self.actions[*a].node == Some(stop_node)
                    })
                    .collect();
                for p in probes {
                    self.order_actions(p, mon, ar::UNRUNNABLE_FIRST_BLOCKS);
                }
            }
            let stops: Vec<ActionId> = self
                .task_actions(r, "stop")
                .iter()
                .copied()
                .filter(|a| self.actions[*a].node == Some(stop_node))
                .collect();
            for stop in stops {
                if !self.actions[stop].optional()
                    && !self.actions[mon].optional()
                    && !self.resources[r].flags.managed
                {
                    self.actions[mon].flags.0 |= AFlags::OPTIONAL;
                }
                if !self.actions[stop].runnable() {
                    self.actions[mon].flags.0 &= !AFlags::RUNNABLE;
                }
                if self.resources[r].flags.managed {
                    let k = op_key(&self.resources[r].id, "stop", 0);
                    self.new_ordering(
                        Some(r),
                        Some(k),
                        Some(stop),
                        None,
                        None,
                        Some(mon),
                        ar::FIRST_IMPLIES_THEN | ar::UNRUNNABLE_FIRST_BLOCKS,
                    );
                }
            }
            if !self.nodes[stop_node].online || self.nodes[stop_node].unclean {
                self.actions[mon].flags.0 &= !AFlags::RUNNABLE;
            }
        }
    }

    // ---- fencing and shutdown ----

    fn any_managed(&self) -> bool {
        self.resources.iter().any(|r| r.flags.managed)
    }

    pub(crate) fn schedule_fencing_and_shutdowns(&mut self) {
        let have_managed = self.any_managed();
        let mut dc_down: Option<ActionId> = None;
        let mut fencing_ops: Vec<ActionId> = Vec::new();
        let mut shutdown_ops: Vec<ActionId> = Vec::new();
        for n in 0..self.nodes.len() {
            let is_dc = self.dc == Some(n);
            let mut fencing = None;
            if have_managed && self.nodes[n].unclean && self.can_fence(n) {
                let f = self.fence_op(n, None, false, Some("node is unclean"), false);
                self.order_vs_fencing(f);
                fencing = Some(f);
                if is_dc {
                    dc_down = Some(f);
                } else {
                    if !self.settings.concurrent_fencing
                        && let Some(&last) = fencing_ops.last()
                    {
                        self.order_actions(last, f, ar::ORDERED);
                    }
                    fencing_ops.push(f);
                }
            } else if self.nodes[n].online && self.nodes[n].shutdown {
                let key = format!("do_shutdown-{}", self.nodes[n].uname);
                let s = self.custom_action(None, key, "do_shutdown", Some(n), false);
                self.order_stops_before_shutdown(n, s);
                self.actions[s]
                    .meta
                    .insert("op_no_wait".into(), "true".into());
                if is_dc {
                    dc_down = Some(s);
                } else {
                    shutdown_ops.push(s);
                }
            }
            let _ = fencing;
        }
        if let Some(dc) = dc_down {
            if self.actions[dc].task == "do_shutdown" {
                for &s in &shutdown_ops {
                    self.order_actions(s, dc, ar::ORDERED);
                }
            }
            if self.settings.concurrent_fencing {
                for &f in &fencing_ops {
                    self.order_actions(f, dc, ar::ORDERED);
                }
            } else if let Some(&last) = fencing_ops.last() {
                self.order_actions(last, dc, ar::ORDERED);
            }
        }
    }

    fn order_stops_before_shutdown(&mut self, n: NodeId, shutdown: ActionId) {
        for a in 0..self.actions.len() {
            if self.actions[a].node != Some(n) || self.actions[a].task != "stop" {
                continue;
            }
            let Some(r) = self.actions[a].rsc else {
                continue;
            };
            if self.resources[r].flags.maintenance || self.nodes[n].maintenance {
                continue;
            }
            if !(self.resources[r].flags.managed || self.resources[r].flags.blocked) {
                continue;
            }
            self.actions[a].flags.0 &= !AFlags::OPTIONAL;
            self.new_ordering(
                Some(r),
                None,
                Some(a),
                None,
                Some("do_shutdown".into()),
                Some(shutdown),
                ar::ORDERED | ar::UNRUNNABLE_FIRST_BLOCKS,
            );
        }
    }

    fn rsc_known_on(&self, r: RscId, n: NodeId) -> bool {
        self.resources[r].probed.contains(&n)
            || self.resources[r].parent.is_some_and(|p| {
                self.resources[p].variant == Variant::Clone && self.resources[p].probed.contains(&n)
            })
    }

    fn order_vs_fencing(&mut self, fencing: ActionId) {
        for r in self.top.clone() {
            self.rsc_fencing_ordering(r, fencing);
        }
    }

    fn rsc_fencing_ordering(&mut self, r: RscId, fencing: ActionId) {
        let children = self.children_of(r);
        if !children.is_empty() {
            for c in children {
                self.rsc_fencing_ordering(c, fencing);
            }
            return;
        }
        if !self.resources[r].flags.managed {
            return;
        }
        let Some(target) = self.actions[fencing].node else {
            return;
        };
        // Starts after fencing.
        for a in self.resources[r].actions.clone() {
            match self.actions[a].needs {
                Requires::Nothing => {}
                Requires::Fencing => {
                    self.order_actions(fencing, a, ar::ORDERED);
                }
                Requires::Quorum => {
                    if self.actions[a].task == "start"
                        && self.resources[r].allowed.contains_key(&target)
                        && !self.rsc_known_on(r, target)
                    {
                        self.order_actions(fencing, a, ar::ORDERED | ar::UNRUNNABLE_FIRST_BLOCKS);
                    }
                }
            }
        }
        // Stops on the target are implied by the fencing.
        let order_implicit = self.resources[r].requires == Requires::Fencing;
        let stops = self.rsc_actions(r, "stop", Some(target));
        let top = self.top_of(r);
        let parent_stop = if !stops.is_empty() && order_implicit {
            self.find_first_action(top, None, Some("stop"), None)
        } else {
            None
        };
        for a in stops {
            self.actions[a].flags.0 |= AFlags::PSEUDO | AFlags::RUNNABLE;
            if order_implicit {
                self.order_actions(fencing, a, ar::GUEST_ALLOWED);
                if let Some(ps) = parent_stop {
                    self.order_actions(fencing, ps, ar::GUEST_ALLOWED);
                }
            }
        }
        for a in self.rsc_actions(r, "demote", Some(target)) {
            let n = self.actions[a].node.unwrap_or(target);
            if !self.nodes[n].online || self.nodes[n].unclean || self.resources[r].flags.failed {
                self.actions[a].flags.0 |= AFlags::PSEUDO | AFlags::RUNNABLE;
                if order_implicit {
                    self.order_actions(fencing, a, ar::GUEST_ALLOWED | ar::ORDERED);
                }
            }
        }
    }
}

/// Owned inputs of a digest computation.
#[derive(Debug)]
pub(crate) struct DigestInputOwned {
    params: BTreeMap<String, String>,
    op_params: BTreeMap<String, String>,
    interval_ms: u32,
    timeout_ms: u32,
    fencing: bool,
}
