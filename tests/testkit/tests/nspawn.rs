//! Self-test of the system test tier: two real systemd nodes on a bridge.
//! Runs only with `VIGIL_SYSTEM_TIER=1` (as root); skips otherwise.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use vigil_testkit::nspawn::{Image, Node, NodeOptions, system_tier};

const BRIDGE: &str = "br-vigil-st";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `probe` until it gives a value, for up to 10 s.
fn eventually<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if Instant::now() > end => {
                panic!("timed out waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The host's `systemd-nspawn` processes this test process started.
fn our_nspawns() -> Vec<u32> {
    let me = std::process::id().to_string();
    fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            status.lines().any(|l| l == "Name:\tsystemd-nspawn")
                && status
                    .lines()
                    .any(|l| l.strip_prefix("PPid:").map(str::trim) == Some(&me))
        })
        .collect()
}

#[test]
fn two_nodes_on_a_bridge() {
    if !system_tier("two_nodes_on_a_bridge") {
        return;
    }
    let started = Instant::now();
    let image = Image::bookworm(&["iputils-ping"]);
    eprintln!(
        "image {} ready after {:.1?}",
        image.path().display(),
        started.elapsed()
    );
    assert!(
        image.path().join("usr/sbin/policy-rc.d").exists(),
        "the image has no policy-rc.d"
    );

    let shared = tempfile::tempdir().expect("temporary directory");
    let token = format!("vigil-selftest-{}", std::process::id());
    fs::write(shared.path().join("hello.txt"), &token).expect("write the shared file");

    let t = Instant::now();
    let n1 = Node::boot(
        "vst1",
        &image,
        &NodeOptions::new()
            .bridge(BRIDGE, "192.0.2.11/24")
            .bind_ro(shared.path(), "/mnt/host"),
    );
    let n2 = Node::boot(
        "vst2",
        &image,
        &NodeOptions::new().bridge(BRIDGE, "192.0.2.12/24"),
    );
    eprintln!("two nodes booted in {:.1?}", t.elapsed());

    for node in [&n1, &n2] {
        let name = node.name();
        let state = stdout(&node.exec(&["systemctl", "is-system-running"]));
        assert!(
            state == "running" || state == "degraded",
            "node {name}: systemctl is-system-running says {state:?}"
        );
        let pid1 = stdout(&node.exec(&["cat", "/proc/1/comm"]));
        assert_eq!(pid1, "systemd", "node {name}: PID 1 inside is not systemd");
        let hostname = stdout(&node.exec(&["cat", "/proc/sys/kernel/hostname"]));
        assert_eq!(hostname, name, "node {name}: wrong host name");
        let addresses = node.sh_ok("ip -4 -o addr show dev host0");
        let want = format!("{}/24", node.address().expect("bridged node"));
        assert!(
            addresses.contains(&want),
            "node {name}: host0 lacks {want}: {addresses}"
        );
        let machine_id = stdout(&node.exec(&["cat", "/etc/machine-id"]));
        assert_eq!(
            machine_id.len(),
            32,
            "node {name}: no machine ID of its own: {machine_id:?}"
        );
    }
    assert_ne!(
        stdout(&n1.exec(&["cat", "/etc/machine-id"])),
        stdout(&n2.exec(&["cat", "/etc/machine-id"])),
        "the two nodes share a machine ID"
    );

    // The nodes reach each other over the bridge.
    n1.sh_ok("ping -c 3 -i 0.2 -W 5 192.0.2.12");
    n2.sh_ok("ping -c 3 -i 0.2 -W 5 192.0.2.11");

    // The bind mount: visible, read-only, and only where asked for.
    let seen = n1.exec(&["cat", "/mnt/host/hello.txt"]);
    assert_eq!(
        stdout(&seen),
        token,
        "node vst1 does not see the bind-mounted host file: {seen:?}"
    );
    assert!(
        !n1.exec(&["touch", "/mnt/host/written"]).status.success(),
        "node vst1 could write into a read-only bind mount"
    );
    assert!(
        !n2.exec(&["test", "-e", "/mnt/host/hello.txt"])
            .status
            .success(),
        "node vst2 sees a bind mount of vst1's"
    );

    // Files written into a running node, with their mode.
    n2.write_file("/etc/vigil/selftest.conf", "answer = 42\n", 0o640);
    let written = n2.sh_ok("stat -c %a /etc/vigil/selftest.conf && cat /etc/vigil/selftest.conf");
    assert_eq!(
        written, "640\nanswer = 42\n",
        "node vst2: write_file wrote something else"
    );
    assert!(
        !n1.exec(&["test", "-e", "/etc/vigil/selftest.conf"])
            .status
            .success(),
        "a file written into vst2 appeared in vst1 (shared overlay?)"
    );

    // systemd units and the journal.
    n1.sh_ok("systemd-run --unit=vigil-selftest sleep 1000");
    let state = stdout(&n1.exec(&["systemctl", "show", "-P", "ActiveState", "vigil-selftest"]));
    assert_eq!(state, "active", "node vst1: vigil-selftest is not active");
    eventually("the journal of vigil-selftest on vst1", || {
        let out = n1.exec(&["journalctl", "-u", "vigil-selftest", "--no-pager"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.contains("Started vigil-selftest.service") {
            Ok(())
        } else {
            Err(format!("{}: {text}", out.status))
        }
    });

    // Pulling vst1's plug ends it at once and leaves vst2 running.
    let pid1 = n1.pid1();
    let t = Instant::now();
    n1.kill();
    eprintln!("vst1 powered off in {:.1?}", t.elapsed());
    assert!(
        !Path::new(&format!("/proc/{pid1}")).exists(),
        "vst1's systemd (host PID {pid1}) still exists after kill"
    );
    assert!(!n1.running(), "vst1 still counts as running after kill");
    assert!(n2.running(), "vst2 went down with vst1");
    let state = stdout(&n2.exec(&["systemctl", "is-system-running"]));
    assert!(
        state == "running" || state == "degraded",
        "vst2 is {state:?} after vst1 was killed"
    );
    assert!(
        !n2.sh("ping -c 1 -W 1 192.0.2.11").status.success(),
        "vst2 still reaches vst1's address after vst1 was killed"
    );

    // Dropping the nodes leaves nothing running.
    let pid1 = n2.pid1();
    drop(n2);
    drop(n1);
    assert!(
        !Path::new(&format!("/proc/{pid1}")).exists(),
        "vst2's systemd (host PID {pid1}) outlived the node"
    );
    let left = our_nspawns();
    assert!(
        left.is_empty(),
        "systemd-nspawn processes outlived their nodes: {left:?}"
    );
    eprintln!("system tier self-test took {:.1?}", started.elapsed());
}
