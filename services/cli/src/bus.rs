//! Connecting to a node's bus, and making sure the daemon asked is there.

use anyhow::Context;

/// A connection to the bus `bus` names (else `VIGIL_BUS`, else the system
/// bus), and the bus in words for messages.
pub async fn connect(bus: Option<&str>) -> anyhow::Result<(zbus::Connection, String)> {
    let address = vigil_runtime::bus_address(bus);
    let where_ = address.as_deref().unwrap_or("the system bus").to_string();
    let conn = vigil_runtime::bus_builder(address.as_deref())
        .build()
        .await
        .with_context(|| format!("cannot connect to {where_}"))?;
    Ok((conn, where_))
}

/// Fails, naming the daemon, when nobody owns `name` on the bus.
pub async fn require(
    conn: &zbus::Connection,
    where_: &str,
    name: &str,
    daemon: &str,
) -> anyhow::Result<()> {
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    if !dbus
        .name_has_owner(zbus::names::BusName::try_from(name)?)
        .await?
    {
        anyhow::bail!(
            "{daemon} is not running ({name} has no owner on {where_}); \
             see `systemctl status {daemon}`"
        );
    }
    Ok(())
}

/// A D-Bus error as the daemon worded it (without the error's name).
pub fn message(e: zbus::Error) -> anyhow::Error {
    match e {
        zbus::Error::MethodError(_, Some(msg), _) => anyhow::anyhow!(msg),
        zbus::Error::FDO(f) => match *f {
            zbus::fdo::Error::Failed(m)
            | zbus::fdo::Error::InvalidArgs(m)
            | zbus::fdo::Error::AccessDenied(m) => anyhow::anyhow!(m),
            other => anyhow::anyhow!(other),
        },
        other => anyhow::anyhow!(other),
    }
}

/// The runtime every command's D-Bus work runs on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// This node's controller, failing with the daemon's name when it is not
/// running.
pub async fn controller(
    conn: &zbus::Connection,
    where_: &str,
) -> anyhow::Result<vigil_dbus::controller::ManagerProxy<'static>> {
    require(conn, where_, vigil_dbus::controller::NAME, "vigil-controld").await?;
    Ok(vigil_dbus::controller::ManagerProxy::new(conn).await?)
}

/// The CIB's configuration section.
pub async fn configuration(
    cib: &vigil_dbus::cib::ManagerProxy<'_>,
) -> anyhow::Result<vigil_cib::xml::Document> {
    let xml = cib.query("", "configuration").await.map_err(message)?;
    vigil_cib::xml::Document::parse(&xml).context("the CIB's configuration does not parse")
}
