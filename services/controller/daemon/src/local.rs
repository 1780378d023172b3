//! This node's part of the controller: its operation history and
//! transient attributes in its `node_state`, the operations the DC asks
//! of it, cleanups, and its clean shutdown.
//!
//! Every change goes to the CIB through [`Controller::flush`], one batch
//! for everything changed since the last: a result owed to a DC is sent
//! only after its history is written (with the CIB version the write
//! made), and a write that fails is tried again at every tick, with the
//! results still owed.

use std::time::{Duration, Instant};

use vigil_cib::xml::{Document, Element};
use vigil_controller::status::{self, OpResult, TransitionKey};
use vigil_dbus::executor::OperationRecord;

use crate::message::{Message, Op};
use crate::runtime::{Controller, Internal, Reply, now_epoch};

/// The default of `shutdown-escalation`: how long a clean shutdown may
/// wait for the DC before the controller stops anyway (and is fenced).
const SHUTDOWN_ESCALATION: Duration = Duration::from_secs(20 * 60);

/// `class:provider:type` (or `class:type`) in parts.
fn agent_parts(agent: &str) -> (String, Option<String>, String) {
    let mut parts = agent.splitn(3, ':');
    let class = parts.next().unwrap_or_default().to_string();
    match (parts.next(), parts.next()) {
        (Some(p), Some(t)) => (class, Some(p.to_string()), t.to_string()),
        (Some(t), None) => (class, None, t.to_string()),
        _ => (class, None, String::new()),
    }
}

/// Whether an operation is recorded as pending while it runs: those
/// that change what runs where (a start, promote, demote or migration in
/// flight is the resource's truth for the scheduler until its result). A
/// stop is not, so that a resource with a stop in flight still shows as
/// running where it ran.
fn records_pending(op: &Op) -> bool {
    op.interval_ms == 0
        && matches!(
            op.operation.as_str(),
            "start" | "promote" | "demote" | "migrate_to" | "migrate_from"
        )
}

/// A safe `id` part from an attribute name.
fn id_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '.'
            }
        })
        .collect()
}

impl Controller {
    /// Rebuilds this node's history from its executor (after a restart of
    /// the controller) and writes it, with the transient attributes
    /// afresh and the node expected as a member.
    pub(crate) async fn load_history(&mut self) {
        // The digests recorded before a restart of this controller: the
        // executor does not keep them.
        let xpath = format!("/cib/status/node_state[@id='{}']/lrm", self.me);
        if let Ok(xml) = self.cib.query(&xpath, "").await
            && let Ok(doc) = Document::parse(&format!("<r>{xml}</r>"))
        {
            for rsc in doc.root.descendants().filter(|e| e.name == "lrm_resource") {
                let Some(rid) = rsc.attr("id") else { continue };
                for op in rsc.elements().filter(|e| e.name == "lrm_rsc_op") {
                    if let (Some(task), Some(digest)) = (op.attr("operation"), op.attr("op-digest"))
                    {
                        let interval = op
                            .attr("interval")
                            .and_then(|i| i.parse().ok())
                            .unwrap_or(0);
                        self.digests.insert(
                            (rid.to_string(), task.to_string(), interval),
                            digest.to_string(),
                        );
                    }
                }
            }
        }
        let mut records = Vec::new();
        if let Ok(resources) = self.execd.list_resources().await {
            for r in resources {
                if let Ok((_, _, ops, failure, _)) = self.execd.get_resource(&r).await {
                    records.extend(ops.into_iter().chain(failure));
                }
            }
        }
        // Oldest first, so that each replaces what it followed.
        records.sort_by_key(|r| r.call_id);
        for rec in &records {
            let res = self.op_result(rec);
            status::record(&mut self.lrm, &res);
        }
        self.lrm_reset = true;
        self.flush().await;
    }

