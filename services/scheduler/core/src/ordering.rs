//! Orderings between actions, and the propagation of "required" and
//! "runnable" along them until nothing changes.

use vigil_types::Role;

use crate::Scheduler;
use crate::model::*;

const UPDATED_FIRST: u32 = 1;
const UPDATED_THEN: u32 = 2;

impl Scheduler {
    /// Adds a direct relation between two actions; returns whether it is
    /// new.
    pub(crate) fn order_actions(&mut self, first: ActionId, then: ActionId, flags: u32) -> bool {
        if flags == ar::NONE || first == then {
            return false;
        }
        // A relation sharing any flag with an existing one is a duplicate.
        if self.actions[first]
            .after
            .iter()
            .any(|(a, f)| *a == then && (*f & flags) != 0)
        {
            return false;
        }
        // Lists are newest-last here and walked newest-first, as Pacemaker
        // prepends and walks from the head.
        self.actions[first].after.push((then, flags));
        self.actions[then].before.push((first, flags));
        true
    }

    /// Actions of `r` matching an `RSC_TASK_INTERVAL` key (retrying with this
    /// resource's own id).
    fn find_actions_by_task(&self, r: RscId, key: &str) -> Vec<ActionId> {
        let list = self.uuid_actions(r, key);
        if !list.is_empty() {
            return list.to_vec();
        }
        let id = &self.resources[r].id;
        if key.len() > id.len() && key.starts_with(id.as_str()) && key.as_bytes()[id.len()] == b'_'
        {
            return Vec::new();
        }
        let Some((task, interval)) = parse_op_key(key) else {
            return Vec::new();
        };
        let key2 = format!("{id}_{task}_{interval}");
        self.uuid_actions(r, &key2).to_vec()
    }

    fn order_resource_actions_after(&mut self, first: Option<ActionId>, rsc: RscId, o: &Ordering) {
        let then_actions: Vec<ActionId> = match o.action2 {
            Some(a) => vec![a],
            None => match &o.task2 {
                Some(t) => self.find_actions_by_task(rsc, t),
                None => Vec::new(),
            },
        };
        if then_actions.is_empty() {
            return;
        }
        let mut flags = o.flags;
        if let Some(f) = first
            && self.actions[f].rsc == Some(rsc)
            && self.actions[f].flags.has(AFlags::MIGRATION_ABORT)
        {
            flags &= !ar::FIRST_IMPLIES_THEN;
        }
        if first.is_none() && flags & ar::FIRST_IMPLIES_THEN == 0 {
            return;
        }
        for t in then_actions {
            match first {
                Some(f) => {
                    self.order_actions(f, t, flags);
                }
                None => self.actions[t].flags.0 &= !AFlags::RUNNABLE,
            }
        }
    }

    fn rsc_order_first(&mut self, first_rsc: RscId, o: &Ordering) {
        let mut first_actions: Vec<ActionId> = match o.action1 {
            Some(a) => vec![a],
            None => match &o.task1 {
                Some(t) => self.find_actions_by_task(first_rsc, t),
                None => Vec::new(),
            },
        };
        let then_rsc = o.rsc2;
        if first_actions.is_empty() && Some(first_rsc) == then_rsc {
            // Nothing to order.
        } else if first_actions.is_empty() {
            let Some((op_type, interval)) = o.task1.as_deref().and_then(parse_op_key) else {
                return;
            };
            let key = format!("{}_{}_{}", self.resources[first_rsc].id, op_type, interval);
            let role = self.rsc_state(first_rsc);
            if (role == Role::Stopped && op_type == "stop")
                || (role == Role::Unpromoted && op_type == "demote")
            {
                // Nothing to order.
            } else {
                let a = self.custom_action(Some(first_rsc), key, &op_type, None, true);
                first_actions = vec![a];
            }
        }
        let then_rsc = match then_rsc {
            Some(r) => Some(r),
            None => match o.action2 {
                Some(a) => self.actions[a].rsc,
                None => return,
            },
        };
        for f in first_actions {
            match then_rsc {
                None => {
                    if let Some(a2) = o.action2 {
                        self.order_actions(f, a2, o.flags);
                    }
                }
                Some(tr) => self.order_resource_actions_after(Some(f), tr, o),
            }
        }
    }

