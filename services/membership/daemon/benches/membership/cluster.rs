//! A cluster of real `vigil-membershipd` processes on loopback, each with
//! its own private D-Bus bus, and bench clients on those buses.
//!
//! Every process started here is a child of the bench and is killed when
//! the [`Cluster`] is dropped (also when the bench panics). When `setpriv`
//! is installed, children are also started with `--pdeathsig KILL`, so that
//! they die with the bench even if it is killed outright; they are started
//! from the main thread only, since the death signal follows the thread
//! that started them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use zbus::{MatchRule, MessageStream};

use vigil_membershipd::{config, transport};

/// The daemon's object path and bus name.
pub const PATH: &str = "/org/vigil/membership1";
pub const NAME: &str = "org.vigil.membership1";

pub use vigil_dbus::membership::{GroupProxy, ManagerProxy};

/// A view as a node reports it: ring id (sequence, representative) and
/// members.
pub type ViewInfo = ((u64, u32), Vec<u32>);

/// A `ViewChanged` signal as the bench received it.
#[derive(Debug, Clone)]
pub struct ViewEvent {
    pub node: u32,
    pub at: Instant,
    pub ring: (u64, u32),
    pub members: Vec<u32>,
}

/// Loopback addresses and a UDP port free on all of them.
#[derive(Debug, Clone)]
pub struct Net {
    pub addrs: Vec<Ipv4Addr>,
    pub port: u16,
}

impl Net {
    /// `n` addresses 127.A.B.1..n (A.B from the process id, so that
    /// concurrent runs rarely share addresses) and a port that is free on
    /// all of them right now.
    pub fn pick(n: u32) -> anyhow::Result<Net> {
        let pid = std::process::id();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let a = 100 + (pid % 100) as u8;
        let b = ((pid / 100) ^ nanos) as u8;
        let addrs: Vec<Ipv4Addr> = (1..=n).map(|i| Ipv4Addr::new(127, a, b, i as u8)).collect();
        let mut seed = u64::from(nanos) ^ (u64::from(pid) << 20);
        for _ in 0..200 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let port = 20_000 + ((seed >> 33) % 40_000) as u16;
            let all_free = addrs
                .iter()
                .map(|a| UdpSocket::bind(SocketAddrV4::new(*a, port)))
                .collect::<Result<Vec<_>, _>>()
                .is_ok();
            if all_free {
                return Ok(Net { addrs, port });
            }
        }
        bail!("no free UDP port on {} loopback addresses", addrs.len())
    }

    /// The cluster configuration for these addresses, default timings.
    pub fn config_toml(&self, name: &str) -> String {
        let mut s = format!("[cluster]\nname = \"{name}\"\nport = {}\n", self.port);
        for (i, a) in self.addrs.iter().enumerate() {
            let id = i + 1;
            s.push_str(&format!(
                "\n[[node]]\nid = {id}\nname = \"n{id}\"\naddresses = [\"{a}\"]\n"
            ));
        }
        s
    }

    /// The configuration, parsed by the daemon's own parser.
    pub fn config(&self, name: &str) -> anyhow::Result<config::ClusterConfig> {
        config::parse(&self.config_toml(name), "bench.toml")
            .map_err(|e| anyhow::anyhow!("the bench's cluster configuration is wrong:\n{e}"))
    }
}

