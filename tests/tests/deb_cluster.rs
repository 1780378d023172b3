//! System tier: the .deb on three real systemd nodes. Each node boots
//! from the Debian image, installs the package that `packaging/build`
//! made (`VIGIL_PACKAGES_DIR`), gets the cluster's configuration and key,
//! and runs the stack with `systemctl start vigil.target`. Then, as an
//! administrator would: the three nodes are online, `busctl introspect`
//! of every service matches its contract, a Dummy resource runs and its
//! history is in the journal under `VIGIL_RESOURCE`, a daemon killed is
//! restarted by systemd and the cluster carries on, and `systemctl stop
//! vigil.target` on the node running the resource moves it away first.
//!
//! Runs only with `VIGIL_SYSTEM_TIER=1` (as root) and the packages built;
//! skips otherwise.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vigil_testkit::nspawn::{BridgeEndpoint, Image, Node, NodeOptions, system_tier};
use vigil_testkit::power_switch::{DEFAULT_PORT, PowerSwitch};

const BRIDGE: &str = "br-vigil-deb";
const SERVICES: [(&str, &str, &str); 5] = [
    (
        "vigil-membershipd",
        "org.vigil.membership1",
        "/org/vigil/membership1",
    ),
    ("vigil-cibd", "org.vigil.cib1", "/org/vigil/cib1"),
    ("vigil-execd", "org.vigil.executor1", "/org/vigil/executor1"),
    ("vigil-fenced", "org.vigil.fencing1", "/org/vigil/fencing1"),
    (
        "vigil-controld",
        "org.vigil.controller1",
        "/org/vigil/controller1",
    ),
];

fn address(i: usize) -> String {
    format!("192.0.2.{}", 20 + i)
}

fn eventually<T>(what: &str, secs: u64, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("timed out waiting for {what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// The node a resource is started on, per `vigil status` on `node`.
fn started_on(node: &Node, rsc: &str) -> Option<String> {
    let out = node.sh("vigil status");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("* {rsc}\t")))
        .and_then(|l| l.split("Started ").nth(1))
        .and_then(|n| n.split_whitespace().next())
        .map(str::to_string)
}

