//! `vigil sandbox up|status|kill|start|partition|heal|down`: a whole
//! cluster on this machine, without root or systemd: each node is its
//! daemons (membership, CIB, executor, fencer, controller) with a private
//! `dbus-daemon` and state directory, the nodes talk UDP on 127.0.77.x,
//! the sandbox fence agent powers nodes off, and a demo configuration is
//! loaded.
//!
//! The sandbox directory (default `/tmp/vigil-sandbox-UID`) holds
//! `cluster.toml`, `authkey` and `nodes/NAME/` per node: `bus` (the bus
//! address, the same across restarts of the node), `pids` (`PID
//! STARTTIME` per process, what the fence agent kills), `cut` (the nodes
//! this one's links are cut from: `partition`), `logs/` and `state/`.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The daemons of a node, in the order they start.
const DAEMONS: [&str; 5] = [
    "vigil-membershipd",
    "vigil-cibd",
    "vigil-execd",
    "vigil-fenced",
    "vigil-controld",
];

/// The bus name each daemon takes (how the sandbox knows it is up).
const NAMES: [&str; 4] = [
    "org.vigil.membership1",
    "org.vigil.cib1",
    "org.vigil.executor1",
    "org.vigil.fencing1",
];

fn ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 77, i as u8)
}

/// The default sandbox directory.
pub fn default_dir() -> PathBuf {
    let uid = nix_uid();
    std::env::temp_dir().join(format!("vigil-sandbox-{uid}"))
}

fn nix_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(str::to_string))
        })
        .and_then(|u| u.parse().ok())
        .unwrap_or(0)
}

/// Where the daemons are: beside this `vigil`.
fn binaries() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let dir = exe
        .parent()
        .context("this program has no directory")?
        .to_path_buf();
    let missing: Vec<&str> = DAEMONS
        .iter()
        .copied()
        .filter(|d| !dir.join(d).exists())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the sandbox needs {} beside {} (build them all: cargo build --workspace --bins)",
            missing.join(", "),
            exe.display()
        );
    }
    Ok(dir)
}

/// Where the fence agents are: `VIGIL_AGENTS_DIR`, the source tree's
/// `agents/` (for a build in `target/`), or the installed ones.
fn agents_dir(bin: &Path) -> anyhow::Result<PathBuf> {
    let candidates = [
        std::env::var_os("VIGIL_AGENTS_DIR").map(PathBuf::from),
        bin.parent()
            .and_then(Path::parent)
            .map(|p| p.join("agents")),
        Some(PathBuf::from("/usr/lib/vigil/agents")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("fence_vigil_sandbox").exists())
        .context("cannot find the sandbox fence agent fence_vigil_sandbox (set VIGIL_AGENTS_DIR to the agents directory)")
}

/// A UDP port free on every node's address.
fn free_port(n: u32) -> anyhow::Result<u16> {
    for port in 5405..6405u16 {
        let ok = (1..=n).all(|i| UdpSocket::bind((ip(i), port)).is_ok());
        if ok {
            return Ok(port);
        }
    }
    bail!("no UDP port between 5405 and 6405 is free on 127.0.77.1-{n}")
}

/// `START` time of a process (field 22 of /proc/PID/stat).
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// Whether the process started at `start` still runs (a zombie does not:
/// where nothing reaps orphans, killed daemons linger as zombies).
fn alive(pid: u32, start: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return false;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields.first().is_some_and(|st| *st != "Z" && *st != "X") && fields.get(19) == Some(&start)
}

/// The node's processes from its pids file.
fn pids(node_dir: &Path) -> Vec<(u32, String)> {
    std::fs::read_to_string(node_dir.join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.parse().ok()?, f.next()?.to_string()))
        })
        .collect()
}

fn nodes(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir.join("nodes"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|(n, _)| n.trim_start_matches('n').parse::<u32>().unwrap_or(0));
    out
}

fn running(dir: &Path) -> Vec<String> {
    nodes(dir)
        .into_iter()
        .filter(|(_, d)| pids(d).iter().any(|(p, s)| alive(*p, s)))
        .map(|(n, _)| n)
        .collect()
}

