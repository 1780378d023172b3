//! The fencer's loop: bus requests out to the group `fencing`, the group's
//! messages into `vigil-fencer`, its effects out as agent runs, results,
//! signals and journal entries; the CIB's fencing configuration kept
//! current.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use vigil_dbus::fencing::HistoryEntry;
use vigil_dbus::membership::{GroupChannel, GroupEvent};
use vigil_fencer::ops::{Effect, Entry, Fencing, Message, Op, OpId, Outcome};
use zbus::object_server::SignalEmitter;

use crate::config::Config;
use crate::dbus::{self, Command, Job, Manager, Shared, job_path};
use crate::runner::Fenced;

/// The membership group the fencers share.
pub const GROUP: &str = "fencing";
/// The journal's `MESSAGE_ID` of a node fenced (or confirmed down).
pub const MESSAGE_FENCED: &str = "0f5e3c1a8b6d4e2f9a7c5b3d1e0f2a4c";
/// The journal's `MESSAGE_ID` of a fencing operation that failed.
pub const MESSAGE_FENCING_FAILED: &str = "9b2d4f6a8c0e4a1b8d3f5a7c9e1b3d5f";

/// How long a message waits out the membership daemon's flow control.
const SEND_PATIENCE: Duration = Duration::from_secs(30);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A number in [0, 1) for a device's random delay.
fn random() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
        .unwrap_or(0);
    // splitmix64
    let mut z = nanos.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A history entry as the bus carries it.
pub fn wire(e: &Entry) -> HistoryEntry {
    HistoryEntry {
        id: e.id.to_string(),
        target: e.target.clone(),
        action: e.action.clone(),
        origin: e.origin.clone(),
        client: e.client.clone(),
        executioner: e.executioner.clone(),
        devices: e.devices.clone(),
        outcome: e.outcome.as_str().to_string(),
        reason: e.reason.clone(),
        requested_at: e.requested_at,
        completed_at: e.completed_at,
        requests: e.requests,
    }
}

/// Everything the loop owns.
#[derive(Debug)]
pub struct Runtime {
    pub shared: Shared,
    pub bus: zbus::Connection,
    /// This node's name (the membership daemon's, once joined).
    pub node: String,
}

struct State {
    fencing: Fencing,
    /// This node's jobs, by the request they made.
    jobs: BTreeMap<OpId, u32>,
    next_job: u32,
    names: BTreeMap<u32, String>,
}

