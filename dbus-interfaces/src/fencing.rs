//! `org.vigil.fencing1` (contract: `org.vigil.fencing1.xml`): fencing
//! nodes, fence devices and the cluster-wide fence history.

use std::collections::HashMap;

/// The bus name and object path.
pub const NAME: &str = "org.vigil.fencing1";
pub const PATH: &str = "/org/vigil/fencing1";
/// Job objects live under this path (`/org/vigil/fencing1/job/ID`).
pub const JOB_PATH_PREFIX: &str = "/org/vigil/fencing1/job/";

/// One entry of the fence history (a D-Bus struct, `(ssssssasssxxu)`
/// in field order).
#[derive(
    Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, zbus::Type,
)]
pub struct HistoryEntry {
    /// The operation's id (`NODE:SEQ` of the first request).
    pub id: String,
    pub target: String,
    pub action: String,
    /// The node that asked first.
    pub origin: String,
    /// Who asked there.
    pub client: String,
    /// The node that ran the devices.
    pub executioner: String,
    pub devices: Vec<String>,
    /// `done`, `failed` or `confirmed`.
    pub outcome: String,
    pub reason: String,
    pub requested_at: i64,
    pub completed_at: i64,
    /// How many requests it answered.
    pub requests: u32,
}

/// A fence device on the wire: (id, agent, host check, configured
/// targets, enabled).
pub type DeviceWire = (String, String, String, Vec<String>, bool);

/// An operation under way: (id, target, action, origin, executioner).
pub type PendingWire = (String, String, String, String, String);

#[zbus::proxy(
    interface = "org.vigil.fencing1.Manager",
    default_service = "org.vigil.fencing1",
    default_path = "/org/vigil/fencing1"
)]
pub trait Manager {
    fn fence(
        &self,
        target: &str,
        action: &str,
        options: HashMap<&str, zbus::Variant<'_>>,
    ) -> zbus::Result<(u32, zbus::OwnedObjectPath)>;
    fn confirm(&self, target: &str) -> zbus::Result<()>;
    fn history(&self, target: &str) -> zbus::Result<Vec<HistoryEntry>>;
    fn pending(&self) -> zbus::Result<Vec<PendingWire>>;
    fn devices(&self) -> zbus::Result<Vec<DeviceWire>>;
    fn devices_for(&self, target: &str) -> zbus::Result<Vec<String>>;
    fn monitor_device(&self, device: &str) -> zbus::Result<(i32, String)>;
    fn validate_device(&self, device: &str) -> zbus::Result<(i32, String, Vec<String>)>;
    #[zbus(signal)]
    fn fenced(&self, entry: HistoryEntry) -> zbus::Result<()>;
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: zbus::OwnedObjectPath,
        target: String,
        result: String,
    ) -> zbus::Result<()>;
}
