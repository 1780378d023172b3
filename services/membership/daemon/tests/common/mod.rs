//! A cluster of real `vigil-membershipd` processes on one machine, the way
//! a user runs them: one configuration file, a key file per node, nodes on
//! 127.0.X.1, 127.0.X.2, … and one private `dbus-daemon` per node.
//!
//! Every process started here is killed when its owner is dropped, also
//! when a test panics; a panicking test prints the daemons' logs.

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;

use zbus::proxy::CacheProperties;

pub use vigil_testkit::{
    Bus, WAIT, dbus_daemon_available, eventually, free_port, random_key, run_with_deadline,
    steadily, tail, write_key,
};

/// The daemon's well-known bus name.
pub const NAME: &str = "org.vigil.membership1";
/// The daemon's object path.
pub const PATH: &str = "/org/vigil/membership1";

/// The daemon binary under test.
pub const DAEMON: &str = env!("CARGO_BIN_EXE_vigil-membershipd");

pub use vigil_dbus::membership::{
    DeliveredStream, GroupChangedStream, GroupProxy, ManagerProxy, QuorumProxy, ViewChangedStream,
};

/// One node: its bus, its key file, its log, and its daemon when running.
#[derive(Debug)]
pub struct Node {
    pub id: u32,
    pub ip: Ipv4Addr,
    key: PathBuf,
    log: PathBuf,
    daemon: Mutex<Option<Child>>,
    conn: zbus::Connection,
    bus: Bus,
}

impl Node {
    /// The address of this node's bus.
    pub fn bus_address(&self) -> &str {
        self.bus.address()
    }
}

/// The agreed view and quorum as one node shows them on its bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub members: Vec<u32>,
    pub ring: (u64, u32),
    pub quorate: bool,
    pub expected_votes: u32,
}

