//! The power switch of the system test tier and `fence_vigil_container`
//! against it: first on the loopback with `sleep` processes for nodes (no
//! root needed), then, with `VIGIL_SYSTEM_TIER=1` (as root), from inside a
//! real systemd node fencing another over their bridge.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vigil_testkit::nspawn::{BridgeEndpoint, Image, Node, NodeOptions, system_tier};
use vigil_testkit::power_switch::{DEFAULT_PORT, MAX_REQUEST, PowerSwitch};

const BRIDGE: &str = "br-vigil-pw";
/// Where the nodes see `agents/`.
const AGENTS_IN_NODE: &str = "/opt/vigil/agents";

fn agents_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../agents")
        .canonicalize()
        .expect("the agents directory")
}

/// Exit code, stdout, stderr.
fn parts(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the container agent on the host with `stdin`.
fn agent(stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(agents_dir().join("fence_vigil_container"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fence_vigil_container");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write the agent's stdin");
    parts(&child.wait_with_output().expect("wait for the agent"))
}

/// One raw request to the switch, and its reply line.
fn ask(switch: &PowerSwitch, request: &[u8]) -> String {
    let mut conn = TcpStream::connect(switch.address()).expect("connect to the switch");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    conn.write_all(request).expect("send the request");
    let mut reply = String::new();
    BufReader::new(conn)
        .read_line(&mut reply)
        .expect("read the reply");
    reply
}

/// A `sleep` standing in for a container's systemd; killed on drop.
struct Sleep(Child);

impl Sleep {
    fn new() -> Sleep {
        Sleep(
            Command::new("sleep")
                .arg("1000")
                .spawn()
                .expect("start sleep"),
        )
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn switch_and_agent_on_the_loopback() {
    let switch = PowerSwitch::serve(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let port = switch.address().port();
    let mut n1 = Sleep::new();
    let mut n2 = Sleep::new();
    switch.plug("n1", n1.0.id());
    switch.plug("n2", n2.0.id());
    let base = format!("ip=127.0.0.1\nipport={port}\n");
    let run = |lines: &str| agent(&format!("{base}{lines}"));

    assert_eq!(run("action=monitor\n").0, 0, "monitor");
    let (code, out, err) = run("action=list\n");
    assert_eq!((code, out.as_str()), (0, "n1\nn2\n"), "list: {err}");
    let (code, out, _) = run("action=list-status\n");
    assert_eq!((code, out.as_str()), (0, "n1,,ON\nn2,,ON\n"));
    let (code, out, _) = run("action=status\nnodename=n2\nport=n2\n");
    assert_eq!(
        (code, out.as_str()),
        (0, "Status: ON\n"),
        "status of a running node"
    );

    let t = Instant::now();
    let (code, out, err) = run("action=off\nnodename=n2\nport=n2\n");
    assert_eq!(
        (code, out.as_str()),
        (0, "Success: Powered OFF\n"),
        "off: {err}"
    );
    eprintln!("off through the switch took {:.0?}", t.elapsed());
    let status = n2.0.try_wait().expect("poll n2");
    assert!(
        status.is_some_and(|s| std::os::unix::process::ExitStatusExt::signal(&s) == Some(9)),
        "n2's process was not killed by SIGKILL: {status:?}"
    );
    let (code, out, _) = run("action=status\nplug=n2\n");
    assert_eq!(
        (code, out.as_str()),
        (2, "Status: OFF\n"),
        "status after off"
    );
    assert!(
        n1.0.try_wait().expect("poll n1").is_none(),
        "n1 went down too"
    );

    // This switch cannot power nodes on: on fails, reboot fences anyway.
    let (code, _, err) = run("action=on\nplug=n2\n");
    assert_eq!(code, 1, "on");
    assert!(err.contains("cannot power n2 on"), "{err}");
    let (code, out, err) = run("action=reboot\nplug=n2\n");
    assert_eq!(
        (code, out.as_str()),
        (0, "Success: Rebooted\n"),
        "reboot: {err}"
    );
    assert!(err.contains("stays off"), "{err}");
    let (code, _, err) = run("action=on\nplug=n1\n");
    assert_eq!(code, 0, "on for a node that runs: {err}");
    let (code, _, err) = run("action=status\nplug=n9\n");
    assert_eq!(code, 1, "an unknown plug");
    assert!(err.contains("unknown plug n9"), "{err}");

    // A PID that ended by itself is off, and a later process of the same
    // PID would not be the plugged-in one.
    let _ = n1.0.kill();
    let _ = n1.0.wait();
    let (code, ..) = run("action=status\nplug=n1\n");
    assert_eq!(code, 2, "status of a node whose process ended");

    // Requests outside the protocol.
    assert!(ask(&switch, b"explode n1\n").starts_with("error unknown request"));
    assert!(ask(&switch, b"off\n").starts_with("error unknown request"));
    assert!(ask(&switch, b"off a b\n").starts_with("error unknown request"));
    assert_eq!(ask(&switch, b"status n2\r\n"), "off\n");
    let long = vec![b'x'; MAX_REQUEST + 10];
    assert!(ask(&switch, &long).starts_with("error request longer"));
    assert!(ask(&switch, b"\xff\xfe\n").starts_with("error the request is not UTF-8"));

    let log = switch.log();
    assert_eq!(
        log.iter().filter(|r| *r == "off n2").count(),
        2,
        "off and reboot each asked once: {log:?}"
    );
    assert_eq!(
        &log[..7],
        [
            "list",
            "list",
            "list",
            "status n1",
            "status n2",
            "status n2",
            "off n2"
        ],
        "{log:?}"
    );
}

#[test]
fn fences_a_container_node_from_another() {
    if !system_tier("fences_a_container_node_from_another") {
        return;
    }
    let started = Instant::now();
    let image = Image::bookworm(&[]);
    let agents = agents_dir();
    // The switch sits on the nodes' bridge at 192.0.2.1 in a network
    // namespace of its own; the host's network is left alone.
    let station = BridgeEndpoint::attach(BRIDGE, "192.0.2.1/24");
    let switch =
        station.run(|| PowerSwitch::serve(SocketAddr::from((station.address(), DEFAULT_PORT))));
    let options = |address: &str| {
        NodeOptions::new()
            .bridge(BRIDGE, address)
            .bind_ro(&agents, AGENTS_IN_NODE)
    };
    let n1 = Node::boot("pw-n1", &image, &options("192.0.2.21/24"));
    let n2 = Node::boot("pw-n2", &image, &options("192.0.2.22/24"));
    eprintln!("two nodes booted after {:.1?}", started.elapsed());
    switch.plug("pw-n1", n1.pid1());
    switch.plug("pw-n2", n2.pid1());
    let n2_pid1 = n2.pid1();

    // Runs the agent in node 1 with `stdin`, as vigil-fenced would there.
    let agent_in_n1 = |stdin: &str| {
        let t = Instant::now();
        let out = n1.exec(&[
            "/bin/sh",
            "-c",
            "printf '%s' \"$1\" | \"$0\"",
            &format!("{AGENTS_IN_NODE}/fence_vigil_container"),
            &format!("ip=192.0.2.1\n{stdin}"),
        ]);
        let (code, stdout, stderr) = parts(&out);
        eprintln!(
            "in pw-n1: {:?} -> {code} in {:.0?} {stdout:?} {stderr:?}",
            stdin.replace('\n', " "),
            t.elapsed()
        );
        (code, stdout, stderr)
    };

    let (code, _, err) = agent_in_n1("action=monitor\n");
    assert_eq!(code, 0, "monitor from pw-n1: {err}");
    let (code, out, err) = agent_in_n1("action=list\n");
    assert_eq!((code, out.as_str()), (0, "pw-n1\npw-n2\n"), "list: {err}");
    let (code, out, err) = agent_in_n1("action=status\nnodename=pw-n2\nport=pw-n2\n");
    assert_eq!((code, out.as_str()), (0, "Status: ON\n"), "status: {err}");
    let by_options = n1.exec(&[
        &format!("{AGENTS_IN_NODE}/fence_vigil_container"),
        "-o",
        "status",
        "-a",
        "192.0.2.1",
        "-n",
        "pw-n2",
    ]);
    assert_eq!(parts(&by_options).0, 0, "status by options: {by_options:?}");

    let t = Instant::now();
    let (code, out, err) = agent_in_n1("action=off\nnodename=pw-n2\nport=pw-n2\n");
    assert_eq!(
        (code, out.as_str()),
        (0, "Success: Powered OFF\n"),
        "off: {err}"
    );
    eprintln!("pw-n2 fenced from pw-n1 in {:.1?}", t.elapsed());
    let end = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{n2_pid1}")).exists() || n2.running() {
        assert!(
            Instant::now() < end,
            "pw-n2's systemd (host PID {n2_pid1}) is still there after off"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, out, err) = agent_in_n1("action=status\nnodename=pw-n2\nport=pw-n2\n");
    assert_eq!(
        (code, out.as_str()),
        (2, "Status: OFF\n"),
        "status after off: {err}"
    );
    assert!(n1.running(), "pw-n1 went down with pw-n2");

    // A switch port nobody listens on fails at once from inside too.
    let t = Instant::now();
    let (code, _, err) = agent_in_n1("ipport=5411\naction=status\nplug=pw-n2\n");
    assert_eq!(code, 1, "status against a closed port: {err}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );

    let log = switch.log();
    assert_eq!(
        log,
        [
            "list",
            "list",
            "status pw-n2",
            "status pw-n2",
            "off pw-n2",
            "status pw-n2"
        ],
        "the switch's requests"
    );
    assert_eq!(log.iter().filter(|r| *r == "off pw-n2").count(), 1);
    drop(switch);
    drop(station);
    eprintln!("power switch system test took {:.1?}", started.elapsed());
}
