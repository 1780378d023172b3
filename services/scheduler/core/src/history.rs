//! Resource state from operation history: what each recorded result means
//! for a resource's role, failures and recovery policy.

use vigil_types::{Role, Score, ocf};

use crate::Scheduler;
use crate::model::*;
use crate::unpack::HistoryOp;

// Execution status codes recorded in op-status.
const EXEC_PENDING: i32 = -1;
const EXEC_DONE: i32 = 0;
const EXEC_CANCELLED: i32 = 1;
const EXEC_ERROR: i32 = 4;
const EXEC_ERROR_HARD: i32 = 5;
const EXEC_ERROR_FATAL: i32 = 6;
const EXEC_NOT_INSTALLED: i32 = 7;
const EXEC_NOT_SUPPORTED: i32 = 3;
const EXEC_NO_FENCE_DEVICE: i32 = 10;
const EXEC_NO_SECRETS: i32 = 11;
const EXEC_MAX: i32 = 11;

fn is_probe(op: &HistoryOp<'_>) -> bool {
    op.interval_ms == 0 && op.task == "monitor"
}

fn mask_probe_failure(op: &HistoryOp<'_>) -> bool {
    is_probe(op)
        && (op.rc == ocf::NOT_INSTALLED
            || op.rc == ocf::INVALID_PARAM
            || op.status == EXEC_NOT_INSTALLED)
}

struct Hist {
    status: i32,
    rc: i32,
}