    /// A resource's current role (Pacemaker's fns->state(rsc, true)).
    pub(crate) fn rsc_state(&self, r: RscId) -> Role {
        let rsc = &self.resources[r];
        match rsc.variant {
            Variant::Primitive => rsc.orig_role,
            _ => {
                let mut best = Role::Unknown;
                for c in self.children_of(r) {
                    let s = self.rsc_state(c);
                    if s > best {
                        best = s;
                    }
                }
                if best == Role::Unknown && self.children_of(r).is_empty() {
                    Role::Stopped
                } else {
                    best
                }
            }
        }
    }

    pub(crate) fn apply_orderings(&mut self) {
        let orderings = std::mem::take(&mut self.orderings);
        for o in &orderings {
            if let Some(r) = o.rsc1 {
                self.rsc_order_first(r, o);
                continue;
            }
            if let Some(r) = o.rsc2 {
                self.order_resource_actions_after(o.action1, r, o);
            } else if let (Some(a1), Some(a2)) = (o.action1, o.action2) {
                self.order_actions(a1, a2, o.flags);
            }
        }
        self.orderings = orderings;
        for a in (0..self.actions.len()).rev() {
            self.block_colocation_dependents(a);
        }
        self.order_probes();
        for a in (0..self.actions.len()).rev() {
            self.update_action_for_orderings(a);
        }
    }

    /// Flags of an action as seen by an ordering.
    fn action_flags_for_ordering(&self, a: ActionId, _node: Option<NodeId>) -> u32 {
        let act = &self.actions[a];
        match act.rsc {
            None => act.flags.0,
            Some(r) => self.rsc_action_flags(r, a),
        }
    }

    /// Pacemaker's per-variant action_flags(): a group's pseudo-action is
    /// required if any member's is, and unrunnable if any member's is.
    fn rsc_action_flags(&self, r: RscId, a: ActionId) -> u32 {
        if self.resources[r].variant != Variant::Group {
            return self.actions[a].flags.0;
        }
        let mut flags = AFlags::OPTIONAL | AFlags::RUNNABLE | AFlags::PSEUDO;
        let task = self.actions[a].task.clone();
        let member_task = match task.as_str() {
            "stopped" => "stop",
            "running" => "start",
            "demoted" => "demote",
            "promoted" => "promote",
            t => t,
        }
        .to_string();
        for m in self.resources[r].children.clone() {
            let ma = self.find_first_action(m, None, Some(&member_task), None);
            match ma {
                Some(ma) => {
                    let mf = self.rsc_action_flags(m, ma);
                    if flags & AFlags::OPTIONAL != 0 && mf & AFlags::OPTIONAL == 0 {
                        flags &= !AFlags::OPTIONAL;
                    }
                    if member_task != task
                        && flags & AFlags::RUNNABLE != 0
                        && mf & AFlags::RUNNABLE == 0
                    {
                        flags &= !AFlags::RUNNABLE;
                    }
                }
                None => {
                    if member_task != "stop" && member_task != "demote" {
                        flags &= !AFlags::RUNNABLE;
                    }
                }
            }
        }
        flags
    }

    /// The side effect of the group flag computation: the group action
    /// itself becomes required/unrunnable.
    fn sync_group_action_flags(&mut self, a: ActionId) {
        let Some(r) = self.actions[a].rsc else { return };
        if self.resources[r].variant != Variant::Group {
            return;
        }
        let f = self.rsc_action_flags(r, a);
        let task = self.actions[a].task.clone();
        if f & AFlags::OPTIONAL == 0 {
            self.actions[a].flags.0 &= !AFlags::OPTIONAL;
        }
        let member_is_different = matches!(
            task.as_str(),
            "stopped" | "running" | "demoted" | "promoted"
        );
        if member_is_different && f & AFlags::RUNNABLE == 0 {
            self.actions[a].flags.0 &= !AFlags::RUNNABLE;
        }
    }

