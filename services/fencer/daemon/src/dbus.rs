//! `org.vigil.fencing1` on the bus: fence a node (a job), confirm a node
//! is down, the cluster-wide fence history, the devices and which nodes
//! they can fence.
//!
//! Who may call what: the bus policy admits root and group `haclient`;
//! reads are open to them; fencing, confirming and running a device's
//! monitor need root or polkit's `org.vigil.fencing1.fence`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use vigil_dbus::fencing::{DeviceWire, HistoryEntry, JOB_PATH_PREFIX, PendingWire};
use vigil_fencer::device::FENCE_ACTIONS;
use vigil_runtime::auth::Callers;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{ObjectPath, OwnedObjectPath, OwnedVariant, fdo, interface};

use crate::config::Config;
use crate::runner::Runner;

pub use vigil_dbus::fencing::{NAME, PATH};

/// The polkit action that allows fencing.
pub const FENCE_ACTION: &str = "org.vigil.fencing1.fence";

/// A request from the bus to the loop.
#[derive(Debug)]
pub enum Command {
    Fence {
        target: String,
        action: String,
        delay_ms: u64,
        client: String,
        reply: oneshot::Sender<Result<u32, String>>,
    },
    Confirm {
        target: String,
        client: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    History {
        target: String,
        reply: oneshot::Sender<Vec<HistoryEntry>>,
    },
    Pending {
        reply: oneshot::Sender<Vec<PendingWire>>,
    },
}

/// What the interface shares with the loop.
#[derive(Debug, Clone)]
pub struct Shared {
    pub commands: mpsc::UnboundedSender<Command>,
    pub config: Arc<Mutex<Arc<Config>>>,
    pub runner: Arc<Runner>,
    pub callers: Arc<Callers>,
}

impl Shared {
    pub fn config(&self) -> Arc<Config> {
        self.config.lock().map(|c| c.clone()).unwrap_or_default()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> fdo::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| stopping())?;
        rx.await.map_err(|_| stopping())
    }

    /// The caller, in words for the history, if it may fence.
    async fn fencer(&self, header: &Header<'_>, bus: &zbus::Connection) -> fdo::Result<String> {
        let c = self
            .callers
            .authorized(header, bus, FENCE_ACTION, "fence nodes")
            .await?;
        Ok(if c.name.is_empty() {
            c.user
        } else {
            format!("{} ({})", c.user, c.name)
        })
    }
}

fn stopping() -> fdo::Error {
    fdo::Error::Failed("the fencer is stopping".into())
}

/// A job's object path.
pub fn job_path(id: u32) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!("{JOB_PATH_PREFIX}{id}")).expect("a valid object path")
}

/// `org.vigil.fencing1.Manager`.
#[derive(Debug)]
pub struct Manager {
    pub shared: Shared,
}

