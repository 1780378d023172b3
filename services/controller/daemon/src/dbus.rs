//! `org.vigil.controller1` on the bus: who the DC is, and the operator
//! commands that need the controllers (cleanup).
//!
//! Who may call what: the bus policy admits root and group `haclient`;
//! reads are open to them; cleanup and attribute changes need root or
//! polkit's `org.vigil.controller1.operate`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use vigil_runtime::auth::Callers;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{fdo, interface};

/// The bus name and object path.
pub const NAME: &str = "org.vigil.controller1";
pub const PATH: &str = "/org/vigil/controller1";
/// The polkit action that allows operator commands.
pub const OPERATE_ACTION: &str = "org.vigil.controller1.operate";

/// A request from the bus to the loop.
#[derive(Debug)]
pub enum Command {
    Cleanup {
        resource: String,
        node: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    SetAttribute {
        node: String,
        name: String,
        value: Option<String>,
        dampen_ms: u64,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Attributes {
        reply: oneshot::Sender<BTreeMap<String, String>>,
    },
}

/// What the bus shows; the loop keeps it current.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub node: String,
    pub dc: String,
}

/// `org.vigil.controller1.Manager`.
#[derive(Debug)]
pub struct Manager {
    pub commands: mpsc::UnboundedSender<Command>,
    pub view: Arc<Mutex<View>>,
    pub callers: Callers,
}

#[interface(name = "org.vigil.controller1.Manager")]
impl Manager {
    /// This node's name.
    #[zbus(property(emits_changed_signal = "false"))]
    fn node(&self) -> String {
        self.view.lock().map(|v| v.node.clone()).unwrap_or_default()
    }

    /// The DC's name (empty while there is none).
    #[zbus(property(emits_changed_signal = "false"))]
    fn dc(&self) -> String {
        self.view.lock().map(|v| v.dc.clone()).unwrap_or_default()
    }

    /// This node's transient attributes (fail counts, last failures,
    /// `shutdown`, and those set with `SetAttribute`).
    async fn attributes(&self) -> fdo::Result<BTreeMap<String, String>> {
        let (tx, rx) = oneshot::channel();
        self.ask(Command::Attributes { reply: tx })?;
        rx.await.map_err(|_| stopping())
    }

    /// Sets transient attribute `name` of node `node` (this node when
    /// empty) to `value`; its controller writes it after `dampen_ms`
    /// milliseconds without a further change (at once with 0). Transient
    /// attributes last until the node's controller stops; use the CIB's
    /// `nodes` section for permanent ones.
    async fn set_attribute(
        &self,
        node: String,
        name: String,
        value: String,
        dampen_ms: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<()> {
        self.change_attribute(node, name, Some(value), dampen_ms, header, bus)
            .await
    }

    /// Removes transient attribute `name` of node `node` (this node when
    /// empty), after `dampen_ms` as for `SetAttribute`.
    async fn delete_attribute(
        &self,
        node: String,
        name: String,
        dampen_ms: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<()> {
        self.change_attribute(node, name, None, dampen_ms, header, bus)
            .await
    }

    /// Why `resource` runs where it runs, or is stopped, from the policy
    /// engine run on the live CIB: `text` in plain words (what `vigil why`
    /// prints), then the same as data: per primitive its id, its state and
    /// its final score per node (highest first); what the cluster is about
    /// to do with it; and the configuration that shapes it, as (kind, id,
    /// words) with kind one of meta, location, move-ban, colocation,
    /// order, defaults.
    #[allow(clippy::type_complexity)]
    async fn explain(
        &self,
        resource: String,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<(
        String,
        Vec<(String, String, Vec<(String, String)>)>,
        Vec<String>,
        Vec<(String, String, String)>,
    )> {
        let cib = vigil_dbus::cib::ManagerProxy::new(bus)
            .await
            .map_err(|e| fdo::Error::Failed(format!("cannot reach vigil-cibd: {e}")))?;
        let xml = cib
            .query("", "")
            .await
            .map_err(|e| fdo::Error::Failed(format!("cannot read the CIB: {e}")))?;
        let e = tokio::task::spawn_blocking(move || {
            let doc = vigil_cib::xml::Document::parse(&xml)
                .map_err(|e| format!("the CIB does not parse: {e}"))?;
            vigil_scheduler::explain::explain(&doc, crate::runtime::now_epoch(), &resource)
        })
        .await
        .map_err(|_| fdo::Error::Failed("the explanation failed".into()))?
        .map_err(fdo::Error::InvalidArgs)?;
        Ok((
            e.to_text(),
            e.placements
                .into_iter()
                .map(|p| (p.id, p.state, p.scores))
                .collect(),
            e.about_to,
            e.reasons
                .into_iter()
                .map(|r| (r.kind, r.id, r.text))
                .collect(),
        ))
    }

    /// The DC started transition `id`: what triggered it, how many actions
    /// it has, and its summary (one line per resource change).
    #[zbus(signal)]
    pub async fn transition_started(
        emitter: &SignalEmitter<'_>,
        id: u64,
        trigger: &str,
        actions: u32,
        summary: Vec<String>,
    ) -> zbus::Result<()>;

    /// The DC's transition `id` ended: `result` is complete, aborted or
    /// stalled, with the reason for the last two, after `duration_ms`.
    #[zbus(signal)]
    pub async fn transition_ended(
        emitter: &SignalEmitter<'_>,
        id: u64,
        result: &str,
        reason: &str,
        duration_ms: u64,
    ) -> zbus::Result<()>;

    /// Forgets `resource`'s operation history and fail counts on `node`
    /// (every node when empty): the cluster probes it afresh and starts
    /// or stops it as its configuration says.
    async fn cleanup(
        &self,
        resource: String,
        node: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<()> {
        self.callers
            .authorized(&header, bus, OPERATE_ACTION, "operate the cluster")
            .await?;
        let (tx, rx) = oneshot::channel();
        self.ask(Command::Cleanup {
            resource,
            node,
            reply: tx,
        })?;
        rx.await
            .map_err(|_| stopping())?
            .map_err(fdo::Error::InvalidArgs)
    }
}

fn stopping() -> fdo::Error {
    fdo::Error::Failed("the controller is stopping".into())
}

impl Manager {
    fn ask(&self, c: Command) -> fdo::Result<()> {
        self.commands.send(c).map_err(|_| stopping())
    }

    async fn change_attribute(
        &self,
        node: String,
        name: String,
        value: Option<String>,
        dampen_ms: u64,
        header: Header<'_>,
        bus: &zbus::Connection,
    ) -> fdo::Result<()> {
        self.callers
            .authorized(&header, bus, OPERATE_ACTION, "operate the cluster")
            .await?;
        let (tx, rx) = oneshot::channel();
        self.ask(Command::SetAttribute {
            node,
            name,
            value,
            dampen_ms,
            reply: tx,
        })?;
        rx.await
            .map_err(|_| stopping())?
            .map_err(fdo::Error::InvalidArgs)
    }
}