impl Runtime {
    pub async fn run(self, mut commands: mpsc::UnboundedReceiver<Command>) -> anyhow::Result<()> {
        let (joined_tx, mut joined_rx) = oneshot::channel();
        tokio::spawn(join(self.bus.clone(), joined_tx));
        let (config_tx, mut config_rx) = mpsc::unbounded_channel::<Config>();
        tokio::spawn(watch_cib(self.bus.clone(), config_tx));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Op, Fenced)>();
        let emitter = SignalEmitter::new(&self.bus, dbus::PATH)?.into_owned();
        let mut events: Option<mpsc::UnboundedReceiver<GroupEvent>> = None;
        let mut out: Option<mpsc::UnboundedSender<Vec<u8>>> = None;
        let start = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut st = State {
            fencing: Fencing::new(&self.node, start),
            jobs: BTreeMap::new(),
            next_job: 0,
            names: BTreeMap::new(),
        };
        let mut me = self.node.clone();
        // Fencing asked before this node joined the group waits for it.
        let mut early: Vec<Command> = Vec::new();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                joined = &mut joined_rx, if events.is_none() => {
                    let Ok((group, ev)) = joined else {
                        anyhow::bail!("could not join the membership group {GROUP}");
                    };
                    st.names = node_names(&self.bus).await;
                    if let Some(name) = st.names.get(&group.node()) && *name != me {
                        tracing::info!("this node is {name} in the membership (not {me})");
                        me = name.clone();
                        st.fencing = Fencing::new(&me, start);
                    }
                    let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
                    tokio::spawn(send_loop(group, rx));
                    out = Some(tx);
                    events = Some(ev);
                    vigil_runtime::notify_status("in the fencing group");
                    for cmd in std::mem::take(&mut early) {
                        self.command(cmd, &mut st, out.as_ref(), &me).await;
                    }
                }
                cfg = config_rx.recv() => {
                    if let Some(cfg) = cfg {
                        for p in &cfg.problems {
                            tracing::warn!("{p}");
                        }
                        tracing::info!(devices = cfg.devices.len(), levels = cfg.levels.len(), "fencing configuration read");
                        if let Ok(mut c) = self.shared.config.lock() {
                            *c = Arc::new(cfg);
                        }
                    }
                }
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return Ok(()) };
                    if out.is_none() && matches!(cmd, Command::Fence { .. } | Command::Confirm { .. }) {
                        early.push(cmd);
                    } else {
                        self.command(cmd, &mut st, out.as_ref(), &me).await;
                    }
                }
                ev = next_event(&mut events) => {
                    let Some(ev) = ev else {
                        anyhow::bail!("the membership daemon closed the channel; restarting to join again");
                    };
                    let effects = match ev {
                        GroupEvent::Changed { members, .. } => {
                            st.names = node_names(&self.bus).await;
                            let names: Vec<String> = members
                                .iter()
                                .map(|(n, _)| st.names.get(n).cloned().unwrap_or_else(|| format!("node{n}")))
                                .collect();
                            tracing::debug!(?names, "the group {GROUP} changed");
                            st.fencing.group_changed(names)
                        }
                        GroupEvent::Delivered { payload, from } => match postcard::from_bytes::<Message>(&payload) {
                            Ok(m) => st.fencing.deliver(m),
                            Err(e) => {
                                tracing::warn!(?from, "unreadable fencing message: {e}");
                                Vec::new()
                            }
                        },
                        GroupEvent::Undelivered { payload } => {
                            if let Ok(Message::Request(r)) = postcard::from_bytes::<Message>(&payload) {
                                self.end_job(&mut st, &r.id, &r.target, "failed").await;
                                tracing::warn!(target = %r.target, "a fencing request could not be sent to the cluster (the membership changed); ask again");
                            }
                            Vec::new()
                        }
                    };
                    self.effects(effects, &mut st, out.as_ref(), &done_tx, &emitter).await;
                }
                done = done_rx.recv() => {
                    let Some((op, fenced)) = done else { continue };
                    let msg = Message::Result {
                        op: op.request.id.clone(),
                        executioner: me.clone(),
                        devices: fenced.devices,
                        ok: fenced.ok,
                        reason: fenced.reason,
                        at: now(),
                    };
                    send(out.as_ref(), &msg);
                }
                _ = term.recv() => {
                    tracing::info!("fencer stopping");
                    return Ok(());
                }
            }
        }
    }

    async fn command(
        &self,
        cmd: Command,
        st: &mut State,
        out: Option<&mpsc::UnboundedSender<Vec<u8>>>,
        me: &str,
    ) {
        match cmd {
            Command::Fence {
                target,
                action,
                delay_ms,
                client,
                reply,
            } => {
                if out.is_none() {
                    let _ = reply.send(Err(
                        "this node has not joined the cluster yet (is vigil-membershipd running?)"
                            .into(),
                    ));
                    return;
                }
                let config = self.shared.config();
                let known: Vec<String> = config
                    .nodes
                    .iter()
                    .cloned()
                    .chain(st.names.values().cloned())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if !known.contains(&target) {
                    let _ = reply.send(Err(format!(
                        "unknown node {target:?} (the cluster knows: {})",
                        known.join(", ")
                    )));
                    return;
                }
                let req = st
                    .fencing
                    .request(&target, &action, &client, delay_ms, now());
                st.next_job += 1;
                let id = st.next_job;
                st.jobs.insert(req.id.clone(), id);
                let job = Job {
                    id,
                    target: target.clone(),
                    action: action.clone(),
                };
                let _ = self.bus.object_server().at(job_path(id), job).await;
                tracing::info!(
                    message_id = MESSAGE_FENCED,
                    vigil_node = %target,
                    "fencing of {target} ({action}) asked by {client} on {me}"
                );
                send(out, &Message::Request(req));
                let _ = reply.send(Ok(id));
            }
            Command::Confirm {
                target,
                client,
                reply,
            } => {
                if out.is_none() {
                    let _ = reply.send(Err(
                        "this node has not joined the cluster yet (is vigil-membershipd running?)"
                            .into(),
                    ));
                    return;
                }
                let m = st.fencing.confirm(&target, &client, now());
                send(out, &m);
                let _ = reply.send(Ok(()));
            }
            Command::History { target, reply } => {
                let _ = reply.send(
                    st.fencing
                        .history()
                        .iter()
                        .filter(|e| target.is_empty() || e.target == target)
                        .map(wire)
                        .collect(),
                );
            }
            Command::Pending { reply } => {
                let _ = reply.send(
                    st.fencing
                        .ops()
                        .map(|op| {
                            (
                                op.request.id.to_string(),
                                op.request.target.clone(),
                                op.request.action.clone(),
                                op.request.id.node.clone(),
                                op.executioner.clone(),
                            )
                        })
                        .collect(),
                );
            }
        }
    }

    async fn effects(
        &self,
        effects: Vec<Effect>,
        st: &mut State,
        out: Option<&mpsc::UnboundedSender<Vec<u8>>>,
        done: &mpsc::UnboundedSender<(Op, Fenced)>,
        emitter: &SignalEmitter<'static>,
    ) {
        for e in effects {
            match e {
                Effect::Broadcast(m) => send(out, &m),
                Effect::Execute(op) => {
                    tracing::info!(
                        vigil_node = %op.request.target,
                        "fencing {} ({}) for {} on this node",
                        op.request.target,
                        op.request.action,
                        op.request.id
                    );
                    let config = self.shared.config();
                    let runner = self.shared.runner.clone();
                    let done = done.clone();
                    tokio::spawn(async move {
                        let fenced = runner.execute(&config, &op, random()).await;
                        let _ = done.send((op, fenced));
                    });
                }
                Effect::Finished { entry, requests } => {
                    journal(&entry);
                    let _ = Manager::fenced(emitter, wire(&entry)).await;
                    for r in requests {
                        self.end_job(st, &r.id, &entry.target, entry.outcome.as_str())
                            .await;
                    }
                }
            }
        }
    }

    async fn end_job(&self, st: &mut State, req: &OpId, target: &str, result: &str) {
        let Some(id) = st.jobs.remove(req) else {
            return;
        };
        let path = job_path(id);
        let _ = self.bus.object_server().remove::<Job, _>(&path).await;
        if let Ok(e) = SignalEmitter::new(&self.bus, dbus::PATH) {
            let _ = Manager::job_removed(&e, id, path.as_ref(), target, result).await;
        }
    }
}