    fn is_parent(&self, child: RscId, rsc: RscId) -> bool {
        let mut p = self.resources[child].parent;
        while let Some(x) = p {
            if x == rsc {
                return true;
            }
            p = self.resources[x].parent;
        }
        false
    }

    /// Remaps an ordering on a collective resource's action to its
    /// completion pseudo-action ("start" to "running" and so on).
    fn action_for_ordering(&self, a: ActionId) -> ActionId {
        let Some(r) = self.actions[a].rsc else {
            return a;
        };
        if self.resources[r].variant == Variant::Primitive {
            return a;
        }
        let uuid = &self.actions[a].uuid;
        if uuid.contains("notify") {
            return a;
        }
        let Some((task, interval)) = parse_op_key(uuid) else {
            return a;
        };
        if interval > 0 {
            return a;
        }
        let remapped = match task.as_str() {
            "stop" => "stopped",
            "start" => "running",
            "promote" => "promoted",
            "demote" => "demoted",
            "stopped" | "running" | "promoted" | "demoted" => task.as_str(),
            _ => return a,
        };
        let rid = &uuid[..uuid.len() - task.len() - interval.to_string().len() - 2];
        let key = format!("{rid}_{remapped}_0");
        self.find_first_action(r, Some(&key), None, None)
            .unwrap_or(a)
    }

    fn group_location(&self, r: RscId) -> Option<NodeId> {
        // A group's assigned location is its first member's.
        let first = *self.resources[r].children.first()?;
        self.resources[first].assigned
    }

    pub(crate) fn update_action_for_orderings(&mut self, then: ActionId) {
        let mut changed = 0u32;
        let last_flags = self.actions[then].flags.0;
        if self.actions[then].required_runnable_before > 0 {
            self.actions[then].runnable_before = 0;
            self.actions[then].flags.0 &= !AFlags::RUNNABLE;
        }
        let mut i = self.actions[then].before.len();
        while i > 0 {
            i -= 1;
            let (orig_first, oflags) = self.actions[then].before[i];
            let mut first = orig_first;
            let mut then_node = self.actions[then].node;
            let mut first_node = self.actions[first].node;
            if let Some(fr) = self.actions[first].rsc
                && self.resources[fr].variant == Variant::Group
                && self.actions[first].task == "start"
                && let Some(n) = self.group_location(fr)
            {
                first_node = Some(n);
            }
            if let Some(tr) = self.actions[then].rsc
                && self.resources[tr].variant == Variant::Group
                && self.actions[then].task == "start"
                && let Some(n) = self.group_location(tr)
            {
                then_node = Some(n);
            }
            if oflags & ar::IF_ON_SAME_NODE != 0
                && let (Some(a), Some(b)) = (first_node, then_node)
                && a != b
            {
                self.set_before_flags(then, i, ar::NONE);
                continue;
            }
            changed &= !UPDATED_FIRST;
            if self.actions[first].rsc.is_some()
                && oflags & ar::THEN_CANCELS_FIRST != 0
                && !self.actions[then].optional()
            {
                self.actions[first].flags.0 |= AFlags::OPTIONAL;
                if self.actions[first].task == "reload-agent"
                    && let Some(fr) = self.actions[first].rsc
                {
                    self.resources[fr].flags.reload = false;
                }
            }
            if let (Some(fr), Some(tr)) = (self.actions[first].rsc, self.actions[then].rsc)
                && fr != tr
                && !self.is_parent(tr, fr)
            {
                first = self.action_for_ordering(first);
            }
            if first == orig_first {
                let first_flags = self.action_flags_for_ordering(first, then_node);
                let then_flags = self.action_flags_for_ordering(then, first_node);
                self.sync_group_action_flags(first);
                self.sync_group_action_flags(then);
                changed |=
                    self.update_for_ordering_flags(first, then, first_flags, then_flags, then, i);
            } else if self.order_actions(first, then, oflags) {
                changed |= UPDATED_THEN;
                self.set_before_flags(then, i, ar::NONE);
            }
            if changed & UPDATED_FIRST != 0 {
                let afters: Vec<ActionId> = self.actions[first]
                    .after
                    .iter()
                    .rev()
                    .map(|x| x.0)
                    .collect();
                for o in afters {
                    self.update_action_for_orderings(o);
                }
                self.update_action_for_orderings(first);
            }
        }
        if self.actions[then].required_runnable_before > 0 {
            if last_flags == self.actions[then].flags.0 {
                changed &= !UPDATED_THEN;
            } else {
                changed |= UPDATED_THEN;
            }
        }
        if changed & UPDATED_THEN != 0 {
            if last_flags & AFlags::RUNNABLE != 0 && !self.actions[then].runnable() {
                self.block_colocation_dependents(then);
            }
            self.update_action_for_orderings(then);
            let afters: Vec<ActionId> =
                self.actions[then].after.iter().rev().map(|x| x.0).collect();
            for o in afters {
                self.update_action_for_orderings(o);
            }
        }
    }

