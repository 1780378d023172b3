//! `org.vigil.controller1` on the bus: who the DC is, and the operator
//! commands that need the controllers (cleanup).
//!
//! Who may call what: the bus policy admits root and group `haclient`;
//! reads are open to them; cleanup needs root or polkit's
//! `org.vigil.controller1.operate`.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use vigil_runtime::auth::Callers;
use zbus::message::Header;
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
        self.commands
            .send(Command::Cleanup {
                resource,
                node,
                reply: tx,
            })
            .map_err(|_| fdo::Error::Failed("the controller is stopping".into()))?;
        rx.await
            .map_err(|_| fdo::Error::Failed("the controller is stopping".into()))?
            .map_err(fdo::Error::InvalidArgs)
    }
}