/// Whether `setpriv` can tie children's lives to the bench.
fn setpriv() -> Option<PathBuf> {
    ["/usr/bin/setpriv", "/bin/setpriv"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn command(program: &Path) -> Command {
    match setpriv() {
        Some(sp) => {
            let mut c = Command::new(sp);
            c.arg("--pdeathsig").arg("KILL").arg("--").arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// One private bus (`dbus-daemon --session`).
#[derive(Debug)]
struct Bus {
    child: Child,
    address: String,
    _stdout: BufReader<ChildStdout>,
}

impl Bus {
    fn start() -> anyhow::Result<Bus> {
        let mut child = command(Path::new("dbus-daemon"))
            .args(["--session", "--print-address", "--nofork"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start dbus-daemon (is it installed?)")?;
        let Some(out) = child.stdout.take() else {
            kill(&mut child);
            bail!("dbus-daemon has no stdout");
        };
        let mut out = BufReader::new(out);
        let mut address = String::new();
        if out.read_line(&mut address).is_err() || address.trim().is_empty() {
            kill(&mut child);
            bail!("dbus-daemon printed no address");
        }
        Ok(Bus {
            child,
            address: address.trim().to_string(),
            _stdout: out,
        })
    }
}

/// The daemons, their buses and the bench's connections to those buses.
#[derive(Debug)]
pub struct Cluster {
    pub n: u32,
    pub cfg: config::ClusterConfig,
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    config_path: PathBuf,
    key_path: PathBuf,
    buses: Vec<Bus>,
    daemons: Vec<Option<Child>>,
    starts: Vec<u32>,
    /// The bench's connection to each node's bus (index: node id - 1).
    pub conns: Vec<zbus::Connection>,
    /// `ViewChanged` signals of every node, as received.
    pub views: mpsc::UnboundedReceiver<ViewEvent>,
    /// Pids of the daemons and buses when last asked (for CPU accounting).
    pub daemon_pids: BTreeMap<u32, u32>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in self.daemons.iter_mut().flatten() {
            kill(d);
        }
        for b in &mut self.buses {
            kill(&mut b.child);
        }
        if std::env::var_os("VIGIL_BENCH_KEEP").is_some()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("keeping the daemons' logs in {}", dir.keep().display());
        }
    }
}

impl Cluster {
    /// Starts `n` buses and daemons and connects to every bus. Must be
    /// called from the main thread (see the module doc). Does not wait for
    /// the view to form: see [`Cluster::wait_formed`].
    pub async fn start(n: u32) -> anyhow::Result<Cluster> {
        let net = Net::pick(n)?;
        let cfg = net.config("bench")?;
        let dir = tempfile::Builder::new()
            .prefix("vigil-membership-bench")
            .tempdir()?;
        let config_path = dir.path().join("cluster.toml");
        std::fs::write(&config_path, net.config_toml("bench"))?;
        let key_path = dir.path().join("authkey");
        transport::write_key(&key_path, &transport::AuthKey::generate())?;
        let mut c = Cluster {
            n,
            cfg,
            dir_path: dir.path().to_path_buf(),
            dir: Some(dir),
            config_path,
            key_path,
            buses: Vec::new(),
            daemons: Vec::new(),
            starts: vec![0; n as usize],
            conns: Vec::new(),
            views: mpsc::unbounded_channel().1,
            daemon_pids: BTreeMap::new(),
        };
        for _ in 0..n {
            c.buses.push(Bus::start()?);
            c.daemons.push(None);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        c.views = rx;
        for node in 1..=n {
            let conn =
                zbus::connection::Builder::address(c.buses[node as usize - 1].address.as_str())
                    .max_queued(NonZeroUsize::new(1 << 20).expect("not zero"))
                    .build()
                    .await
                    .context("cannot connect to a private bus")?;
            watch_views(&conn, node, tx.clone()).await?;
            c.conns.push(conn);
        }
        for node in 1..=n {
            c.start_daemon(node)?;
        }
        for node in 1..=n {
            c.wait_on_bus(node, Duration::from_secs(20)).await?;
        }
        Ok(c)
    }

    /// Starts (or restarts) the daemon of `node`.
    pub fn start_daemon(&mut self, node: u32) -> anyhow::Result<()> {
        let i = node as usize - 1;
        self.starts[i] += 1;
        let log = self
            .dir_path
            .join(format!("node{node}.{}.log", self.starts[i]));
        let log = std::fs::File::create(&log)?;
        let child = command(Path::new(env!("CARGO_BIN_EXE_vigil-membershipd")))
            .arg("--config")
            .arg(&self.config_path)
            .arg("--key")
            .arg(&self.key_path)
            .arg("--node")
            .arg(node.to_string())
            .arg("--bus")
            .arg(&self.buses[i].address)
            .arg("--state-dir")
            .arg(self.dir_path.join(format!("state{node}")))
            .env("VIGIL_LOG_STDERR", "1")
            .env(
                "RUST_LOG",
                std::env::var("VIGIL_BENCH_LOG").unwrap_or_else(|_| "info,zbus=warn".into()),
            )
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("VIGIL_BUS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start vigil-membershipd")?;
        self.daemon_pids.insert(node, child.id());
        self.daemons[i] = Some(child);
        Ok(())
    }

    /// Sends SIGKILL to the daemon of `node` and returns right after the
    /// signal (the reaping happens in [`Cluster::reap`]).
    pub fn sigkill(&mut self, node: u32) -> anyhow::Result<()> {
        match &mut self.daemons[node as usize - 1] {
            Some(c) => Ok(c.kill()?),
            None => bail!("node {node} is not running"),
        }
    }

    /// Reaps a daemon killed with [`Cluster::sigkill`].
    pub fn reap(&mut self, node: u32) {
        if let Some(mut c) = self.daemons[node as usize - 1].take() {
            let _ = c.wait();
        }
        self.daemon_pids.remove(&node);
    }

    /// Pids of the bus daemons, by node.
    pub fn bus_pids(&self) -> BTreeMap<u32, u32> {
        (1..=self.n)
            .zip(self.buses.iter().map(|b| b.child.id()))
            .collect()
    }

    /// Whether any daemon exited on its own; names it and its log's end.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for (i, d) in self.daemons.iter_mut().enumerate() {
            if let Some(c) = d
                && let Ok(Some(status)) = c.try_wait()
            {
                let node = i as u32 + 1;
                bail!(
                    "the daemon of node {node} exited ({status}); its log ends with:\n{}",
                    self.log_tail(node)
                );
            }
        }
        Ok(())
    }

    /// The last lines of `node`'s current log.
    pub fn log_tail(&self, node: u32) -> String {
        let i = node as usize - 1;
        let path = self
            .dir_path
            .join(format!("node{node}.{}.log", self.starts[i]));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    async fn wait_on_bus(&mut self, node: u32, timeout: Duration) -> anyhow::Result<()> {
        let dbus = zbus::fdo::DBusProxy::new(&self.conns[node as usize - 1]).await?;
        let name = zbus::names::BusName::try_from(NAME)?;
        let deadline = Instant::now() + timeout;
        loop {
            if dbus.name_has_owner(name.clone()).await.unwrap_or(false) {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "node {node}'s daemon did not appear on its bus; its log ends with:\n{}",
                    self.log_tail(node)
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Restarts `node` (after a kill) and waits until it is on its bus.
    pub async fn restart(&mut self, node: u32) -> anyhow::Result<()> {
        self.start_daemon(node)?;
        self.wait_on_bus(node, Duration::from_secs(20)).await
    }

    /// Opens a channel to `node`'s daemon (`Manager.OpenChannel`).
    pub async fn open_channel(&self, node: u32) -> anyhow::Result<zbus::Connection> {
        let fd = ManagerProxy::new(&self.conns[node as usize - 1])
            .await?
            .open_channel()
            .await?;
        let stream = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(fd));
        Ok(zbus::connection::Builder::unix_stream(stream)
            .p2p()
            .build()
            .await?)
    }

    /// The view `node` reports (bus properties), if it answers.
    pub async fn view_of(&self, node: u32) -> Option<ViewInfo> {
        let p = ManagerProxy::builder(&self.conns[node as usize - 1])
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .ok()?;
        let ring = p.ring_id().await.ok()?;
        let members = p.members().await.ok()?;
        Some((ring, members))
    }

    /// Waits until every node of `nodes` reports the same ring id and
    /// `nodes` as members; returns that view.
    pub async fn wait_formed(
        &mut self,
        nodes: &[u32],
        timeout: Duration,
    ) -> anyhow::Result<ViewInfo> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut views = Vec::new();
            for &n in nodes {
                views.push(self.view_of(n).await);
            }
            if let Some(Some(first)) = views.first()
                && first.1 == nodes
                && views.iter().all(|v| v.as_ref() == Some(first))
            {
                return Ok(first.clone());
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                let shown: Vec<String> = nodes
                    .iter()
                    .zip(&views)
                    .map(|(n, v)| format!("node {n}: {v:?}"))
                    .collect();
                bail!(
                    "the nodes {nodes:?} did not agree on a view within {timeout:?}:\n{}",
                    shown.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Throws away `ViewChanged` signals received so far.
    pub fn drain_views(&mut self) -> Vec<ViewEvent> {
        let mut v = Vec::new();
        while let Ok(e) = self.views.try_recv() {
            v.push(e);
        }
        v
    }
}

/// Forwards `node`'s `ViewChanged` signals, stamped on arrival.
async fn watch_views(
    conn: &zbus::Connection,
    node: u32,
    tx: mpsc::UnboundedSender<ViewEvent>,
) -> anyhow::Result<()> {
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.vigil.membership1.Manager")
        .member("ViewChanged")
        .path(PATH)
        .build()?;
    let mut stream = MessageStream::for_match_rule(rule, conn, NonZeroUsize::new(1 << 16)).await?;
    tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            let at = Instant::now();
            let Ok(msg) = msg else { continue };
            if let Ok((ring, members)) = msg.body().deserialize::<((u64, u32), Vec<u32>)>()
                && tx
                    .send(ViewEvent {
                        node,
                        at,
                        ring,
                        members,
                    })
                    .is_err()
            {
                return;
            }
        }
    });
    Ok(())
}

/// CPU time (user + system) a process has used so far, all threads, from
/// `/proc/PID/stat` (`self` for the bench itself).
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: fields start after its ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are the 12th and 13th after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture the project targets.
    Some(Duration::from_millis(ticks * 10))
}

/// UDP datagrams the kernel dropped for a full receive buffer, machine-wide
/// (`RcvbufErrors` in `/proc/net/snmp`).
pub fn udp_rcvbuf_errors() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let names: Vec<&str> = udp.next()?.split_whitespace().collect();
    let values: Vec<&str> = udp.next()?.split_whitespace().collect();
    let i = names.iter().position(|n| *n == "RcvbufErrors")?;
    values.get(i)?.parse().ok()
}