/// Configured nodes 1..=N on 127.0.`octet`.1..=N, all sharing a port, with a
/// private bus per node. Daemons are started with [`Cluster::start`].
#[derive(Debug)]
pub struct Cluster {
    pub config: PathBuf,
    nodes: Vec<Node>,
    /// Holds the configuration, keys, logs and bus sockets; removed last.
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Writes the configuration and keys of an `n`-node cluster and starts
    /// every node's bus; no daemon runs yet.
    pub async fn new(octet: u8, n: u32) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("vigil-cluster-")
            .tempdir()
            .expect("temporary directory");
        let ips: Vec<Ipv4Addr> = (1..=n)
            .map(|i| Ipv4Addr::new(127, 0, octet, u8::try_from(i).expect("node index")))
            .collect();
        let port = free_port(&ips);
        let mut text = format!("[cluster]\nname = \"t{octet}\"\nport = {port}\n");
        for (i, ip) in (1..=n).zip(&ips) {
            let _ = write!(
                text,
                "\n[[node]]\nid = {i}\nname = \"n{i}\"\naddresses = [\"{ip}\"]\n"
            );
        }
        let config = dir.path().join("cluster.toml");
        fs::write(&config, text).expect("write the configuration");
        let key = random_key();
        let mut nodes = Vec::new();
        for (i, ip) in (1..=n).zip(ips) {
            let key_path = dir.path().join(format!("n{i}.key"));
            write_key(&key_path, &key);
            let bus = Bus::start(&dir.path().join(format!("bus{i}")));
            let conn = zbus::connection::Builder::address(bus.address())
                .build()
                .await
                .unwrap_or_else(|e| panic!("connect to the bus of node {i}: {e}"));
            nodes.push(Node {
                id: i,
                ip,
                key: key_path,
                log: dir.path().join(format!("n{i}.log")),
                daemon: Mutex::new(None),
                conn,
                bus,
            });
        }
        Cluster {
            config,
            nodes,
            _dir: dir,
        }
    }

    pub fn node(&self, id: u32) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Gives node `id` its own key (as a misconfigured node would have).
    pub fn set_key(&self, id: u32, key: &[u8]) {
        write_key(&self.node(id).key, key);
    }

    /// The daemon command line for node `id`, as a user would type it.
    pub fn command(&self, id: u32) -> Command {
        self.command_with_config(id, &self.config)
    }

    /// The daemon command line for node `id` with another configuration.
    pub fn command_with_config(&self, id: u32, config: &Path) -> Command {
        let node = self.node(id);
        let mut cmd = Command::new(DAEMON);
        cmd.arg("--config")
            .arg(config)
            .arg("--key")
            .arg(&node.key)
            .arg("--node")
            .arg(id.to_string())
            .arg("--bus")
            .arg(node.bus_address())
            .arg("--state-dir")
            .arg(node.key.with_file_name(format!("state{id}")))
            .env("VIGIL_LOG_STDERR", "1")
            .env_remove("VIGIL_BUS")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID");
        cmd
    }

    /// Starts the daemons of `ids` and waits until each serves its bus.
    pub async fn start(&self, ids: &[u32]) {
        for &id in ids {
            let node = self.node(id);
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&node.log)
                .expect("open the daemon log");
            let child = self
                .command(id)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start vigil-membershipd");
            let mut slot = node.daemon.lock().expect("daemon slot");
            assert!(slot.is_none(), "node {id} is already running");
            *slot = Some(child);
        }
        for &id in ids {
            let conn = self.node(id).conn.clone();
            eventually(&format!("node {id} to own {NAME}"), async || {
                self.assert_running(id);
                vigil_testkit::has_owner(&conn, NAME).await
            })
            .await;
        }
    }

    /// Kills the daemons of `ids` with SIGKILL and reaps them.
    pub fn kill(&self, ids: &[u32]) {
        for &id in ids {
            let mut slot = self.node(id).daemon.lock().expect("daemon slot");
            let mut child = slot
                .take()
                .unwrap_or_else(|| panic!("node {id} is not running"));
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Panics (with the node's log) if the daemon of `id` has exited.
    pub fn assert_running(&self, id: u32) {
        let node = self.node(id);
        let mut slot = node.daemon.lock().expect("daemon slot");
        let status: Option<ExitStatus> = match slot.as_mut() {
            Some(child) => child.try_wait().expect("poll the daemon"),
            None => panic!("node {id} was not started"),
        };
        if let Some(status) = status {
            *slot = None;
            drop(slot);
            panic!(
                "vigil-membershipd of node {id} exited ({status}); its log:\n{}",
                tail(&node.log, 60)
            );
        }
    }

    /// A new client connection to the bus of node `id`.
    pub async fn connect(&self, id: u32) -> zbus::Connection {
        zbus::connection::Builder::address(self.node(id).bus_address())
            .build()
            .await
            .unwrap_or_else(|e| panic!("connect to the bus of node {id}: {e}"))
    }

    /// The connection this harness uses to look at node `id`.
    pub fn conn(&self, id: u32) -> &zbus::Connection {
        &self.node(id).conn
    }

    pub async fn manager(&self, id: u32) -> ManagerProxy<'static> {
        ManagerProxy::builder(self.conn(id))
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .expect("Manager proxy")
    }

    pub async fn quorum(&self, id: u32) -> QuorumProxy<'static> {
        QuorumProxy::builder(self.conn(id))
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .expect("Quorum proxy")
    }

    /// What node `id` shows on its bus now.
    pub async fn view(&self, id: u32) -> Result<NodeView, String> {
        self.assert_running(id);
        let m = self.manager(id).await;
        let q = self.quorum(id).await;
        let err = |e: zbus::Error| format!("node {id}: {e}");
        Ok(NodeView {
            members: m.members().await.map_err(err)?,
            ring: m.ring_id().await.map_err(err)?,
            quorate: q.quorate().await.map_err(err)?,
            expected_votes: q.expected_votes().await.map_err(err)?,
        })
    }

    /// The views of `ids` if every one has exactly `members` and all show
    /// the same ring id; else a description of what they show.
    pub async fn agreed(&self, ids: &[u32], members: &[u32]) -> Result<Vec<NodeView>, String> {
        let mut views = Vec::new();
        for &id in ids {
            views.push(self.view(id).await?);
        }
        let same_ring = views.windows(2).all(|w| w[0].ring == w[1].ring);
        if same_ring && views.iter().all(|v| v.members == members) {
            Ok(views)
        } else {
            let mut s = String::new();
            for (id, v) in ids.iter().zip(&views) {
                let _ = write!(s, "[node {id}: members {:?} ring {:?}] ", v.members, v.ring);
            }
            Err(s)
        }
    }

    /// Waits until `ids` agree on the view `members`; returns their views.
    pub async fn wait_agreed(&self, ids: &[u32], members: &[u32]) -> Vec<NodeView> {
        eventually(
            &format!("nodes {ids:?} to agree on the view {members:?}"),
            async || self.agreed(ids, members).await,
        )
        .await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for node in &self.nodes {
            if let Ok(mut slot) = node.daemon.lock()
                && let Some(mut child) = slot.take()
            {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if panicking {
            for node in self.nodes.iter().filter(|n| n.log.exists()) {
                eprintln!(
                    "---- log of node {} ({}) ----\n{}",
                    node.id,
                    node.ip,
                    tail(&node.log, 60)
                );
            }
        }
        // The buses stop as the nodes drop.
    }
}
