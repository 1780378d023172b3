//! `vigil cluster keygen`, `vigil membership status` and `vigil quorum ...`
//! driven as a user runs them, against real membership daemons on private
//! buses.
//!
//! The daemon binary is the workspace's `vigil-membershipd` next to
//! `vigil`; `cargo test --workspace` builds both. When it or `dbus-daemon`
//! is missing the daemon tests skip with a message, unless
//! `VIGIL_REQUIRE_ALL` is set (CI sets it), when they fail.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("membership-cli-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run vigil");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keygen_writes_a_private_key_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("keygen");
    let key = dir.join("etc/vigil/authkey");
    let (ok, out, err) = run(vigil().args(["cluster", "keygen", "--key"]).arg(&key));
    assert!(ok, "{err}");
    assert!(out.contains("fingerprint"), "{out}");
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!(meta.len(), 32);
    assert_eq!(meta.permissions().mode() & 0o777, 0o400);
    let first = std::fs::read(&key).unwrap();

    // A second run refuses and changes nothing.
    let (ok, _, err) = run(vigil().args(["cluster", "keygen", "--key"]).arg(&key));
    assert!(!ok);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(&key).unwrap(), first);

    // --force replaces it with a different key.
    let (ok, _, err) = run(vigil()
        .args(["cluster", "keygen", "--force", "--key"])
        .arg(&key));
    assert!(ok, "{err}");
    assert_ne!(std::fs::read(&key).unwrap(), first);
}

/// Runs `vigil args...` on `bus` until its output contains `want`.
fn wait_for(bus: &str, args: &[&str], want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (ok, out, err) = run(vigil().args(args).args(["--bus", bus]));
        if ok && out.contains(want) {
            return out;
        }
        if Instant::now() > deadline {
            panic!(
                "`vigil {}` never showed {want:?}:\n{out}{err}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_commands_show_the_view_and_quorum() {
    let test = "status_commands_show_the_view_and_quorum";
    if !vigil_testkit::dbus_daemon_available(test) {
        return;
    }
    let Some(daemon) =
        vigil_testkit::sibling_binary(test, env!("CARGO_BIN_EXE_vigil"), "vigil-membershipd")
    else {
        return;
    };
    let nodes = vigil_testkit::Nodes::new(49, 2);
    let (bus1, bus2) = (nodes.bus(1).to_string(), nodes.bus(2).to_string());

    // Before any daemon runs, the status command says so.
    let (ok, _, err) = run(vigil().args(["membership", "status", "--bus", &bus1]));
    assert!(!ok);
    assert!(err.contains("vigil-membershipd is not running"), "{err}");

    let _daemons = [
        nodes.start_membership(&daemon, 1).await,
        nodes.start_membership(&daemon, 2).await,
    ];
    let out = wait_for(
        &bus1,
        &["membership", "status"],
        "2 of 2 configured node(s)",
    );
    assert!(out.contains("Cluster:      t49"), "{out}");
    assert!(out.contains("Local node:   1 (n1)"), "{out}");
    let n1 = out
        .lines()
        .find(|l| l.trim_start().starts_with("1  n1"))
        .unwrap_or("");
    assert!(
        n1.contains(&nodes.ips[0].to_string()) && n1.contains("member (local)"),
        "{out}"
    );
    let n2 = out
        .lines()
        .find(|l| l.trim_start().starts_with("2  n2"))
        .unwrap_or("");
    assert!(n2.contains("member") && !n2.contains("local"), "{out}");

    let out = wait_for(&bus2, &["quorum", "status"], "Quorate:        yes");
    assert!(out.contains("Expected votes: 2"), "{out}");
    assert!(out.contains("Total votes:    2"), "{out}");
    assert!(out.contains("Node id:        2"), "{out}");

    // An impossible request is refused with the reason, and nothing changes.
    let (ok, _, err) = run(vigil().args(["quorum", "expected-votes", "1", "--bus", &bus1]));
    assert!(!ok);
    assert!(
        err.contains("cannot set expected votes to 1") && err.contains("at least 2"),
        "{err}"
    );
    let out = wait_for(&bus1, &["quorum", "status"], "Expected votes: 2");
    assert!(out.contains("Quorate:        yes"), "{out}");

    // A valid one reaches every node.
    let (ok, out, err) = run(vigil().args(["quorum", "expected-votes", "3", "--bus", &bus1]));
    assert!(ok, "{err}");
    assert!(out.contains("expected votes set to 3"), "{out}");
    wait_for(&bus2, &["quorum", "status"], "Expected votes: 3");
}
