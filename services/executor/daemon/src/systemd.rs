//! systemd-class resources: units started, stopped and watched through
//! systemd's D-Bus API (`org.freedesktop.systemd1`), with a runtime
//! drop-in that keeps systemd from restarting a unit the cluster manages.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::OnceCell;
use vigil_executor::{Outcome, systemd as contract};
use vigil_types::{OpStatus, ocf};
use zbus::OwnedObjectPath;
use zbus::proxy::CacheProperties;

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait SystemdManager {
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reload(&self) -> zbus::Result<()>;
    fn subscribe(&self) -> zbus::Result<()>;
    fn list_unit_files(&self) -> zbus::Result<Vec<(String, String)>>;
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: OwnedObjectPath,
        unit: String,
        result: String,
    ) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
pub trait SystemdUnit {
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn description(&self) -> zbus::Result<String>;
}

/// The connection to systemd, made on first use.
#[derive(Debug)]
pub struct Systemd {
    /// The bus systemd is on (`None`: the system bus).
    address: Option<String>,
    /// Where runtime drop-ins go (`/run/systemd/system`).
    runtime_dir: PathBuf,
    conn: OnceCell<zbus::Connection>,
}

/// A unit's states.
#[derive(Debug, Clone)]
pub struct UnitState {
    pub load: String,
    pub active: String,
    pub sub: String,
}

async fn proxy(conn: &zbus::Connection) -> Result<SystemdManagerProxy<'static>, String> {
    SystemdManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(|e| format!("cannot reach systemd: {e}"))
}

impl Systemd {
    pub fn new(address: Option<String>, runtime_dir: PathBuf) -> Systemd {
        Systemd {
            address,
            runtime_dir,
            conn: OnceCell::new(),
        }
    }