    fn set_before_flags(&mut self, then: ActionId, idx: usize, flags: u32) {
        self.actions[then].before[idx].1 = flags;
    }

    #[allow(clippy::too_many_arguments)]
    fn update_for_ordering_flags(
        &mut self,
        first: ActionId,
        then: ActionId,
        first_flags: u32,
        then_flags: u32,
        rel_then: ActionId,
        rel_idx: usize,
    ) -> u32 {
        let mut changed = 0u32;
        let mut oflags = self.actions[rel_then].before[rel_idx].1;
        let node = self.actions[then].node;
        if oflags & ar::FIRST_IMPLIES_SAME_NODE_THEN != 0 {
            oflags &= !ar::FIRST_IMPLIES_SAME_NODE_THEN;
            oflags |= ar::FIRST_IMPLIES_THEN;
            self.set_before_flags(rel_then, rel_idx, oflags);
        }
        let _ = node;
        if oflags & ar::FIRST_IMPLIES_THEN != 0 {
            if self.actions[then].rsc.is_some() {
                changed |= self.update_rsc(
                    first,
                    then,
                    first_flags & AFlags::OPTIONAL,
                    AFlags::OPTIONAL,
                    ar::FIRST_IMPLIES_THEN,
                );
            } else if first_flags & AFlags::OPTIONAL == 0 && self.actions[then].optional() {
                self.actions[then].flags.0 &= !AFlags::OPTIONAL;
                changed |= UPDATED_THEN;
            }
        }
        if oflags & ar::INTERMEDIATE_STOP != 0 && self.actions[then].rsc.is_some() {
            changed |= self.update_rsc(
                first,
                then,
                first_flags,
                AFlags::OPTIONAL | AFlags::RUNNABLE,
                ar::INTERMEDIATE_STOP,
            );
        }
        if oflags & ar::THEN_IMPLIES_FIRST != 0 {
            if self.actions[first].rsc.is_some() {
                changed |= self.update_rsc(
                    first,
                    then,
                    first_flags,
                    AFlags::OPTIONAL,
                    ar::THEN_IMPLIES_FIRST,
                );
            } else if first_flags & AFlags::OPTIONAL == 0 && self.actions[first].runnable() {
                self.actions[first].flags.0 &= !AFlags::RUNNABLE;
                changed |= UPDATED_FIRST;
            }
        }
        if oflags & ar::PROMOTED_THEN_IMPLIES_FIRST != 0 && self.actions[then].rsc.is_some() {
            changed |= self.update_rsc(
                first,
                then,
                first_flags & AFlags::OPTIONAL,
                AFlags::OPTIONAL,
                ar::PROMOTED_THEN_IMPLIES_FIRST,
            );
        }
        if oflags & ar::MIN_RUNNABLE != 0 {
            if self.actions[then].rsc.is_some() {
                changed |=
                    self.update_rsc(first, then, first_flags, AFlags::RUNNABLE, ar::MIN_RUNNABLE);
            } else if first_flags & AFlags::RUNNABLE != 0 {
                self.actions[then].runnable_before += 1;
                if self.actions[then].runnable_before >= self.actions[then].required_runnable_before
                    && !self.actions[then].runnable()
                {
                    self.actions[then].flags.0 |= AFlags::RUNNABLE;
                    changed |= UPDATED_THEN;
                }
            }
        }
        if oflags & ar::UNRUNNABLE_FIRST_BLOCKS != 0 {
            if self.actions[then].rsc.is_some() {
                changed |= self.update_rsc(
                    first,
                    then,
                    first_flags,
                    AFlags::RUNNABLE,
                    ar::UNRUNNABLE_FIRST_BLOCKS,
                );
            } else if first_flags & AFlags::RUNNABLE == 0 && self.actions[then].runnable() {
                self.actions[then].flags.0 &= !AFlags::RUNNABLE;
                changed |= UPDATED_THEN;
            }
        }
        if oflags & ar::ORDERED != 0 && self.actions[then].rsc.is_some() {
            changed |= self.update_rsc(first, then, first_flags, AFlags::RUNNABLE, ar::ORDERED);
        }
        if oflags & ar::ASYMMETRIC != 0 && self.actions[then].rsc.is_some() {
            changed |= self.update_rsc(first, then, first_flags, AFlags::RUNNABLE, ar::ASYMMETRIC);
        }
        if self.actions[first].runnable()
            && oflags & ar::FIRST_IMPLIES_THEN_GRAPHED != 0
            && first_flags & AFlags::OPTIONAL == 0
        {
            self.actions[then].flags.0 |= AFlags::ALWAYS_IN_GRAPH;
        }
        if oflags & ar::THEN_IMPLIES_FIRST_GRAPHED != 0 && then_flags & AFlags::OPTIONAL == 0 {
            self.actions[first].flags.0 |= AFlags::ALWAYS_IN_GRAPH;
        }
        if oflags & (ar::FIRST_IMPLIES_THEN | ar::THEN_IMPLIES_FIRST | ar::INTERMEDIATE_STOP) != 0
            && let Some(fr) = self.actions[first].rsc
            && !self.resources[fr].flags.managed
            && self.resources[fr].flags.blocked
            && !self.actions[first].runnable()
            && self.actions[first].task == "stop"
            && self.actions[then].runnable()
        {
            self.actions[then].flags.0 &= !AFlags::RUNNABLE;
            changed |= UPDATED_THEN;
        }
        changed
    }

