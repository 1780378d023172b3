//! The controller's loop.
//!
//! Every node ([`crate::local`]): records its executor's results in its
//! `node_state` of the CIB status section, runs the operations the DC asks
//! of it (through the group `crmd`), keeps its transient attributes, and
//! shuts down cleanly (its resources leave first).
//!
//! The DC ([`crate::dc`], the `crmd` member with the lowest node id):
//! writes every node's membership state and the quorum into the status
//! section, runs the scheduler when the CIB changes (bursts coalesced, and
//! again when the scheduler says its answer will change), and carries the
//! transition out: resource operations on their node's executor, fencing
//! through the fencer, pseudo-actions at once; results and timeouts move
//! it on; a failure, a configuration change, an unexpected result or a
//! membership change aborts it and a new one is computed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use tokio::sync::mpsc;
use vigil_cib::xml::Element;
use vigil_controller::transition::Transition;
use vigil_dbus::membership::{GroupChannel, GroupEvent};

use crate::message::{self, Message, Version};

/// The membership group the controllers share.
pub const GROUP: &str = "crmd";
/// The journal's `MESSAGE_ID` of a transition's start and end.
pub const MESSAGE_TRANSITION: &str = "3c8e1f5a7b9d4c2e8f6a0b1d3e5f7a9c";

/// How often deadlines and pending work are looked at.
pub(crate) const TICK: Duration = Duration::from_millis(100);

pub fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Completions of work done in tasks or queued to the loop.
#[derive(Debug)]
pub(crate) enum Internal {
    /// A fencing (or other cluster) action ended.
    ClusterDone {
        transition: u64,
        action: u32,
        ok: bool,
        reason: String,
        /// The target and action of a fencing that succeeded.
        fenced: Option<(String, String)>,
    },
    /// This node's result of an action its own DC role asked for.
    LocalResult {
        key: String,
        ok: bool,
        reason: String,
    },
}

/// A transition being carried out (DC).
pub(crate) struct Running {
    pub id: u64,
    pub t: Transition,
    pub started: Instant,
    pub deadlines: BTreeMap<u32, Instant>,
    pub cluster_delay: Duration,
    /// Whether an action of it failed.
    pub failed: bool,
}

/// A result that waits until this node's copy of the CIB has its write
/// (DC).
#[derive(Debug)]
pub(crate) struct Awaiting {
    pub version: Version,
    pub since: Instant,
    pub key: String,
    pub ok: bool,
    pub reason: String,
}

/// A result owed to a DC, sent once its history is in the CIB (node).
#[derive(Debug)]
pub(crate) struct Reply {
    pub dc: u32,
    pub key: String,
    pub ok: bool,
    pub reason: String,
}

/// The controller of this node.
pub struct Controller {
    pub(crate) bus: zbus::Connection,
    pub(crate) me: u32,
    pub(crate) name: String,
    /// This controller process's identity in transition keys.
    pub(crate) uuid: String,
    pub(crate) names: BTreeMap<u32, String>,
    pub(crate) members: BTreeSet<u32>,
    pub(crate) group: GroupChannel,
    pub(crate) cib: vigil_dbus::cib::ManagerProxy<'static>,
    pub(crate) execd: vigil_dbus::executor::ManagerProxy<'static>,
    pub(crate) internal: mpsc::UnboundedSender<Internal>,
    /// What the bus shows.
    pub(crate) view: std::sync::Arc<std::sync::Mutex<crate::dbus::View>>,
    /// The newest CIB version this node's replica is known to have.
    pub(crate) cib_version: Version,

