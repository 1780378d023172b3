//! Creating actions: resource operations, pseudo-actions, fencing and
//! shutdown, with Pacemaker's rules for when an action is runnable.

use vigil_types::Role;

use crate::Scheduler;
use crate::model::*;

/// The meta-attribute carrying a fencing action's priority delay (seconds).
pub(crate) const PRIORITY_FENCING_DELAY: &str = "priority_fencing_delay";

/// `RSC_TASK_INTERVAL`.
pub(crate) fn op_key(rsc: &str, task: &str, interval_ms: u64) -> String {
    format!("{rsc}_{task}_{interval_ms}")
}

impl Scheduler {
    /// Finds or creates an action (Pacemaker's custom_action()).
    pub(crate) fn custom_action(
        &mut self,
        rsc: Option<RscId>,
        key: String,
        task: &str,
        node: Option<NodeId>,
        optional: bool,
    ) -> ActionId {
        let existing = self.find_existing_action(&key, rsc, node);
        let a = match existing {
            Some(a) => a,
            None => self.new_action(key, task, rsc, node, optional),
        };
        self.update_action_optional(a, optional);
        if rsc.is_some() {
            self.update_resource_action_runnable(a);
        }
        a
    }

    fn find_existing_action(
        &mut self,
        key: &str,
        rsc: Option<RscId>,
        node: Option<NodeId>,
    ) -> Option<ActionId> {
        let found: Option<ActionId> = {
            let list: &[ActionId] = match rsc {
                Some(r) => self.uuid_actions(r, key),
                None => self
                    .singletons
                    .get(key)
                    .map(std::slice::from_ref)
                    .unwrap_or(&[]),
            };
            // Newest first, as Pacemaker's prepended lists are searched.
            list.iter()
                .rev()
                .copied()
                .find(|&a| match (node, self.actions[a].node) {
                    (None, _) | (Some(_), None) => true,
                    (Some(n), Some(m)) => n == m,
                })
        };
        if let Some(a) = found {
            if node.is_some() && self.actions[a].node.is_none() {
                self.actions[a].node = node;
            }
            return Some(a);
        }
        None
    }

    fn new_action(
        &mut self,
        key: String,
        task: &str,
        rsc: Option<RscId>,
        node: Option<NodeId>,
        optional: bool,
    ) -> ActionId {
        let id = self.actions.len();
        let mut flags = AFlags::RUNNABLE;
        if optional {
            flags |= AFlags::OPTIONAL;
        }
        if task.eq_ignore_ascii_case("lrm_delete") {
            flags |= AFlags::ON_DC;
        }
        let interval_ms = if rsc.is_some() {
            parse_interval_from_key(&key)
        } else {
            0
        };
        let needs = match rsc {
            Some(r) if matches!(task, "start" | "promote") => self.resources[r].requires,
            _ => Requires::Nothing,
        };
        self.actions.push(Action {
            id,
            uuid: key.clone(),
            task: task.to_string(),
            rsc,
            node,
            interval_ms,
            flags: AFlags(flags),
            reason: None,
            needs,
            meta: Default::default(),
            target_rc: None,
            before: Vec::new(),
            after: Vec::new(),
            required_runnable_before: 0,
            runnable_before: 0,
            graphed: false,
        });
        match rsc {
            Some(r) => {
                let res = &mut self.resources[r];
                res.actions.push(id);
                res.by_uuid.entry(key).or_default().push(id);
                res.by_task.entry(task.to_string()).or_default().push(id);
            }
            None => {
                self.singletons.insert(key, id);
            }
        }
        id
    }

    fn update_action_optional(&mut self, a: ActionId, optional: bool) {
        let act = &self.actions[a];
        if let (Some(r), Some(_)) = (act.rsc, act.node)
            && !act.pseudo()
            && !self.resources[r].flags.managed
            && act.interval_ms == 0
        {
            self.actions[a].flags.0 |= AFlags::OPTIONAL;
            return;
        }
        if !optional {
            self.actions[a].flags.0 &= !AFlags::OPTIONAL;
        }
    }

