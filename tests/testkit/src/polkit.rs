//! Callers that are not root: a stand-in for polkit on a test bus, and
//! method calls made as user `nobody`.

use std::collections::HashMap;
use std::process::Command;

/// A stand-in for polkit: allows the one action given (none: nothing).
#[derive(Debug)]
struct FakePolkit {
    allow: Option<String>,
}

#[zbus::interface(name = "org.freedesktop.PolicyKit1.Authority")]
impl FakePolkit {
    #[allow(clippy::type_complexity)]
    fn check_authorization(
        &self,
        _subject: (String, HashMap<String, zbus::OwnedVariant>),
        action_id: String,
        _details: HashMap<String, String>,
        _flags: u32,
        _cancellation_id: String,
    ) -> (bool, bool, HashMap<String, String>) {
        (
            self.allow.as_deref() == Some(action_id.as_str()),
            false,
            HashMap::new(),
        )
    }
}

/// Serves a fake polkit on `bus` that allows `allow` (and nothing else),
/// until the returned connection is dropped.
pub async fn fake(bus: &str, allow: Option<&str>) -> zbus::Connection {
    zbus::connection::Builder::address(bus)
        .name("org.freedesktop.PolicyKit1")
        .serve_at(
            "/org/freedesktop/PolicyKit1/Authority",
            FakePolkit {
                allow: allow.map(str::to_string),
            },
        )
        .build()
        .await
        .expect("start the fake polkit")
}

/// Whether this test can call as user nobody (root and `setpriv`); says
/// why it skips when not (a failure when `VIGIL_REQUIRE_ALL` is set).
pub fn can_call_as_nobody(test: &str) -> bool {
    let can = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !can {
        assert!(
            std::env::var_os("VIGIL_REQUIRE_ALL").is_none(),
            "{test}: needs root and setpriv (VIGIL_REQUIRE_ALL is set)"
        );
        eprintln!("SKIPPED {test}: needs root and setpriv to call as another user");
    }
    can
}

/// `dbus-send` as user nobody on `bus` (one that admits every user, see
/// `Bus::start_open`): calls `method` (`INTERFACE.Method`) of `dest` at
/// `path` with `args` (dbus-send's `type:value`). Returns (success,
/// output and errors).
pub fn as_nobody(bus: &str, dest: &str, path: &str, method: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "dbus-send",
        ])
        .arg(format!("--bus={bus}"))
        .args(["--print-reply", &format!("--dest={dest}"), path, method])
        .args(args)
        .output()
        .expect("run dbus-send as nobody");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