    // This node's part.
    /// This node's operation history (`lrm_resources`).
    pub(crate) lrm: Element,
    /// The digest of each operation's parameters, recorded with it.
    pub(crate) digests: BTreeMap<(String, String, u64), String>,
    /// Executor jobs run for a DC: job → (DC node, transition key).
    pub(crate) asked: BTreeMap<u32, (u32, String)>,
    /// Resources whose history must be (re)written to the CIB.
    pub(crate) dirty: BTreeSet<String>,
    /// The whole history must be written (at start).
    pub(crate) lrm_reset: bool,
    /// This node's transient attributes (fail counts, last failures,
    /// `shutdown`, and those set through the bus).
    pub(crate) attrs: BTreeMap<String, String>,
    pub(crate) attrs_dirty: bool,
    /// The node's own `expected` state to write (member at start, down
    /// when it leaves cleanly).
    pub(crate) expected_dirty: Option<&'static str>,
    /// Results owed to DCs, sent after the next successful write.
    pub(crate) replies: Vec<Reply>,
    /// Failed writes in a row (for the log).
    pub(crate) write_failures: u32,
    /// Resources the executor could not forget yet (an operation ran).
    pub(crate) to_forget: BTreeSet<String>,
    /// When this node was asked to shut down, and how long it may take
    /// before the controller stops anyway (`shutdown-escalation`).
    pub(crate) shutdown: Option<(Instant, Duration)>,
    /// The loop ends after the event at hand.
    pub(crate) exit: bool,
    /// Attribute changes waiting out their dampening: name → (value,
    /// when to write).
    pub(crate) damped: BTreeMap<String, (Option<String>, Instant)>,

    // The DC's part.
    pub(crate) running: Option<Running>,
    pub(crate) next_transition: u64,
    pub(crate) wanted: bool,
    /// What asked for the next schedule (journaled with it).
    pub(crate) trigger: Vec<String>,
    pub(crate) settle_until: Option<Instant>,
    pub(crate) config_epoch: (u64, u64),
    /// Results from other nodes waiting for this replica to catch up.
    pub(crate) awaiting: Vec<Awaiting>,
    /// Whether the DC's record of the membership is in the CIB.
    pub(crate) membership_written: bool,
    /// When to schedule again with nothing changed (the recheck interval,
    /// or when the scheduler's answer will change).
    pub(crate) recheck_at: Option<Instant>,
    /// Transitions in a row that ended with a failed action, and when the
    /// last ended: past a few, scheduling waits (a fault that no history
    /// records would otherwise make the same graph fail again and again).
    pub(crate) failed_in_row: u32,
    pub(crate) last_end: Instant,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("me", &self.me)
            .field("name", &self.name)
            .finish()
    }
}

pub(crate) async fn node_names(bus: &zbus::Connection) -> BTreeMap<u32, String> {
    let Ok(m) = vigil_dbus::membership::ManagerProxy::new(bus).await else {
        return BTreeMap::new();
    };
    m.nodes()
        .await
        .map(|n| n.into_iter().map(|(id, name, _, _)| (id, name)).collect())
        .unwrap_or_default()
}

/// Runs the controller until it is told to stop (and its resources have
/// left), or the membership daemon goes away.
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
    let cib_version = cib.version().await.unwrap_or((0, 0, 0));
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
        internal,
        view,
        cib_version,
        lrm: Element::new("lrm_resources"),
        digests: BTreeMap::new(),
        asked: BTreeMap::new(),
        dirty: BTreeSet::new(),
        lrm_reset: true,
        attrs: BTreeMap::new(),
        attrs_dirty: true,
        expected_dirty: Some("member"),
        replies: Vec::new(),
        write_failures: 0,
        to_forget: BTreeSet::new(),
        shutdown: None,
        exit: false,
        damped: BTreeMap::new(),
        running: None,
        next_transition: 0,
        wanted: false,
        trigger: Vec::new(),
        settle_until: None,
        config_epoch: (0, 0),
        awaiting: Vec::new(),
        membership_written: true,
        recheck_at: None,
        failed_in_row: 0,
        last_end: Instant::now(),
    };
    if let Ok(mut v) = c.view.lock() {
        v.node = c.name.clone();
    }
    tracing::info!(node = %c.name, id = c.me, "controller joined the group {GROUP}");
    vigil_runtime::notify_status("in the cluster");
    // The history from the executor, transient attributes afresh (they
    // start with the node's controller), and "expected member".
    c.load_history().await;
    let mut tick = tokio::time::interval(TICK);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
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
                    c.cib_changed(a.version).await;
                }
            }
            i = internal_rx.recv() => {
                match i {
                    Some(Internal::ClusterDone { transition, action, ok, reason, fenced }) => {
                                                if let Some((target, how)) = fenced {
                            c.fenced(&target, &how).await;
                        }
                        c.action_done(transition, action, ok, &reason).await;
                    }
                    Some(Internal::LocalResult { key, ok, reason }) => c.result(&key, ok, &reason).await,
                    None => {}
                }
            }
            _ = tick.tick() => c.tick().await,
            cmd = commands.recv() => {
                if let Some(cmd) = cmd {
                    c.command(cmd).await;
                }
            }
            _ = term.recv() => c.begin_shutdown("SIGTERM").await,
            _ = int.recv() => c.begin_shutdown("SIGINT").await,
        }
        if c.exit {
            tracing::info!("controller stopped");
            return Ok(());
        }
    }
}

