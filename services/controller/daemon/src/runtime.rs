//! The controller's loop.
//!
//! Every node: records its executor's results in its `node_state` of the
//! CIB status section, and runs the operations the DC asks of it (through
//! the group `crmd`).
//!
//! The DC (the `crmd` member with the lowest node id): writes every node's
//! membership state and the quorum into the status section, runs the
//! scheduler when the CIB changes (bursts coalesced), and carries the
//! transition out: resource operations on their node's executor, fencing
//! through the fencer, pseudo-actions at once; results and timeouts move
//! it on; a failure, a configuration change or a membership change aborts
//! it and a new one is computed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use tokio::sync::mpsc;
use vigil_cib::xml::{Document, Element};
use vigil_controller::graph::{Graph, Kind};
use vigil_controller::status::{self, OpResult, TransitionKey};
use vigil_controller::transition::{Status, Transition};
use vigil_dbus::executor::OperationRecord;
use vigil_dbus::membership::{GroupChannel, GroupEvent};

use crate::message::{self, Message};

/// The membership group the controllers share.
pub const GROUP: &str = "crmd";
/// The journal's `MESSAGE_ID` of a transition's start and end.
pub const MESSAGE_TRANSITION: &str = "3c8e1f5a7b9d4c2e8f6a0b1d3e5f7a9c";

/// How long after a change the DC waits for more before scheduling.
const SETTLE: Duration = Duration::from_millis(300);
/// How often deadlines and pending work are looked at.
const TICK: Duration = Duration::from_millis(100);

fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Completions of work done in tasks.
#[derive(Debug)]
enum Internal {
    ClusterDone {
        transition: u64,
        action: u32,
        ok: bool,
        reason: String,
        fenced: Option<String>,
    },
}

struct Running {
    id: u64,
    t: Transition,
    started: Instant,
    deadlines: BTreeMap<u32, Instant>,
    cluster_delay: Duration,
}

/// The controller of this node.
pub struct Controller {
    bus: zbus::Connection,
    me: u32,
    name: String,
    uuid: String,
    names: BTreeMap<u32, String>,
    members: BTreeSet<u32>,
    group: GroupChannel,
    cib: vigil_dbus::cib::ManagerProxy<'static>,
    execd: vigil_dbus::executor::ManagerProxy<'static>,
    lrm: Element,
    digests: BTreeMap<(String, String, u64), String>,
    /// Jobs of this node's executor run for a DC: job → (dc, transition,
    /// action).
    pending: BTreeMap<u32, (u32, u64, u32)>,
    running: Option<Running>,
    next_transition: u64,
    wanted: bool,
    settle_until: Option<Instant>,
    config_epoch: (u64, u64),
    internal: mpsc::UnboundedSender<Internal>,
    /// This node's transient attributes (fail counts and last failures).
    attrs: BTreeMap<String, String>,
    /// Whether the DC's record of the membership is in the CIB.
    membership_written: bool,
    /// What the bus shows.
    view: std::sync::Arc<std::sync::Mutex<crate::dbus::View>>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("me", &self.me)
            .field("name", &self.name)
            .finish()
    }
}

async fn node_names(bus: &zbus::Connection) -> BTreeMap<u32, String> {
    let Ok(m) = vigil_dbus::membership::ManagerProxy::new(bus).await else {
        return BTreeMap::new();
    };
    m.nodes()
        .await
        .map(|n| n.into_iter().map(|(id, name, _, _)| (id, name)).collect())
        .unwrap_or_default()
}

