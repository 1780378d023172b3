//! Who calls a daemon over D-Bus, and whether they may change something:
//! root may; anyone else needs polkit's permission for the daemon's action.

use std::collections::HashMap;
use std::sync::Mutex;

use zbus::fdo;
use zbus::message::Header;

/// Who calls: bus name, uid, user name and groups.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub uid: u32,
    pub user: String,
    pub groups: Vec<String>,
}

/// At most this many callers are remembered (then the memory starts
/// over).
const CALLERS_REMEMBERED: usize = 4096;

/// Callers already asked about, by unique bus name (a bus never gives a
/// unique name twice, so an entry never goes stale): a call then costs no
/// extra round trip to the bus.
#[derive(Debug, Default)]
pub struct Callers {
    known: Mutex<HashMap<String, Caller>>,
}

impl Callers {
    pub fn new() -> Callers {
        Callers::default()
    }

    /// The caller, from the bus (on a peer-to-peer connection there is no
    /// bus to ask: root, as only root can open one to a daemon).
    pub async fn caller(&self, header: &Header<'_>, bus: &zbus::Connection) -> fdo::Result<Caller> {
        let name = header.sender().map(|s| s.to_string()).unwrap_or_default();
        if !bus.is_bus() {
            return Ok(Caller {
                name,
                uid: 0,
                user: "root".into(),
                groups: Vec::new(),
            });
        }
        if let Some(known) = self.known.lock().ok().and_then(|c| c.get(&name).cloned()) {
            return Ok(known);
        }
        let dbus = fdo::DBusProxy::new(bus)
            .await
            .map_err(|e| fdo::Error::Failed(format!("cannot ask the bus who calls: {e}")))?;
        let bus_name = zbus::names::BusName::try_from(name.as_str())
            .map_err(|e| fdo::Error::Failed(e.to_string()))?;
        let uid = dbus
            .get_connection_unix_user(bus_name)
            .await
            .map_err(|e| fdo::Error::Failed(format!("cannot ask the bus who calls: {e}")))?;
        let (user, groups) = user_and_groups(uid);
        let caller = Caller {
            name,
            uid,
            user,
            groups,
        };
        if let Ok(mut c) = self.known.lock() {
            if c.len() >= CALLERS_REMEMBERED {
                c.clear();
            }
            c.insert(caller.name.clone(), caller.clone());
        }
        Ok(caller)
    }

    /// The caller, if it may do what polkit's `action` allows (`what` says
    /// it in words for the refusal, e.g. "change the CIB"): root, or a
    /// user polkit allows. Refused when polkit does not answer.
    pub async fn authorized(
        &self,
        header: &Header<'_>,
        bus: &zbus::Connection,
        action: &str,
        what: &str,
    ) -> fdo::Result<Caller> {
        let caller = self.caller(header, bus).await?;
        if caller.uid == 0 {
            return Ok(caller);
        }
        match polkit_allows(bus, &caller.name, action).await {
            Ok(true) => Ok(caller),
            Ok(false) => Err(fdo::Error::AccessDenied(format!(
                "user '{}' (uid {}) is not allowed to {what} (polkit action {action})",
                caller.user, caller.uid
            ))),
            Err(e) => Err(fdo::Error::AccessDenied(format!(
                "to {what} as user '{}' (uid {}) needs polkit's permission \
                 ({action}), and polkit did not answer: {e}",
                caller.user, caller.uid
            ))),
        }
    }
}

/// A uid's user name and the names of its groups (the uid as text when
/// the system does not know it).
pub fn user_and_groups(uid: u32) -> (String, Vec<String>) {
    use nix::unistd::{Gid, Group, Uid, User};
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return (uid.to_string(), Vec::new());
    };
    let mut groups = Vec::new();
    let cname = std::ffi::CString::new(user.name.clone()).unwrap_or_default();
    let gids: Vec<Gid> =
        nix::unistd::getgrouplist(&cname, user.gid).unwrap_or_else(|_| vec![user.gid]);
    for gid in gids {
        if let Ok(Some(g)) = Group::from_gid(gid) {
            groups.push(g.name);
        }
    }
    (user.name, groups)
}

/// Asks polkit (on `bus`) whether the bus client `name` may do `action`,
/// letting it ask the user to authenticate.
async fn polkit_allows(bus: &zbus::Connection, name: &str, action: &str) -> zbus::Result<bool> {
    use zbus::Variant;
    let subject: (&str, HashMap<&str, Variant<'_>>) = (
        "system-bus-name",
        HashMap::from([("name", Variant::from(name))]),
    );
    let details: HashMap<&str, &str> = HashMap::new();
    const ALLOW_USER_INTERACTION: u32 = 1;
    let reply = bus
        .call_method(
            Some("org.freedesktop.PolicyKit1"),
            "/org/freedesktop/PolicyKit1/Authority",
            Some("org.freedesktop.PolicyKit1.Authority"),
            "CheckAuthorization",
            &(subject, action, details, ALLOW_USER_INTERACTION, ""),
        )
        .await?;
    let (authorized, _challenge, _details): (bool, bool, HashMap<String, String>) =
        reply.body().deserialize()?;
    Ok(authorized)
}
