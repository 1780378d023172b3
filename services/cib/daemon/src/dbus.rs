//! `org.vigil.cib1` on the bus: the CIB, its version, and the cibadmin
//! operations.
//!
//! Reads (`Query`, the properties, `Diff`) are answered from this node's
//! replica at once. Changes travel through the membership group to every
//! replica and are answered, with the new version, once this node applied
//! them (and, for configuration changes, wrote them to disk); a refused
//! change is refused on every node with the same reason and changes
//! nothing.
//!
//! Who may call what: the bus policy admits root and group `haclient`.
//! Reads show what the CIB's ACLs let the caller see (everything for root
//! and `hacluster`). A change from root is applied; from anyone else it
//! needs polkit's `org.vigil.cib1.modify` (asked on the bus the daemon
//! serves; refused when polkit does not answer), and then the CIB's ACLs
//! decide, on every replica alike, whether the caller may make it.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{fdo, interface};

use vigil_runtime::auth::Callers;

use crate::request::{Change, MAX_XML};

/// The object path.
pub const PATH: &str = "/org/vigil/cib1";
/// The well-known bus name.
pub const NAME: &str = "org.vigil.cib1";

/// A version as the bus carries it: (admin_epoch, epoch, num_updates).
pub type Version = (u64, u64, u64);

/// What the bus shows; updated by the loop.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub version: Version,
    pub synced: bool,
}

/// A request from the bus to the loop.
#[derive(Debug)]
pub enum Command {
    /// A change, for every replica.
    Change {
        change: Change,
        client: String,
        user: String,
        groups: Vec<String>,
        reply: oneshot::Sender<Result<Version, String>>,
    },
    /// A read of this replica, as `user` may see it.
    Query {
        xpath: String,
        section: String,
        user: String,
        groups: Vec<String>,
        reply: oneshot::Sender<Result<String, String>>,
    },
}

/// State shared by the interface and the loop.
#[derive(Debug, Clone)]
pub struct Shared {
    pub snapshot: Arc<Mutex<Snapshot>>,
    pub commands: mpsc::UnboundedSender<Command>,
}

impl Shared {
    fn snap(&self) -> Snapshot {
        self.snapshot.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// `org.vigil.cib1.Manager`.
#[derive(Debug)]
pub struct Manager {
    pub shared: Shared,
    callers: Callers,
}

impl Manager {
    pub fn new(shared: Shared) -> Manager {
        Manager {
            shared,
            callers: Callers::new(),
        }
    }
}

/// The polkit action that allows changing the CIB.
pub const MODIFY_ACTION: &str = "org.vigil.cib1.modify";

impl Manager {
    async fn change(
        &self,
        change: Change,
        header: &Header<'_>,
        bus: &zbus::Connection,
    ) -> fdo::Result<Version> {
        if change.xml_len() > MAX_XML {
            return Err(fdo::Error::InvalidArgs(format!(
                "the XML of this {} is {} bytes, over the limit of {MAX_XML} bytes",
                change.name(),
                change.xml_len()
            )));
        }
        let caller = self
            .callers
            .authorized(header, bus, MODIFY_ACTION, "change the CIB")
            .await?;
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Change {
                change,
                client: caller.name,
                user: caller.user,
                groups: caller.groups,
                reply: tx,
            })
            .map_err(|_| fdo::Error::Failed("the CIB daemon is stopping".into()))?;
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.starts_with("permission denied") => Err(fdo::Error::AccessDenied(e)),
            Ok(Err(e)) => Err(fdo::Error::Failed(e)),
            Err(_) => Err(fdo::Error::Failed("the CIB daemon is stopping".into())),
        }
    }
}

#[interface(name = "org.vigil.cib1.Manager")]
impl Manager {
    /// The CIB's version: (admin_epoch, epoch, num_updates). It changes
    /// with every change, which the `Changed` signal reports (with the
    /// patch); there is no PropertiesChanged for it.
    #[zbus(property(emits_changed_signal = "false"))]
    fn version(&self) -> Version {
        self.shared.snap().version
    }

    /// Whether this node's replica is in step with the cluster. Until it
    /// is, reads show this node's own copy and changes wait.
    #[zbus(property)]
    fn synced(&self) -> bool {
        self.shared.snap().synced
    }

    /// Reads the whole CIB (`xpath` and `section` empty), a section
    /// (`configuration`, `nodes`, `resources`, `constraints`, `crm_config`,
    /// `rsc_defaults`, `op_defaults`, `status`, `acls`,
    /// `fencing-topology`, `tags`, `alerts`), or what `xpath` selects.
    async fn query(
        &self,
        xpath: String,
        section: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<String> {
        let caller = self.callers.caller(&header, bus).await?;
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Query {
                xpath,
                section,
                user: caller.user,
                groups: caller.groups,
                reply: tx,
            })
            .map_err(|_| fdo::Error::Failed("the CIB daemon is stopping".into()))?;
        match rx.await {
            Ok(Ok(xml)) => Ok(xml),
            Ok(Err(e)) if e.starts_with("permission denied") => Err(fdo::Error::AccessDenied(e)),
            Ok(Err(e)) => Err(fdo::Error::Failed(e)),
            Err(_) => Err(fdo::Error::Failed("the CIB daemon is stopping".into())),
        }
    }