/// Runs the controller until the membership daemon goes away.
pub async fn run(
    bus: zbus::Connection,
    node_name: String,
    mut commands: mpsc::UnboundedReceiver<crate::dbus::Command>,
    view: std::sync::Arc<std::sync::Mutex<crate::dbus::View>>,
) -> anyhow::Result<()> {
    let (group, mut events) = GroupChannel::open_when_ready(&bus, GROUP, |e| {
        tracing::warn!("cannot join the membership group {GROUP} ({e}); is vigil-membershipd running? Trying again every second");
        vigil_runtime::notify_status("waiting for vigil-membershipd");
    })
    .await;
    let me = group.node();
    let names = node_names(&bus).await;
    let name = names.get(&me).cloned().unwrap_or(node_name);
    let cib = vigil_dbus::cib::ManagerProxy::builder(&bus)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    let execd = vigil_dbus::executor::ManagerProxy::new(&bus).await?;
    let mut changes = cib.receive_changed().await?;
    let mut completed = execd.receive_operation_completed().await?;
    let (internal, mut internal_rx) = mpsc::unbounded_channel();
    let start = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut c = Controller {
        bus,
        me,
        uuid: format!("{name}-{start}"),
        name,
        names,
        members: BTreeSet::new(),
        group,
        cib,
        execd,
        lrm: Element::new("lrm_resources"),
        digests: BTreeMap::new(),
        pending: BTreeMap::new(),
        running: None,
        next_transition: 0,
        wanted: false,
        settle_until: None,
        config_epoch: (0, 0),
        internal,
        attrs: BTreeMap::new(),
        membership_written: true,
        view,
    };
    if let Ok(mut v) = c.view.lock() {
        v.node = c.name.clone();
    }
    tracing::info!(node = %c.name, id = c.me, "controller joined the group {GROUP}");
    vigil_runtime::notify_status("in the cluster");
    c.load_history().await;
    // Transient attributes start afresh with the node's controller.
    c.write_attrs().await;
    let mut tick = tokio::time::interval(TICK);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else {
                    anyhow::bail!("the membership daemon closed the channel; restarting to join again");
                };
                match ev {
                    GroupEvent::Changed { members, .. } => c.members_changed(members.into_iter().map(|(n, _)| n).collect()).await,
                    GroupEvent::Delivered { payload, .. } => {
                        if let Some(m) = Message::decode(&payload) {
                            c.message(m).await;
                        }
                    }
                    GroupEvent::Undelivered { .. } => {}
                }
            }
            sig = completed.next() => {
                if let Some(sig) = sig && let Ok(a) = sig.args() {
                    c.completed(a.job_id, a.record).await;
                }
            }
            sig = changes.next() => {
                if let Some(sig) = sig && let Ok(a) = sig.args() {
                    c.cib_changed((a.version.0, a.version.1));
                }
            }
            i = internal_rx.recv() => {
                if let Some(Internal::ClusterDone { transition, action, ok, reason, fenced }) = i {
                    if let Some(target) = fenced {
                        c.mark_fenced(&target).await;
                    }
                    c.action_done(transition, action, ok, &reason).await;
                }
            }
            _ = tick.tick() => c.tick().await,
            cmd = commands.recv() => {
                if let Some(crate::dbus::Command::Cleanup { resource, node, reply }) = cmd {
                    let _ = reply.send(c.ask_cleanup(resource, node).await);
                }
            }
            _ = term.recv() => {
                tracing::info!("controller stopping");
                return Ok(());
            }
        }
    }
}

impl Controller {
    fn is_dc(&self) -> bool {
        message::dc(self.members.iter().copied()) == Some(self.me)
    }