    fn effective_quorum_policy(&mut self, r: RscId) -> NoQuorumPolicy {
        if self.settings.quorate {
            return NoQuorumPolicy::Ignore;
        }
        let policy = self.settings.no_quorum_policy;
        if policy == NoQuorumPolicy::Demote {
            match self.resources[r].orig_role {
                Role::Promoted | Role::Unpromoted => {
                    if self.resources[r].next_role > Role::Unpromoted {
                        self.resources[r].next_role = Role::Unpromoted;
                    }
                    return NoQuorumPolicy::Ignore;
                }
                _ => return NoQuorumPolicy::Stop,
            }
        }
        policy
    }

    pub(crate) fn update_resource_action_runnable(&mut self, a: ActionId) {
        if self.actions[a].pseudo() {
            return;
        }
        let Some(r) = self.actions[a].rsc else { return };
        let on_dc = self.actions[a].flags.has(AFlags::ON_DC);
        match self.actions[a].node {
            None => {
                self.actions[a].flags.0 &= !AFlags::RUNNABLE;
            }
            Some(n) if !on_dc && !self.nodes[n].online => {
                self.actions[a].flags.0 &= !AFlags::RUNNABLE;
                if self.resources[r].flags.managed
                    && self.actions[a].task == "stop"
                    && !self.nodes[n].unclean
                {
                    self.fence_node(n, "stop is unrunnable", false);
                }
            }
            Some(n) if !on_dc && self.nodes[n].pending => {
                self.actions[a].flags.0 &= !AFlags::RUNNABLE;
            }
            Some(_) if self.actions[a].needs == Requires::Nothing => {
                self.actions[a].reason = None;
                self.actions[a].flags.0 |= AFlags::RUNNABLE;
            }
            Some(_) => match self.effective_quorum_policy(r) {
                NoQuorumPolicy::Stop => {
                    self.actions[a].flags.0 &= !AFlags::RUNNABLE;
                    self.actions[a].reason = Some("no quorum".into());
                }
                NoQuorumPolicy::Freeze => {
                    let active = !self.resources[r].running_on.is_empty();
                    if !active || self.resources[r].next_role > self.resources[r].orig_role {
                        self.actions[a].flags.0 &= !AFlags::RUNNABLE;
                        self.actions[a].reason = Some("quorum freeze".into());
                    }
                }
                _ => {
                    self.actions[a].flags.0 |= AFlags::RUNNABLE;
                }
            },
        }
    }

    pub(crate) fn set_reason(&mut self, a: ActionId, reason: Option<&str>, overwrite: bool) {
        if self.actions[a].reason.is_none() || overwrite {
            self.actions[a].reason = reason.map(str::to_string);
        }
    }

    pub(crate) fn rsc_action(
        &mut self,
        r: RscId,
        task: &str,
        node: Option<NodeId>,
        optional: bool,
    ) -> ActionId {
        let key = op_key(&self.resources[r].id, task, 0);
        self.custom_action(Some(r), key, task, node, optional)
    }

    pub(crate) fn stop_action(&mut self, r: RscId, n: NodeId, optional: bool) -> ActionId {
        self.rsc_action(r, "stop", Some(n), optional)
    }

    pub(crate) fn start_action(&mut self, r: RscId, n: Option<NodeId>, optional: bool) -> ActionId {
        self.rsc_action(r, "start", n, optional)
    }

    /// A runnable pseudo-action of a collective resource.
    pub(crate) fn rsc_pseudo_op(&mut self, r: RscId, task: &str, optional: bool) -> ActionId {
        let a = self.rsc_action(r, task, None, optional);
        self.actions[a].flags.0 |= AFlags::PSEUDO | AFlags::RUNNABLE;
        a
    }

    /// The delay, in seconds, of fencing lost node `n` under
    /// `priority-fencing-delay`: the whole delay when `n` is a node of
    /// the highest priority (the sum of its active resources' priorities)
    /// and this partition does not hold more than half of the nodes and
    /// priorities differ; else 0 (the devices' own delays apply).
    pub(crate) fn priority_fencing_delay_s(&self, n: NodeId) -> u64 {
        let delay = self.settings.priority_fencing_ms / 1000;
        if delay == 0 || self.nodes[n].online {
            return 0;
        }
        let members = self.nodes.len();
        let online = self.nodes.iter().filter(|x| x.online).count();
        let top = self.nodes.iter().map(|x| x.priority).max().unwrap_or(0);
        let lowest = self.nodes.iter().map(|x| x.priority).min().unwrap_or(0);
        if online > members / 2 || lowest == top || self.nodes[n].priority < top {
            return 0;
        }
        delay
    }

