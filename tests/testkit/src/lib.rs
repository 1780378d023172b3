//! Test support shared by the daemons' process tests: private `dbus-daemon`
//! buses, cluster keys and configurations, daemon processes that die with
//! the test, and patient assertions.
//!
//! Every process started here is killed when its owner is dropped, also
//! when a test panics; a panicking test prints the daemons' logs.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub mod agents;
pub mod nspawn;
pub mod polkit;
pub mod power_switch;

/// How long to wait for anything the cluster should do by itself.
/// Generous: tests run in parallel on small machines; speed is measured
/// elsewhere.
pub const WAIT: Duration = Duration::from_secs(15);
/// How often to look again while waiting.
pub const POLL: Duration = Duration::from_millis(50);

/// Whether `dbus-daemon` can be run; when not, prints why the calling test
/// is skipped (or fails when `VIGIL_REQUIRE_ALL` is set, as in CI).
pub fn dbus_daemon_available(test: &str) -> bool {
    let available = match Command::new("dbus-daemon")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => true,
        Ok(s) => {
            eprintln!("SKIPPED {test}: `dbus-daemon --version` failed ({s}); install dbus-daemon");
            false
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: cannot run dbus-daemon ({e}); install dbus-daemon");
            false
        }
    };
    assert!(
        available || std::env::var_os("VIGIL_REQUIRE_ALL").is_none(),
        "{test}: dbus-daemon is required (VIGIL_REQUIRE_ALL is set)"
    );
    available
}

/// A binary of the workspace other than the package under test's own, found
/// next to `beside` (a binary of this build, e.g.
/// `env!("CARGO_BIN_EXE_vigil-cibd")`). `None`, with a message saying
/// how to build it, when it is not built (a failure when
/// `VIGIL_REQUIRE_ALL` is set, as in CI, which builds the whole workspace).
pub fn sibling_binary(test: &str, beside: &str, name: &str) -> Option<PathBuf> {
    let path = Path::new(beside).with_file_name(name);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("VIGIL_REQUIRE_ALL").is_none(),
        "{test}: {} is required (VIGIL_REQUIRE_ALL is set)",
        path.display()
    );
    eprintln!(
        "SKIPPED {test}: {} is not built; run `cargo build --workspace` first",
        path.display()
    );
    None
}

/// Polls `probe` every [`POLL`] until it gives a value, and panics after
/// [`WAIT`] with `what` and the last thing the probe saw.
pub async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) => {
                assert!(
                    Instant::now() < deadline,
                    "timed out after {WAIT:?} waiting for {what}; last seen: {last}"
                );
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `probe` every [`POLL`] for `period` and panics the first time it
/// fails.
pub async fn steadily(
    what: &str,
    period: Duration,
    mut probe: impl AsyncFnMut() -> Result<(), String>,
) {
    let end = Instant::now() + period;
    let mut checks = 0u32;
    while Instant::now() < end {
        if let Err(e) = probe().await {
            panic!("{what} stopped holding after {checks} check(s): {e}");
        }
        checks += 1;
        tokio::time::sleep(POLL).await;
    }
    assert!(checks > 0, "{what} was never checked");
}

/// 32 random bytes, as `vigil cluster keygen` makes.
pub fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .expect("read /dev/urandom");
    key
}

/// Writes a key file with mode 0400, as the membership daemon demands.
pub fn write_key(path: &Path, key: &[u8]) {
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)
        .unwrap_or_else(|e| panic!("create key file {}: {e}", path.display()));
    std::io::Write::write_all(&mut f, key).expect("write key file");
}

/// A private `dbus-daemon`, killed on drop.
#[derive(Debug)]
pub struct Bus {
    child: Child,
    _stdout: ChildStdout,
    address: String,
}

impl Bus {
    /// Starts a session-type bus listening in `dir`.
    pub fn start(dir: &Path) -> Bus {
        fs::create_dir_all(dir).expect("create bus directory");
        Bus::spawn(
            Command::new("dbus-daemon")
                .arg("--session")
                .arg("--nofork")
                .arg("--print-address")
                .arg(format!("--address=unix:dir={}", dir.display())),
        )
    }

    /// Starts a bus in `dir` that admits every user (not only the one
    /// running it), for tests of callers that are not root. `dir` and its
    /// parents must let them reach the socket.
    pub fn start_open(dir: &Path) -> Bus {
        fs::create_dir_all(dir).expect("create bus directory");
        let config = dir.join("bus.conf");
        fs::write(
            &config,
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        )
        .expect("write the bus configuration");
        Bus::spawn(
            Command::new("dbus-daemon")
                .arg(format!("--config-file={}", config.display()))
                .arg("--nofork")
                .arg("--print-address")
                .arg(format!("--address=unix:dir={}", dir.display())),
        )
    }