    /// The resource's update_ordered_actions(): for groups, applied to the
    /// group's action and each member's matching action.
    fn update_rsc(
        &mut self,
        first: ActionId,
        then: ActionId,
        flags: u32,
        filter: u32,
        ty: u32,
    ) -> u32 {
        let Some(tr) = self.actions[then].rsc else {
            return 0;
        };
        let mut changed = self.update_ordered_actions(first, then, flags, filter, ty);
        if self.resources[tr].variant == Variant::Group {
            let node = self.actions[then].node;
            let task = self.actions[then].task.clone();
            for m in self.resources[tr].children.clone() {
                if let Some(ma) = self.find_first_action(m, None, Some(&task), node) {
                    changed |= self.update_ordered_actions(first, ma, flags, filter, ty);
                }
            }
        }
        changed
    }

    fn clear_flag_because(&mut self, a: ActionId, flag: u32, reason: ActionId) {
        if self.actions[a].flags.0 & flag == 0 {
            return;
        }
        self.actions[a].flags.0 &= !flag;
        if self.actions[a].rsc != self.actions[reason].rsc {
            let change = match flag {
                AFlags::RUNNABLE => "unrunnable",
                AFlags::MIGRATABLE => "unmigrateable",
                _ => "required",
            };
            let r = &self.actions[reason];
            let text = match r.rsc {
                Some(rr) => format!("{change} {} {}", self.resources[rr].id, r.task),
                None => format!("{change} {}", r.task),
            };
            self.set_reason(a, Some(&text), false);
        }
    }