fn journal(e: &Entry) {
    let text = format!(
        "{} of {} {}{}{} (asked by {} on {}, run by {}{})",
        e.action,
        e.target,
        match e.outcome {
            Outcome::Done => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Confirmed => "confirmed by hand",
        },
        if e.reason.is_empty() { "" } else { ": " },
        e.reason,
        e.client,
        e.origin,
        if e.executioner.is_empty() {
            "nobody"
        } else {
            &e.executioner
        },
        if e.devices.is_empty() {
            String::new()
        } else {
            format!(" with {}", e.devices.join(", "))
        }
    );
    if e.outcome == Outcome::Failed {
        tracing::warn!(message_id = MESSAGE_FENCING_FAILED, vigil_node = %e.target, "{text}");
    } else {
        tracing::info!(message_id = MESSAGE_FENCED, vigil_node = %e.target, "{text}");
    }
}

fn send(out: Option<&mpsc::UnboundedSender<Vec<u8>>>, m: &Message) {
    let Some(out) = out else { return };
    match postcard::to_allocvec(m) {
        Ok(bytes) => {
            let _ = out.send(bytes);
        }
        Err(e) => tracing::error!("cannot encode a fencing message: {e}"),
    }
}

async fn next_event(
    events: &mut Option<mpsc::UnboundedReceiver<GroupEvent>>,
) -> Option<GroupEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Node names by id, from the membership daemon.
async fn node_names(bus: &zbus::Connection) -> BTreeMap<u32, String> {
    let Ok(m) = vigil_dbus::membership::ManagerProxy::new(bus).await else {
        return BTreeMap::new();
    };
    m.nodes()
        .await
        .map(|nodes| {
            nodes
                .into_iter()
                .map(|(id, name, _, _)| (id, name))
                .collect()
        })
        .unwrap_or_default()
}