    fn spawn(cmd: &mut Command) -> Bus {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let stdout = child.stdout.take().expect("dbus-daemon stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let read = reader.read_line(&mut line);
        let address = line.trim().to_string();
        if read.is_err() || address.is_empty() {
            let _ = child.kill();
            let status = child.wait();
            panic!("dbus-daemon printed no address ({read:?}, {status:?})");
        }
        Bus {
            child,
            _stdout: reader.into_inner(),
            address,
        }
    }

    /// The address clients connect to.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to its end, killing it if it takes longer than [`WAIT`].
pub fn run_with_deadline(mut cmd: Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(WAIT).is_err() {
        // Still running: end it, then collect what it wrote.
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let out = waiter
            .join()
            .expect("waiter thread")
            .expect("wait for the command");
        panic!(
            "the command did not end within {WAIT:?}; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    waiter
        .join()
        .expect("waiter thread")
        .expect("wait for the command")
}

/// The last `lines` lines of a file, or why it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// A UDP port free on every one of `ips` right now.
pub fn free_port(ips: &[Ipv4Addr]) -> u16 {
    for _ in 0..50 {
        let Ok(first) = UdpSocket::bind((ips[0], 0)) else {
            continue;
        };
        let port = first.local_addr().expect("local address").port();
        let others: Result<Vec<UdpSocket>, _> = ips[1..]
            .iter()
            .map(|ip| UdpSocket::bind((*ip, port)))
            .collect();
        if others.is_ok() {
            return port;
        }
    }
    panic!("no UDP port free on all of {ips:?}");
}

/// A daemon process with its log file, killed on drop.
#[derive(Debug)]
pub struct Daemon {
    pub name: String,
    pub log: PathBuf,
    child: Mutex<Option<Child>>,
}

impl Daemon {
    /// Starts `cmd` with its stderr going to (the end of) `log`.
    pub fn start(name: &str, mut cmd: Command, log: &Path) -> Daemon {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the daemon log");
        let child = cmd
            .env("VIGIL_LOG_STDERR", "1")
            .env_remove("VIGIL_BUS")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Daemon {
            name: name.to_string(),
            log: log.to_path_buf(),
            child: Mutex::new(Some(child)),
        }
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(&self) {
        if let Ok(mut slot) = self.child.lock()
            && let Some(mut child) = slot.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Panics, with its log, if it has exited.
    pub fn assert_running(&self) {
        let mut slot = self.child.lock().expect("daemon slot");
        let status: Option<ExitStatus> = match slot.as_mut() {
            Some(child) => child.try_wait().expect("poll the daemon"),
            None => panic!("{} is not running (killed earlier)", self.name),
        };
        if let Some(status) = status {
            *slot = None;
            drop(slot);
            panic!(
                "{} exited ({status}); its log:\n{}",
                self.name,
                tail(&self.log, 60)
            );
        }
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().ok()?.as_ref().map(Child::id)
    }

    /// Whether it still runs.
    pub fn running(&self) -> bool {
        let mut slot = self.child.lock().expect("daemon slot");
        match slot.as_mut() {
            Some(child) => child.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() && self.log.exists() {
            eprintln!("---- log of {} ----\n{}", self.name, tail(&self.log, 60));
        }
    }
}

/// Whether the bus at `conn` has an owner for `name`.
pub async fn has_owner(conn: &zbus::Connection, name: &str) -> Result<(), String> {
    let dbus = zbus::fdo::DBusProxy::new(conn)
        .await
        .map_err(|e| e.to_string())?;
    let name = zbus::names::BusName::try_from(name).map_err(|e| e.to_string())?;
    match dbus.name_has_owner(name).await {
        Ok(true) => Ok(()),
        Ok(false) => Err("the name has no owner".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Configured nodes 1..=N on 127.0.`octet`.1..=N sharing a UDP port, one
/// private bus per node, one cluster key: what `vigil cluster setup`
/// writes, in a temporary directory.
#[derive(Debug)]
pub struct Nodes {
    pub config: PathBuf,
    pub ips: Vec<Ipv4Addr>,
    buses: Vec<Bus>,
    dir: tempfile::TempDir,
}

impl Nodes {
    /// Writes the configuration and keys of an `n`-node cluster and starts
    /// every node's bus.
    pub fn new(octet: u8, n: u32) -> Nodes {
        Nodes::with_config(octet, n, "")
    }

    /// As [`Nodes::new`], with `extra` added to the configuration after
    /// the `[cluster]` table (say `"[timings]\ntoken = \"5s\"\n"` for
    /// tests about something else than failure detection, which must not
    /// see a false view change on a loaded machine).
    pub fn with_config(octet: u8, n: u32, extra: &str) -> Nodes {
        Nodes::build(octet, n, extra, false)
    }

    /// As [`Nodes::new`], with buses every user may connect to (and a
    /// scratch directory they may traverse), for tests of callers that are
    /// not root.
    pub fn with_open_buses(octet: u8, n: u32, extra: &str) -> Nodes {
        Nodes::build(octet, n, extra, true)
    }

    fn build(octet: u8, n: u32, extra: &str, open: bool) -> Nodes {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("vigil-cluster-")
            .tempdir()
            .expect("temporary directory");
        if open {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
                .expect("open the scratch directory");
        }
        let ips: Vec<Ipv4Addr> = (1..=n)
            .map(|i| Ipv4Addr::new(127, 0, octet, u8::try_from(i).expect("node index")))
            .collect();
        let port = free_port(&ips);
        let mut text = format!("[cluster]\nname = \"t{octet}\"\nport = {port}\n\n{extra}");
        for (i, ip) in (1..=n).zip(&ips) {
            let _ = write!(
                text,
                "\n[[node]]\nid = {i}\nname = \"n{i}\"\naddresses = [\"{ip}\"]\n"
            );
        }
        let config = dir.path().join("cluster.toml");
        fs::write(&config, text).expect("write the configuration");
        let key = random_key();
        let mut buses = Vec::new();
        for i in 1..=n {
            write_key(&dir.path().join(format!("n{i}.key")), &key);
            let bus_dir = dir.path().join(format!("bus{i}"));
            buses.push(if open {
                Bus::start_open(&bus_dir)
            } else {
                Bus::start(&bus_dir)
            });
        }
        Nodes {
            config,
            ips,
            buses,
            dir,
        }
    }

    /// The scratch directory (configuration, keys, logs, state).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Node `id`'s key file.
    pub fn key(&self, id: u32) -> PathBuf {
        self.dir.path().join(format!("n{id}.key"))
    }

    /// Node `id`'s bus address.
    pub fn bus(&self, id: u32) -> &str {
        self.buses[id as usize - 1].address()
    }

    /// A directory for node `id`'s `what` (created).
    pub fn state(&self, id: u32, what: &str) -> PathBuf {
        let p = self.dir.path().join(format!("n{id}-{what}"));
        fs::create_dir_all(&p).expect("create a state directory");
        p
    }

    /// The log file of node `id`'s `what`.
    pub fn log(&self, id: u32, what: &str) -> PathBuf {
        self.dir.path().join(format!("n{id}-{what}.log"))
    }

    /// A new client connection to node `id`'s bus.
    pub async fn connect(&self, id: u32) -> zbus::Connection {
        zbus::connection::Builder::address(self.bus(id))
            .build()
            .await
            .unwrap_or_else(|e| panic!("connect to the bus of node {id}: {e}"))
    }

    /// Starts `vigil-membershipd` (at `binary`) for node `id`, as a user
    /// would, and waits until it serves its bus.
    pub async fn start_membership(&self, binary: &Path, id: u32) -> Daemon {
        let mut cmd = Command::new(binary);
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--key")
            .arg(self.key(id))
            .arg("--node")
            .arg(id.to_string())
            .arg("--bus")
            .arg(self.bus(id))
            .arg("--state-dir")
            .arg(self.state(id, "membership"));
        let d = Daemon::start(
            &format!("vigil-membershipd of node {id}"),
            cmd,
            &self.log(id, "membership"),
        );
        self.wait_for_name(&d, id, "org.vigil.membership1").await;
        d
    }

    /// Waits until `name` has an owner on node `id`'s bus, while `d` runs.
    pub async fn wait_for_name(&self, d: &Daemon, id: u32, name: &str) {
        let conn = self.connect(id).await;
        eventually(&format!("node {id} to own {name}"), async || {
            d.assert_running();
            has_owner(&conn, name).await
        })
        .await;
    }
}

/// Checks that the D-Bus interfaces `daemon --bus-introspect` prints are
/// the reviewed contract at `contract` (a file under `dbus-interfaces/`);
/// with `VIGIL_CONTRACT_UPDATE` set, rewrites the contract from the daemon
/// instead (then review the diff).
pub fn check_contract(daemon: &str, contract: &Path) {
    check_contract_of(daemon, "--bus-introspect", contract);
}

/// [`check_contract`] for what `daemon OPTION` prints (a daemon with more
/// than one kind of object has an option per kind).
pub fn check_contract_of(daemon: &str, option: &str, contract: &Path) {
    let out = Command::new(daemon)
        .arg(option)
        .output()
        .unwrap_or_else(|e| panic!("run {daemon} --bus-introspect: {e}"));
    assert!(
        out.status.success(),
        "--bus-introspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = String::from_utf8(out.stdout).expect("UTF-8 introspection");
    if std::env::var_os("VIGIL_CONTRACT_UPDATE").is_some() {
        fs::write(contract, &live).expect("write the contract");
        return;
    }
    let reviewed = fs::read_to_string(contract).expect("read the contract");
    if live != reviewed {
        let first = live
            .lines()
            .zip(reviewed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| live.lines().count().min(reviewed.lines().count()));
        panic!(
            "the served interfaces differ from {} from line {}:\n  served:   {:?}\n  contract: {:?}\n\
             Update the contract deliberately with VIGIL_CONTRACT_UPDATE=1 and review the diff.",
            contract.display(),
            first + 1,
            live.lines().nth(first).unwrap_or("<end>"),
            reviewed.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

/// Pacemaker's scheduler regression corpus (`../shared/cts/scheduler`
/// beside the project, or `VIGIL_CTS_DIR`), or `None` after saying the
/// calling test skips it. The corpus is Pacemaker's data: it stays in
/// `../shared` and is only read.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_CTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/cts/scheduler"
            ))
        });
    if dir.join("xml").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: scheduler corpus not found at {} (set VIGIL_CTS_DIR)",
            dir.display()
        );
        None
    }
}