    fn update_ordered_actions(
        &mut self,
        first: ActionId,
        then: ActionId,
        flags: u32,
        filter: u32,
        ty: u32,
    ) -> u32 {
        let mut changed = 0;
        let then_flags = self.actions[then].flags.0;
        let first_flags = self.actions[first].flags.0;
        if ty & ar::ASYMMETRIC != 0 {
            self.handle_asymmetric_ordering(first, then);
        }
        if ty & ar::THEN_IMPLIES_FIRST != 0 && then_flags & AFlags::OPTIONAL == 0 {
            if filter & AFlags::OPTIONAL != 0
                && flags & AFlags::OPTIONAL == 0
                && first_flags & AFlags::OPTIONAL != 0
            {
                self.clear_flag_because(first, AFlags::OPTIONAL, then);
            }
            if flags & AFlags::MIGRATABLE != 0 && !self.actions[then].flags.has(AFlags::MIGRATABLE)
            {
                self.clear_flag_because(first, AFlags::MIGRATABLE, then);
            }
        }
        if ty & ar::PROMOTED_THEN_IMPLIES_FIRST != 0
            && let Some(tr) = self.actions[then].rsc
            && self.resources[tr].orig_role == Role::Promoted
            && filter & AFlags::OPTIONAL != 0
            && !self.actions[then].optional()
        {
            self.clear_flag_because(first, AFlags::OPTIONAL, then);
            if self.actions[first].flags.has(AFlags::MIGRATABLE)
                && !self.actions[then].flags.has(AFlags::MIGRATABLE)
            {
                self.clear_flag_because(first, AFlags::MIGRATABLE, then);
            }
        }
        if ty & ar::UNMIGRATABLE_THEN_BLOCKS != 0 && filter & AFlags::OPTIONAL != 0 {
            let tf = self.actions[then].flags.0;
            if tf & (AFlags::MIGRATABLE | AFlags::RUNNABLE)
                != (AFlags::MIGRATABLE | AFlags::RUNNABLE)
            {
                self.clear_flag_because(first, AFlags::RUNNABLE, then);
            }
            if !self.actions[then].optional() {
                self.clear_flag_because(first, AFlags::OPTIONAL, then);
            }
        }
        if ty & ar::FIRST_ELSE_THEN != 0
            && filter & AFlags::OPTIONAL != 0
            && !self.actions[first].runnable()
        {
            self.clear_flag_because(then, AFlags::MIGRATABLE, first);
            self.actions[then].flags.0 &= !AFlags::PSEUDO;
        }
        if ty & ar::UNRUNNABLE_FIRST_BLOCKS != 0
            && filter & AFlags::RUNNABLE != 0
            && self.actions[then].runnable()
            && flags & AFlags::RUNNABLE == 0
        {
            self.clear_flag_because(then, AFlags::RUNNABLE, first);
            self.clear_flag_because(then, AFlags::MIGRATABLE, first);
        }
        if ty & ar::FIRST_IMPLIES_THEN != 0
            && filter & AFlags::OPTIONAL != 0
            && self.actions[then].optional()
            && flags & AFlags::OPTIONAL == 0
            && !self.actions[first].flags.has(AFlags::MIGRATABLE)
        {
            self.clear_flag_because(then, AFlags::OPTIONAL, first);
        }
        if ty & ar::INTERMEDIATE_STOP != 0 {
            self.handle_restart_ordering(first, then, filter);
        }
        if then_flags != self.actions[then].flags.0 {
            changed |= UPDATED_THEN;
            if let Some(tr) = self.actions[then].rsc
                && self.resources[tr].parent.is_some()
            {
                self.update_action_for_orderings(then);
            }
        }
        if first_flags != self.actions[first].flags.0 {
            changed |= UPDATED_FIRST;
        }
        changed
    }

    fn handle_asymmetric_ordering(&mut self, first: ActionId, then: ActionId) {
        let Some(tr) = self.actions[then].rsc else {
            return;
        };
        if self.actions[first].runnable() {
            return;
        }
        if self.actions[then].optional() {
            let role = self.rsc_state(tr);
            if role == Role::Stopped && self.actions[then].task == "stop" {
                return;
            }
            if role >= Role::Started
                && self.actions[then].task == "start"
                && self.actions[then].node.is_some()
                && self.resources[tr].running_on.len() == 1
                && self.resources[tr].running_on.first() == self.actions[then].node.as_ref()
            {
                return;
            }
        }
        self.clear_flag_because(then, AFlags::OPTIONAL, first);
        self.clear_flag_because(then, AFlags::RUNNABLE, first);
    }