    /// Fills in the priority fencing delays of fencing actions that call
    /// for one, now that every node's priority is known.
    pub(crate) fn settle_priority_fencing_delays(&mut self) {
        for a in 0..self.actions.len() {
            if self.actions[a].task == "stonith"
                && self.actions[a].meta.contains_key(PRIORITY_FENCING_DELAY)
                && let Some(n) = self.actions[a].node
            {
                let d = self.priority_fencing_delay_s(n);
                self.actions[a]
                    .meta
                    .insert(PRIORITY_FENCING_DELAY.into(), d.to_string());
            }
        }
    }

    /// A fencing action (Pacemaker's pe_fence_op()).
    pub(crate) fn fence_op(
        &mut self,
        n: NodeId,
        op: Option<&str>,
        optional: bool,
        reason: Option<&str>,
        priority_delay: bool,
    ) -> ActionId {
        let op = op.unwrap_or(&self.settings.fence_action).to_string();
        let key = format!("stonith-{}-{}", self.nodes[n].uname, op);
        let a = match self.singletons.get(&key) {
            Some(a) => *a,
            None => {
                let a = self.custom_action(None, key, "stonith", Some(n), true);
                let m = &mut self.actions[a].meta;
                m.insert("on_node".into(), self.nodes[n].uname.clone());
                m.insert("on_node_uuid".into(), self.nodes[n].id.clone());
                m.insert("stonith_action".into(), op.clone());
                a
            }
        };
        if priority_delay && self.settings.priority_fencing_ms > 0 {
            // The value is settled once every node's priority is known
            // (see `settle_priority_fencing_delays`).
            self.actions[a]
                .meta
                .insert(PRIORITY_FENCING_DELAY.into(), String::new());
        }
        if !optional && self.can_fence(n) {
            self.actions[a].flags.0 &= !AFlags::OPTIONAL;
            self.set_reason(a, reason, false);
        } else if reason.is_some() && self.actions[a].reason.is_none() {
            self.actions[a].reason = reason.map(str::to_string);
        }
        a
    }

    /// Actions of `r` with `task` on `node` (any node when `None`), oldest
    /// first.
    pub(crate) fn rsc_actions(&self, r: RscId, task: &str, node: Option<NodeId>) -> Vec<ActionId> {
        let key = op_key(&self.resources[r].id, task, 0);
        self.uuid_actions(r, &key)
            .iter()
            .copied()
            .filter(|a| {
                let act = &self.actions[*a];
                node.is_none() || act.node.is_none() || act.node == node
            })
            .collect()
    }

    /// A resource's actions with this uuid, oldest first.
    pub(crate) fn uuid_actions(&self, r: RscId, uuid: &str) -> &[ActionId] {
        self.resources[r]
            .by_uuid
            .get(uuid)
            .map_or(&[], Vec::as_slice)
    }

    /// A resource's actions with this task, oldest first.
    pub(crate) fn task_actions(&self, r: RscId, task: &str) -> &[ActionId] {
        self.resources[r]
            .by_task
            .get(task)
            .map_or(&[], Vec::as_slice)
    }

    /// Pacemaker's find_first_action() on a resource's actions (newest first).
    pub(crate) fn find_first_action(
        &self,
        r: RscId,
        uuid: Option<&str>,
        task: Option<&str>,
        node: Option<NodeId>,
    ) -> Option<ActionId> {
        let list = match (uuid, task) {
            (Some(u), _) => self.uuid_actions(r, u),
            (None, Some(t)) => self.task_actions(r, t),
            (None, None) => return None,
        };
        list.iter().rev().copied().find(|&a| {
            let act = &self.actions[a];
            task.is_none_or(|t| t == act.task) && node.is_none_or(|n| act.node == Some(n))
        })
    }
}

impl std::ops::BitOrAssign<u32> for AFlags {
    fn bitor_assign(&mut self, rhs: u32) {
        self.0 |= rhs;
    }
}

impl std::ops::BitOr<u32> for AFlags {
    type Output = u32;
    fn bitor(self, rhs: u32) -> u32 {
        self.0 | rhs
    }
}

/// The interval of an `RSC_TASK_INTERVAL` key.
pub(crate) fn parse_interval_from_key(key: &str) -> u64 {
    key.rsplit_once('_')
        .and_then(|(_, i)| i.parse().ok())
        .unwrap_or(0)
}