#[test]
fn the_package_runs_a_cluster_on_real_systemd() {
    const T: &str = "the_package_runs_a_cluster_on_real_systemd";
    if !system_tier(T) {
        return;
    }
    let Some(dir) = std::env::var_os("VIGIL_PACKAGES_DIR").map(PathBuf::from) else {
        panic!("{T}: set VIGIL_PACKAGES_DIR to what packaging/build made (.ci/run does)");
    };
    let deb = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".deb"))
        .expect("a .deb in VIGIL_PACKAGES_DIR");
    let started = Instant::now();
    let image = Image::bookworm(&["resource-agents", "openssh-server", "openssh-client"]);
    eprintln!("image ready after {:.1?}", started.elapsed());
    let nodes: Vec<Node> = (1..=3)
        .map(|i| {
            Node::boot(
                &format!("n{i}"),
                &image,
                &NodeOptions::new()
                    .bridge(BRIDGE, &format!("{}/24", address(i)))
                    .bind_ro(&dir, "/packages"),
            )
        })
        .collect();
    eprintln!("nodes booted after {:.1?}", started.elapsed());
    // Installed: enabled, but nothing runs before the cluster is set up.
    for n in &nodes {
        n.sh_ok(&format!("dpkg -i /packages/{deb}"));
        let enabled = n.sh_ok("systemctl is-enabled vigil.target");
        assert_eq!(enabled.trim(), "enabled", "on {}", n.name());
        let active = n.sh("systemctl is-active vigil-cibd.service");
        assert_ne!(
            String::from_utf8_lossy(&active.stdout).trim(),
            "active",
            "nothing starts before the cluster is set up"
        );
        n.sh_ok("getent passwd hacluster && getent group haclient");
    }
    // Root on n1 reaches the others with ssh, as administrators set up.
    let n1 = &nodes[0];
    n1.sh_ok(
        "mkdir -p -m 700 /root/.ssh && ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519 \
         && printf 'Host *\\n  StrictHostKeyChecking accept-new\\n' >/root/.ssh/config",
    );
    let public = n1.sh_ok("cat /root/.ssh/id_ed25519.pub");
    for n in &nodes[1..] {
        n.write_file("/root/.ssh/authorized_keys", &public, 0o600);
        n.sh_ok("systemctl start ssh.service");
    }
    // `vigil cluster setup` from n1: the same configuration and key on
    // every node; a second one is refused; `start --all` starts them all.
    let spec: Vec<String> = (1..=3).map(|i| format!("n{i}={}", address(i))).collect();
    let setup = format!("vigil cluster setup --name debtest {}", spec.join(" "));
    let out = n1.sh_ok(&setup);
    assert!(
        out.contains("cluster debtest set up on n1, n2, n3"),
        "{out}"
    );
    let again = n1.sh(&setup);
    let said = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(
        !again.status.success()
            && said.contains("set up already")
            && said.contains("nothing was written"),
        "{said}"
    );
    let fingerprints: BTreeSet<String> = nodes
        .iter()
        .map(|n| {
            n.sh_ok("vigil-membershipd --check")
                .split("key ")
                .nth(1)
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .collect();
    assert_eq!(
        fingerprints.len(),
        1,
        "one key everywhere: {fingerprints:?}"
    );
    n1.sh_ok("vigil cluster start --all");
    eventually("three nodes online", 60, || {
        let out = n1.sh("vigil status");
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        if s.contains("Online: [ n1 n2 n3 ]") {
            Ok(())
        } else {
            Err(format!("{s}{}", String::from_utf8_lossy(&out.stderr)))
        }
    });
    eprintln!("cluster up after {:.1?}", started.elapsed());
    // What each service serves is its contract.
    for (unit, name, path) in SERVICES {
        n1.sh_ok(&format!(
            "busctl introspect --xml-interface {name} {path} | diff -B -u /usr/share/dbus-1/interfaces/{name}.xml -"
        ));
        let state = n1.sh_ok(&format!("systemctl is-active {unit}"));
        assert_eq!(state.trim(), "active", "{unit}");
    }
    // Fencing through the container fence agent and the test's power
    // switch on the bridge.
    let station = BridgeEndpoint::attach(BRIDGE, "192.0.2.1/24");
    let switch = station.run(|| PowerSwitch::serve((station.address(), DEFAULT_PORT).into()));
    for n in &nodes {
        switch.plug(n.name(), n.pid1());
    }
    n1.sh_ok(
        "vigil resource create fence stonith:fence_vigil_container ip=192.0.2.1 \
         pcmk_host_list='n1 n2 n3'",
    );
    n1.sh_ok("vigil resource create web ocf:heartbeat:Dummy");
    let on = eventually("web to start", 60, || {
        started_on(n1, "web")
            .ok_or_else(|| String::from_utf8_lossy(&n1.sh("vigil status").stdout).into_owned())
    });
    let home = nodes.iter().find(|n| n.name() == on).unwrap();
    let journal = eventually("web's history in the journal", 30, || {
        let s = home.sh_ok("journalctl -o cat VIGIL_RESOURCE=web");
        if s.contains("start") { Ok(s) } else { Err(s) }
    });
    eprintln!("journal of web on {on}:\n{journal}");
    // A floating address, kept with web, on the bridge.
    n1.sh_ok("vigil resource create vip ocf:heartbeat:IPaddr2 ip=192.0.2.100 cidr_netmask=24");
    n1.sh_ok("vigil constraint colocation add vip web INFINITY");
    let vip_on = eventually("the address to come up with web", 60, || {
        match (started_on(n1, "vip"), started_on(n1, "web")) {
            (Some(a), Some(b)) if a == b => Ok(a),
            other => Err(format!("{other:?}")),
        }
    });
    let vip_node = nodes.iter().find(|n| n.name() == vip_on).unwrap();
    let addrs = vip_node.sh_ok("ip -o -4 addr show");
    assert!(addrs.contains("192.0.2.100/24"), "on {vip_on}:\n{addrs}");
    // The package reinstalled (an upgrade) while the cluster runs: the
    // daemons keep running, nothing moves.
    let pid = vip_node.sh_ok("systemctl show -p MainPID --value vigil-controld.service");
    let out = vip_node.sh_ok(&format!("dpkg -i /packages/{deb}"));
    assert!(
        out.contains("restart vigil.target"),
        "the upgrade says how to restart:\n{out}"
    );
    let after = vip_node.sh_ok("systemctl show -p MainPID --value vigil-controld.service");
    assert_eq!(pid, after, "an upgrade restarts nothing by itself");
    assert_eq!(started_on(n1, "vip").as_deref(), Some(vip_on.as_str()));
    // A daemon killed: systemd restarts it and the cluster carries on.
    let other = nodes.iter().find(|n| n.name() != on).unwrap();
    other.sh_ok("kill -9 \"$(systemctl show -p MainPID --value vigil-cibd.service)\"");
    eventually("systemd to restart vigil-cibd", 30, || {
        let s = other.sh("systemctl show -p NRestarts --value vigil-cibd.service");
        let restarts = String::from_utf8_lossy(&s.stdout).trim().to_string();
        let active = other.sh("systemctl is-active vigil-cibd.service");
        if restarts != "0" && String::from_utf8_lossy(&active.stdout).trim() == "active" {
            Ok(())
        } else {
            Err(format!("NRestarts={restarts}"))
        }
    });
    eventually("the cluster whole again", 60, || {
        let s = String::from_utf8_lossy(&other.sh("vigil status").stdout).into_owned();
        if s.contains("Online: [ n1 n2 n3 ]") && s.contains("web\t") {
            Ok(())
        } else {
            Err(s)
        }
    });
    // The node running web stops its stack: web moves away first.
    home.sh_ok("systemctl stop vigil.target");
    let survivor = nodes.iter().find(|n| n.name() != on).unwrap();
    let moved = eventually("web to run elsewhere", 60, || {
        match started_on(survivor, "web") {
            Some(n) if n != on => Ok(n),
            other => Err(format!("{other:?}")),
        }
    });
    eprintln!(
        "web moved from {on} to {moved}; all done after {:.1?}",
        started.elapsed()
    );
    let stopped = home.sh("systemctl is-active vigil-controld.service");
    assert_ne!(String::from_utf8_lossy(&stopped.stdout).trim(), "active");
    let log = home.sh_ok("journalctl -o cat -u vigil-controld.service");
    assert!(
        log.contains("controller stopping") || log.contains("controller stopped"),
        "the controller stopped cleanly:\n{log}"
    );
    assert!(
        !switch.log().iter().any(|r| r.starts_with("off")),
        "a clean stop fences nobody: {:?}",
        switch.log()
    );
    // Back, then web's node loses power: it is fenced through the agent
    // and web comes back on a survivor.
    home.sh_ok("systemctl start vigil.target");
    eventually("three nodes online again", 60, || {
        let s = String::from_utf8_lossy(&survivor.sh("vigil status").stdout).into_owned();
        if s.contains("Online: [ n1 n2 n3 ]") {
            Ok(())
        } else {
            Err(s)
        }
    });
    let victim = nodes.iter().find(|n| n.name() == moved).unwrap();
    let watcher = nodes.iter().find(|n| n.name() != moved).unwrap();
    victim.kill();
    let after = eventually(
        "web on a survivor after the power-off",
        90,
        || match started_on(watcher, "web") {
            Some(n) if n != moved => Ok(n),
            other => Err(format!("{other:?}")),
        },
    );
    let offs: Vec<String> = switch
        .log()
        .into_iter()
        .filter(|r| r.starts_with("off"))
        .collect();
    assert_eq!(
        offs,
        [format!("off {moved}")],
        "fenced once: {:?}",
        switch.log()
    );
    eprintln!(
        "{moved} powered off, fenced, web on {after}; done after {:.1?}",
        started.elapsed()
    );
}
