//! Probes: one-shot monitors that find out whether a resource is already
//! active on a node whose state for it is unknown, and their orderings.

use std::collections::BTreeSet;

use vigil_types::Role;

use crate::Scheduler;
use crate::actions::op_key;
use crate::model::*;

impl Scheduler {
    /// Schedules a probe of every resource whose state is unknown on every
    /// online, clean node.
    pub(crate) fn schedule_probes(&mut self) {
        for n in 0..self.nodes.len() {
            if !self.nodes[n].online || self.nodes[n].unclean {
                continue;
            }
            for r in self.top.clone() {
                self.probe_rsc_on_node(r, n);
            }
        }
    }

    fn probe_rsc_on_node(&mut self, r: RscId, n: NodeId) -> bool {
        if !self.settings.probe_resources {
            return false;
        }
        let children = self.children_of(r);
        if self.resources[r].variant != Variant::Primitive {
            let mut any = false;
            for c in children {
                any |= self.probe_rsc_on_node(c, n);
            }
            return any;
        }
        let top = self.top_of(r);
        if self.resources[r].launcher.is_some()
            || self.resources[r].flags.removed
            || self.resources[r].probed.contains(&n)
        {
            return false;
        }
        let allowed = self.resources[r].allowed.get(&n).copied();
        let mode = self.resources[r]
            .probe_mode
            .get(&n)
            .copied()
            .unwrap_or_default();
        if (self.resources[r].flags.exclusive_probes || self.resources[top].flags.exclusive_probes)
            && (allowed.is_none() || mode != ProbeMode::Exclusive)
        {
            return false;
        }
        if mode == ProbeMode::Never {
            return false;
        }
        let key = op_key(&self.resources[r].id, "monitor", 0);
        let probe = self.custom_action(Some(r), key, "monitor", Some(n), false);
        self.actions[probe].flags.0 &= !AFlags::OPTIONAL;
        if !self.resources[r].running_on.contains(&n) {
            self.actions[probe].target_rc = Some(7);
        } else if self.resources[r].orig_role == Role::Promoted {
            self.actions[probe].target_rc = Some(8);
        }
        let target = if self.resources[top].variant == Variant::Clone {
            top
        } else {
            r
        };
        let mut flags = ar::ORDERED;
        if !self.actions[probe].runnable() && self.resources[target].running_on.is_empty() {
            flags |= ar::UNRUNNABLE_FIRST_BLOCKS;
        }
        let start = op_key(&self.resources[target].id, "start", 0);
        let reload = op_key(&self.resources[r].id, "reload-agent", 0);
        self.new_ordering(
            Some(r),
            None,
            Some(probe),
            Some(target),
            Some(start),
            None,
            flags,
        );
        self.new_ordering(
            Some(r),
            None,
            Some(probe),
            Some(target),
            Some(reload),
            None,
            ar::ORDERED,
        );
        true
    }

    /// Orders probes before what depends on their answer (Pacemaker's
    /// pcmk__order_probes()).
    pub(crate) fn order_probes(&mut self) {
        for r in self.top.clone() {
            self.add_start_restart_orderings_for_rsc(r);
        }
        self.add_probe_orderings_for_stops();
    }

    fn probes_of(&self, r: RscId) -> Vec<ActionId> {
        let key = op_key(&self.resources[r].id, "monitor", 0);
        self.uuid_actions(r, &key).to_vec()
    }

    fn add_start_restart_orderings_for_rsc(&mut self, r: RscId) {
        if self.resources[r].variant != Variant::Primitive {
            for c in self.children_of(r) {
                self.add_start_restart_orderings_for_rsc(c);
            }
            return;
        }
        for probe in self.probes_of(r) {
            let afters: Vec<(ActionId, u32)> =
                self.actions[probe].after.iter().rev().copied().collect();
            for (then, flags) in afters {
                self.add_start_orderings_for_probe(probe, then, flags);
                let mut seen = BTreeSet::new();
                self.add_restart_orderings_for_probe(probe, then, &mut seen);
            }
        }
    }

    fn add_start_orderings_for_probe(
        &mut self,
        probe: ActionId,
        after: ActionId,
        after_flags: u32,
    ) {
        let Some(ar_) = self.actions[after].rsc else {
            return;
        };
        let variant = self.resources[ar_].variant;
        let probe_rsc = self.actions[probe].rsc.expect("probes belong to resources");
        if matches!(variant, Variant::Primitive | Variant::Group)
            || self.actions[probe].runnable()
            || after_flags & ar::UNRUNNABLE_FIRST_BLOCKS != 0
            || self.top_of(probe_rsc) != ar_
            || self.actions[after].task != "start"
        {
            return;
        }
        let thens: Vec<ActionId> = self.actions[after]
            .after
            .iter()
            .rev()
            .map(|x| x.0)
            .collect();
        for then in thens {
            let Some(tr) = self.actions[then].rsc else {
                continue;
            };
            if !self.resources[tr].running_on.is_empty()
                || self.top_of(tr) != ar_
                || self.actions[then].task != "start"
            {
                continue;
            }
            self.order_actions(probe, then, ar::ORDERED | ar::UNRUNNABLE_FIRST_BLOCKS);
        }
    }