impl Scheduler {
    pub(crate) fn unpack_rsc_op(
        &mut self,
        rsc: RscId,
        n: NodeId,
        ops: &[HistoryOp<'_>],
        i: usize,
        last_failure: &mut Option<usize>,
        on_fail: &mut OnFail,
    ) {
        let op = &ops[i];
        if !matches!(
            op.task.as_str(),
            "monitor"
                | "start"
                | "stop"
                | "promote"
                | "demote"
                | "migrate_to"
                | "migrate_from"
                | "asyncmon"
        ) {
            return;
        }
        if op.status < EXEC_PENDING || op.status > EXEC_MAX || op.status == EXEC_CANCELLED {
            self.diag.errors.push(format!(
                "{}: ignoring history entry {} for {} with invalid op-status",
                op.xml.pos, op.id, self.resources[rsc].id
            ));
            return;
        }
        if op.rc < 0 || op.rc > 255 {
            self.diag.errors.push(format!(
                "{}: ignoring history entry {} for {} with invalid rc-code",
                op.xml.pos, op.id, self.resources[rsc].id
            ));
            return;
        }
        let expired = self.check_operation_expiry(rsc, n, op);
        let old_rc = op.rc;
        let mut h = Hist {
            status: op.status,
            rc: op.rc,
        };
        self.remap_operation(rsc, n, op, &mut h, on_fail, expired);
        if expired && self.process_expired_result(rsc, n, op, &h, old_rc) {
            return;
        }
        if mask_probe_failure(op) {
            // Treat the probe result as "not running", and ban the resource.
            self.update_resource_state(rsc, op, op.expected, *last_failure, ops, on_fail);
            let ban = if self.resources[rsc].flags.unique {
                rsc
            } else {
                self.top_of(rsc)
            };
            self.resource_location(ban, Some(n), Score::NEG_INFINITY);
            self.record_failed_op(rsc, n, op);
            return;
        }
        let parent = if self.resources[rsc].flags.unique {
            rsc
        } else {
            self.top_of(rsc)
        };
        match h.status {
            EXEC_PENDING => {
                self.process_pending(rsc, n, op, *last_failure, ops);
                return;
            }
            EXEC_DONE => {
                self.update_resource_state(rsc, op, h.rc, *last_failure, ops, on_fail);
                return;
            }
            EXEC_NOT_INSTALLED => {
                let (mut strategy, fail_role) = self.failure_handling(rsc, op);
                if strategy == OnFail::Ignore {
                    *on_fail = OnFail::Ban;
                    strategy = OnFail::Ignore;
                }
                self.resource_location(parent, Some(n), Score::NEG_INFINITY);
                self.unpack_rsc_op_failure(
                    rsc,
                    n,
                    op,
                    i,
                    &h,
                    strategy,
                    fail_role,
                    last_failure,
                    on_fail,
                );
                return;
            }
            _ => {}
        }
        let (strategy, fail_role) = self.failure_handling(rsc, op);
        if strategy == OnFail::Ignore || (strategy == OnFail::RestartContainer && op.task == "stop")
        {
            self.update_resource_state(rsc, op, op.expected, *last_failure, ops, on_fail);
            self.resources[rsc].flags.ignore_failure = true;
            self.record_failed_op(rsc, n, op);
            if strategy == OnFail::RestartContainer && *on_fail <= OnFail::Restart {
                *on_fail = strategy;
            }
        } else {
            self.unpack_rsc_op_failure(
                rsc,
                n,
                op,
                i,
                &h,
                strategy,
                fail_role,
                last_failure,
                on_fail,
            );
            if h.status == EXEC_ERROR_HARD {
                self.resource_location(parent, Some(n), Score::NEG_INFINITY);
            } else if h.status == EXEC_ERROR_FATAL {
                self.resource_location(parent, None, Score::NEG_INFINITY);
            }
        }
    }

    fn record_failed_op(&mut self, rsc: RscId, n: NodeId, op: &HistoryOp<'_>) {
        if !self.nodes[n].online {
            return;
        }
        let key = (op.id.clone(), n);
        if self.failed_ops.iter().any(|f| (f.0.clone(), f.1) == key) {
            return;
        }
        self.failed_ops
            .push((op.id.clone(), n, rsc, op.xml.clone()));
    }

    fn remap_operation(
        &mut self,
        rsc: RscId,
        n: NodeId,
        op: &HistoryOp<'_>,
        h: &mut Hist,
        on_fail: &mut OnFail,
        expired: bool,
    ) {
        let orig_rc = h.rc;
        h.rc = match h.rc {
            ocf::DEGRADED => ocf::OK,
            ocf::DEGRADED_PROMOTED => ocf::RUNNING_PROMOTED,
            rc => rc,
        };
        if h.rc != orig_rc && !expired && (!self.nodes[n].shutdown || self.nodes[n].online) {
            self.record_failed_op(rsc, n, op);
        }
        if mask_probe_failure(op) && (h.status != EXEC_DONE || h.rc != ocf::NOT_RUNNING) {
            h.status = EXEC_DONE;
            h.rc = ocf::NOT_RUNNING;
        }
        match h.status {
            EXEC_DONE | EXEC_ERROR => {}
            EXEC_NO_FENCE_DEVICE | EXEC_NO_SECRETS => {
                h.status = EXEC_ERROR_HARD;
                return;
            }
            _ => return,
        }
        let probe = is_probe(op);
        if op.expected < 0 {
            h.status = EXEC_ERROR;
        } else if h.rc == op.expected {
            h.status = EXEC_DONE;
        } else {
            h.status = EXEC_ERROR;
        }
        match h.rc {
            ocf::OK => {
                if probe && op.expected == ocf::NOT_RUNNING {
                    h.status = EXEC_DONE;
                }
            }
            ocf::NOT_RUNNING => {
                if probe || op.expected == h.rc || !self.resources[rsc].flags.managed {
                    h.status = EXEC_DONE;
                    self.resources[rsc].orig_role = Role::Stopped;
                    *on_fail = OnFail::Ignore;
                    self.resources[rsc].next_role = Role::Unknown;
                }
            }
            ocf::RUNNING_PROMOTED => {
                if probe && h.rc != op.expected {
                    h.status = EXEC_DONE;
                }
                if !expired || h.rc == op.expected {
                    self.resources[rsc].orig_role = Role::Promoted;
                }
            }
            ocf::FAILED_PROMOTED => {
                if !expired {
                    self.resources[rsc].orig_role = Role::Promoted;
                }
                h.status = EXEC_ERROR;
            }
            ocf::NOT_CONFIGURED => h.status = EXEC_ERROR_FATAL,
            ocf::UNIMPLEMENT_FEATURE => {
                if op.interval_ms == 0 {
                    if !expired {
                        self.block_if_unrecoverable(rsc, n, op);
                    }
                    h.status = EXEC_ERROR_HARD;
                } else {
                    h.status = EXEC_NOT_SUPPORTED;
                }
            }
            ocf::NOT_INSTALLED | ocf::INVALID_PARAM | ocf::INSUFFICIENT_PRIV => {
                if !expired {
                    self.block_if_unrecoverable(rsc, n, op);
                }
                h.status = EXEC_ERROR_HARD;
            }
            _ => {
                if h.status == EXEC_DONE {
                    h.status = EXEC_ERROR;
                }
            }
        }
    }

    fn block_if_unrecoverable(&mut self, rsc: RscId, n: NodeId, op: &HistoryOp<'_>) {
        if op.task != "stop" {
            return;
        }
        if self.can_fence(n) {
            return;
        }
        let r = &mut self.resources[rsc];
        r.flags.managed = false;
        r.flags.blocked = true;
    }

    /// Whether this cluster can fence node `n`.
    pub(crate) fn can_fence(&self, _n: NodeId) -> bool {
        if !self.settings.fencing_enabled || !self.settings.have_fencing {
            return false;
        }
        if self.settings.quorate {
            return true;
        }
        matches!(
            self.settings.no_quorum_policy,
            NoQuorumPolicy::Ignore | NoQuorumPolicy::Fence
        )
    }

    /// On-fail policy and role after failure for an operation.
    fn failure_handling(&mut self, rsc: RscId, op: &HistoryOp<'_>) -> (OnFail, Role) {
        let cfg = self.find_op_config(rsc, &op.task, op.interval_ms, true);
        let value = cfg
            .and_then(|i| self.resources[rsc].ops[i].meta.get("on-fail").cloned())
            .or_else(|| self.op_default("on-fail"));
        let on_fail = self.parse_on_fail(rsc, &op.task, value.as_deref());
        let role = self.role_after_failure(&op.task, on_fail, cfg.map(|i| (rsc, i)));
        (on_fail, role)
    }

    pub(crate) fn op_default(&self, name: &str) -> Option<String> {
        let d = self.op_defaults.as_ref()?;
        for set in d.children_named("meta_attributes") {
            for nv in set.children_named("nvpair") {
                if nv.attr("name") == Some(name) {
                    return nv.attr("value").map(str::to_string);
                }
            }
        }
        None
    }

    /// Index of the configured op matching `task` and interval (probes
    /// fall back to the recurring monitor's configuration, as Pacemaker's
    /// pcmk__find_action_config does).
    pub(crate) fn find_op_config(
        &self,
        rsc: RscId,
        task: &str,
        interval_ms: u64,
        include_disabled: bool,
    ) -> Option<usize> {
        let r = &self.resources[rsc];
        let exact = r.ops.iter().position(|o| {
            o.name == task && o.interval_ms == interval_ms && (include_disabled || o.enabled)
        });
        if exact.is_some() {
            return exact;
        }
        if task == "monitor" && interval_ms == 0 {
            // A probe uses the most frequent enabled recurring monitor.
            let mut best: Option<usize> = None;
            for (i, o) in r.ops.iter().enumerate() {
                if o.name == "monitor" && o.interval_ms > 0 && o.enabled {
                    match best {
                        Some(b) if r.ops[b].interval_ms <= o.interval_ms => {}
                        _ => best = Some(i),
                    }
                }
            }
            return best;
        }
        None
    }

    pub(crate) fn parse_on_fail(&mut self, rsc: RscId, task: &str, value: Option<&str>) -> OnFail {
        let v = value.map(|s| s.to_ascii_lowercase());
        let explicit = match v.as_deref() {
            None => None,
            Some("block") => Some(OnFail::Block),
            Some("fence") => Some(if self.settings.fencing_enabled {
                OnFail::FenceNode
            } else {
                OnFail::Stop
            }),
            Some("standby") => Some(OnFail::StandbyNode),
            Some("ignore") | Some("nothing") => Some(OnFail::Ignore),
            Some("migrate") => Some(OnFail::Ban),
            Some("stop") => Some(OnFail::Stop),
            Some("restart") => Some(OnFail::Restart),
            Some("restart-container") => self.resources[rsc]
                .launcher
                .map(|_| OnFail::RestartContainer),
            Some("demote") => Some(OnFail::Demote),
            Some(other) => {
                self.diag.errors.push(format!(
                    "using the default on-fail for {task} of {} because '{other}' is not valid",
                    self.resources[rsc].id
                ));
                None
            }
        };
        if let Some(f) = explicit {
            return f;
        }
        if self.resources[rsc].launcher.is_some() {
            OnFail::RestartContainer
        } else if task == "stop" {
            if self.settings.fencing_enabled {
                OnFail::FenceNode
            } else {
                OnFail::Block
            }
        } else {
            OnFail::Restart
        }
    }

    fn role_after_failure(
        &self,
        task: &str,
        on_fail: OnFail,
        _cfg: Option<(RscId, usize)>,
    ) -> Role {
        if on_fail == OnFail::Stop {
            return Role::Stopped;
        }
        if task == "promote" {
            Role::Unpromoted
        } else {
            Role::Started
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn unpack_rsc_op_failure(
        &mut self,
        rsc: RscId,
        n: NodeId,
        op: &HistoryOp<'_>,
        i: usize,
        h: &Hist,
        config_on_fail: OnFail,
        fail_role: Role,
        last_failure: &mut Option<usize>,
        on_fail: &mut OnFail,
    ) {
        *last_failure = Some(i);
        if self.settings.symmetric || h.rc != ocf::NOT_INSTALLED {
            self.record_failed_op(rsc, n, op);
        }
        if *on_fail < config_on_fail {
            *on_fail = config_on_fail;
        }
        match op.task.as_str() {
            "stop" => self.resource_location(rsc, Some(n), Score::NEG_INFINITY),
            "promote" => self.resources[rsc].orig_role = Role::Promoted,
            "demote" => {
                if config_on_fail == OnFail::Block {
                    self.resources[rsc].orig_role = Role::Promoted;
                    self.resources[rsc].next_role = Role::Stopped;
                } else if h.rc == ocf::NOT_RUNNING {
                    self.resources[rsc].orig_role = Role::Stopped;
                } else {
                    self.resources[rsc].orig_role = Role::Unpromoted;
                }
            }
            _ => {}
        }
        if is_probe(op) && h.rc == ocf::NOT_INSTALLED {
            self.resources[rsc].orig_role = Role::Stopped;
        } else if self.resources[rsc].orig_role < Role::Started {
            self.set_active(rsc);
        }
        if fail_role != Role::Started && self.resources[rsc].next_role < fail_role {
            self.resources[rsc].next_role = fail_role;
        }
        if fail_role == Role::Stopped {
            // Ban from every node.
            let target =
                if self.resources[rsc].parent.is_some() && !self.resources[rsc].flags.unique {
                    self.top_of(rsc)
                } else {
                    rsc
                };
            for node in 0..self.nodes.len() {
                self.resources[target]
                    .allowed
                    .insert(node, Score::NEG_INFINITY);
            }
        }
    }

    pub(crate) fn set_active(&mut self, rsc: RscId) {
        let top = self.top_of(rsc);
        let promotable = self.resources[top]
            .meta
            .get("promotable")
            .is_some_and(|v| crate::unpack::is_true(v))
            || self.resources[top].xml.name == "master";
        self.resources[rsc].orig_role = if promotable {
            Role::Unpromoted
        } else {
            Role::Started
        };
    }

    fn update_resource_state(
        &mut self,
        rsc: RscId,
        op: &HistoryOp<'_>,
        rc: i32,
        last_failure: Option<usize>,
        ops: &[HistoryOp<'_>],
        on_fail: &mut OnFail,
    ) {
        let mut clear = false;
        let r = rsc;
        if rc == ocf::NOT_INSTALLED || mask_probe_failure(op) {
            self.resources[r].orig_role = Role::Stopped;
        } else if rc == ocf::NOT_RUNNING {
            clear = true;
        } else if op.task == "monitor" {
            if let Some(lf) = last_failure {
                let lf = &ops[lf];
                if lf.task == op.task && lf.interval_ms == op.interval_ms {
                    clear = true;
                }
            }
            if self.resources[r].orig_role < Role::Started {
                self.set_active(r);
            }
        } else if op.task == "start" {
            self.resources[r].orig_role = Role::Started;
            clear = true;
        } else if op.task == "stop" {
            self.resources[r].orig_role = Role::Stopped;
            clear = true;
        } else if op.task == "promote" {
            self.resources[r].orig_role = Role::Promoted;
            clear = true;
        } else if op.task == "demote" {
            if *on_fail == OnFail::Demote {
                clear = true;
            }
            self.resources[r].orig_role = Role::Unpromoted;
        } else if op.task == "migrate_from" {
            self.resources[r].orig_role = Role::Started;
            clear = true;
        } else if op.task == "migrate_to" {
            // Migration is scheduled in part 2; treat the source as active.
            self.set_active(r);
        } else if self.resources[r].orig_role < Role::Started {
            self.set_active(r);
        }
        if !clear {
            return;
        }
        match *on_fail {
            OnFail::Stop | OnFail::Ban | OnFail::StandbyNode | OnFail::FenceNode => {}
            OnFail::Block
            | OnFail::Ignore
            | OnFail::Demote
            | OnFail::Restart
            | OnFail::RestartContainer => {
                *on_fail = OnFail::Ignore;
                self.resources[r].next_role = Role::Unknown;
            }
            OnFail::ResetRemote => {}
        }
    }

    fn process_pending(
        &mut self,
        rsc: RscId,
        _n: NodeId,
        op: &HistoryOp<'_>,
        last_failure: Option<usize>,
        ops: &[HistoryOp<'_>],
    ) {
        if let Some(lf) = last_failure {
            let lf = &ops[lf];
            if lf.task == op.task
                && lf.interval_ms == op.interval_ms
                && lf.last_rc_change.is_some()
                && op.last_rc_change.is_some()
                && lf.last_rc_change >= op.last_rc_change
            {
                return;
            }
        }
        if op.task == "start" {
            self.resources[rsc].flags.start_pending = true;
            self.set_active(rsc);
        } else if op.task == "promote" {
            self.resources[rsc].orig_role = Role::Promoted;
        }
        if self.resources[rsc].pending_task.is_none() && !is_probe(op) {
            self.resources[rsc].pending_task = Some((op.task.clone(), _n));
        }
    }

    /// Whether a failed operation is old enough to be forgotten.
    fn check_operation_expiry(&mut self, rsc: RscId, n: NodeId, op: &HistoryOp<'_>) -> bool {
        if op.status == EXEC_NOT_INSTALLED {
            return false;
        }
        let timeout_s = (self.resources[rsc].failure_timeout_ms / 1000) as i64;
        let mut expired = false;
        let mut unexpired_fail_count = 0;
        if timeout_s > 0
            && let Some(last_run) = op.last_rc_change
        {
            let now = self.settings.now;
            if now >= last_run + timeout_s {
                expired = true;
            }
            unexpired_fail_count = self.failcount(n, rsc, true).0;
        }
        if timeout_s > 0 && unexpired_fail_count > 0 {
            // The fail count expires then: schedule again at that moment.
            let (_, last_failure) = self.failcount(n, rsc, false);
            if last_failure > 0 {
                self.note_recheck(last_failure + timeout_s + 1);
            }
            if let Some(last_run) = op.last_rc_change {
                self.note_recheck(last_run + timeout_s + 1);
            }
        }
        let mut clear_reason: Option<&str> = None;
        if expired && self.failcount(n, rsc, false).0 > 0 {
            if unexpired_fail_count == 0 {
                clear_reason = Some("it expired");
            } else {
                expired = false;
            }
        }
        if !expired
            && op.id.ends_with("_last_failure_0")
            && matches!(op.task.as_str(), "start" | "monitor")
        {
            // Failures are cleared when the parameters changed since.
            if self.digests_changed(rsc, n, op.xml) {
                clear_reason = Some("resource parameters have changed");
            }
        }
        if let Some(reason) = clear_reason {
            self.clear_failcount(rsc, n, reason);
        }
        if expired
            && op.interval_ms == 0
            && op.task == "monitor"
            && matches!(
                op.rc,
                ocf::OK
                    | ocf::NOT_RUNNING
                    | ocf::RUNNING_PROMOTED
                    | ocf::DEGRADED
                    | ocf::DEGRADED_PROMOTED
            )
        {
            expired = false;
        }
        expired
    }

    fn process_expired_result(
        &mut self,
        rsc: RscId,
        n: NodeId,
        op: &HistoryOp<'_>,
        _h: &Hist,
        orig_rc: i32,
    ) -> bool {
        if mask_probe_failure(op) && orig_rc != op.expected {
            if self.resources[rsc].orig_role <= Role::Stopped {
                self.resources[rsc].orig_role = Role::Unknown;
            }
            return true;
        }
        if op.rc == op.expected {
            return false;
        }
        if op.interval_ms == 0 {
            return true;
        }
        if self.nodes[n].online && !self.nodes[n].unclean {
            // Reschedule the recurring action after its failure expired.
            self.expired_recurring.insert((rsc, n, op.id.clone()));
            return true;
        }
        false
    }

    /// Schedules clearing of a resource's fail count on a node.
    pub(crate) fn clear_failcount(&mut self, rsc: RscId, n: NodeId, _reason: &str) -> ActionId {
        let key = format!("{}_clear_failcount_0", self.resources[rsc].id);
        let a = self.custom_action(Some(rsc), key, "clear_failcount", Some(n), false);
        self.actions[a]
            .meta
            .insert("op_no_wait".into(), "true".into());
        a
    }

    /// A resource's fail count on a node (and its last failure time),
    /// honouring failure-timeout when `effective`.
    pub(crate) fn failcount(&self, n: NodeId, rsc: RscId, effective: bool) -> (i32, i64) {
        let r = &self.resources[rsc];
        let name = if r.flags.unique {
            r.id.clone()
        } else {
            r.id.split(':').next().unwrap_or(&r.id).to_string()
        };
        let mut count = Score::ZERO;
        let mut last: i64 = 0;
        for (k, v) in &self.nodes[n].attrs {
            if let Some(rest) = k.strip_prefix("fail-count-") {
                if attr_matches(rest, &name, r.flags.unique)
                    && let Ok(s) = v.parse::<Score>()
                {
                    count += s;
                }
            } else if let Some(rest) = k.strip_prefix("last-failure-")
                && attr_matches(rest, &name, r.flags.unique)
                && let Ok(t) = v.parse::<i64>()
            {
                last = last.max(t);
            }
        }
        let mut count = count.value();
        if effective && count > 0 && last > 0 && r.failure_timeout_ms > 0 {
            let exp = (r.failure_timeout_ms / 1000) as i64;
            if self.settings.now > last + exp {
                count = 0;
            }
        }
        (count, if count > 0 { last } else { 0 })
    }

    pub(crate) fn process_rsc_state(&mut self, rsc: RscId, n: NodeId, mut on_fail: OnFail) {
        let known_active = self.resources[rsc].orig_role > Role::Stopped;
        if self.resources[rsc].orig_role != Role::Unknown {
            self.resources[rsc].probed.insert(n);
            let mut p = self.resources[rsc].parent;
            if !self.resources[rsc].flags.unique {
                while let Some(pi) = p {
                    self.resources[pi].probed.insert(n);
                    if self.resources[pi].flags.unique {
                        break;
                    }
                    p = self.resources[pi].parent;
                }
            }
        }
        if known_active
            && !self.nodes[n].online
            && !self.nodes[n].maintenance
            && self.resources[rsc].flags.managed
            && self.settings.fencing_enabled
        {
            let reason = format!("{} is thought to be active there", self.resources[rsc].id);
            self.fence_node(n, &reason, false);
        }
        let save_on_fail = on_fail;
        if self.nodes[n].unclean {
            on_fail = OnFail::Ignore;
        }
        match on_fail {
            OnFail::Ignore => {}
            OnFail::Demote => {
                self.resources[rsc].flags.failed = true;
                let key = format!("{}_demote_0", self.resources[rsc].id);
                self.custom_action(Some(rsc), key, "demote", Some(n), false);
            }
            OnFail::FenceNode => {
                let reason = format!("{} failed there", self.resources[rsc].id);
                self.fence_node(n, &reason, false);
            }
            OnFail::StandbyNode => {
                self.nodes[n].standby = true;
                self.nodes[n].standby_onfail = true;
            }
            OnFail::Block => {
                self.resources[rsc].flags.managed = false;
                self.resources[rsc].flags.blocked = true;
            }
            OnFail::Ban => {
                self.resource_location(rsc, Some(n), Score::NEG_INFINITY);
            }
            OnFail::Stop => {
                self.resources[rsc].next_role = Role::Stopped;
            }
            OnFail::Restart => {
                if known_active {
                    self.resources[rsc].flags.failed = true;
                    self.resources[rsc].flags.stop_if_failed = true;
                    self.stop_action(rsc, n, false);
                }
            }
            OnFail::RestartContainer | OnFail::ResetRemote => {
                self.resources[rsc].flags.failed = true;
                self.resources[rsc].flags.stop_if_failed = true;
                if let (OnFail::RestartContainer, Some(l)) = (on_fail, self.resources[rsc].launcher)
                {
                    self.stop_action(l, n, false);
                } else if known_active {
                    self.stop_action(rsc, n, false);
                }
            }
        }
        if known_active {
            self.add_running(rsc, n, save_on_fail != OnFail::Ignore);
            match on_fail {
                OnFail::Ignore => {}
                OnFail::Demote | OnFail::Block => self.resources[rsc].flags.failed = true,
                _ => {
                    self.resources[rsc].flags.failed = true;
                    self.resources[rsc].flags.stop_if_failed = true;
                }
            }
        } else {
            // Any stop already created there is only optional.
            let key = format!("{}_stop_0", self.resources[rsc].id);
            for a in self.uuid_actions(rsc, &key).to_vec() {
                if self.actions[a].node == Some(n) {
                    self.actions[a].flags.0 |= AFlags::OPTIONAL;
                }
            }
        }
    }

    fn add_running(&mut self, rsc: RscId, n: NodeId, _failed: bool) {
        if self.resources[rsc].running_on.contains(&n) {
            return;
        }
        self.resources[rsc].running_on.push(n);
        // A node's priority (for priority-fencing-delay) is the sum of the
        // priorities of the resources active on it.
        if self.resources[rsc].variant == Variant::Primitive {
            self.nodes[n].priority = self.nodes[n]
                .priority
                .saturating_add(self.resources[rsc].priority);
        }
        if self.resources[rsc].variant == Variant::Primitive && self.nodes[n].maintenance {
            self.resources[rsc].flags.managed = false;
            self.resources[rsc].flags.maintenance = true;
        }
        let parent = self.resources[rsc].parent;
        if !self.resources[rsc].flags.managed {
            self.resource_location(rsc, Some(n), Score::INFINITY);
            let mut p = parent;
            while let Some(pi) = p {
                if !self.resources[pi].running_on.contains(&n) {
                    self.resources[pi].running_on.push(n);
                }
                p = self.resources[pi].parent;
            }
            return;
        }
        if self.resources[rsc].variant == Variant::Primitive && self.active_count(rsc) > 1 {
            match self.resources[rsc].multiple_active {
                MultipleActive::StopOnly => {
                    for node in 0..self.nodes.len() {
                        self.resources[rsc]
                            .allowed
                            .insert(node, Score::NEG_INFINITY);
                    }
                }
                MultipleActive::Block => {
                    self.resources[rsc].flags.managed = false;
                    self.resources[rsc].flags.blocked = true;
                    if let Some(pi) = parent
                        && self.resources[pi].variant == Variant::Group
                        && self.resources[pi].multiple_active == MultipleActive::Block
                    {
                        for c in self.resources[pi].children.clone() {
                            self.resources[c].flags.managed = false;
                            self.resources[c].flags.blocked = true;
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(pi) = parent {
            self.add_running(pi, n, false);
        }
    }

    /// Number of nodes a primitive is active on (counting unclean nodes only
    /// when it requires fencing).
    pub(crate) fn active_count(&self, rsc: RscId) -> usize {
        self.resources[rsc].running_on.len()
    }
}

/// Whether a fail-count attribute suffix (after `fail-count-`) belongs to
/// resource `name`: `NAME[:N]#OP_INTERVAL`.
fn attr_matches(rest: &str, name: &str, unique: bool) -> bool {
    let Some(after) = rest.strip_prefix(name) else {
        return false;
    };
    let after = if unique {
        after
    } else if let Some(stripped) = after.strip_prefix(':') {
        let digits = stripped.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        &stripped[digits..]
    } else {
        after
    };
    let Some(op) = after.strip_prefix('#') else {
        return false;
    };
    // .+_[0-9]+
    match op.rfind('_') {
        Some(i) if i > 0 => {
            let num = &op[i + 1..];
            !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::attr_matches;

    #[test]
    fn fail_count_names() {
        assert!(attr_matches("rsc1#monitor_60000", "rsc1", true));
        assert!(!attr_matches("rsc10#monitor_60000", "rsc1", true));
        assert!(attr_matches("rsc1:2#start_0", "rsc1", false));
        assert!(!attr_matches("rsc1:2#start_0", "rsc1", true));
        assert!(!attr_matches("rsc1", "rsc1", true));
        assert!(!attr_matches("rsc1#start", "rsc1", true));
    }
}
