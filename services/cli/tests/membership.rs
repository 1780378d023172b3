//! `vigil cluster keygen`, `vigil membership status` and `vigil quorum ...`
//! driven as a user runs them, against real membership daemons on private
//! buses.
//!
//! The daemon binary is the workspace's `vigil-membershipd` next to
//! `vigil`; `cargo test --workspace` builds both. When it or `dbus-daemon`
//! is missing the daemon tests skip with a message, unless
//! `VIGIL_REQUIRE_ALL` is set (CI sets it), when they fail.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// Processes killed when the test ends, however it ends.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn skip_or_fail(why: &str) {
    if std::env::var_os("VIGIL_REQUIRE_ALL").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
}

fn daemon_binary() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_BIN_EXE_vigil")).parent()?;
    let path = dir.join("vigil-membershipd");
    path.exists().then_some(path)
}

/// Starts a private bus, returning its address.
fn start_bus(procs: &mut Procs) -> Option<String> {
    let mut child = Command::new("dbus-daemon")
        .args(["--session", "--print-address", "--nofork"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    procs.0.push(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).ok()?;
    let addr = line.trim().to_string();
    (!addr.is_empty()).then_some(addr)
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

#[test]
fn status_commands_show_the_view_and_quorum() {
    let Some(daemon) = daemon_binary() else {
        skip_or_fail("vigil-membershipd is not built (cargo build -p vigil-membershipd)");
        return;
    };
    let mut procs = Procs(Vec::new());
    let Some(bus1) = start_bus(&mut procs) else {
        skip_or_fail("dbus-daemon is not installed (apt install dbus)");
        return;
    };
    let bus2 = start_bus(&mut procs).expect("a second bus");

    // Before any daemon runs, the status command says so.
    let (ok, _, err) = run(vigil().args(["membership", "status", "--bus", &bus1]));
    assert!(!ok);
    assert!(err.contains("vigil-membershipd is not running"), "{err}");

    let dir = scratch("status");
    let key = dir.join("authkey");
    let (ok, _, err) = run(vigil().args(["cluster", "keygen", "--key"]).arg(&key));
    assert!(ok, "{err}");
    let config = dir.join("cluster.toml");
    std::fs::write(
        &config,
        "[cluster]\nname = \"cli\"\nport = 35405\n\n\
         [[node]]\nid = 1\nname = \"alpha\"\naddresses = [\"127.0.0.41\"]\n\n\
         [[node]]\nid = 2\nname = \"beta\"\naddresses = [\"127.0.0.42\"]\n",
    )
    .unwrap();
    for (id, bus) in [(1, &bus1), (2, &bus2)] {
        let child = Command::new(&daemon)
            .arg("--config")
            .arg(&config)
            .arg("--key")
            .arg(&key)
            .args(["--node", &id.to_string(), "--bus", bus])
            .arg("--state-dir")
            .arg(dir.join(format!("state{id}")))
            .env("VIGIL_LOG_STDERR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vigil-membershipd");
        procs.0.push(child);
    }

    let out = wait_for(
        &bus1,
        &["membership", "status"],
        "2 of 2 configured node(s)",
    );
    assert!(out.contains("Cluster:      cli"), "{out}");
    assert!(out.contains("Local node:   1 (alpha)"), "{out}");
    let alpha = out
        .lines()
        .find(|l| l.trim_start().starts_with("1  alpha"))
        .unwrap_or("");
    assert!(
        alpha.contains("127.0.0.41") && alpha.contains("member (local)"),
        "{out}"
    );
    let beta = out
        .lines()
        .find(|l| l.trim_start().starts_with("2  beta"))
        .unwrap_or("");
    assert!(beta.contains("member") && !beta.contains("local"), "{out}");

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