#[interface(name = "org.vigil.fencing1.Manager")]
impl Manager {
    /// Fences `target` with `action` (`off`, `reboot` or `on`, the last to
    /// unfence): one operation per target at a time across the cluster,
    /// whoever asks; a request for the same target and action as one under
    /// way joins it. `options`: `delay-ms` (t), a wait before fencing.
    /// Returns the job at once; `JobRemoved` reports its end (`done`,
    /// `failed`, `confirmed`) and `Fenced` the history entry, on every
    /// node.
    #[zbus(out_args("id", "job"))]
    async fn fence(
        &self,
        target: String,
        action: String,
        options: HashMap<String, OwnedVariant>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<(u32, OwnedObjectPath)> {
        let client = self.shared.fencer(&header, bus).await?;
        if !FENCE_ACTIONS.contains(&action.as_str()) {
            return Err(fdo::Error::InvalidArgs(format!(
                "unknown fencing action {action:?} (expected off, reboot or on)"
            )));
        }
        let mut delay_ms = 0;
        for (k, v) in options {
            match k.as_str() {
                "delay-ms" => {
                    delay_ms = u64::try_from(&v).map_err(|_| {
                        fdo::Error::InvalidArgs(
                            "the option \"delay-ms\" must be a uint64 (t)".into(),
                        )
                    })?;
                }
                other => {
                    return Err(fdo::Error::InvalidArgs(format!(
                        "unknown option {other:?} (known: delay-ms)"
                    )));
                }
            }
        }
        let id = self
            .shared
            .ask(|reply| Command::Fence {
                target,
                action,
                delay_ms,
                client,
                reply,
            })
            .await?
            .map_err(fdo::Error::InvalidArgs)?;
        Ok((id, job_path(id)))
    }

    /// Records that `target` is down, as an operator checked by hand
    /// (pending fencing of it ends as confirmed). Only when it is certain:
    /// the cluster then recovers the node's resources elsewhere.
    async fn confirm(
        &self,
        target: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<()> {
        let client = self.shared.fencer(&header, bus).await?;
        self.shared
            .ask(|reply| Command::Confirm {
                target,
                client,
                reply,
            })
            .await?
            .map_err(fdo::Error::InvalidArgs)
    }

    /// The fence history, oldest first (of `target`, or of all nodes when
    /// it is empty), the same on every node.
    async fn history(&self, target: String) -> fdo::Result<Vec<HistoryEntry>> {
        self.shared
            .ask(|reply| Command::History { target, reply })
            .await
    }

    /// Operations under way or queued: (id, target, action, origin,
    /// executioner).
    async fn pending(&self) -> fdo::Result<Vec<PendingWire>> {
        self.shared.ask(|reply| Command::Pending { reply }).await
    }

    /// The fence devices: (id, agent, pcmk_host_check as configured or
    /// `default`, the nodes pcmk_host_list/pcmk_host_map name, enabled).
    async fn devices(&self) -> Vec<DeviceWire> {
        self.shared
            .config()
            .devices
            .iter()
            .map(|d| {
                let mut targets: Vec<String> = d.host_list.clone();
                targets.extend(d.host_map.keys().cloned());
                (
                    d.id.clone(),
                    d.agent.clone(),
                    d.host_check
                        .map(|c| c.as_str())
                        .unwrap_or("default")
                        .to_string(),
                    targets,
                    d.enabled,
                )
            })
            .collect()
    }

    /// The devices that can fence `target` (asking the devices whose
    /// configuration does not say).
    async fn devices_for(&self, target: String) -> Vec<String> {
        let config = self.shared.config();
        self.shared.runner.devices_for(&config, &target).await
    }

    /// Runs a device's monitor: (OCF rc, reason). The executor reports a
    /// stonith resource's monitor with this.
    #[zbus(out_args("rc", "reason"))]
    async fn monitor_device(
        &self,
        device: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<(i32, String)> {
        self.shared.fencer(&header, bus).await?;
        let config = self.shared.config();
        let Some(d) = config.device(&device) else {
            return Err(fdo::Error::InvalidArgs(format!(
                "no fence device {device:?} in the CIB"
            )));
        };
        Ok(self.shared.runner.monitor(d).await)
    }

    /// Checks a device's configuration: (OCF rc of the agent's
    /// validate-all, 0 when it has none; its reason; problems of the
    /// parameters against the agent's metadata).
    #[zbus(out_args("rc", "reason", "problems"))]
    async fn validate_device(
        &self,
        device: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<(i32, String, Vec<String>)> {
        self.shared.fencer(&header, bus).await?;
        let config = self.shared.config();
        let Some(d) = config.device(&device) else {
            return Err(fdo::Error::InvalidArgs(format!(
                "no fence device {device:?} in the CIB"
            )));
        };
        Ok(self.shared.runner.validate(d).await)
    }

    /// A fencing operation ended (on any node): its history entry.
    #[zbus(signal)]
    pub async fn fenced(emitter: &SignalEmitter<'_>, entry: HistoryEntry) -> zbus::Result<()>;

    /// A job of this node ended: `target` is the node, `result` `done`,
    /// `failed` or `confirmed`.
    #[zbus(signal)]
    pub async fn job_removed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        job: ObjectPath<'_>,
        target: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// `org.vigil.fencing1.Job`: a fencing request of this node, while it is
/// under way.
#[derive(Debug)]
pub struct Job {
    pub id: u32,
    pub target: String,
    pub action: String,
}

#[interface(name = "org.vigil.fencing1.Job")]
impl Job {
    #[zbus(property(emits_changed_signal = "const"))]
    fn id(&self) -> u32 {
        self.id
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn target(&self) -> String {
        self.target.clone()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn action(&self) -> String {
        self.action.clone()
    }
}