    fn add_restart_orderings_for_probe(
        &mut self,
        probe: ActionId,
        after: ActionId,
        seen: &mut BTreeSet<ActionId>,
    ) {
        let Some(pr) = self.actions[probe].rsc else {
            return;
        };
        if self.resources[pr].variant != Variant::Primitive || self.actions[probe].task != "monitor"
        {
            return;
        }
        if !seen.insert(after) {
            return;
        }
        if let Some(ar_) = self.actions[after].rsc
            && self.resources[ar_].variant == Variant::Primitive
            && ar_ != pr
        {
            let task = match self.actions[after].task.as_str() {
                "start" => Some("stop"),
                "promote" => Some("demote"),
                _ => None,
            };
            if let Some(t) = task {
                let key = op_key(&self.resources[ar_].id, t, 0);
                let thens: Vec<ActionId> = self.uuid_actions(ar_, &key).to_vec();
                for then in thens {
                    if !self.actions[then].pseudo() {
                        self.order_actions(probe, then, ar::ORDERED);
                    }
                }
            }
        }
        let afters: Vec<(ActionId, u32)> =
            self.actions[after].after.iter().rev().copied().collect();
        for (next, flags) in afters {
            if flags & ar::FIRST_IMPLIES_THEN == 0 {
                let Some(ar_) = self.actions[after].rsc else {
                    continue;
                };
                if self.resources[ar_].variant == Variant::Primitive
                    || self.resources[pr].parent == Some(ar_)
                {
                    continue;
                }
                let Some(chained) = self.actions[next].rsc else {
                    continue;
                };
                if matches!(
                    self.resources[chained].variant,
                    Variant::Clone | Variant::Bundle
                ) || self.resources[chained].parent != Some(ar_)
                {
                    continue;
                }
            }
            self.add_restart_orderings_for_probe(probe, next, seen);
        }
    }

    fn add_probe_orderings_for_stops(&mut self) {
        let orderings = std::mem::take(&mut self.orderings);
        for o in &orderings {
            if o.flags == ar::NONE {
                continue;
            }
            let Some(r1) = o.rsc1 else { continue };
            if Some(r1) == o.rsc2 {
                continue;
            }
            if (o.action1.is_none() && o.task1.is_none())
                || (o.action2.is_none() && o.task2.is_none())
            {
                continue;
            }
            match o.action1 {
                Some(a) if self.actions[a].task != "stop" => continue,
                None if !o.task1.as_deref().is_some_and(|t| t.ends_with("_stop_0")) => continue,
                _ => {}
            }
            let mut order_flags = ar::ORDERED;
            if o.flags & ar::IF_ON_SAME_NODE != 0 {
                order_flags |= ar::IF_ON_SAME_NODE;
            }
            if o.flags == ar::IF_REQUIRED_ON_SAME_NODE || o.flags == ar::IF_ON_SAME_NODE_OR_TARGET {
                order_flags = o.flags;
            }
            let probes = self.probes_of(r1);
            if probes.is_empty() {
                continue;
            }
            let thens: Vec<ActionId> = match (o.action2, o.rsc2, &o.task2) {
                (Some(a), _, _) => vec![a],
                (None, Some(r2), Some(t2)) => self.uuid_actions(r2, t2).to_vec(),
                _ => Vec::new(),
            };
            for &p in &probes {
                for &t in &thens {
                    if self.probe_needed_before(p, t) {
                        self.order_actions(p, t, order_flags);
                    }
                }
            }
        }
        self.orderings = orderings;
    }

    fn probe_needed_before(&self, probe: ActionId, then: ActionId) -> bool {
        let t = &self.actions[then];
        if t.task == "stonith"
            && self.actions[probe].node == t.node
            && t.meta
                .get("stonith_action")
                .is_some_and(|a| a.eq_ignore_ascii_case("on"))
        {
            return false;
        }
        if t.task == "do_shutdown"
            && self.actions[probe].node.is_some()
            && t.node.is_some()
            && self.actions[probe].node != t.node
        {
            return false;
        }
        true
    }
}
