//! `org.vigil.controller1` (contract: `org.vigil.controller1.xml`): the
//! controller of a node: who the DC is, and operator commands.

/// The bus name and object path.
pub const NAME: &str = "org.vigil.controller1";
pub const PATH: &str = "/org/vigil/controller1";

#[zbus::proxy(
    interface = "org.vigil.controller1.Manager",
    default_service = "org.vigil.controller1",
    default_path = "/org/vigil/controller1"
)]
pub trait Manager {
    #[zbus(property)]
    fn node(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn dc(&self) -> zbus::Result<String>;
    fn cleanup(&self, resource: &str, node: &str) -> zbus::Result<()>;
    fn attributes(&self) -> zbus::Result<std::collections::HashMap<String, String>>;
    fn set_attribute(
        &self,
        node: &str,
        name: &str,
        value: &str,
        dampen_ms: u64,
    ) -> zbus::Result<()>;
    fn delete_attribute(&self, node: &str, name: &str, dampen_ms: u64) -> zbus::Result<()>;
    /// (text, per primitive (id, state, [(node, score)]), about to,
    /// [(kind, id, text)]).
    #[allow(clippy::type_complexity)]
    fn explain(&self, resource: &str) -> zbus::Result<Explanation>;
    #[zbus(signal)]
    fn transition_started(
        &self,
        id: u64,
        trigger: String,
        actions: u32,
        summary: Vec<String>,
    ) -> zbus::Result<()>;
    #[zbus(signal)]
    fn transition_ended(
        &self,
        id: u64,
        result: String,
        reason: String,
        duration_ms: u64,
    ) -> zbus::Result<()>;
}

/// What `Explain` returns: the text, then per primitive (id, state,
/// [(node, score)]), what the cluster is about to do, and the
/// configuration that shapes it as (kind, id, text).
pub type Explanation = (
    String,
    Vec<(String, String, Vec<(String, String)>)>,
    Vec<String>,
    Vec<(String, String, String)>,
);
