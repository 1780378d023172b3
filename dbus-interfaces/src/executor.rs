//! `org.vigil.executor1` (contract: `org.vigil.executor1.xml`): running
//! resource agents on one node, their operation history and metadata.

use std::collections::HashMap;

/// The bus name and object path.
pub const NAME: &str = "org.vigil.executor1";
pub const PATH: &str = "/org/vigil/executor1";
/// Job objects live under this path (`/org/vigil/executor1/job/ID`).
pub const JOB_PATH_PREFIX: &str = "/org/vigil/executor1/job/";

/// A job on the wire: (id, action, interval_ms, state).
pub type JobWire = (u32, String, u64, String);

/// A parameter problem on the wire: (parameter, severity, message).
pub type ProblemWire = (String, String, String);

/// One completed run of an operation (a D-Bus struct,
/// `(tssstiissxxttibs)` in field order).
#[derive(
    Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, zbus::Type,
)]
pub struct OperationRecord {
    pub call_id: u64,
    pub resource: String,
    /// `ocf:heartbeat:Dummy`.
    pub agent: String,
    pub action: String,
    pub interval_ms: u64,
    /// The OCF exit code.
    pub rc: i32,
    /// Pacemaker's `op-status` code (0 done, 1 cancelled, 2 timeout, 3
    /// not supported, 4 error, 5 hard error, 6 fatal, 7 not installed, 8
    /// not connected, 9 invalid, -1 pending).
    pub op_status: i32,
    pub exit_reason: String,
    /// `already running`, `already stopped`, or empty.
    pub note: String,
    /// When the run ended, seconds since the epoch.
    pub last_run: i64,
    /// When the result last changed.
    pub last_rc_change: i64,
    pub exec_ms: u64,
    pub queue_ms: u64,
    /// The exit code the caller expected; -1 when it named none.
    pub expected_rc: i32,
    pub failed: bool,
    pub user_data: String,
}

impl OperationRecord {
    /// Pacemaker's operation key: `RESOURCE_ACTION_INTERVAL`.
    pub fn key(&self) -> String {
        format!("{}_{}_{}", self.resource, self.action, self.interval_ms)
    }
}

/// A resource as the executor knows it: (agent, state, operations, last
/// failure (none or one), jobs).
pub type ResourceWire = (
    String,
    String,
    Vec<OperationRecord>,
    Vec<OperationRecord>,
    Vec<JobWire>,
);

#[zbus::proxy(
    interface = "org.vigil.executor1.Manager",
    default_service = "org.vigil.executor1",
    default_path = "/org/vigil/executor1"
)]
pub trait Manager {
    #[zbus(property)]
    fn node(&self) -> zbus::Result<String>;
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &self,
        resource: &str,
        agent: &str,
        action: &str,
        interval_ms: u64,
        timeout_ms: u64,
        params: HashMap<&str, &str>,
        meta: HashMap<&str, &str>,
        options: HashMap<&str, zbus::Variant<'_>>,
    ) -> zbus::Result<(u32, zbus::OwnedObjectPath)>;
    fn cancel(&self, resource: &str, action: &str, interval_ms: u64) -> zbus::Result<()>;
    fn list_classes(&self) -> zbus::Result<Vec<String>>;
    fn list_providers(&self, class: &str) -> zbus::Result<Vec<String>>;
    fn list_agents(&self, class: &str, provider: &str) -> zbus::Result<Vec<String>>;
    fn agent_metadata(&self, agent: &str) -> zbus::Result<String>;
    fn validate(
        &self,
        resource: &str,
        agent: &str,
        params: HashMap<&str, &str>,
    ) -> zbus::Result<(i32, String, Vec<ProblemWire>)>;
    fn list_resources(&self) -> zbus::Result<Vec<String>>;
    fn get_resource(&self, resource: &str) -> zbus::Result<ResourceWire>;
    fn forget_resource(&self, resource: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    fn operation_completed(&self, job_id: u32, record: OperationRecord) -> zbus::Result<()>;
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: zbus::OwnedObjectPath,
        target: String,
        result: String,
    ) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.vigil.executor1.Job",
    default_service = "org.vigil.executor1"
)]
pub trait Job {
    #[zbus(property)]
    fn id(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn resource(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn action(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn interval_ms(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
    fn cancel(&self) -> zbus::Result<()>;
}