    fn handle_restart_ordering(&mut self, first: ActionId, then: ActionId, filter: u32) {
        let mut reason = false;
        if filter & AFlags::OPTIONAL != 0 && !self.actions[then].optional() {
            reason = true;
        }
        if filter & AFlags::RUNNABLE != 0
            && !self.actions[then].runnable()
            && self.actions[then]
                .rsc
                .is_some_and(|r| self.resources[r].flags.managed)
            && self.actions[first].rsc == self.actions[then].rsc
        {
            reason = true;
        }
        if !reason {
            return;
        }
        if self.actions[first].runnable() {
            self.clear_flag_because(first, AFlags::OPTIONAL, then);
        }
        if !self.actions[then].optional() {
            self.clear_flag_because(first, AFlags::OPTIONAL, then);
        }
        if !self.actions[then].flags.has(AFlags::MIGRATABLE) {
            self.clear_flag_because(first, AFlags::MIGRATABLE, then);
        }
        if !self.actions[first].optional() && !self.actions[first].runnable() {
            self.clear_flag_because(then, AFlags::RUNNABLE, first);
        }
    }

    /// An unrunnable start or promote blocks resources mandatorily
    /// colocated with it.
    pub(crate) fn block_colocation_dependents(&mut self, a: ActionId) {
        if self.actions[a].runnable() {
            return;
        }
        let task = self.actions[a].task.clone();
        let is_start = task == "start";
        if !is_start && task != "promote" {
            return;
        }
        let Some(ar_) = self.actions[a].rsc else {
            return;
        };
        let mut rsc = self.top_of(ar_);
        if let Some(p) = self.resources[rsc].parent {
            rsc = p;
        }
        for child in self.children_of(rsc) {
            match self.find_first_action(child, None, Some(&task), None) {
                None => return,
                Some(ca) if self.actions[ca].runnable() => return,
                _ => {}
            }
        }
        for c in self.with_this_colocations(rsc) {
            let col = self.colocations[c].clone();
            if !col.score.is_pos_infinity() {
                continue;
            }
            if !is_start && col.primary_role != Role::Promoted {
                continue;
            }
            let t = if col.dependent_role == Role::Promoted {
                "promote"
            } else {
                "start"
            };
            self.mark_action_blocked(col.dependent, t, ar_);
        }
    }

    fn mark_action_blocked(&mut self, r: RscId, task: &str, reason: RscId) {
        let text = format!("colocation with {}", self.resources[reason].id);
        for a in self.resources[r].actions.clone() {
            if self.actions[a].runnable() && self.actions[a].task == task {
                self.actions[a].flags.0 &= !AFlags::RUNNABLE;
                self.set_reason(a, Some(&text), false);
                self.block_colocation_dependents(a);
                self.update_action_for_orderings(a);
            }
        }
        for c in self.children_of(r) {
            self.mark_action_blocked(c, task, reason);
        }
    }
}

/// Splits an `RSC_TASK_INTERVAL` key into task and interval.
pub(crate) fn parse_op_key(key: &str) -> Option<(String, u64)> {
    let (rest, interval) = key.rsplit_once('_')?;
    let interval: u64 = interval.parse().ok()?;
    // The task is the last underscore-free word, except for known tasks
    // containing underscores.
    for t in [
        "migrate_to",
        "migrate_from",
        "clear_failcount",
        "confirmed-post_notify",
        "confirmed-pre_notify",
        "post_notify",
        "pre_notify",
    ] {
        if rest.len() > t.len()
            && rest.ends_with(t)
            && rest.as_bytes()[rest.len() - t.len() - 1] == b'_'
        {
            return Some((t.to_string(), interval));
        }
    }
    let (_, task) = rest.rsplit_once('_')?;
    Some((task.to_string(), interval))
}
