//! The daemon under systemd's protocols, without systemd: readiness and
//! watchdog notifications to `$NOTIFY_SOCKET`, and a UDP socket passed by
//! socket activation (`systemd-socket-activate`, the tool systemd ships to
//! do what a `.socket` unit does).
//!
//! Tools that are missing make a test skip with a message, unless
//! `VIGIL_REQUIRE_ALL` is set (CI), when it fails.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DAEMON: &str = env!("CARGO_BIN_EXE_vigil-membershipd");

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

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("systemd-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn key(dir: &std::path::Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("authkey");
    let bytes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    path
}

fn config(dir: &std::path::Path, port: u16, addrs: &[&str]) -> PathBuf {
    let mut text = format!("[cluster]\nname = \"sd\"\nport = {port}\n");
    for (i, a) in addrs.iter().enumerate() {
        text.push_str(&format!(
            "\n[[node]]\nid = {}\nname = \"n{}\"\naddresses = [\"{a}\"]\n",
            i + 1,
            i + 1
        ));
    }
    let path = dir.join("cluster.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A private bus in `dir` (kept in `buses` until the test ends), or `None` (with
/// the skip message) when `dbus-daemon` cannot run.
fn start_bus(buses: &mut Vec<vigil_testkit::Bus>, dir: &std::path::Path) -> Option<String> {
    if !vigil_testkit::dbus_daemon_available("systemd tests") {
        return None;
    }
    let bus = vigil_testkit::Bus::start(&dir.join(format!("bus{}", buses.len() + 1)));
    let address = bus.address().to_string();
    buses.push(bus);
    Some(address)
}

#[test]
fn tells_systemd_it_is_ready_and_feeds_the_watchdog() {
    let mut procs = Procs(Vec::new());
    let dir = scratch("notify");
    let mut buses = Vec::new();
    let Some(bus) = start_bus(&mut buses, &dir) else {
        return;
    };
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let cfg = config(&dir, 45411, &["127.0.0.71"]);
    let child = Command::new(DAEMON)
        .arg("--config")
        .arg(&cfg)
        .arg("--key")
        .arg(key(&dir))
        .args(["--node", "1", "--bus", &bus])
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("NOTIFY_SOCKET", &sock_path)
        // A 300 ms watchdog: the daemon must ping at least every 150 ms.
        .env("WATCHDOG_USEC", "300000")
        .env("VIGIL_LOG_STDERR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    procs.0.push(child);

    let mut got = Vec::new();
    let mut watchdogs = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline
        && (watchdogs < 3 || !got.iter().any(|m: &String| m.contains("READY=1")))
    {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.contains("WATCHDOG=1") {
                watchdogs += 1;
            }
            got.push(msg);
        }
    }
    let all = got.join("\n---\n");
    let ready = got
        .iter()
        .find(|m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 among:\n{all}"));
    assert!(
        ready.contains("STATUS="),
        "READY=1 without a status: {ready}"
    );
    assert!(watchdogs >= 3, "only {watchdogs} watchdog pings:\n{all}");
}

#[test]
fn takes_its_udp_socket_from_socket_activation() {
    let mut procs = Procs(Vec::new());
    let dir = scratch("activation");
    let mut buses = Vec::new();
    let Some(bus1) = start_bus(&mut buses, &dir) else {
        return;
    };
    if Command::new("systemd-socket-activate")
        .arg("--help")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        skip_or_fail("systemd-socket-activate is not installed (apt install systemd)");
        return;
    }
    let bus2 = start_bus(&mut buses, &dir).expect("a second bus");
    let port = 45421;
    let cfg = config(&dir, port, &["127.0.0.81", "127.0.0.82"]);
    let key = key(&dir);
    let log1 = dir.join("n1.log");

    // Node 1's socket is opened by systemd-socket-activate, which starts the
    // daemon when the first datagram arrives (as a .socket unit does). Had
    // the daemon tried to bind the address itself, it would fail: the
    // address is taken by the passed socket.
    let activated = Command::new("systemd-socket-activate")
        .arg("--datagram")
        .arg(format!("--listen=127.0.0.81:{port}"))
        .args(["-E", "VIGIL_LOG_STDERR=1"])
        .arg(DAEMON)
        .arg("--config")
        .arg(&cfg)
        .arg("--key")
        .arg(&key)
        .args(["--node", "1", "--bus", &bus1])
        .arg("--state-dir")
        .arg(dir.join("state1"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log1).unwrap())
        .spawn()
        .unwrap();
    procs.0.push(activated);
    std::thread::sleep(Duration::from_millis(300));

    // Node 2 starts normally; its heartbeats activate node 1.
    let log2 = dir.join("n2.log");
    let n2 = Command::new(DAEMON)
        .arg("--config")
        .arg(&cfg)
        .arg("--key")
        .arg(&key)
        .args(["--node", "2", "--bus", &bus2])
        .arg("--state-dir")
        .arg(dir.join("state2"))
        .env("VIGIL_LOG_STDERR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log2).unwrap())
        .spawn()
        .unwrap();
    procs.0.push(n2);

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let l1 = std::fs::read_to_string(&log1).unwrap_or_default();
        let l2 = std::fs::read_to_string(&log2).unwrap_or_default();
        let both = |l: &str| l.contains("new membership view") && l.contains("members=[1, 2]");
        if both(&l1) && both(&l2) {
            assert!(
                l1.contains("using the UDP socket passed by systemd")
                    && !l1.contains("not bound to this node's configured address"),
                "node 1 did not use the passed socket:\n{l1}"
            );
            assert!(l2.contains("bound the UDP socket"), "{l2}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no two-node view.\nnode 1 (activated):\n{l1}\nnode 2:\n{l2}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
