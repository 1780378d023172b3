//! `org.vigil.cib1` (contract: `org.vigil.cib1.xml`): the replicated CIB
//! and the cibadmin operations.

/// The bus name and object path.
pub const NAME: &str = "org.vigil.cib1";
pub const PATH: &str = "/org/vigil/cib1";

/// A CIB version: (admin_epoch, epoch, num_updates).
pub type Version = (u64, u64, u64);

#[zbus::proxy(
    interface = "org.vigil.cib1.Manager",
    default_service = "org.vigil.cib1",
    default_path = "/org/vigil/cib1"
)]
pub trait Manager {
    #[zbus(property)]
    fn version(&self) -> zbus::Result<Version>;
    #[zbus(property)]
    fn synced(&self) -> zbus::Result<bool>;
    fn query(&self, xpath: &str, section: &str) -> zbus::Result<String>;
    fn create(&self, section: &str, xml: &str) -> zbus::Result<Version>;
    fn modify(&self, section: &str, xml: &str, create_if_missing: bool) -> zbus::Result<Version>;
    fn replace(&self, section: &str, xpath: &str, xml: &str) -> zbus::Result<Version>;
    fn delete(&self, section: &str, xml: &str) -> zbus::Result<Version>;
    fn delete_xpath(&self, xpath: &str, all: bool) -> zbus::Result<Version>;
    fn apply_patch(&self, patch: &str) -> zbus::Result<Version>;
    fn batch(&self, changes: &[(&str, &str, &str, bool)]) -> zbus::Result<Version>;
    fn erase(&self) -> zbus::Result<Version>;
    fn bump(&self) -> zbus::Result<Version>;
    fn upgrade(&self) -> zbus::Result<Version>;
    fn diff(&self, old: &str, new: &str) -> zbus::Result<String>;
    #[zbus(signal)]
    fn changed(&self, version: Version, patch: String) -> zbus::Result<()>;
}

/// `admin_epoch.epoch.num_updates`, as Pacemaker prints versions.
pub fn version_text(v: Version) -> String {
    format!("{}.{}.{}", v.0, v.1, v.2)
}
