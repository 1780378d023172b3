//! The DC's part of the controller: the membership record, scheduling,
//! and carrying transitions out.
//!
//! Results are matched on their transition key (this DC process's uuid,
//! the transition, the action), and taken only once this node's replica
//! of the CIB holds the write that recorded them, so the next schedule
//! always sees them. An action with no result by its deadline is recorded
//! as timed out on its node, so the scheduler acts on it; transitions that
//! keep failing are scheduled again more and more slowly, up to 30 s.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use vigil_cib::xml::{Document, Element};
use vigil_controller::graph::{Action, Graph, Kind};
use vigil_controller::status::{self, OpResult, TransitionKey};
use vigil_controller::transition::{Status, Transition};

use crate::message::{Message, Op, Version};
use crate::runtime::{
    Controller, GROUP, Internal, MESSAGE_TRANSITION, Running, node_names, now_epoch,
};

/// How long after a change the DC waits for more before scheduling.
const SETTLE: Duration = Duration::from_millis(300);
/// The default of `cluster-recheck-interval`.
const RECHECK_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// How long a result may wait for this replica to show its write before
/// the DC asks the CIB daemon, and before it takes it anyway.
const AWAIT_ASK: Duration = Duration::from_secs(1);
const AWAIT_GIVE_UP: Duration = Duration::from_secs(10);
/// The longest wait between failing transitions.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Controller {
    /// Schedules again once changes settle; `why` is what triggered it
    /// (every distinct cause since the last schedule is kept, the first
    /// few of them journaled).
    pub(crate) fn want(&mut self, why: impl Into<String>) {
        self.wanted = true;
        self.settle_until = Some(Instant::now() + SETTLE);
        let why = why.into();
        if !self.trigger.contains(&why) && self.trigger.len() < 8 {
            self.trigger.push(why);
        }
    }

    /// This replica is at `version`: results that waited for it are taken.
    async fn caught_up(&mut self, version: Version) {
        self.cib_version = self.cib_version.max(version);
        let now = self.cib_version;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.awaiting)
            .into_iter()
            .partition(|a| a.version <= now || a.since.elapsed() >= AWAIT_GIVE_UP);
        self.awaiting = waiting;
        for a in ready {
            if a.version > now {
                tracing::warn!(
                    "a result waited {} s for CIB version {:?} (this replica is at {now:?}); taking it",
                    AWAIT_GIVE_UP.as_secs(),
                    a.version
                );
            }
            self.result(&a.key, a.ok, &a.reason).await;
        }
    }

    pub(crate) async fn cib_changed(&mut self, version: Version) {
        self.caught_up(version).await;
        if !self.is_dc() {
            return;
        }
        let epoch = (version.0, version.1);
        let config_changed = epoch > self.config_epoch && self.config_epoch != (0, 0);
        self.config_epoch = self.config_epoch.max(epoch);
        if config_changed && let Some(r) = self.running.as_mut() {
            r.t.abort("the configuration changed");
        }
        self.want(if config_changed {
            "the configuration changed"
        } else {
            "the status changed"
        });
    }

    /// A result for transition key `key`: taken when this DC process
    /// asked for it.
    pub(crate) async fn result(&mut self, key: &str, ok: bool, reason: &str) {
        let Some(k) = TransitionKey::parse(key) else {
            tracing::warn!("a result with a malformed transition key {key:?}: ignored");
            return;
        };
        if k.uuid != self.uuid {
            tracing::debug!("a result for another DC ({key}): ignored");
            return;
        }
        self.action_done(k.transition, k.action, ok, reason).await;
    }

    pub(crate) async fn members_changed(&mut self, members: BTreeSet<u32>) {
        self.names = node_names(&self.bus).await;
        self.members = members;
        let dc = self.dc();
        if let Ok(mut v) = self.view.lock() {
            v.dc = dc
                .and_then(|d| self.names.get(&d).cloned())
                .unwrap_or_default();
        }
        tracing::info!(
            members = ?self.members,
            dc = ?dc.and_then(|d| self.names.get(&d).cloned()),
            "the controllers changed"
        );
        // Results owed to a DC that is no longer the DC are not sent
        // (they are in the CIB all the same).
        self.asked.retain(|_, (d, _)| Some(*d) == dc);
        self.replies.retain(|r| Some(r.dc) == dc);
        if let Some(r) = self.running.as_mut() {
            r.t.abort("the membership changed");
        }
        // Operations running on a node whose controller is gone will never
        // report: they are lost now, not at their deadline.
        let lost: Vec<(u64, u32, String)> = self
            .running
            .as_ref()
            .map(|r| {
                r.t.running_actions()
                    .into_iter()
                    .filter_map(|a| {
                        let act = r.t.action(a)?;
                        if act.kind != Kind::Rsc {
                            return None;
                        }
                        let node = act.node.clone()?;
                        let gone = self
                            .node_id(&node)
                            .is_none_or(|id| !self.members.contains(&id));
                        gone.then_some((r.id, a, node))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (t, a, node) in lost {
            self.action_done(t, a, false, &format!("{node} left the cluster"))
                .await;
        }
        // A node that has just joined may see a partial view for a moment
        // and take itself for the DC: the DC writes only once the view has
        // held still for the settling time (checked in `dc_tick`).
        self.membership_written = false;
        self.want("the membership changed");
        if self.is_dc() {
            vigil_runtime::notify_status("DC");
        }
    }

    /// The DC's record of who is in the cluster, and of the quorum: every
    /// node with a controller online, every other node of the membership
    /// there but its controller not (pending), every node the status
    /// section still shows but that is gone, offline (with its history
    /// kept: unless it left cleanly — its own record says it is expected
    /// down — the scheduler sees it unclean and has it fenced). Returns
    /// whether it was written (the DC tries again on the next tick when
    /// not).
    async fn write_membership(&self) -> bool {
        let shown_online = self
            .ids_of(
                "//node_state[@in_ccm='true' or @crmd='online']",
                "node_state",
            )
            .await;
        // The nodes in the membership (their controller may not run yet).
        let in_view: BTreeSet<u32> =
            match vigil_dbus::membership::ManagerProxy::new(&self.bus).await {
                Ok(m) => m.members().await.unwrap_or_default().into_iter().collect(),
                Err(_) => BTreeSet::new(),
            };
        let mut states = Vec::new();
        for (id, name) in &self.names {
            let online = self.members.contains(id);
            let member = online || in_view.contains(id);
            if !member && !shown_online.contains(&id.to_string()) {
                continue;
            }
            let mut ns = Element::new("node_state");
            ns.set_attr("id", id.to_string());
            ns.set_attr("uname", name.clone());
            ns.set_attr("in_ccm", if member { "true" } else { "false" });
            ns.set_attr("crmd", if online { "online" } else { "offline" });
            // `expected` is the node's own to write: member when its
            // controller starts, down when it leaves cleanly.
            ns.set_attr("join", if online { "member" } else { "down" });
            ns.set_attr("crm-debug-origin", "vigil-controld");
            states.push(ns.to_xml());
        }
        // Every node of the membership is in the configuration's `nodes`
        // section (as Pacemaker's controller adds them at join), so that
        // the scheduler can place resources on it; only missing ones are
        // added, since each addition is a configuration change.
        let configured = self.ids_of("/cib/configuration/nodes/node", "node").await;
        let mut new_nodes = Vec::new();
        for (id, name) in &self.names {
            let member = self.members.contains(id) || in_view.contains(id);
            if member && !configured.contains(&id.to_string()) {
                let mut n = Element::new("node");
                n.set_attr("id", id.to_string());
                n.set_attr("uname", name.clone());
                new_nodes.push(n.to_xml());
            }
        }
        let mut batch: Vec<(&str, &str, &str, bool)> = states
            .iter()
            .map(|s| ("modify", "status", s.as_str(), true))
            .collect();
        batch.extend(
            new_nodes
                .iter()
                .map(|n| ("modify", "nodes", n.as_str(), true)),
        );
        let quorate = match vigil_dbus::membership::QuorumProxy::new(&self.bus).await {
            Ok(q) => q.quorate().await.unwrap_or(false),
            Err(_) => false,
        };
        let root = format!(
            "<cib have-quorum=\"{}\" dc-uuid=\"{}\"/>",
            if quorate { 1 } else { 0 },
            self.me
        );
        batch.push(("modify", "", root.as_str(), false));
        match self.cib.batch(&batch).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!("cannot record the membership in the CIB (trying again): {e}");
                false
            }
        }
    }

    /// The ids of the `element`s `xpath` selects in the CIB (none when
    /// nothing matches).
    async fn ids_of(&self, xpath: &str, element: &str) -> BTreeSet<String> {
        match self.cib.query(xpath, "").await {
            Ok(xml) => Document::parse(&format!("<r>{xml}</r>"))
                .map(|d| {
                    d.root
                        .descendants()
                        .filter(|e| e.name == element)
                        .filter_map(|e| e.attr("id").map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => BTreeSet::new(),
        }
    }

    pub(crate) async fn dc_tick(&mut self) {
        let now = Instant::now();
        // Actions past their deadline have failed.
        let late: Vec<(u64, u32)> = self
            .running
            .as_ref()
            .map(|r| {
                r.deadlines
                    .iter()
                    .filter(|(_, d)| **d <= now)
                    .map(|(a, _)| (r.id, *a))
                    .collect()
            })
            .unwrap_or_default();
        for (t, a) in late {
            let act = self.running.as_ref().and_then(|r| r.t.action(a).cloned());
            if let Some(act) = act
                && act.kind == Kind::Rsc
            {
                self.record_timeout(t, &act).await;
            }
            self.action_done(
                t,
                a,
                false,
                "no result in time (the operation's timeout and cluster-delay passed)",
            )
            .await;
        }
        // Results from nodes whose write this replica has not shown yet.
        if self.awaiting.iter().any(|a| a.since.elapsed() >= AWAIT_ASK)
            && let Ok(v) = self.cib.version().await
        {
            self.caught_up(v).await;
        }
        self.finish_if_done();
        if !self.is_dc() {
            return;
        }
        let settled = self.settle_until.is_none_or(|t| t <= now);
        if !self.membership_written && settled {
            self.membership_written = self.write_membership().await;
        }
        if self.recheck_at.is_some_and(|t| t <= now) {
            self.recheck_at = None;
            tracing::debug!(
                "time to look again (cluster-recheck-interval or a time in the configuration)"
            );
            self.want("a time in the configuration came, or cluster-recheck-interval passed");
            self.settle_until = None;
        }
        let backoff = if self.failed_in_row < 3 {
            Duration::ZERO
        } else {
            Duration::from_secs(1 << (self.failed_in_row - 3).min(5)).min(MAX_BACKOFF)
        };
        if self.membership_written
            && self.running.is_none()
            && self.wanted
            && settled
            && now >= self.last_end + backoff
        {
            self.wanted = false;
            self.compute().await;
        }
    }

    fn finish_if_done(&mut self) {
        let Some(r) = self.running.as_ref() else {
            return;
        };
        let status = r.t.status();
        if status == Status::Running {
            return;
        }
        let took = r.started.elapsed();
        let failed = r.failed;
        let id = r.id;
        match &status {
            Status::Complete => tracing::info!(
                message_id = MESSAGE_TRANSITION,
                vigil_transition = id,
                "transition {} complete in {} ms",
                id,
                took.as_millis()
            ),
            Status::Aborted(why) => {
                tracing::info!(
                    message_id = MESSAGE_TRANSITION,
                    vigil_transition = id,
                    "transition {} aborted after {} ms: {why}",
                    id,
                    took.as_millis()
                );
                self.want(format!("transition {} was aborted: {why}", id));
            }
            Status::Stalled(left) => {
                tracing::error!(
                    message_id = MESSAGE_TRANSITION,
                    vigil_transition = id,
                    "transition {} stalled with actions {left:?} left",
                    id
                );
                self.want(format!("transition {} stalled", id));
            }
            Status::Running => {}
        }
        let (result, reason) = match &status {
            Status::Complete => ("complete", String::new()),
            Status::Aborted(why) => ("aborted", why.clone()),
            Status::Stalled(left) => ("stalled", format!("actions {left:?} could not run")),
            Status::Running => ("running", String::new()),
        };
        self.signal_ended(id, result, reason, took);
        if failed {
            self.failed_in_row += 1;
            if self.failed_in_row >= 3 {
                tracing::warn!(
                    "{} transitions in a row had a failed action: the next waits a little",
                    self.failed_in_row
                );
            }
        } else {
            self.failed_in_row = 0;
        }
        self.last_end = Instant::now();
        self.running = None;
    }

    /// Runs the scheduler on the CIB and starts its transition.
    async fn compute(&mut self) {
        let xml = match self.cib.query("", "").await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("cannot read the CIB to schedule: {e}");
                self.want("the CIB could not be read");
                return;
            }
        };
        let Ok(doc) = Document::parse(&xml) else {
            tracing::error!("the CIB from vigil-cibd does not parse");
            return;
        };
        if let Some(v) = doc.root.attr("epoch").and_then(|e| e.parse::<u64>().ok()) {
            let admin = doc
                .root
                .attr("admin_epoch")
                .and_then(|e| e.parse::<u64>().ok())
                .unwrap_or(0);
            self.config_epoch = self.config_epoch.max((admin, v));
        }
        let started = Instant::now();
        let now = now_epoch();
        let trigger = if self.trigger.is_empty() {
            "a change".to_string()
        } else {
            std::mem::take(&mut self.trigger).join("; ")
        };
        let scheduled = std::panic::catch_unwind(|| {
            let s =
                vigil_scheduler::Scheduler::run(&doc, &vigil_scheduler::Options { now: Some(now) });
            let option = |name: &str| s.settings.options.get(name).cloned();
            (
                s.transition_summary(),
                s.graph_xml(),
                s.recheck_by,
                option("cluster-recheck-interval"),
                option("batch-limit"),
            )
        });
        let Ok((summary, graph_xml, recheck_by, recheck_interval, batch_limit)) = scheduled else {
            tracing::error!("the scheduler failed on this CIB; waiting for the next change");
            return;
        };
        self.plan_recheck(now, recheck_by, recheck_interval.as_deref());
        let graph = match Graph::parse(&graph_xml) {
            Ok(g) => g,
            Err(e) => {
                tracing::error!("the scheduler's graph does not read: {e}");
                return;
            }
        };
        if graph.actions.is_empty() {
            tracing::debug!("nothing to do");
            return;
        }
        self.next_transition += 1;
        let id = self.next_transition;
        tracing::info!(
            message_id = MESSAGE_TRANSITION,
            vigil_transition = id,
            "transition {id} ({trigger}): {} actions, computed in {} ms{}",
            graph.actions.len(),
            started.elapsed().as_millis(),
            if summary.is_empty() {
                String::new()
            } else {
                format!("; {}", summary.join("; "))
            }
        );
        self.signal_started(id, &trigger, graph.actions.len() as u32, &summary);
        let cluster_delay = Duration::from_millis(graph.cluster_delay_ms);
        let limit = batch_limit
            .and_then(|b| b.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let (t, first) = Transition::start(graph, limit);
        self.running = Some(Running {
            id,
            t,
            started: Instant::now(),
            deadlines: Default::default(),
            cluster_delay,
            failed: false,
        });
        self.dispatch(first).await;
        self.finish_if_done();
    }

    /// When to schedule again with nothing else changing: the recheck
    /// interval, or sooner when the scheduler says its answer changes
    /// then (a lifetime ends, a failure expires).
    fn plan_recheck(&mut self, now: i64, recheck_by: Option<i64>, interval: Option<&str>) {
        let interval = match interval.map(vigil_cib::time::parse_ms) {
            None => Some(RECHECK_INTERVAL),
            Some(Ok(ms)) if ms > 0 => Some(Duration::from_millis(ms as u64)),
            // 0 (or nonsense, which the scheduler reports) disables it.
            Some(_) => None,
        };
        let by = recheck_by.map(|t| Duration::from_secs(t.saturating_sub(now).max(1) as u64));
        let wait = match (interval, by) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.recheck_at = wait.map(|w| Instant::now() + w);
        if let Some(w) = by {
            tracing::debug!(
                "the scheduler's answer changes in {} s: looking again then",
                w.as_secs()
            );
        }
    }

    pub(crate) async fn action_done(
        &mut self,
        transition: u64,
        action: u32,
        ok: bool,
        reason: &str,
    ) {
        let Some(r) = self.running.as_mut() else {
            return;
        };
        if r.id != transition {
            return;
        }
        r.deadlines.remove(&action);
        if let Some(a) = r.t.action(action) {
            if ok {
                tracing::debug!(vigil_transition = transition, "{} done", a.key);
            } else {
                r.failed = true;
                tracing::warn!(vigil_transition = transition, "{} failed: {reason}", a.key);
            }
        }
        let next = r.t.done(action, ok, reason);
        // Boxed: dispatching may finish actions at once (here), which
        // dispatches again.
        Box::pin(self.dispatch(next)).await;
        self.finish_if_done();
    }

    async fn dispatch(&mut self, actions: Vec<u32>) {
        for a in actions {
            let Some(r) = self.running.as_mut() else {
                return;
            };
            let Some(act) = r.t.action(a).cloned() else {
                continue;
            };
            let id = r.id;
            let timeout = Duration::from_millis(act.timeout_ms().unwrap_or(20_000));
            let deadline = if act.operation == "stonith" {
                // The fencer's own retries, topology levels and delays
                // fit in twice the timeout; the priority delay comes first.
                timeout * 2 + Duration::from_millis(fencing_delay_ms(&act))
            } else {
                timeout
            };
            r.deadlines
                .insert(a, Instant::now() + deadline + r.cluster_delay);
            match act.kind {
                Kind::Pseudo => {}
                Kind::Cluster => match act.operation.as_str() {
                    "stonith" => self.fence_action(id, &act),
                    "do_shutdown" => self.shutdown_action(id, &act).await,
                    "clear_failcount" | "lrm_delete" => self.run_on_node(id, &act).await,
                    other => {
                        tracing::debug!("cluster action {other} needs nothing here");
                        Box::pin(self.action_done(id, a, true, "")).await;
                    }
                },
                Kind::Rsc => self.run_on_node(id, &act).await,
            }
        }
    }

    /// A resource operation (or a resource's `clear_failcount` /
    /// `lrm_delete`) on its node's executor.
    async fn run_on_node(&mut self, transition: u64, act: &Action) {
        let a = act.id;
        let Some(rsc) = &act.resource else {
            Box::pin(self.action_done(transition, a, false, "no resource in the action")).await;
            return;
        };
        let node = act.node.clone().unwrap_or_default();
        let Some(to) = self.node_id(&node) else {
            Box::pin(self.action_done(transition, a, false, &format!("unknown node {node}"))).await;
            return;
        };
        let no_wait = act.meta("op_no_wait") == Some("true");
        if act.operation == "lrm_delete" && !self.members.contains(&to) {
            // Its controller is not there to forget it: the DC deletes the
            // history from the CIB itself.
            let xpath = format!(
                "/cib/status/node_state[@id='{to}']/lrm/lrm_resources/lrm_resource[@id='{}']",
                rsc.id.replace('\'', "")
            );
            let ok = self.cib.delete_xpath(&xpath, true).await.is_ok();
            Box::pin(self.action_done(transition, a, ok, "cannot delete the history from the CIB"))
                .await;
            return;
        }
        let agent = match &rsc.provider {
            Some(p) => format!("{}:{p}:{}", rsc.class, rsc.kind),
            None => format!("{}:{}", rsc.class, rsc.kind),
        };
        let key = TransitionKey {
            action: a,
            transition,
            target_rc: act.target_rc(),
            uuid: self.uuid.clone(),
        }
        .to_string();
        // The executor knows a clone instance by the id the scheduler
        // records history under (an anonymous clone's instances share the
        // primitive's id; `long-id` only tells them apart in the graph).
        let op = Op {
            resource: rsc.id.clone(),
            agent,
            operation: act.operation.clone(),
            interval_ms: act.interval_ms(),
            timeout_ms: act.timeout_ms().unwrap_or(20_000),
            params: act.params(),
            meta: act.metas(),
            target_rc: act.target_rc(),
            key,
        };
        if to == self.me {
            self.execute_here(self.me, op).await;
        } else {
            let sent = self
                .send(&Message::Execute {
                    to,
                    from: self.me,
                    op,
                })
                .await;
            if !sent {
                Box::pin(self.action_done(
                    transition,
                    a,
                    false,
                    &format!("cannot send it to {node} through the group {GROUP}"),
                ))
                .await;
                return;
            }
        }
        if no_wait {
            Box::pin(self.action_done(transition, a, true, "")).await;
        }
    }

    /// `do_shutdown`: the node asked to shut down and its resources have
    /// left; it is told to stop (no answer awaited).
    async fn shutdown_action(&mut self, transition: u64, act: &Action) {
        let a = act.id;
        let node = act.node.clone().unwrap_or_default();
        let key = TransitionKey {
            action: a,
            transition,
            target_rc: 0,
            uuid: self.uuid.clone(),
        }
        .to_string();
        match self.node_id(&node) {
            Some(to) if to == self.me => {
                Box::pin(self.action_done(transition, a, true, "")).await;
                let me = self.me;
                self.shutdown_now(me, key).await;
            }
            Some(to) => {
                let sent = self
                    .send(&Message::Shutdown {
                        to,
                        from: self.me,
                        key,
                    })
                    .await;
                Box::pin(self.action_done(transition, a, sent, "cannot reach it")).await;
            }
            None => {
                Box::pin(self.action_done(transition, a, false, &format!("unknown node {node}")))
                    .await;
            }
        }
    }

    /// An operation with no result by its deadline is recorded on its node
    /// as timed out (its node's own record replaces it when the result
    /// comes after all).
    async fn record_timeout(&self, transition: u64, act: &Action) {
        let (Some(rsc), Some(node)) = (&act.resource, &act.node) else {
            return;
        };
        let Some(id) = self.node_id(node) else { return };
        if !self.members.contains(&id) {
            return;
        }
        let now = now_epoch();
        let res = OpResult {
            resource: rsc.id.clone(),
            class: rsc.class.clone(),
            provider: rsc.provider.clone(),
            kind: rsc.kind.clone(),
            operation: act.operation.clone(),
            interval_ms: act.interval_ms(),
            node: node.clone(),
            key: Some(TransitionKey {
                action: act.id,
                transition,
                target_rc: act.target_rc(),
                uuid: self.uuid.clone(),
            }),
            rc: status::RC_ERROR,
            op_status: status::TIMED_OUT,
            exit_reason: "no result in time (recorded by the DC)".into(),
            call_id: -1,
            last_run: now,
            last_rc_change: now,
            exec_ms: act.timeout_ms().unwrap_or(0),
            queue_ms: 0,
            digest: None,
            failed: true,
        };
        let mut ns = Element::new("node_state");
        ns.set_attr("id", id.to_string());
        ns.set_attr("uname", node.clone());
        status::record(status::lrm_resources(&mut ns), &res);
        if let Err(e) = self.cib.modify("status", &ns.to_xml(), true).await {
            tracing::warn!("cannot record the timeout of {} on {node}: {e}", act.key);
        }
    }

    /// Fencing, through this node's fencer.
    fn fence_action(&self, transition: u64, act: &Action) {
        let tx = self.internal.clone();
        let action = act.id;
        let target = act.node.clone().unwrap_or_default();
        let how = act.meta("stonith_action").unwrap_or("reboot").to_string();
        let delay_ms = fencing_delay_ms(act);
        let bus = self.bus.clone();
        tokio::spawn(async move {
            let (ok, reason) = fence(&bus, &target, &how, delay_ms).await;
            let _ = tx.send(Internal::ClusterDone {
                transition,
                action,
                ok,
                reason,
                fenced: ok.then_some((target, how)),
            });
        });
    }

    /// A fencing action succeeded: after `off` or `reboot` the node is
    /// down; after `on` (unfencing) it may run resources, which its
    /// `#node-unfenced` attribute records (transient: a node that restarts
    /// is unfenced again).
    pub(crate) async fn fenced(&self, target: &str, how: &str) {
        if how == "on" {
            self.send(&Message::Attribute {
                node: target.to_string(),
                name: "#node-unfenced".into(),
                value: Some(now_epoch().to_string()),
                dampen_ms: 0,
            })
            .await;
        } else {
            self.mark_fenced(target).await;
        }
    }

    /// After fencing: the node is down and runs nothing (its history and
    /// transient attributes go). Not when it is back in the cluster
    /// already: its own controller has written its truth since.
    async fn mark_fenced(&self, target: &str) {
        let Some(id) = self.node_id(target) else {
            return;
        };
        if self.members.contains(&id) {
            tracing::info!(
                "{target} was fenced and is back already; its controller reports its state"
            );
            return;
        }
        let mut ns = status::node_state(&id.to_string(), target, false);
        ns.set_attr("crm-debug-origin", "vigil-controld-fenced");
        let base = format!("/cib/status/node_state[@id='{id}']");
        let lrm = format!("{base}/lrm");
        let ta = format!("{base}/transient_attributes");
        let xml = ns.to_xml();
        let batch = [
            ("delete-xpath", "", lrm.as_str(), true),
            ("delete-xpath", "", ta.as_str(), true),
            ("modify", "status", xml.as_str(), true),
        ];
        if let Err(e) = self.cib.batch(&batch).await {
            tracing::warn!("cannot record that {target} was fenced: {e}");
        }
    }
}

impl Controller {
    /// `TransitionStarted` on the bus (sent from a task: the loop never
    /// waits on the bus).
    fn signal_started(&self, id: u64, trigger: &str, actions: u32, summary: &[String]) {
        let bus = self.bus.clone();
        let trigger = trigger.to_string();
        let summary: Vec<String> = summary
            .iter()
            .map(|l| l.trim().trim_start_matches("* ").to_string())
            .collect();
        tokio::spawn(async move {
            if let Ok(e) = zbus::object_server::SignalEmitter::new(&bus, crate::dbus::PATH) {
                let _ =
                    crate::dbus::Manager::transition_started(&e, id, &trigger, actions, summary)
                        .await;
            }
        });
    }

    /// `TransitionEnded` on the bus.
    fn signal_ended(&self, id: u64, result: &'static str, reason: String, took: Duration) {
        let bus = self.bus.clone();
        tokio::spawn(async move {
            if let Ok(e) = zbus::object_server::SignalEmitter::new(&bus, crate::dbus::PATH) {
                let _ = crate::dbus::Manager::transition_ended(
                    &e,
                    id,
                    result,
                    &reason,
                    took.as_millis() as u64,
                )
                .await;
            }
        });
    }
}

/// priority-fencing-delay, as the scheduler settled it, in ms.
fn fencing_delay_ms(act: &Action) -> u64 {
    act.meta("priority_fencing_delay")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        * 1000
}

/// Fences `target` through this node's fencer: (ok, reason).
async fn fence(
    bus: &zbus::Connection,
    target: &str,
    action: &str,
    delay_ms: u64,
) -> (bool, String) {
    let f = match vigil_dbus::fencing::ManagerProxy::new(bus).await {
        Ok(f) => f,
        Err(e) => return (false, format!("cannot reach vigil-fenced: {e}")),
    };
    let Ok(mut removed) = f.receive_job_removed().await else {
        return (false, "cannot follow vigil-fenced's jobs".into());
    };
    let mut options = HashMap::new();
    if delay_ms > 0 {
        options.insert("delay-ms", zbus::Variant::from(delay_ms));
    }
    let job = match f.fence(target, action, options).await {
        Ok((job, _)) => job,
        Err(e) => return (false, format!("vigil-fenced refused: {e}")),
    };
    while let Some(s) = removed.next().await {
        if let Ok(a) = s.args()
            && a.id == job
        {
            let ok = matches!(a.result.as_str(), "done" | "confirmed");
            return (
                ok,
                if ok {
                    String::new()
                } else {
                    format!("fencing {target} {}", a.result)
                },
            );
        }
    }
    (false, "vigil-fenced went away".into())
}