/// Starts a process that outlives this command, recording it in the
/// node's pids file.
fn spawn(node_dir: &Path, program: &Path, args: &[String], log: &str) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt;
    let logs = node_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let err = std::fs::File::create(logs.join(log))?;
    let child = Command::new(program)
        .args(args)
        .env("VIGIL_LOG_STDERR", "1")
        .env_remove("VIGIL_BUS")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let pid = child.id();
    let start = start_time(pid).unwrap_or_default();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(node_dir.join("pids"))?;
    std::io::Write::write_all(&mut f, format!("{pid} {start}\n").as_bytes())?;
    Ok(pid)
}

/// Starts a node's bus and returns its address (a socket in the node's
/// directory: the same address when the node starts again).
fn start_bus(node_dir: &Path) -> anyhow::Result<String> {
    let socket = node_dir.join("bus.socket");
    let _ = std::fs::remove_file(&socket);
    let addr_file = node_dir.join("bus");
    let out = std::fs::File::create(&addr_file)?;
    use std::os::unix::process::CommandExt;
    let child = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .arg(format!("--address=unix:path={}", socket.display()))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start dbus-daemon (install the dbus package)")?;
    let pid = child.id();
    let start = start_time(pid).unwrap_or_default();
    std::fs::write(node_dir.join("pids"), format!("{pid} {start}\n"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = std::fs::read_to_string(&addr_file).unwrap_or_default();
        if a.ends_with('\n') && !a.trim().is_empty() {
            return Ok(a.trim().to_string());
        }
        if Instant::now() > deadline {
            bail!("dbus-daemon printed no address");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn wait_for_name(bus: &str, name: &str, what: &str, log: &Path) -> anyhow::Result<()> {
    let conn = zbus::connection::Builder::address(bus).build().await?;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if dbus
            .name_has_owner(zbus::names::BusName::try_from(name)?)
            .await
            .unwrap_or(false)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(10).collect();
            bail!(
                "{what} did not start; the end of its log ({}):\n{}",
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn demo_configuration(n: u32, dir: &Path) -> String {
    let nodes: String = (1..=n)
        .map(|i| format!("<node id=\"{i}\" uname=\"n{i}\"/>"))
        .collect();
    let hosts: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
    let two = n == 2;
    format!(
        r#"<configuration>
  <crm_config>
    <cluster_property_set id="cib-bootstrap-options">
      <nvpair id="opt-name" name="cluster-name" value="sandbox"/>
      <nvpair id="opt-fencing" name="stonith-enabled" value="true"/>{two_node_options}
    </cluster_property_set>
  </crm_config>
  <nodes>{nodes}</nodes>
  <resources>
    <primitive id="fence-sandbox" class="stonith" type="fence_vigil_sandbox">
      <instance_attributes id="fence-sandbox-attrs">
        <nvpair id="fence-sandbox-dir" name="sandbox_dir" value="{dir}"/>
        <nvpair id="fence-sandbox-hosts" name="pcmk_host_list" value="{hosts}"/>{two_node_device}
      </instance_attributes>
    </primitive>
    <group id="web">
      <primitive id="web-ip" class="ocf" provider="heartbeat" type="Dummy">
        <operations><op id="web-ip-monitor" name="monitor" interval="5s" timeout="20s"/></operations>
      </primitive>
      <primitive id="web-server" class="ocf" provider="heartbeat" type="Dummy">
        <operations><op id="web-server-monitor" name="monitor" interval="5s" timeout="20s"/></operations>
      </primitive>
    </group>
    <primitive id="db" class="ocf" provider="pacemaker" type="Dummy">
      <operations><op id="db-monitor" name="monitor" interval="5s" timeout="20s"/></operations>
    </primitive>
    <primitive id="db-backup" class="ocf" provider="pacemaker" type="Dummy">
      <operations><op id="db-backup-monitor" name="monitor" interval="5s" timeout="20s"/></operations>
    </primitive>
  </resources>
  <constraints>
    <rsc_colocation id="backup-apart-from-db" rsc="db-backup" with-rsc="db" score="-INFINITY"/>
  </constraints>
  <rsc_defaults>
    <meta_attributes id="rsc-defaults">
      <nvpair id="rsc-defaults-stickiness" name="resource-stickiness" value="100"/>{two_node_defaults}
    </meta_attributes>
  </rsc_defaults>
</configuration>"#,
        hosts = hosts.join(" "),
        dir = dir.display(),
        // Two nodes that lose each other both keep quorum and fence each
        // other: the one running more resources waits less (every
        // resource counts 1), and a random delay breaks a tie.
        two_node_options = if two {
            "\n      <nvpair id=\"opt-priority-fencing-delay\" name=\"priority-fencing-delay\" value=\"5s\"/>"
        } else {
            ""
        },
        two_node_device = if two {
            "\n        <nvpair id=\"fence-sandbox-delay\" name=\"pcmk_delay_max\" value=\"2s\"/>"
        } else {
            ""
        },
        two_node_defaults = if two {
            "\n      <nvpair id=\"rsc-defaults-priority\" name=\"priority\" value=\"1\"/>"
        } else {
            ""
        },
    )
}

/// `vigil sandbox up`.
pub fn up(dir: &Path, n: u32) -> anyhow::Result<()> {
    if !(1..=16).contains(&n) {
        bail!("a sandbox has 1 to 16 nodes (asked for {n})");
    }
    let up = running(dir);
    if !up.is_empty() {
        bail!(
            "a sandbox already runs in {} (nodes {}); `vigil sandbox down` stops it",
            dir.display(),
            up.join(", ")
        );
    }
    let bin = binaries()?;
    let agents = agents_dir(&bin)?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("nodes"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let port = free_port(n)?;
    let mut config =
        format!("[cluster]\nname = \"sandbox\"\nport = {port}\n\n[timings]\ntoken = \"1s\"\n");
    if n == 2 {
        // Either node alone keeps quorum; fencing decides who survives.
        config.push_str("\n[quorum]\ntwo_node = true\n");
    }
    for i in 1..=n {
        let _ = write!(
            config,
            "\n[[node]]\nid = {i}\nname = \"n{i}\"\naddresses = [\"{}\"]\n",
            ip(i)
        );
    }
    std::fs::write(dir.join("cluster.toml"), config)?;
    let key =
        vigil_membershipd::transport::AuthKey::try_generate().context("cannot generate a key")?;
    vigil_membershipd::transport::write_key(&dir.join("authkey"), &key)?;
    let rt = crate::bus::runtime()?;
    let mut buses = Vec::new();
    for i in 1..=n {
        let (nd, bus) = start_node(&rt, dir, &bin, &agents, i)?;
        buses.push((format!("n{i}"), nd, bus));
    }
    rt.block_on(async {
        let conn = zbus::connection::Builder::address(buses[0].2.as_str())
            .build()
            .await?;
        let cib = vigil_dbus::cib::ManagerProxy::new(&conn).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cib.synced().await.unwrap_or(false) {
            if Instant::now() > deadline {
                bail!("the CIB of n1 did not get in step with the cluster");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cib.replace("configuration", "", &demo_configuration(n, dir))
            .await
            .context("cannot load the demo configuration")?;
        anyhow::Ok(())
    })?;
    for (i, (name, nd, bus)) in buses.iter().enumerate() {
        let args = daemon_args(dir, &agents, i as u32 + 1, bus);
        spawn(
            nd,
            &bin.join("vigil-controld"),
            &args[4],
            "vigil-controld.log",
        )
        .with_context(|| format!("starting the controller of {name}"))?;
    }
    println!("a {n}-node sandbox cluster runs in {}", dir.display());
    for (name, nd, bus) in &buses {
        println!(
            "  {name}: bus {bus}  (logs in {})",
            nd.join("logs").display()
        );
    }
    println!(
        "\nAsk any node, for example the first:\n  export VIGIL_BUS='{}'\n  vigil status\n\
         Pull a node's plug with `vigil sandbox kill n2` (and power it on again with \
         `vigil sandbox start n2`), cut it off with `vigil sandbox partition n2` (and \
         `vigil sandbox heal`); stop everything with `vigil sandbox down`.",
        buses[0].2
    );
    Ok(())
}

/// The arguments of node `i`'s daemons, in the order of [`DAEMONS`].
fn daemon_args(dir: &Path, agents: &Path, i: u32, bus: &str) -> [Vec<String>; 5] {
    let name = format!("n{i}");
    let nd = dir.join("nodes").join(&name);
    let s = |what: &str| nd.join("state").join(what).display().to_string();
    let common = |extra: &[String]| -> Vec<String> {
        let mut v = vec![
            "--bus".to_string(),
            bus.to_string(),
            "--node-name".into(),
            name.clone(),
        ];
        v.extend_from_slice(extra);
        v
    };
    [
        vec![
            "--config".into(),
            dir.join("cluster.toml").display().to_string(),
            "--key".into(),
            dir.join("authkey").display().to_string(),
            "--node".into(),
            i.to_string(),
            "--bus".into(),
            bus.to_string(),
            "--state-dir".into(),
            s("membership"),
            "--cut-links-file".into(),
            nd.join("cut").display().to_string(),
        ],
        common(&["--state-dir".into(), s("cib")]),
        common(&[
            "--agent-state-dir".into(),
            s("agents"),
            "--systemd-bus".into(),
            bus.to_string(),
            "--fence-dir".into(),
            agents.display().to_string(),
        ]),
        common(&["--agent-dir".into(), agents.display().to_string()]),
        common(&[]),
    ]
}

/// Starts node `i`'s bus and its daemons but the controller, each once
/// the one before has its bus name; returns the node's directory and bus.
fn start_node(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    bin: &Path,
    agents: &Path,
    i: u32,
) -> anyhow::Result<(PathBuf, String)> {
    let name = format!("n{i}");
    let nd = dir.join("nodes").join(&name);
    std::fs::create_dir_all(nd.join("state"))?;
    let bus = start_bus(&nd)?;
    let args = daemon_args(dir, agents, i, &bus);
    for (k, daemon) in DAEMONS.iter().take(4).enumerate() {
        let log = format!("{daemon}.log");
        spawn(&nd, &bin.join(daemon), &args[k], &log)?;
        rt.block_on(wait_for_name(
            &bus,
            NAMES[k],
            &format!("{daemon} of {name}"),
            &nd.join("logs").join(&log),
        ))?;
    }
    Ok((nd, bus))
}

/// A node of the sandbox by name, or an error that lists them.
fn node_dir(dir: &Path, node: &str) -> anyhow::Result<PathBuf> {
    let nd = dir.join("nodes").join(node);
    if nd.is_dir() && node.starts_with('n') {
        return Ok(nd);
    }
    let names: Vec<String> = nodes(dir).into_iter().map(|(n, _)| n).collect();
    if names.is_empty() {
        bail!(
            "no sandbox in {} (`vigil sandbox up` starts one)",
            dir.display()
        );
    }
    bail!(
        "no node {node:?} in the sandbox {} (nodes: {})",
        dir.display(),
        names.join(", ")
    )
}

/// `vigil sandbox start NODE`: powers a node that is off on again (after
/// `kill`, or fencing); it rejoins the cluster.
pub fn start(dir: &Path, node: &str) -> anyhow::Result<()> {
    let nd = node_dir(dir, node)?;
    let i: u32 = node
        .trim_start_matches('n')
        .parse()
        .with_context(|| format!("{node:?} is not a sandbox node name"))?;
    if pids(&nd).iter().any(|(p, s)| alive(*p, s)) {
        bail!("{node} is on already (`vigil sandbox kill {node}` powers it off)");
    }
    // Old logs are kept beside the new ones.
    let logs = nd.join("logs");
    if logs.is_dir() {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let _ = std::fs::rename(&logs, nd.join(format!("logs.{stamp}")));
    }
    // Powered off, the node lost what a real one keeps in /run (a tmpfs):
    // its agents' state. A stale Dummy state file would otherwise make the
    // cluster find its resources still running here.
    let _ = std::fs::remove_dir_all(nd.join("state").join("agents"));
    let bin = binaries()?;
    let agents = agents_dir(&bin)?;
    let rt = crate::bus::runtime()?;
    let (nd, bus) = start_node(&rt, dir, &bin, &agents, i)?;
    let args = daemon_args(dir, &agents, i, &bus);
    spawn(
        &nd,
        &bin.join("vigil-controld"),
        &args[4],
        "vigil-controld.log",
    )
    .with_context(|| format!("starting the controller of {node}"))?;
    let _ = std::fs::remove_file(nd.join("off"));
    println!("{node} is on again and rejoins the cluster (bus {bus})");
    Ok(())
}

/// `vigil sandbox partition NODE...`: cuts the links between the given
/// nodes and the others (both ways), as a network split would.
pub fn partition(dir: &Path, cut_off: &[String]) -> anyhow::Result<()> {
    let all = nodes(dir);
    let mut side = std::collections::BTreeSet::new();
    for n in cut_off {
        node_dir(dir, n)?;
        side.insert(n.clone());
    }
    if side.is_empty() || side.len() == all.len() {
        bail!("name some of the nodes, not none or all: they are cut off from the rest");
    }
    let id = |n: &str| n.trim_start_matches('n').to_string();
    for (name, nd) in &all {
        let others: Vec<String> = all
            .iter()
            .map(|(n, _)| n)
            .filter(|n| side.contains(*n) != side.contains(name))
            .map(|n| id(n))
            .collect();
        std::fs::write(nd.join("cut"), others.join(" ") + "\n")
            .with_context(|| format!("cannot write {}", nd.join("cut").display()))?;
    }
    let rest: Vec<&str> = all
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !side.contains(*n))
        .collect();
    println!(
        "{} cut off from {}: each side sees the other gone (the side without quorum stops \
         its resources, the side with it fences the other); `vigil sandbox heal` restores the links",
        side.iter().cloned().collect::<Vec<_>>().join(", "),
        rest.join(", ")
    );
    Ok(())
}

/// `vigil sandbox heal`: restores every link `partition` cut.
pub fn heal(dir: &Path) -> anyhow::Result<()> {
    let all = nodes(dir);
    if all.is_empty() {
        bail!(
            "no sandbox in {} (`vigil sandbox up` starts one)",
            dir.display()
        );
    }
    for (_, nd) in &all {
        std::fs::write(nd.join("cut"), "")
            .with_context(|| format!("cannot write {}", nd.join("cut").display()))?;
    }
    println!("every link restored");
    Ok(())
}

/// `vigil sandbox status`.
pub fn status(dir: &Path) -> anyhow::Result<()> {
    let all = nodes(dir);
    if all.is_empty() {
        bail!(
            "no sandbox in {} (`vigil sandbox up` starts one)",
            dir.display()
        );
    }
    for (name, nd) in all {
        let ps = pids(&nd);
        let up = ps.iter().filter(|(p, s)| alive(*p, s)).count();
        let bus = std::fs::read_to_string(nd.join("bus")).unwrap_or_default();
        let state = if up == 0 {
            "off".to_string()
        } else if up == ps.len() {
            "running".to_string()
        } else {
            format!("{up} of {} processes running", ps.len())
        };
        println!("{name}: {state}  bus {}", bus.trim());
    }
    Ok(())
}

/// `vigil sandbox kill NODE`: pulls the node's plug, with the sandbox's
/// fence agent (as the cluster itself would).
pub fn kill(dir: &Path, node: &str) -> anyhow::Result<()> {
    node_dir(dir, node)?;
    let bin = binaries()?;
    let agent = agents_dir(&bin)?.join("fence_vigil_sandbox");
    let mut child = Command::new(&agent)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", agent.display()))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("the agent's stdin")?;
        writeln!(
            stdin,
            "action=off\nsandbox_dir={}\nplug={node}",
            dir.display()
        )?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "the fence agent could not power {node} off: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    println!("{node} is off (its processes were killed)");
    Ok(())
}

/// `vigil sandbox down`: every node's processes, then the directory.
pub fn down(dir: &Path) -> anyhow::Result<()> {
    let all = nodes(dir);
    if all.is_empty() && !dir.exists() {
        println!("no sandbox in {}", dir.display());
        return Ok(());
    }
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let mut left = Vec::new();
    for (_, nd) in &all {
        for (pid, start) in pids(nd) {
            if alive(pid, &start) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                left.push((pid, start));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while left.iter().any(|(p, s)| alive(*p, s)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    println!(
        "the sandbox in {} is down ({} processes stopped)",
        dir.display(),
        left.len()
    );
    Ok(())
}