impl Controller {
    pub(crate) fn dc(&self) -> Option<u32> {
        message::dc(self.members.iter().copied())
    }

    pub(crate) fn is_dc(&self) -> bool {
        self.dc() == Some(self.me)
    }

    pub(crate) fn node_id(&self, name: &str) -> Option<u32> {
        self.names
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(id, _)| *id)
    }

    /// Sends `m` to the group: whether it went.
    pub(crate) async fn send(&self, m: &Message) -> bool {
        match self
            .group
            .send_all(&[&m.encode()], Duration::from_secs(10))
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!("cannot send to the group {GROUP}: {e}");
                false
            }
        }
    }

    async fn message(&mut self, m: Message) {
        match m {
            Message::Execute { to, .. } if to != self.me => {}
            Message::Execute { from, op, .. } => self.execute_here(from, op).await,
            Message::Result {
                to,
                key,
                ok,
                reason,
                version,
                ..
            } if to == self.me => {
                if version <= self.cib_version {
                    self.result(&key, ok, &reason).await;
                } else {
                    self.awaiting.push(Awaiting {
                        version,
                        since: Instant::now(),
                        key,
                        ok,
                        reason,
                    });
                }
            }
            Message::Result { .. } => {}
            Message::Shutdown { to, from, key } if to == self.me => {
                self.shutdown_now(from, key).await;
            }
            Message::Shutdown { .. } => {}
            Message::Unexpected {
                from,
                resource,
                operation,
                reason,
            } => {
                if self.is_dc() {
                    let node = self.names.get(&from).cloned().unwrap_or_default();
                    let what = format!("{operation} of {resource} failed on {node}: {reason}");
                    if let Some(r) = self.running.as_mut() {
                        r.t.abort(&what);
                    }
                    self.want(what);
                }
            }
            Message::Attribute {
                node,
                name,
                value,
                dampen_ms,
            } => {
                if node == self.name {
                    self.set_attribute(name, value, dampen_ms).await;
                }
            }
            Message::Cleanup { resource, node } => {
                if self.is_dc()
                    && let Some(r) = self.running.as_mut()
                {
                    r.t.abort(&format!("the history of {resource} was cleaned up"));
                }
                if node.is_empty() || node == self.name {
                    self.cleanup_here(&resource).await;
                }
            }
        }
    }

    async fn command(&mut self, cmd: crate::dbus::Command) {
        use crate::dbus::Command;
        match cmd {
            Command::Cleanup {
                resource,
                node,
                reply,
            } => {
                let _ = reply.send(self.ask_cleanup(resource, node).await);
            }
            Command::SetAttribute {
                node,
                name,
                value,
                dampen_ms,
                reply,
            } => {
                let _ = reply.send(self.ask_attribute(node, name, value, dampen_ms).await);
            }
            Command::Attributes { reply } => {
                let _ = reply.send(self.attrs.clone());
            }
        }
    }

    async fn tick(&mut self) {
        self.local_tick().await;
        self.dc_tick().await;
    }
}