    fn node_id(&self, name: &str) -> Option<u32> {
        self.names
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(id, _)| *id)
    }

    /// Rebuilds this node's history from its executor (after a restart of
    /// the controller) and writes it.
    async fn load_history(&mut self) {
        let Ok(resources) = self.execd.list_resources().await else {
            return;
        };
        for r in resources {
            if let Ok((_, _, ops, failure, _)) = self.execd.get_resource(&r).await {
                for rec in ops.into_iter().chain(failure) {
                    let res = self.op_result(&rec);
                    status::record(&mut self.lrm, &res);
                }
            }
        }
        self.write_lrm().await;
    }

    fn op_result(&self, rec: &OperationRecord) -> OpResult {
        let mut parts = rec.agent.splitn(3, ':');
        let class = parts.next().unwrap_or_default().to_string();
        let (provider, kind) = match (parts.next(), parts.next()) {
            (Some(p), Some(t)) => (Some(p.to_string()), t.to_string()),
            (Some(t), None) => (None, t.to_string()),
            _ => (None, String::new()),
        };
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
            call_id: rec.call_id,
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

    /// Writes this node's history into its `node_state` (one version step).
    async fn write_lrm(&self) {
        let id = self.me.to_string();
        let mut ns = Element::new("node_state");
        ns.set_attr("id", id.clone());
        ns.set_attr("uname", self.name.clone());
        let mut lrm = Element::new("lrm");
        lrm.set_attr("id", id.clone());
        lrm.push(self.lrm.clone());
        ns.push(lrm);
        self.put_node_state(&ns, "lrm", "this node's operation history")
            .await;
    }

    async fn completed(&mut self, job: u32, rec: OperationRecord) {
        let res = self.op_result(&rec);
        status::record(&mut self.lrm, &res);
        self.write_lrm().await;
        if rec.failed {
            self.count_failure(&rec).await;
        }
        if let Some((dc, transition, action)) = self.pending.remove(&job) {
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
            self.reply(dc, transition, action, !rec.failed, reason)
                .await;
        }
    }

    /// An operator's cleanup: checked here, then sent to every controller.
    async fn ask_cleanup(&mut self, resource: String, node: String) -> Result<(), String> {
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
        self.send(&Message::Cleanup { resource, node }).await;
        Ok(())
    }

    /// Forgets a resource here: its recurring operations are cancelled,
    /// its executor history, CIB history and fail counts go.
    async fn cleanup_here(&mut self, resource: &str) {
        let recurring: Vec<(String, u64)> = self
            .lrm
            .elements()
            .filter(|e| e.attr("id") == Some(resource))
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
        // A run in progress ends first.
        for _ in 0..50 {
            match self.execd.forget_resource(resource).await {
                Ok(()) => break,
                Err(e) if e.to_string().contains("no operation of") => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        self.lrm.children.retain(|n| match n {
            vigil_cib::xml::Node::Element(e) => e.attr("id") != Some(resource),
            _ => true,
        });
        self.digests.retain(|(r, _, _), _| r != resource);
        let prefixes = [
            format!("fail-count-{resource}#"),
            format!("last-failure-{resource}#"),
        ];
        self.attrs
            .retain(|k, _| !prefixes.iter().any(|p| k.starts_with(p)));
        tracing::info!(vigil_resource = %resource, vigil_node = %self.name, "{resource} cleaned up on {}", self.name);
        self.write_lrm().await;
        self.write_attrs().await;
    }

    /// A failed operation: its fail count goes up (a failed start's to
    /// INFINITY: start failures are fatal by default) and its last failure
    /// is now, as the scheduler reads them from the node's transient
    /// attributes.
    async fn count_failure(&mut self, rec: &OperationRecord) {
        let key = format!("{}#{}_{}", rec.resource, rec.action, rec.interval_ms);
        let name = format!("fail-count-{key}");
        let old: i64 = self
            .attrs
            .get(&name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let new = if rec.action == "start" {
            1_000_000
        } else {
            (old + 1).min(1_000_000)
        };
        self.attrs.insert(name, new.to_string());
        self.attrs
            .insert(format!("last-failure-{key}"), now_epoch().to_string());
        tracing::warn!(
            vigil_resource = %rec.resource,
            vigil_node = %self.name,
            "{} of {} failed on {}: fail count {new}",
            rec.action,
            rec.resource,
            self.name
        );
        self.write_attrs().await;
    }

    /// Writes this node's transient attributes (one version step).
    async fn write_attrs(&self) {
        let id = self.me.to_string();
        let mut set = Element::new("instance_attributes");
        set.set_attr("id", format!("status-{id}"));
        for (k, v) in &self.attrs {
            let mut nv = Element::new("nvpair");
            let safe: String = k
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                        c
                    } else {
                        '.'
                    }
                })
                .collect();
            nv.set_attr("id", format!("status-{id}-{safe}"));
            nv.set_attr("name", k.clone());
            nv.set_attr("value", v.clone());
            set.push(nv);
        }
        let mut ta = Element::new("transient_attributes");
        ta.set_attr("id", id.clone());
        ta.push(set);
        let mut ns = Element::new("node_state");
        ns.set_attr("id", id.clone());
        ns.set_attr("uname", self.name.clone());
        ns.push(ta);
        self.put_node_state(&ns, "transient_attributes", "this node's attributes")
            .await;
    }

    async fn reply(&mut self, dc: u32, transition: u64, action: u32, ok: bool, reason: String) {
        if dc == self.me {
            self.action_done(transition, action, ok, &reason).await;
        } else {
            self.send(&Message::Result {
                to: dc,
                from: self.me,
                transition,
                action,
                ok,
                reason,
            })
            .await;
        }
    }

    async fn send(&self, m: &Message) {
        if let Err(e) = self
            .group
            .send_all(&[&m.encode()], Duration::from_secs(10))
            .await
        {
            tracing::warn!("cannot send to the group {GROUP}: {e}");
        }
    }

    async fn message(&mut self, m: Message) {
        match m {
            Message::Execute { to, .. } if to != self.me => {}
            Message::Execute {
                transition,
                action,
                resource,
                agent,
                operation,
                interval_ms,
                timeout_ms,
                params,
                meta,
                target_rc,
                key,
                ..
            } => {
                let dc = message::dc(self.members.iter().copied()).unwrap_or(self.me);
                self.execute_here(
                    dc,
                    transition,
                    action,
                    &resource,
                    &agent,
                    &operation,
                    interval_ms,
                    timeout_ms,
                    params,
                    meta,
                    target_rc,
                    key,
                )
                .await;
            }
            Message::Result {
                to,
                transition,
                action,
                ok,
                reason,
                ..
            } if to == self.me => self.action_done(transition, action, ok, &reason).await,
            Message::Result { .. } => {}
            Message::Cleanup { resource, node } => {
                if node.is_empty() || node == self.name {
                    self.cleanup_here(&resource).await;
                }
            }
        }
    }

    /// Runs one resource operation on this node's executor for the DC.
    #[allow(clippy::too_many_arguments)]
    async fn execute_here(
        &mut self,
        dc: u32,
        transition: u64,
        action: u32,
        resource: &str,
        agent: &str,
        operation: &str,
        interval_ms: u64,
        timeout_ms: u64,
        params: BTreeMap<String, String>,
        meta: BTreeMap<String, String>,
        target_rc: i32,
        key: String,
    ) {
        match operation {
            "cancel" => {
                let op = meta
                    .get("operation")
                    .cloned()
                    .unwrap_or_else(|| "monitor".into());
                // Nothing to cancel is fine: it is not running.
                let _ = self.execd.cancel(resource, &op, interval_ms).await;
                self.reply(dc, transition, action, true, String::new())
                    .await;
                return;
            }
            "delete" | "lrm_delete" | "clear_failcount" => {
                self.reply(dc, transition, action, true, String::new())
                    .await;
                return;
            }
            _ => {}
        }
        let fencing = agent.starts_with("stonith:");
        self.digests.insert(
            (resource.to_string(), operation.to_string(), interval_ms),
            status::op_digest(&params, interval_ms, timeout_ms, fencing),
        );
        let p: HashMap<&str, &str> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let m: HashMap<&str, &str> = meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let options = HashMap::from([
            ("expected-rc", zbus::Variant::from(target_rc)),
            ("user-data", zbus::Variant::from(key.as_str())),
        ]);
        match self
            .execd
            .execute(
                resource,
                agent,
                operation,
                interval_ms,
                timeout_ms,
                p,
                m,
                options,
            )
            .await
        {
            Ok((job, _)) => {
                self.pending.insert(job, (dc, transition, action));
            }
            Err(e) => {
                self.reply(
                    dc,
                    transition,
                    action,
                    false,
                    format!("the executor refused it: {e}"),
                )
                .await;
            }
        }
    }

    async fn members_changed(&mut self, members: BTreeSet<u32>) {
        self.names = node_names(&self.bus).await;
        self.members = members;
        let dc = message::dc(self.members.iter().copied());
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
        // held still for the settling time (checked in `tick`).
        self.membership_written = false;
        self.want();
        if self.is_dc() {
            vigil_runtime::notify_status("DC");
        }
    }

    /// The DC's record of who is in the cluster, and of the quorum.
    /// The DC's record of who is in the cluster, and of the quorum: every
    /// node with a controller online, every other node of the membership
    /// there but its controller not (pending), every node the status
    /// section still shows but that is gone, offline (with its history
    /// kept: the scheduler then sees it unclean and has it fenced). Returns whether it was
    /// written (the DC tries again on the next tick when not).
    async fn write_membership(&self) -> bool {
        let shown_online: BTreeSet<String> = match self
            .cib
            .query("//node_state[@in_ccm='true' or @crmd='online']", "")
            .await
        {
            Ok(xml) => Document::parse(&format!("<r>{xml}</r>"))
                .map(|d| {
                    d.root
                        .descendants()
                        .filter(|e| e.name == "node_state")
                        .filter_map(|e| e.attr("id").map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            // Nothing matches: nobody is shown online.
            Err(_) => BTreeSet::new(),
        };
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
            // A node whose controller has not joined yet is pending (no
            // join or expected state written for it); one whose
            // controller was there and went keeps "expected member", so
            // the scheduler has it fenced.
            if online {
                ns.set_attr("join", "member");
                ns.set_attr("expected", "member");
            }
            ns.set_attr("crm-debug-origin", "vigil-controld");
            states.push(ns.to_xml());
        }
        let mut batch: Vec<(&str, &str, &str, bool)> = states
            .iter()
            .map(|s| ("modify", "status", s.as_str(), true))
            .collect();
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

    fn want(&mut self) {
        self.wanted = true;
        self.settle_until = Some(Instant::now() + SETTLE);
    }

    fn cib_changed(&mut self, version: (u64, u64)) {
        if !self.is_dc() {
            return;
        }
        let config_changed = version > self.config_epoch && self.config_epoch != (0, 0);
        self.config_epoch = self.config_epoch.max(version);
        if config_changed && let Some(r) = self.running.as_mut() {
            r.t.abort("the configuration changed");
        }
        self.want();
    }

    async fn tick(&mut self) {
        // Actions past their deadline have failed.
        let now = Instant::now();
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
            self.action_done(
                t,
                a,
                false,
                "no result in time (the operation's timeout and cluster-delay passed)",
            )
            .await;
        }
        self.finish_if_done();
        if self.is_dc() && !self.membership_written && self.settle_until.is_none_or(|t| t <= now) {
            self.membership_written = self.write_membership().await;
        }
        if self.is_dc()
            && self.membership_written
            && self.running.is_none()
            && self.wanted
            && self.settle_until.is_none_or(|t| t <= now)
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
        match &status {
            Status::Complete => tracing::info!(
                message_id = MESSAGE_TRANSITION,
                vigil_transition = r.id,
                "transition {} complete in {} ms",
                r.id,
                took.as_millis()
            ),
            Status::Aborted(why) => {
                tracing::info!(
                    message_id = MESSAGE_TRANSITION,
                    vigil_transition = r.id,
                    "transition {} aborted after {} ms: {why}",
                    r.id,
                    took.as_millis()
                );
                self.want();
            }
            Status::Stalled(left) => {
                tracing::error!(
                    message_id = MESSAGE_TRANSITION,
                    vigil_transition = r.id,
                    "transition {} stalled with actions {left:?} left",
                    r.id
                );
                self.want();
            }
            Status::Running => {}
        }
        self.running = None;
    }

    /// Runs the scheduler on the CIB and starts its transition.
    async fn compute(&mut self) {
        let xml = match self.cib.query("", "").await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("cannot read the CIB to schedule: {e}");
                self.want();
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
        let scheduled = std::panic::catch_unwind(|| {
            let s = vigil_scheduler::Scheduler::run(
                &doc,
                &vigil_scheduler::Options {
                    now: Some(now_epoch()),
                },
            );
            (s.transition_summary(), s.graph_xml())
        });
        let Ok((summary, graph_xml)) = scheduled else {
            tracing::error!("the scheduler failed on this CIB; waiting for the next change");
            return;
        };
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
            "transition {id}: {} actions, computed in {} ms{}",
            graph.actions.len(),
            started.elapsed().as_millis(),
            if summary.is_empty() {
                String::new()
            } else {
                format!("; {}", summary.join("; "))
            }
        );
        let cluster_delay = Duration::from_millis(graph.cluster_delay_ms);
        let (t, first) = Transition::start(graph, 0);
        self.running = Some(Running {
            id,
            t,
            started: Instant::now(),
            deadlines: BTreeMap::new(),
            cluster_delay,
        });
        self.dispatch(first).await;
        self.finish_if_done();
    }

    async fn action_done(&mut self, transition: u64, action: u32, ok: bool, reason: &str) {
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
            r.deadlines
                .insert(a, Instant::now() + timeout + r.cluster_delay);
            match act.kind {
                Kind::Pseudo => {}
                Kind::Cluster => self.cluster_action(id, &act),
                Kind::Rsc => {
                    let Some(rsc) = &act.resource else { continue };
                    let node = act.node.clone().unwrap_or_default();
                    let Some(to) = self.node_id(&node) else {
                        self.action_done(id, a, false, &format!("unknown node {node}"))
                            .await;
                        continue;
                    };
                    let agent = match &rsc.provider {
                        Some(p) => format!("{}:{p}:{}", rsc.class, rsc.kind),
                        None => format!("{}:{}", rsc.class, rsc.kind),
                    };
                    let key = TransitionKey {
                        action: a,
                        transition: id,
                        target_rc: act.target_rc(),
                        uuid: self.uuid.clone(),
                    }
                    .to_string();
                    let resource = rsc.long_id.clone().unwrap_or_else(|| rsc.id.clone());
                    let interval_ms = act.interval_ms();
                    let timeout_ms = act.timeout_ms().unwrap_or(20_000);
                    let msg = Message::Execute {
                        to,
                        transition: id,
                        action: a,
                        resource: resource.clone(),
                        agent: agent.clone(),
                        operation: act.operation.clone(),
                        interval_ms,
                        timeout_ms,
                        params: act.params(),
                        meta: act.metas(),
                        target_rc: act.target_rc(),
                        key: key.clone(),
                    };
                    if to == self.me {
                        (self.execute_here(
                            self.me,
                            id,
                            a,
                            &resource,
                            &agent,
                            &act.operation,
                            interval_ms,
                            timeout_ms,
                            act.params(),
                            act.metas(),
                            act.target_rc(),
                            key,
                        ))
                        .await;
                    } else {
                        self.send(&msg).await;
                    }
                }
            }
        }
    }

    /// Fencing (through the fencer) and the other cluster actions.
    fn cluster_action(&self, transition: u64, act: &vigil_controller::graph::Action) {
        let tx = self.internal.clone();
        let action = act.id;
        match act.operation.as_str() {
            "stonith" => {
                let target = act.node.clone().unwrap_or_default();
                let how = act.meta("stonith_action").unwrap_or("reboot").to_string();
                // priority-fencing-delay, as the scheduler settled it.
                let delay_ms = act
                    .meta("priority_fencing_delay")
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0)
                    * 1000;
                let bus = self.bus.clone();
                tokio::spawn(async move {
                    let (ok, reason) = fence(&bus, &target, &how, delay_ms).await;
                    let _ = tx.send(Internal::ClusterDone {
                        transition,
                        action,
                        ok,
                        reason,
                        fenced: ok.then_some(target),
                    });
                });
            }
            other => {
                // Shutdown and the like need nothing of the fencer; they
                // are done once ordered (a node's clean shutdown is the
                // node's own, after its resources left).
                tracing::debug!("cluster action {other} needs nothing here");
                let _ = tx.send(Internal::ClusterDone {
                    transition,
                    action,
                    ok: true,
                    reason: String::new(),
                    fenced: None,
                });
            }
        }
    }

    /// Writes `ns` (a `node_state`) into the status section, its `part`
    /// (`lrm`, `transient_attributes`) replacing what was there, in one
    /// version step; `what` names it in a warning when that fails.
    async fn put_node_state(&self, ns: &Element, part: &str, what: &str) {
        let id = ns.attr("id").unwrap_or_default();
        let xpath = format!("/cib/status/node_state[@id='{id}']/{part}");
        let xml = ns.to_xml();
        let batch = [
            ("delete-xpath", "", xpath.as_str(), true),
            ("modify", "status", xml.as_str(), true),
        ];
        if let Err(e) = self.cib.batch(&batch).await {
            tracing::warn!("cannot record {what} in the CIB: {e}");
        }
    }

    /// After fencing: the node is down and runs nothing.
    async fn mark_fenced(&self, target: &str) {
        let Some(id) = self.node_id(target) else {
            return;
        };
        let mut ns = status::node_state(&id.to_string(), target, false);
        ns.set_attr("crm-debug-origin", "vigil-controld-fenced");
        self.put_node_state(&ns, "lrm", &format!("that {target} was fenced"))
            .await;
    }
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