    async fn manager(&self) -> Result<SystemdManagerProxy<'static>, String> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let conn = vigil_runtime::bus_builder(self.address.as_deref())
                    .build()
                    .await
                    .map_err(|e| format!("cannot reach systemd on the bus: {e}"))?;
                // systemd sends JobRemoved only to subscribed clients, and
                // refuses a second subscription of the same connection:
                // subscribe once, for the connection's life.
                let mgr = proxy(&conn).await?;
                match mgr.subscribe().await {
                    Ok(()) => {}
                    Err(zbus::Error::MethodError(name, _, _))
                        if name.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" => {}
                    Err(e) => return Err(format!("cannot subscribe to systemd's jobs: {e}")),
                }
                Ok(conn)
            })
            .await?;
        proxy(conn).await
    }

    /// Whether systemd answers.
    pub async fn available(&self) -> bool {
        match self.manager().await {
            Ok(m) => m.list_unit_files().await.is_ok(),
            Err(_) => false,
        }
    }

    async fn unit(&self, name: &str) -> Result<(SystemdUnitProxy<'static>, UnitState), String> {
        let mgr = self.manager().await?;
        let path = mgr
            .load_unit(name)
            .await
            .map_err(|e| format!("systemd cannot load {name}: {e}"))?;
        let unit = SystemdUnitProxy::builder(mgr.inner().connection())
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| e.to_string())?;
        let state = UnitState {
            load: unit.load_state().await.map_err(|e| e.to_string())?,
            active: unit.active_state().await.map_err(|e| e.to_string())?,
            sub: unit.sub_state().await.map_err(|e| e.to_string())?,
        };
        Ok((unit, state))
    }

    /// A unit's states (`load` is `not-found` for a unit that does not
    /// exist).
    pub async fn state(&self, name: &str) -> Result<UnitState, String> {
        self.unit(name).await.map(|(_, s)| s)
    }

    /// Performs `action` on the unit for agent type `kind`; returns the
    /// result and, for `meta-data`, the metadata.
    pub async fn perform(&self, kind: &str, action: &str, timeout: Duration) -> (Outcome, String) {
        let unit = contract::unit_name(kind);
        let result = tokio::time::timeout(timeout, self.perform_inner(&unit, action)).await;
        let outcome = match result {
            Ok(Ok(o)) => return o,
            Ok(Err(e)) => Outcome {
                rc: ocf::UNKNOWN_ERROR,
                status: OpStatus::NotConnected,
                exit_reason: e,
            },
            Err(_) => Outcome {
                rc: ocf::UNKNOWN_ERROR,
                status: OpStatus::Timeout,
                exit_reason: format!(
                    "systemd did not finish the {action} of {unit} within the timeout ({})",
                    vigil_executor::format_ms(timeout.as_millis() as u64)
                ),
            },
        };
        (outcome, String::new())
    }

    async fn perform_inner(&self, unit: &str, action: &str) -> Result<(Outcome, String), String> {
        let outcome = match action {
            "monitor" | "status" => {
                let s = self.state(unit).await?;
                contract::monitor_outcome(&s.load, &s.active, &s.sub)
            }
            "start" => {
                let s = self.state(unit).await?;
                if s.load == "not-found" {
                    contract::monitor_outcome(&s.load, &s.active, &s.sub)
                } else {
                    self.hand_over(unit).await?;
                    self.job(unit, "start").await?
                }
            }
            "stop" => {
                let s = self.state(unit).await?;
                let outcome = if s.load == "not-found" || s.active == "inactive" {
                    Outcome::done(ocf::OK)
                } else {
                    self.job(unit, "stop").await?
                };
                if outcome.rc == ocf::OK {
                    self.take_back(unit).await?;
                }
                outcome
            }
            "meta-data" => {
                let (u, s) = self.unit(unit).await?;
                if s.load == "not-found" {
                    contract::monitor_outcome(&s.load, &s.active, &s.sub)
                } else {
                    let desc = u.description().await.unwrap_or_default();
                    return Ok((Outcome::done(ocf::OK), contract::metadata(unit, &desc)));
                }
            }
            "validate-all" => {
                let s = self.state(unit).await?;
                if s.load == "not-found" {
                    contract::monitor_outcome(&s.load, &s.active, &s.sub)
                } else {
                    Outcome::done(ocf::OK)
                }
            }
            other => Outcome {
                rc: ocf::UNIMPLEMENT_FEATURE,
                status: OpStatus::NotSupported,
                exit_reason: format!("systemd units have no {other:?} action"),
            },
        };
        Ok((outcome, String::new()))
    }

    /// Writes the runtime drop-in (and reloads systemd) unless it is
    /// there already.
    async fn hand_over(&self, unit: &str) -> Result<(), String> {
        let dir = self.runtime_dir.join(format!("{unit}.d"));
        let path = dir.join(contract::DROP_IN_NAME);
        let want = contract::drop_in(unit);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(want.as_str()) {
            return Ok(());
        }
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, &want))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.manager()
            .await?
            .reload()
            .await
            .map_err(|e| format!("systemd cannot reload its configuration: {e}"))
    }

    /// Removes the runtime drop-in of a stopped unit (and reloads systemd),
    /// leaving the unit as it was before the cluster took it.
    async fn take_back(&self, unit: &str) -> Result<(), String> {
        let dir = self.runtime_dir.join(format!("{unit}.d"));
        let path = dir.join(contract::DROP_IN_NAME);
        if !path.exists() {
            return Ok(());
        }
        std::fs::remove_file(&path)
            .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        let _ = std::fs::remove_dir(&dir);
        self.manager()
            .await?
            .reload()
            .await
            .map_err(|e| format!("systemd cannot reload its configuration: {e}"))
    }

    /// Runs a start or stop job and waits for its end.
    async fn job(&self, unit: &str, action: &str) -> Result<Outcome, String> {
        let mgr = self.manager().await?;
        let mut removed = mgr.receive_job_removed().await.map_err(|e| e.to_string())?;
        let job = match action {
            "start" => mgr.start_unit(unit, "replace").await,
            _ => mgr.stop_unit(unit, "replace").await,
        }
        .map_err(|e| format!("systemd refused to {action} {unit}: {e}"))?;
        while let Some(sig) = removed.next().await {
            let Ok(args) = sig.args() else { continue };
            if args.job == job {
                return Ok(contract::job_outcome(action, &args.result));
            }
        }
        Err("the connection to systemd was lost".into())
    }

    /// The service units systemd knows.
    pub async fn list(&self) -> Result<Vec<String>, String> {
        let files = self
            .manager()
            .await?
            .list_unit_files()
            .await
            .map_err(|e| e.to_string())?;
        let mut names: Vec<String> = files
            .into_iter()
            .filter_map(|(path, _state)| {
                let name = path.rsplit('/').next()?.to_string();
                (name.ends_with(".service") && !name.ends_with("@.service")).then_some(name)
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}