    /// Adds `xml` to `section` (cibadmin --create). Returns the new version.
    async fn create(
        &self,
        section: String,
        xml: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<Version> {
        self.change(Change::Create { section, xml }, &header, bus)
            .await
    }

    /// Merges `xml` into the element of `section` with the same tag and id
    /// (cibadmin --modify); with `create_if_missing`, adds it when there
    /// is none.
    async fn modify(
        &self,
        section: String,
        xml: String,
        create_if_missing: bool,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<Version> {
        self.change(
            Change::Modify {
                section,
                xml,
                create_if_missing,
            },
            &header,
            bus,
        )
        .await
    }

    /// Replaces what `xpath` selects, or `section`, or (both empty) the
    /// whole CIB with `xml` (cibadmin --replace).
    async fn replace(
        &self,
        section: String,
        xpath: String,
        xml: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<Version> {
        self.change(
            Change::Replace {
                section,
                xpath,
                xml,
            },
            &header,
            bus,
        )
        .await
    }

    /// Deletes the element of `section` that matches `xml` (cibadmin
    /// --delete).
    async fn delete(
        &self,
        section: String,
        xml: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<Version> {
        self.change(Change::Delete { section, xml }, &header, bus)
            .await
    }

    /// Deletes what `xpath` selects: the first match, or with `all` every
    /// match (cibadmin --delete --xpath [--delete-all]).
    async fn delete_xpath(
        &self,
        xpath: String,
        all: bool,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<Version> {
        self.change(Change::DeleteXpath { xpath, all }, &header, bus)
            .await
    }

    /// Applies a v2 patchset (cibadmin --patch); its source version must
    /// be the CIB's.
    async fn apply_patch(
        &self,
        patch: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<Version> {
        self.change(Change::Patch { xml: patch }, &header, bus)
            .await
    }

    /// Several changes as one, in this order, all or none, with one
    /// version step: the hot path for status updates (many operation
    /// results at once). Each change is (operation, section, xml, flag):
    /// `create`; `modify` (flag: create it if missing); `replace`;
    /// `delete`; or `delete-xpath` (xml is the XPath; flag: every match).
    async fn batch(
        &self,
        changes: Vec<(String, String, String, bool)>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<Version> {
        if changes.is_empty() {
            return Err(fdo::Error::InvalidArgs("the batch is empty".into()));
        }
        let mut list = Vec::with_capacity(changes.len());
        for (i, (op, section, xml, flag)) in changes.into_iter().enumerate() {
            list.push(match op.as_str() {
                "create" => Change::Create { section, xml },
                "modify" => Change::Modify {
                    section,
                    xml,
                    create_if_missing: flag,
                },
                "replace" => Change::Replace {
                    section,
                    xpath: String::new(),
                    xml,
                },
                "delete" => Change::Delete { section, xml },
                "delete-xpath" => Change::DeleteXpath {
                    xpath: xml,
                    all: flag,
                },
                other => {
                    return Err(fdo::Error::InvalidArgs(format!(
                        "change {} of the batch: unknown operation '{other}'; use create, modify, \
                         replace, delete or delete-xpath",
                        i + 1
                    )));
                }
            });
        }
        self.change(Change::Batch { changes: list }, &header, bus)
            .await
    }

    /// Empties the configuration and the status (cibadmin --erase).
    async fn erase(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<Version> {
        self.change(Change::Erase, &header, bus).await
    }

    /// Increments the epoch (cibadmin --bump).
    async fn bump(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<Version> {
        self.change(Change::Bump, &header, bus).await
    }

    /// Moves the CIB to the newest schema (cibadmin --upgrade).
    async fn upgrade(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<Version> {
        self.change(Change::Upgrade, &header, bus).await
    }

    /// The v2 patchset that turns CIB `old` into CIB `new` (crm_diff);
    /// changes nothing.
    fn diff(&self, old: String, new: String) -> fdo::Result<String> {
        crate::engine::diff(&old, &new).map_err(fdo::Error::InvalidArgs)
    }

    /// The CIB changed: the new version and the v2 patchset from the
    /// previous one.
    #[zbus(signal)]
    pub async fn changed(
        emitter: &SignalEmitter<'_>,
        version: Version,
        patch: &str,
    ) -> zbus::Result<()>;
}