    pub(crate) fn op_result(&self, rec: &OperationRecord) -> OpResult {
        let (class, provider, kind) = agent_parts(&rec.agent);
        OpResult {
            resource: rec.resource.clone(),
            class,
            provider,
            kind,
            operation: rec.action.clone(),
            interval_ms: rec.interval_ms,
            node: self.name.clone(),
            key: TransitionKey::parse(&rec.user_data),
            rc: rec.rc,
            op_status: rec.op_status,
            exit_reason: rec.exit_reason.clone(),
            call_id: i64::try_from(rec.call_id).unwrap_or(i64::MAX),
            last_run: rec.last_run,
            last_rc_change: rec.last_rc_change,
            exec_ms: rec.exec_ms,
            queue_ms: rec.queue_ms,
            digest: self
                .digests
                .get(&(rec.resource.clone(), rec.action.clone(), rec.interval_ms))
                .cloned(),
            failed: rec.failed,
        }
    }

    /// The record of `op` before it has a result: pending (or, with
    /// `failure`, failed before it could run).
    fn unrun_result(&self, op: &Op, failure: Option<String>) -> OpResult {
        let (class, provider, kind) = agent_parts(&op.agent);
        let now = now_epoch();
        OpResult {
            resource: op.resource.clone(),
            class,
            provider,
            kind,
            operation: op.operation.clone(),
            interval_ms: op.interval_ms,
            node: self.name.clone(),
            key: TransitionKey::parse(&op.key),
            rc: if failure.is_some() {
                status::RC_ERROR
            } else {
                status::RC_UNKNOWN
            },
            op_status: if failure.is_some() {
                status::EXEC_ERROR
            } else {
                status::PENDING
            },
            failed: failure.is_some(),
            exit_reason: failure.unwrap_or_default(),
            call_id: -1,
            last_run: now,
            last_rc_change: now,
            exec_ms: 0,
            queue_ms: 0,
            digest: self
                .digests
                .get(&(op.resource.clone(), op.operation.clone(), op.interval_ms))
                .cloned(),
        }
    }

    /// Writes everything changed (histories, attributes, the expected
    /// state) in one CIB batch, then sends the results owed: whether it
    /// was written (when not, `local_tick` tries again).
    pub(crate) async fn flush(&mut self) -> bool {
        let nothing = self.dirty.is_empty()
            && !self.attrs_dirty
            && !self.lrm_reset
            && self.expected_dirty.is_none();
        if nothing {
            self.send_replies(self.cib_version).await;
            return true;
        }
        let me = self.me.to_string();
        let base = format!("/cib/status/node_state[@id='{me}']");
        let mut deletes: Vec<String> = Vec::new();
        let mut ns = Element::new("node_state");
        ns.set_attr("id", me.clone());
        ns.set_attr("uname", self.name.clone());
        if let Some(expected) = self.expected_dirty {
            ns.set_attr("expected", expected);
        }
        let mut rscs = Element::new("lrm_resources");
        if self.lrm_reset {
            deletes.push(format!("{base}/lrm"));
            rscs = self.lrm.clone();
        } else {
            for r in &self.dirty {
                deletes.push(format!(
                    "{base}/lrm/lrm_resources/lrm_resource[@id='{}']",
                    r.replace('\'', "")
                ));
                if let Some(e) = status::resource_entry(&self.lrm, r) {
                    rscs.push(e.clone());
                }
            }
        }
        let mut lrm = Element::new("lrm");
        lrm.set_attr("id", me.clone());
        lrm.push(rscs);
        ns.push(lrm);
        if self.attrs_dirty {
            deletes.push(format!("{base}/transient_attributes"));
            let mut set = Element::new("instance_attributes");
            set.set_attr("id", format!("status-{me}"));
            for (k, v) in &self.attrs {
                let mut nv = Element::new("nvpair");
                nv.set_attr("id", format!("status-{me}-{}", id_part(k)));
                nv.set_attr("name", k.clone());
                nv.set_attr("value", v.clone());
                set.push(nv);
            }
            let mut ta = Element::new("transient_attributes");
            ta.set_attr("id", me.clone());
            ta.push(set);
            ns.push(ta);
        }
        let xml = ns.to_xml();
        let mut batch: Vec<(&str, &str, &str, bool)> = deletes
            .iter()
            .map(|x| ("delete-xpath", "", x.as_str(), true))
            .collect();
        batch.push(("modify", "status", xml.as_str(), true));
        match self.cib.batch(&batch).await {
            Ok(version) => {
                if self.write_failures > 0 {
                    tracing::info!(
                        "this node's history is in the CIB again after {} failed writes",
                        self.write_failures
                    );
                }
                self.write_failures = 0;
                self.dirty.clear();
                self.attrs_dirty = false;
                self.lrm_reset = false;
                self.expected_dirty = None;
                self.cib_version = self.cib_version.max(version);
                self.send_replies(version).await;
                true
            }
            Err(e) => {
                self.write_failures += 1;
                if self.write_failures == 1 || self.write_failures.is_multiple_of(50) {
                    tracing::warn!(
                        "cannot record this node's history in the CIB ({} tries; trying again, results to the DC wait): {e}",
                        self.write_failures
                    );
                }
                false
            }
        }
    }