async fn join(
    bus: zbus::Connection,
    done: oneshot::Sender<(GroupChannel, mpsc::UnboundedReceiver<GroupEvent>)>,
) {
    let c = GroupChannel::open_when_ready(&bus, GROUP, |e| {
        tracing::warn!(
            "cannot join the membership group {GROUP} ({e}); is vigil-membershipd running? Trying again every second"
        );
        vigil_runtime::notify_status("waiting for vigil-membershipd");
    })
    .await;
    tracing::info!(node = c.0.node(), "joined the membership group {GROUP}");
    let _ = done.send(c);
}

async fn send_loop(group: GroupChannel, mut out: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(first) = out.recv().await {
        let mut batch = vec![first];
        while batch.len() < 64 {
            match out.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        let payloads: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        if let Err(e) = group.send_all(&payloads, SEND_PATIENCE).await {
            tracing::warn!("cannot send to the membership group {GROUP}: {e}");
        }
    }
}

/// Keeps the fencing configuration current: reads the CIB's configuration
/// when the CIB daemon is there and again after each change.
async fn watch_cib(bus: zbus::Connection, tx: mpsc::UnboundedSender<Config>) {
    let mut said = false;
    loop {
        let proxy = match vigil_dbus::cib::ManagerProxy::new(&bus).await {
            Ok(p) => p,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Ok(mut changes) = proxy.receive_changed().await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        // The version first: a change after it is read again below.
        let mut seen = proxy
            .version()
            .await
            .map(|v| (v.0, v.1))
            .unwrap_or_default();
        match proxy.query("", "configuration").await {
            Ok(xml) => match Config::from_xml(&xml) {
                Ok(c) => {
                    said = false;
                    if tx.send(c).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!("cannot read the fencing configuration: {e}"),
            },
            Err(e) => {
                if !said {
                    tracing::warn!(
                        "cannot read the CIB ({e}); is vigil-cibd running? Trying again every second"
                    );
                    said = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        // Read again after each change of the configuration (status
        // updates leave the epoch alone; a burst of changes is read once).
        loop {
            let Some(sig) = changes.next().await else {
                break;
            };
            let mut newest = sig
                .args()
                .map(|a| (a.version.0, a.version.1))
                .unwrap_or_default();
            tokio::time::sleep(Duration::from_millis(100)).await;
            while let Some(Some(sig)) = futures_util::FutureExt::now_or_never(changes.next()) {
                if let Ok(a) = sig.args() {
                    newest = newest.max((a.version.0, a.version.1));
                }
            }
            if newest <= seen {
                continue;
            }
            seen = newest;
            match proxy.query("", "configuration").await {
                Ok(xml) => {
                    if let Ok(c) = Config::from_xml(&xml)
                        && tx.send(c).is_err()
                    {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
    }
}