    async fn send_replies(&mut self, version: crate::message::Version) {
        for r in std::mem::take(&mut self.replies) {
            if r.dc == self.me {
                let _ = self.internal.send(Internal::LocalResult {
                    key: r.key,
                    ok: r.ok,
                    reason: r.reason,
                });
            } else {
                self.send(&Message::Result {
                    to: r.dc,
                    from: self.me,
                    key: r.key,
                    ok: r.ok,
                    reason: r.reason,
                    version,
                })
                .await;
            }
        }
    }

    fn owe(&mut self, dc: u32, key: &str, ok: bool, reason: String) {
        self.replies.push(Reply {
            dc,
            key: key.to_string(),
            ok,
            reason,
        });
    }

    /// An operation's result from the executor: recorded, and sent to the
    /// DC that asked for it; a failure nobody asked for is reported to the
    /// DC as unexpected.
    pub(crate) async fn completed(&mut self, job: u32, rec: OperationRecord) {
        let res = self.op_result(&rec);
        status::record(&mut self.lrm, &res);
        self.dirty.insert(rec.resource.clone());
        if rec.failed {
            self.count_failure(&rec.resource, &rec.action, rec.interval_ms);
        }
        let reason = if rec.failed {
            format!(
                "rc={} (expected {}){}",
                rec.rc,
                rec.expected_rc,
                if rec.exit_reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", rec.exit_reason)
                }
            )
        } else {
            String::new()
        };
        let asked = self.asked.remove(&job);
        if let Some((dc, key)) = &asked {
            self.owe(*dc, key, !rec.failed, reason.clone());
        }
        self.flush().await;
        if asked.is_none() && rec.failed {
            self.send(&Message::Unexpected {
                from: self.me,
                resource: rec.resource.clone(),
                operation: format!("{}_{}", rec.action, rec.interval_ms),
                reason,
            })
            .await;
        }
    }

    /// Runs one operation on this node's executor for DC `dc`.
    pub(crate) async fn execute_here(&mut self, dc: u32, op: Op) {
        match op.operation.as_str() {
            "cancel" => {
                let task = op
                    .meta
                    .get("operation")
                    .cloned()
                    .unwrap_or_else(|| "monitor".into());
                // Nothing to cancel is fine: it is not running.
                let _ = self.execd.cancel(&op.resource, &task, op.interval_ms).await;
                // Its history goes with it: the scheduler asks for it
                // again when it is wanted again (after maintenance).
                let key = format!("{}_{task}_{}", op.resource, op.interval_ms);
                if status::forget_recurring(&mut self.lrm, &op.resource, &key) {
                    self.dirty.insert(op.resource.clone());
                }
                self.owe(dc, &op.key, true, String::new());
                self.flush().await;
                return;
            }
            "delete" | "lrm_delete" => {
                self.forget_here(&op.resource, false).await;
                self.owe(dc, &op.key, true, String::new());
                self.flush().await;
                return;
            }
            "clear_failcount" => {
                self.clear_failures(&op.resource);
                self.owe(dc, &op.key, true, String::new());
                self.flush().await;
                return;
            }
            _ => {}
        }
        let fencing = op.agent.starts_with("stonith:");
        self.digests.insert(
            (op.resource.clone(), op.operation.clone(), op.interval_ms),
            status::op_digest(&op.params, op.interval_ms, op.timeout_ms, fencing),
        );
        if records_pending(&op) {
            // In the CIB before it runs: a DC that loses track of it
            // (timeout, or a new DC) still sees it where it runs.
            let pending = self.unrun_result(&op, None);
            status::record(&mut self.lrm, &pending);
            self.dirty.insert(op.resource.clone());
            self.flush().await;
        }
        let p: std::collections::HashMap<&str, &str> = op
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let m: std::collections::HashMap<&str, &str> = op
            .meta
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let options = std::collections::HashMap::from([
            ("expected-rc", zbus::Variant::from(op.target_rc)),
            ("user-data", zbus::Variant::from(op.key.as_str())),
        ]);
        match self
            .execd
            .execute(
                &op.resource,
                &op.agent,
                &op.operation,
                op.interval_ms,
                op.timeout_ms,
                p,
                m,
                options,
            )
            .await
        {
            Ok((job, _)) => {
                self.asked.insert(job, (dc, op.key.clone()));
            }
            Err(e) => {
                // Recorded as a failure, so that the scheduler acts on it
                // rather than asking for the same again.
                let reason = format!("the executor refused it: {}", e);
                let failed = self.unrun_result(&op, Some(reason.clone()));
                status::record(&mut self.lrm, &failed);
                self.dirty.insert(op.resource.clone());
                self.count_failure(&op.resource, &op.operation, op.interval_ms);
                tracing::warn!(vigil_resource = %op.resource, vigil_node = %self.name, "{} of {}: {reason}", op.operation, op.resource);
                self.owe(dc, &op.key, false, reason);
                self.flush().await;
            }
        }
    }

    /// An operator's cleanup: checked here, then sent to every controller.
    pub(crate) async fn ask_cleanup(
        &mut self,
        resource: String,
        node: String,
    ) -> Result<(), String> {
        let known = self
            .cib
            .query(
                &format!("//resources//*[@id='{}']", resource.replace('\'', "")),
                "",
            )
            .await
            .is_ok();
        if !known {
            return Err(format!("no resource {resource:?} in the configuration"));
        }
        if !node.is_empty() && self.node_id(&node).is_none() {
            let names: Vec<&str> = self.names.values().map(String::as_str).collect();
            return Err(format!("no node {node:?} (nodes: {})", names.join(", ")));
        }
        if !self.send(&Message::Cleanup { resource, node }).await {
            return Err("cannot reach the other controllers; try again".into());
        }
        Ok(())
    }

    /// Forgets a resource here: its recurring operations are cancelled,
    /// its executor history, CIB history and fail counts go.
    pub(crate) async fn cleanup_here(&mut self, resource: &str) {
        self.forget_here(resource, true).await;
        tracing::info!(vigil_resource = %resource, vigil_node = %self.name, "{resource} cleaned up on {}", self.name);
        self.flush().await;
    }

    /// Forgets `resource`'s history here (and its failures with
    /// `failures_too`). An operation still running keeps the executor
    /// from forgetting: it is tried again at each tick.
    async fn forget_here(&mut self, resource: &str, failures_too: bool) {
        let recurring: Vec<(String, u64)> = status::resource_entry(&self.lrm, resource)
            .into_iter()
            .flat_map(|r| r.elements())
            .filter_map(|op| {
                let interval: u64 = op.attr("interval")?.parse().ok()?;
                (interval > 0).then(|| {
                    (
                        op.attr("operation").unwrap_or("monitor").to_string(),
                        interval,
                    )
                })
            })
            .collect();
        for (op, interval) in recurring {
            let _ = self.execd.cancel(resource, &op, interval).await;
        }
        match self.execd.forget_resource(resource).await {
            Ok(()) => {}
            Err(e) if e.to_string().contains("no operation of") => {}
            Err(_) => {
                self.to_forget.insert(resource.to_string());
            }
        }
        self.drop_history(resource);
        if failures_too {
            self.clear_failures(resource);
        }
    }

    fn drop_history(&mut self, resource: &str) {
        self.lrm.children.retain(|n| match n {
            vigil_cib::xml::Node::Element(e) => e.attr("id") != Some(resource),
            _ => true,
        });
        self.digests.retain(|(r, _, _), _| r != resource);
        self.dirty.insert(resource.to_string());
    }

    /// Clears `resource`'s fail counts and last failures on this node.
    fn clear_failures(&mut self, resource: &str) {
        let prefixes = [
            format!("fail-count-{resource}#"),
            format!("last-failure-{resource}#"),
        ];
        let before = self.attrs.len();
        self.attrs
            .retain(|k, _| !prefixes.iter().any(|p| k.starts_with(p)));
        if self.attrs.len() != before {
            self.attrs_dirty = true;
        }
        if status::forget_last_failure(&mut self.lrm, resource) {
            self.dirty.insert(resource.to_string());
        }
    }

    /// A failed operation: its fail count goes up (a failed start's to
    /// INFINITY: start failures are fatal by default) and its last failure
    /// is now, as the scheduler reads them from the node's transient
    /// attributes.
    fn count_failure(&mut self, resource: &str, action: &str, interval_ms: u64) {
        let key = format!("{resource}#{action}_{interval_ms}");
        let name = format!("fail-count-{key}");
        let old: i64 = self
            .attrs
            .get(&name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let new = if action == "start" {
            1_000_000
        } else {
            (old + 1).min(1_000_000)
        };
        self.attrs.insert(name, new.to_string());
        self.attrs
            .insert(format!("last-failure-{key}"), now_epoch().to_string());
        self.attrs_dirty = true;
        tracing::warn!(
            vigil_resource = %resource,
            vigil_node = %self.name,
            "{action} of {resource} failed on {}: fail count {new}",
            self.name
        );
    }

    /// An operator's request to set (or remove) a node's transient
    /// attribute: checked here, then sent to that node's controller.
    pub(crate) async fn ask_attribute(
        &mut self,
        node: String,
        name: String,
        value: Option<String>,
        dampen_ms: u64,
    ) -> Result<(), String> {
        let node = if node.is_empty() {
            self.name.clone()
        } else {
            node
        };
        let Some(id) = self.node_id(&node) else {
            let names: Vec<&str> = self.names.values().map(String::as_str).collect();
            return Err(format!("no node {node:?} (nodes: {})", names.join(", ")));
        };
        if name.is_empty()
            || name
                .chars()
                .any(|c| c.is_control() || c == '\'' || c == '"')
        {
            return Err(format!(
                "{name:?} is not an attribute name: give a name without quotes or control characters"
            ));
        }
        if !self.members.contains(&id) {
            return Err(format!(
                "{node}'s controller is not in the cluster: transient attributes live with it; set a permanent one instead"
            ));
        }
        if !self
            .send(&Message::Attribute {
                node,
                name,
                value,
                dampen_ms,
            })
            .await
        {
            return Err("cannot reach the other controllers; try again".into());
        }
        Ok(())
    }

    /// Sets (or removes) one of this node's transient attributes, at once
    /// or after `dampen_ms` with no further change (a change back to the
    /// value written cancels it).
    pub(crate) async fn set_attribute(
        &mut self,
        name: String,
        value: Option<String>,
        dampen_ms: u64,
    ) {
        if dampen_ms > 0 {
            if self.attrs.get(&name) == value.as_ref() {
                self.damped.remove(&name);
            } else {
                let due = Instant::now() + Duration::from_millis(dampen_ms);
                self.damped.insert(name, (value, due));
            }
            return;
        }
        self.damped.remove(&name);
        self.apply_attribute(name, value).await;
    }

    async fn apply_attribute(&mut self, name: String, value: Option<String>) {
        let changed = match &value {
            Some(v) => self.attrs.insert(name.clone(), v.clone()).as_ref() != Some(v),
            None => self.attrs.remove(&name).is_some(),
        };
        if changed {
            tracing::info!(vigil_node = %self.name, "attribute {name} of {}: {}", self.name, value.as_deref().unwrap_or("(removed)"));
            self.attrs_dirty = true;
            self.flush().await;
        }
    }

    /// Asked to stop (SIGTERM from `systemctl stop`): the node asks to
    /// shut down (its `shutdown` attribute), the DC moves its resources
    /// away and then tells it to stop. Asked a second time, it stops at
    /// once.
    pub(crate) async fn begin_shutdown(&mut self, why: &str) {
        if self.shutdown.is_some() {
            tracing::warn!("{why} again while shutting down: stopping now");
            self.exit = true;
            return;
        }
        let escalation = match self
            .cib
            .query("//crm_config//nvpair[@name='shutdown-escalation']", "")
            .await
        {
            Ok(xml) => Document::parse(&format!("<r>{xml}</r>"))
                .ok()
                .and_then(|d| {
                    let v = d
                        .root
                        .descendants()
                        .find(|e| e.name == "nvpair")?
                        .attr("value")?
                        .to_string();
                    vigil_cib::time::parse_ms(&v).ok()
                })
                .filter(|ms| *ms > 0)
                .map(|ms| Duration::from_millis(ms as u64))
                .unwrap_or(SHUTDOWN_ESCALATION),
            Err(_) => SHUTDOWN_ESCALATION,
        };
        self.shutdown = Some((Instant::now(), escalation));
        self.attrs
            .insert("shutdown".into(), now_epoch().to_string());
        self.attrs_dirty = true;
        tracing::info!(
            vigil_node = %self.name,
            "shutting down ({why}): the resources here move away first (at most {} s)",
            escalation.as_secs()
        );
        vigil_runtime::notify_status("shutting down: moving resources away");
        self.flush().await;
    }

    /// The DC's `do_shutdown`: this node's resources have left; it is
    /// recorded as expected down (so nobody fences it) and the controller
    /// stops.
    pub(crate) async fn shutdown_now(&mut self, dc: u32, key: String) {
        if self.shutdown.is_none() {
            tracing::warn!(
                "node {dc} asked this node to stop, but it did not ask to shut down: ignored ({key})"
            );
            return;
        }
        self.expected_dirty = Some("down");
        for _ in 0..5 {
            if self.flush().await {
                tracing::info!(vigil_node = %self.name, "the resources left {}; controller stopping", self.name);
                self.exit = true;
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::error!(
            "cannot record that this node leaves cleanly; stopping anyway (it may be fenced)"
        );
        self.exit = true;
    }

    pub(crate) async fn local_tick(&mut self) {
        let now = Instant::now();
        if let Some((since, limit)) = self.shutdown
            && now.duration_since(since) >= limit
        {
            tracing::error!(
                "shutdown-escalation ({} s) passed before the DC moved the resources away: stopping anyway; the cluster will fence this node",
                limit.as_secs()
            );
            self.exit = true;
            return;
        }
        let due: Vec<String> = self
            .damped
            .iter()
            .filter(|(_, (_, t))| *t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for name in due {
            if let Some((value, _)) = self.damped.remove(&name) {
                self.apply_attribute(name, value).await;
            }
        }
        for r in std::mem::take(&mut self.to_forget) {
            match self.execd.forget_resource(&r).await {
                Ok(()) => self.drop_history(&r),
                Err(e) if e.to_string().contains("no operation of") => self.drop_history(&r),
                Err(_) => {
                    self.to_forget.insert(r);
                }
            }
        }
        let unwritten = !self.dirty.is_empty()
            || self.attrs_dirty
            || self.lrm_reset
            || self.expected_dirty.is_some()
            || !self.replies.is_empty();
        if unwritten {
            self.flush().await;
        }
    }
}
