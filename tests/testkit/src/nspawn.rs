//! The system test tier: real systemd nodes in `systemd-nspawn` containers.
//!
//! A system test boots a few [`Node`]s from one [`Image`] (Debian bookworm,
//! `minbase`, with systemd and whatever the test adds), puts freshly built
//! binaries into them with bind mounts, and drives them through `nsenter`:
//! `systemctl`, `journalctl` and `busctl` work inside as on a real machine.
//! Nodes on a bridge talk over 192.0.2.0/24 (TEST-NET-1), which stays on this
//! machine. [`Node::kill`] is a pulled plug.
//!
//! The tier needs root, `systemd-nspawn` (package `systemd-container`),
//! `debootstrap`, `nsenter` and `unshare` (`util-linux`) and `ip`
//! (`iproute2`), and runs only when `VIGIL_SYSTEM_TIER=1`; otherwise every
//! system test skips with a message (see [`system_tier`]). CI runs these
//! tests in a step of their own, one at a time (`--test-threads=1`).
//!
//! Everything lives under `<target dir>/vigil-system/`: `images/<recipe
//! hash>/` (built once, reused while the recipe is the same; `cargo clean`
//! removes them) and `nodes/<name>-*/` (each node's overlay upper directory
//! and console log, removed when the node is dropped).
//!
//! Dropping a [`Node`] powers it off and removes its files; a panicking test
//! prints the journals of the nodes still running. Two things outlive the
//! nodes on purpose: the host's system `dbus-daemon` (which
//! `systemd-nspawn` wants; started when missing and left running like any
//! host service) and bridges (created when missing and left in place, so
//! tests running at the same time never pull a bridge from under each
//! other; they have no address on the host and no uplink, so nothing leaves
//! the machine; `ip link del NAME` removes one). A test process killed with
//! SIGKILL leaves its nodes running: `pgrep -a systemd-nspawn` finds them,
//! `kill -9` of a container's systemd ends one.
//!
//! What nodes must reach over the network but runs in the test process
//! (the power switch of [`crate::power_switch`]) sits on the bridge in a
//! [`BridgeEndpoint`], a network namespace of its own: the host's own
//! addresses and routes are never touched.
//!
//! Every call blocks (booting takes about half a second, a command as long
//! as it runs); from async tests call them where blocking is fine, or
//! through `tokio::task::spawn_blocking`.
//!
//! ```no_run
//! use vigil_testkit::nspawn::{Image, Node, NodeOptions, system_tier};
//!
//! if !system_tier("two_nodes") {
//!     return;
//! }
//! let image = Image::bookworm(&["iputils-ping"]);
//! let n1 = Node::boot("n1", &image, &NodeOptions::new().bridge("br-vigil", "192.0.2.11/24"));
//! let n2 = Node::boot("n2", &image, &NodeOptions::new().bridge("br-vigil", "192.0.2.12/24"));
//! n1.sh_ok("ping -c 1 -W 5 192.0.2.12");
//! n2.kill();
//! ```

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// How long [`Node::boot`] waits by default for a node to finish booting.
pub const BOOT_WAIT: Duration = Duration::from_secs(60);
/// How long [`Node::exec`] lets a command run before killing it and
/// failing the test.
pub const EXEC_WAIT: Duration = Duration::from_secs(60);
/// How long an image build step (debootstrap, apt-get) may take.
const BUILD_WAIT: Duration = Duration::from_secs(20 * 60);
/// How long a powered-off node's `systemd-nspawn` gets to exit by itself.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// The Debian release of the images.
const SUITE: &str = "bookworm";
/// What every image has: a systemd that boots, a system bus, `ip`.
const BASE_PACKAGES: [&str; 4] = ["systemd", "systemd-sysv", "dbus", "iproute2"];
/// Bump when the build steps change, so older images are not reused.
const RECIPE_VERSION: u32 = 1;
/// Used when the host's apt sources name no Debian mirror.
const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";
/// Units masked in the images: the timers would run apt, fstrim and the
/// like in the middle of a test; nothing waits for networkd.
const MASKED_UNITS: [&str; 6] = [
    "systemd-networkd-wait-online.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
];
/// Commands run in nodes and chroots see this `PATH` and nothing of the
/// test's environment.
const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The tools the tier needs, with the Debian packages providing them.
const TOOLS: [(&str, &str); 5] = [
    ("systemd-nspawn", "systemd-container"),
    ("debootstrap", "debootstrap"),
    ("nsenter", "util-linux"),
    ("unshare", "util-linux"),
    ("ip", "iproute2"),
];
/// Node addresses come from TEST-NET-1 and nowhere else.
const TEST_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(192, 0, 2, 0), 24);

/// Whether the calling system test runs: `VIGIL_SYSTEM_TIER=1`, root, and
/// every tool found. Without `VIGIL_SYSTEM_TIER=1` it prints
/// `SKIPPED {test}: ...` with how to enable the tier and returns false
/// (also when `VIGIL_REQUIRE_ALL` is set: the regular test run skips this
/// tier). With it, a missing tool or privilege fails the test.
pub fn system_tier(test: &str) -> bool {
    const HOW: &str = "run as root with VIGIL_SYSTEM_TIER=1 after \
        `apt-get install systemd-container debootstrap iproute2`, as .ci/run does";
    if std::env::var_os("VIGIL_SYSTEM_TIER").as_deref() != Some(OsStr::new("1")) {
        eprintln!("SKIPPED {test}: system tier not enabled (it boots systemd containers; {HOW})");
        return false;
    }
    let mut missing = Vec::new();
    let uid = nix::unistd::geteuid();
    if !uid.is_root() {
        missing.push(format!("root (running as uid {uid})"));
    }
    for (tool, package) in TOOLS {
        if find_program(tool).is_none() {
            missing.push(format!("`{tool}` (package {package})"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = missing.join(", ");
    eprintln!("SKIPPED {test}: the system tier needs {why}; {HOW}");
    panic!("{test}: VIGIL_SYSTEM_TIER=1 but the system tier cannot run: missing {why}");
}

/// A root file system for nodes: Debian bookworm `--variant=minbase` with
/// `systemd`, `systemd-sysv`, `dbus`, `iproute2` and the extra packages
/// asked for. Read-only once built: nodes write into overlays.
#[derive(Debug, Clone)]
pub struct Image {
    root: PathBuf,
    packages: Vec<String>,
}

impl Image {
    /// The image with `extra_packages` installed (Debian package names),
    /// built the first time (about a minute, from the Debian mirror of the
    /// host's apt sources, or `VIGIL_DEBIAN_MIRROR`) and reused later while
    /// the recipe is the same. Concurrent callers wait for one build; an
    /// interrupted build is never used. Panics, with the build log, when
    /// the build fails.
    pub fn bookworm(extra_packages: &[&str]) -> Image {
        let mut extra: Vec<String> = Vec::new();
        for p in extra_packages {
            assert!(
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c)),
                "{p:?} is not a Debian package name"
            );
            if !BASE_PACKAGES.contains(p) {
                extra.push((*p).to_string());
            }
        }
        extra.sort();
        extra.dedup();
        let recipe = recipe(&extra);
        let images = system_dir().join("images");
        fs::create_dir_all(&images).unwrap_or_else(|e| panic!("create {}: {e}", images.display()));
        let id = format!("{:016x}", fnv1a(recipe.as_bytes()));
        let root = images.join(&id);
        let mut packages: Vec<String> = BASE_PACKAGES.iter().map(|p| (*p).to_string()).collect();
        packages.extend(extra.iter().cloned());
        let image = Image { root, packages };
        if image.root.is_dir() {
            return image;
        }
        let lock = lock(&images.join(format!("{id}.lock")), "the image build");
        // Another process may have built it while this one waited.
        if !image.root.is_dir() {
            // The build's processes inherit the lock: should this process
            // die mid-build, nobody touches the unfinished image until the
            // last of them has ended too.
            nix::fcntl::fcntl(
                &*lock,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .expect("let the build inherit its lock");
            build_image(&image.root, &recipe, &extra);
        }
        drop(lock);
        image
    }

    /// The image's root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The packages asked for (the base ones first), without their
    /// dependencies.
    pub fn packages(&self) -> &[String] {
        &self.packages
    }
}

/// A host path bind-mounted into a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// The path on the host (must exist).
    pub host: PathBuf,
    /// Where it appears in the node (created when missing).
    pub container: PathBuf,
    /// Whether the node may not write to it.
    pub read_only: bool,
}

/// How a node is networked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Network {
    /// Only a loopback interface (`--private-network`).
    #[default]
    Private,
    /// A veth pair: `host0` in the node with `address/prefix`, the host
    /// side `vb-<node name>` in `bridge` (`--network-bridge`).
    Bridge {
        /// The host bridge; created when missing and left in place.
        bridge: String,
        /// The node's address on `host0`, in 192.0.2.0/24.
        address: Ipv4Addr,
        /// The prefix length of `address`.
        prefix: u8,
    },
}

/// How [`Node::boot`] sets a node up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOptions {
    /// Host paths to bind-mount into the node.
    pub binds: Vec<Bind>,
    /// The node's network.
    pub network: Network,
    /// How long booting may take ([`BOOT_WAIT`] by default).
    pub boot_timeout: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            binds: Vec::new(),
            network: Network::Private,
            boot_timeout: BOOT_WAIT,
        }
    }
}

impl NodeOptions {
    /// A private network, no bind mounts, [`BOOT_WAIT`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a read-only bind mount of `host` at `container`.
    pub fn bind_ro(mut self, host: impl Into<PathBuf>, container: impl Into<PathBuf>) -> Self {
        self.binds.push(Bind {
            host: host.into(),
            container: container.into(),
            read_only: true,
        });
        self
    }

    /// Adds a writable bind mount of `host` at `container`.
    pub fn bind_rw(mut self, host: impl Into<PathBuf>, container: impl Into<PathBuf>) -> Self {
        self.binds.push(Bind {
            host: host.into(),
            container: container.into(),
            read_only: false,
        });
        self
    }

    /// Puts the node on `bridge` with `address` (CIDR, in 192.0.2.0/24,
    /// say `"192.0.2.11/24"`) on its `host0`.
    pub fn bridge(mut self, bridge: &str, address: &str) -> Self {
        let (address, prefix) = parse_cidr(address);
        self.network = Network::Bridge {
            bridge: bridge.to_string(),
            address,
            prefix,
        };
        self
    }
}

/// A booted systemd node in a `systemd-nspawn` container, powered off
/// (like a pulled plug) and removed on drop.
#[derive(Debug)]
pub struct Node {
    name: String,
    /// The container's systemd as the host sees it; 0 until found.
    pid1: u32,
    network: Network,
    nspawn: Mutex<Option<Child>>,
    console: PathBuf,
    /// Holds the overlay's upper directory and the console log.
    _dir: tempfile::TempDir,
}

impl Node {
    /// Boots `name` (also its host name; 1 to 12 of `a-z0-9-`, unique among
    /// the nodes running on this host) from `image`, and waits until its
    /// systemd reports `running` or `degraded`. The node writes into an
    /// overlay of its own; the image is never changed. Panics, with the
    /// container's console output, when it does not boot in time.
    pub fn boot(name: &str, image: &Image, options: &NodeOptions) -> Node {
        check_node_name(name);
        ensure_host_bus();
        if let Network::Bridge {
            bridge, address, ..
        } = &options.network
        {
            assert!(
                in_test_net(*address),
                "node {name}: {address} is outside 192.0.2.0/24; test traffic stays there"
            );
            ensure_bridge(bridge);
            let veth = format!("vb-{name}");
            assert!(
                !Path::new("/sys/class/net").join(&veth).exists(),
                "node {name}: the host already has {veth}: a node of that name is running \
                 (another test, or a leftover: `pgrep -a systemd-nspawn`)"
            );
        }
        let nodes = system_dir().join("nodes");
        fs::create_dir_all(&nodes).unwrap_or_else(|e| panic!("create {}: {e}", nodes.display()));
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(&nodes)
            .unwrap_or_else(|e| panic!("create a directory in {}: {e}", nodes.display()));
        let upper = dir.path().join("upper");
        fs::create_dir(&upper).unwrap_or_else(|e| panic!("create {}: {e}", upper.display()));

        let mut args: Vec<OsString> = vec![
            "--quiet".into(),
            format!("--machine={name}").into(),
            format!("--hostname={name}").into(),
            "--directory".into(),
            image.path().into(),
            overlay_arg(image.path(), &upper),
            "--register=no".into(),
            "--keep-unit".into(),
            "--boot".into(),
            // Not `passive`: that leaves the console unread, so its output
            // only shows once the container has ended (and a chatty node
            // could block on a full console); `read-only` streams it into
            // the console log as it comes.
            "--console=read-only".into(),
        ];
        args.push(match &options.network {
            Network::Private => "--private-network".into(),
            Network::Bridge { bridge, .. } => format!("--network-bridge={bridge}").into(),
        });
        for bind in &options.binds {
            args.push(bind_arg(name, bind));
        }
        let console = dir.path().join("console.log");
        let log = fs::File::create(&console)
            .unwrap_or_else(|e| panic!("create {}: {e}", console.display()));
        let log2 = log.try_clone().expect("clone the console log handle");
        let child = Command::new(program("systemd-nspawn"))
            .args(&args)
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("start systemd-nspawn for node {name}: {e}"));

        // From here on a panic drops the node, which ends the container.
        let mut node = Node {
            name: name.to_string(),
            pid1: 0,
            network: options.network.clone(),
            nspawn: Mutex::new(Some(child)),
            console,
            _dir: dir,
        };
        let deadline = Instant::now() + options.boot_timeout;
        node.pid1 = node.wait_for_pid1(deadline);
        if let Network::Bridge {
            address, prefix, ..
        } = &node.network
        {
            node.configure_address(*address, *prefix, deadline);
        }
        node.wait_until_booted(deadline);
        node
    }

    /// The node's name, which is also its host name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's PID of the node's systemd (PID 1 inside).
    pub fn pid1(&self) -> u32 {
        self.pid1
    }

    /// The node's address on `host0`, when it is on a bridge.
    pub fn address(&self) -> Option<Ipv4Addr> {
        match &self.network {
            Network::Private => None,
            Network::Bridge { address, .. } => Some(*address),
        }
    }

    /// The host side of the node's veth when it is on a bridge
    /// (`vb-<name>`): `ip link set ... down` cuts the node off, `tc netem`
    /// on it adds loss and delay.
    pub fn veth(&self) -> Option<String> {
        match &self.network {
            Network::Private => None,
            Network::Bridge { .. } => Some(format!("vb-{}", self.name)),
        }
    }

    /// Whether the node still runs (its systemd and `systemd-nspawn`).
    pub fn running(&self) -> bool {
        let mut slot = self.nspawn.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(child) = slot.as_mut() else {
            return false;
        };
        matches!(child.try_wait(), Ok(None)) && is_container_init(self.pid1, child.id())
    }

    /// Runs `args` in the node (all its namespaces, through `nsenter`),
    /// with a clean environment, and returns what it did. Fails the test
    /// when the node is not running or the command takes longer than
    /// [`EXEC_WAIT`]. Leave nothing running in the background that holds
    /// its output open (start services with `systemd-run` or `systemctl`).
    pub fn exec(&self, args: &[&str]) -> Output {
        self.exec_with_deadline(args, EXEC_WAIT)
    }

    /// [`Node::exec`] with a deadline of the caller's.
    pub fn exec_with_deadline(&self, args: &[&str], deadline: Duration) -> Output {
        self.exec_input(args, None, deadline)
    }

    /// Runs `script` with `/bin/sh -c` in the node; see [`Node::exec`].
    pub fn sh(&self, script: &str) -> Output {
        self.exec(&["/bin/sh", "-c", script])
    }

    /// Runs `script` like [`Node::sh`], fails the test (with the script's
    /// output) unless it succeeds, and returns its standard output.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "on node {}: `{script}` failed ({}):\n{}",
            self.name,
            out.status,
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes `contents` to the absolute `path` in the node with
    /// permissions `mode` (say `0o644`), creating its directory, replacing
    /// the file at once (write beside, then rename). Goes through the
    /// running node, never around it.
    pub fn write_file(&self, path: &str, contents: impl AsRef<[u8]>, mode: u32) {
        assert!(
            path.starts_with('/'),
            "write_file needs an absolute path, not {path:?}"
        );
        let mode = format!("{mode:o}");
        let script = r#"set -e
            mkdir -p "$(dirname "$1")"
            cat >"$1.vigil-new"
            chmod "$2" "$1.vigil-new"
            mv -f "$1.vigil-new" "$1""#;
        let out = self.exec_input(
            &["/bin/sh", "-c", script, "sh", path, &mode],
            Some(contents.as_ref()),
            EXEC_WAIT,
        );
        assert!(
            out.status.success(),
            "on node {}: writing {path} failed ({}):\n{}",
            self.name,
            out.status,
            describe(&out)
        );
    }

    /// What the container printed on its console so far (systemd's boot
    /// messages, and `systemd-nspawn`'s own), without terminal colours.
    pub fn console(&self) -> String {
        match fs::read(&self.console) {
            Ok(bytes) => strip_ansi(&String::from_utf8_lossy(&bytes)),
            Err(e) => format!("<cannot read {}: {e}>", self.console.display()),
        }
    }

    /// Powers the node off hard, like a pulled plug: kills its systemd
    /// (and so every process in it) with SIGKILL and waits for
    /// `systemd-nspawn` to exit. Does nothing when it is already off.
    pub fn kill(&self) {
        let mut slot = self.nspawn.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mut child) = slot.take() else {
            return;
        };
        let nspawn = child.id();
        let end = Instant::now() + EXIT_WAIT;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            // Checked every time: the PID is only signalled while it is
            // this node's systemd, never a recycled one.
            let init = if is_container_init(self.pid1, nspawn) {
                Some(self.pid1)
            } else {
                find_container_init(nspawn)
            };
            if let Some(pid) = init {
                let _ = kill(as_pid(pid), Signal::SIGKILL);
            }
            if Instant::now() > end {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "node {}: systemd-nspawn did not exit within {EXIT_WAIT:?} after its container \
             was killed; killing it",
            self.name
        );
        let _ = child.kill();
        let _ = child.wait();
    }

    fn exec_input(&self, args: &[&str], input: Option<&[u8]>, deadline: Duration) -> Output {
        assert!(
            self.running(),
            "node {} is not running (powered off); cannot run {args:?}",
            self.name
        );
        match run(self.nsenter(true).args(args), input, deadline) {
            Ok(out) => out,
            Err((why, out)) => panic!(
                "on node {}: {args:?} {why}; its output so far:\n{}",
                self.name,
                describe(&out)
            ),
        }
    }

    /// `nsenter` into the node: all namespaces, or only the network's.
    fn nsenter(&self, all: bool) -> Command {
        let mut cmd = Command::new(program("nsenter"));
        clean_env(&mut cmd);
        cmd.arg("-t")
            .arg(self.pid1.to_string())
            .arg(if all { "-a" } else { "-n" });
        cmd
    }

    fn boot_failed(&self, what: &str) -> ! {
        let console = self.console();
        let lines: Vec<&str> = console.lines().collect();
        panic!(
            "node {} did not boot: {what}\n---- console of node {} (last 80 lines) ----\n{}",
            self.name,
            self.name,
            lines[lines.len().saturating_sub(80)..].join("\n")
        );
    }

    fn nspawn_exited(&self) -> Option<ExitStatus> {
        let mut slot = self.nspawn.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_mut() {
            Some(child) => child.try_wait().ok().flatten(),
            None => None,
        }
    }

    fn nspawn_pid(&self) -> u32 {
        let slot = self.nspawn.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().map_or(0, Child::id)
    }

    /// Finds the container's systemd: a child of `systemd-nspawn` that is
    /// PID 1 of its own PID namespace and runs `systemd`.
    fn wait_for_pid1(&self, deadline: Instant) -> u32 {
        let nspawn = self.nspawn_pid();
        loop {
            if let Some(status) = self.nspawn_exited() {
                self.boot_failed(&format!("systemd-nspawn exited ({status})"));
            }
            if let Some(pid) = find_container_init(nspawn) {
                return pid;
            }
            if Instant::now() > deadline {
                self.boot_failed("no systemd appeared in the container in time");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Gives `host0` its address early in the boot, with the host's `ip`
    /// in the node's network namespace (`host0` may appear a moment after
    /// systemd starts).
    fn configure_address(&self, address: Ipv4Addr, prefix: u8, deadline: Instant) {
        let cidr = format!("{address}/{prefix}");
        loop {
            let mut add = self.nsenter(false);
            add.arg(program("ip"))
                .args(["addr", "replace", &cidr, "dev", "host0"]);
            let mut up = self.nsenter(false);
            up.arg(program("ip")).args(["link", "set", "host0", "up"]);
            let last = match run(&mut add, None, Duration::from_secs(5)) {
                Ok(out) if out.status.success() => match run(&mut up, None, Duration::from_secs(5))
                {
                    Ok(out) if out.status.success() => return,
                    Ok(out) | Err((_, out)) => describe(&out),
                },
                Ok(out) | Err((_, out)) => describe(&out),
            };
            if let Some(status) = self.nspawn_exited() {
                self.boot_failed(&format!("systemd-nspawn exited ({status})"));
            }
            if Instant::now() > deadline {
                self.boot_failed(&format!("could not give host0 {cidr}: {last}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `systemctl is-system-running --wait` to say `running` or
    /// `degraded` (then names the failed units).
    fn wait_until_booted(&self, deadline: Instant) {
        let mut last = String::from("<not asked yet>");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.boot_failed(&format!(
                    "systemd did not finish booting in time; last `systemctl is-system-running`: {last}"
                ));
            }
            let mut cmd = self.nsenter(true);
            cmd.args(["systemctl", "is-system-running", "--wait"]);
            match run(&mut cmd, None, left) {
                Ok(out) => {
                    let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    match state.as_str() {
                        "running" => return,
                        "degraded" => {
                            let failed = self.exec(&["systemctl", "--failed", "--no-legend"]);
                            eprintln!(
                                "note: node {} booted degraded; failed units:\n{}",
                                self.name,
                                String::from_utf8_lossy(&failed.stdout).trim_end()
                            );
                            return;
                        }
                        "maintenance" | "stopping" => {
                            self.boot_failed(&format!("systemd is {state}"));
                        }
                        _ => last = describe(&out),
                    }
                }
                Err((why, out)) => last = format!("{why}: {}", describe(&out)),
            }
            if let Some(status) = self.nspawn_exited() {
                self.boot_failed(&format!("systemd-nspawn exited ({status})"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() && self.pid1 != 0 && self.running() {
            let mut cmd = self.nsenter(true);
            cmd.args(["journalctl", "--boot", "--no-pager", "--lines=80"]);
            let journal = match run(&mut cmd, None, Duration::from_secs(10)) {
                Ok(out) if out.status.success() => {
                    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
                }
                Ok(out) | Err((_, out)) => describe(&out),
            };
            eprintln!("---- journal of node {} ----\n{journal}", self.name);
        }
        self.kill();
        // Dropping `_dir` then removes the upper directory and the log.
    }
}

// ---- endpoints on a bridge ---------------------------------------------

/// Something on a bridge that is neither a node nor the host: a network
/// namespace of this process's own, with one interface, `eth0`, on the
/// bridge, holding an address. It stands in for a device the nodes reach
/// over their network but that must run in the test process, such as the
/// power switch of [`crate::power_switch`]: sockets opened in
/// [`BridgeEndpoint::run`] live in the namespace, while everything else
/// about the thread (the host's file systems and processes) stays the
/// test's.
///
/// The host itself never gets an address on a bridge: a test host's own
/// network may use 192.0.2.0/24 too (and have its gateway at 192.0.2.1),
/// so an address there could cut the host off. Gone on drop: the
/// namespace ends with the last socket opened in it, and its interface
/// with it, also when the test process is killed.
#[derive(Debug)]
pub struct BridgeEndpoint {
    /// Holds the namespace.
    netns: fs::File,
    /// The host side of the veth pair, in the bridge.
    veth: String,
    address: Ipv4Addr,
}

impl BridgeEndpoint {
    /// Puts a new endpoint on `bridge` (created when missing, like
    /// [`Node::boot`] does) with the address `cidr` (in 192.0.2.0/24, say
    /// `"192.0.2.1/24"`, not a node's). Panics, saying why, when the
    /// network cannot be set up (root is needed).
    pub fn attach(bridge: &str, cidr: &str) -> BridgeEndpoint {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let (address, _) = parse_cidr(cidr);
        ensure_bridge(bridge);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Interface names have at most 15 characters.
        let veth = format!("vp{}x{n}", std::process::id());
        assert!(veth.len() <= 15, "the interface name {veth} is too long");
        // A thread of its own enters a new namespace and leaves it behind
        // in a file handle; this thread stays in the host's.
        let netns = std::thread::spawn(|| -> std::io::Result<fs::File> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            fs::File::open("/proc/thread-self/ns/net")
        })
        .join()
        .expect("the thread making a network namespace")
        .unwrap_or_else(|e| panic!("create a network namespace (root is needed): {e}"));
        let endpoint = BridgeEndpoint {
            netns,
            veth,
            address,
        };
        let ns = endpoint.netns_path();
        let veth = endpoint.veth.as_str();
        host_ip(&[
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        for args in [
            &["link", "set", "lo", "up"][..],
            &["addr", "add", cidr, "dev", "eth0"],
            &["link", "set", "eth0", "up"],
        ] {
            let out = Command::new(program("nsenter"))
                .arg(format!("--net={ns}"))
                .arg(program("ip"))
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("run nsenter: {e}"));
            assert!(
                out.status.success(),
                "ip {} in the endpoint's namespace: {}",
                args.join(" "),
                describe(&out)
            );
        }
        host_ip(&["link", "set", veth, "master", bridge]);
        host_ip(&["link", "set", veth, "up"]);
        endpoint
    }

    /// Its address.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// Runs `f` on a thread in the endpoint's network namespace and returns
    /// what it returns: a socket `f` binds or connects is the endpoint's,
    /// and so are threads `f` starts. Blocks until `f` returns.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    nix::sched::setns(&self.netns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .unwrap_or_else(|e| panic!("enter the endpoint's network namespace: {e}"));
                    f()
                })
                .join()
        })
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// The namespace as a path other programs can open.
    fn netns_path(&self) -> String {
        use std::os::fd::AsRawFd;
        format!("/proc/{}/fd/{}", std::process::id(), self.netns.as_raw_fd())
    }
}

impl Drop for BridgeEndpoint {
    fn drop(&mut self) {
        // Sockets still open keep the namespace; its interface goes now.
        let _ = Command::new(program("ip"))
            .args(["link", "del", &self.veth])
            .output();
    }
}

/// Runs the host's `ip` with `args`, failing the test unless it succeeds.
fn host_ip(args: &[&str]) {
    let out = Command::new(program("ip"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run ip {}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        describe(&out)
    );
}

// ---- processes ---------------------------------------------------------

/// Runs `cmd` (in a process group of its own) with `input` on its stdin,
/// collecting its output; after `deadline` kills the whole group and
/// returns why with what it wrote until then.
fn run(
    cmd: &mut Command,
    input: Option<&[u8]>,
    deadline: Duration,
) -> Result<Output, (String, Output)> {
    let mut child = match cmd
        .process_group(0)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            return Err((
                format!("could not start ({e})"),
                Output {
                    // As a shell reports a command it cannot run.
                    status: ExitStatus::from_raw(127 << 8),
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                },
            ));
        }
    };
    let pid = child.id();
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        let input = input.to_vec();
        // A command that does not read its input gets EPIPE; that is fine.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    let timed_out = rx.recv_timeout(deadline).is_err();
    if timed_out {
        let _ = killpg(as_pid(pid), Signal::SIGKILL);
    }
    let out = waiter
        .join()
        .expect("waiter thread")
        .expect("wait for the command");
    if timed_out {
        Err((format!("did not end within {deadline:?}"), out))
    } else {
        Ok(out)
    }
}

/// Runs `cmd` (an `unshare --fork --kill-child`, so that killing it ends
/// everything it started) with its output appended to `log`, failing the
/// test with the log's end when it fails or takes longer than
/// [`BUILD_WAIT`].
fn run_logged(cmd: &mut Command, log: &Path, what: &str) {
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("open {}: {e}", log.display()));
    let _ = writeln!(&file, "\n==== {what}");
    let file2 = file.try_clone().expect("clone the log handle");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(file2)
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let end = Instant::now() + BUILD_WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the build step") {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not end within {BUILD_WAIT:?}; the end of {}:\n{}",
                log.display(),
                crate::tail(log, 40)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "{what} failed ({status}); the end of {}:\n{}",
        log.display(),
        crate::tail(log, 40)
    );
}

/// The environment of commands run in nodes and chroots.
fn clean_env(cmd: &mut Command) {
    cmd.env_clear()
        .env("PATH", CONTAINER_PATH)
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .env("TERM", "dumb")
        .env("SYSTEMD_COLORS", "0");
}

/// The status and output of a command, for messages.
fn describe(out: &Output) -> String {
    format!(
        "status: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

/// `text` without its ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
        } else if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

fn as_pid(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).expect("a PID fits in i32"))
}

/// `name` found in `PATH` or the usual system directories (root's tools
/// live in `sbin`, which a test's `PATH` may lack).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `name`'s path, or `name` itself (then spawning it says what is wrong).
fn program(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| PathBuf::from(name))
}

/// From `/proc/PID/status`: the name, the parent, and the PID as seen in
/// each nested PID namespace (outermost first).
fn proc_status(pid: u32) -> Option<(String, u32, Vec<u32>)> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut name = None;
    let mut ppid = None;
    let mut nspid = Vec::new();
    let mut zombie = false;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("Name:") {
            name = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("PPid:") {
            ppid = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("NSpid:") {
            nspid = v
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
        } else if let Some(v) = line.strip_prefix("State:") {
            zombie = v.trim_start().starts_with('Z');
        }
    }
    if zombie {
        return None;
    }
    Some((name?, ppid?, nspid))
}

/// Whether `pid` is the systemd of the container `nspawn` runs: its child,
/// PID 1 of a PID namespace of its own.
fn is_container_init(pid: u32, nspawn: u32) -> bool {
    pid != 0
        && proc_status(pid).is_some_and(|(name, ppid, nspid)| {
            ppid == nspawn && name == "systemd" && nspid.len() >= 2 && nspid.last() == Some(&1)
        })
}

/// The systemd of the container `nspawn` runs, once it has started.
fn find_container_init(nspawn: u32) -> Option<u32> {
    fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|&pid| is_container_init(pid, nspawn))
}

/// Holds an exclusive `flock` on `path` (created when missing) while the
/// returned value lives, saying so when it has to wait.
fn lock(path: &Path, what: &str) -> Flock<fs::File> {
    let open = || {
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
    };
    match Flock::lock(open(), FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((file, _)) => {
            eprintln!(
                "waiting for another process holding {} ({what})",
                path.display()
            );
            Flock::lock(file, FlockArg::LockExclusive)
                .unwrap_or_else(|(_, e)| panic!("lock {}: {e}", path.display()))
        }
    }
}

// ---- host set-up -------------------------------------------------------

/// `<target dir>/vigil-system`: the target directory is `CARGO_TARGET_DIR`
/// when that is absolute, else the `target` directory holding this test
/// executable (`<target>/<profile>/deps/<test>`).
fn system_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from)
        && dir.is_absolute()
    {
        return dir.join("vigil-system");
    }
    let exe = std::env::current_exe().expect("the path of the test executable");
    let target = exe
        .ancestors()
        .find(|a| a.file_name() == Some(OsStr::new("target")))
        .or_else(|| exe.ancestors().nth(3))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("vigil-system")
}

/// Starts the host's system bus when nothing answers on its socket:
/// `systemd-nspawn` wants one. It is left running for later tests.
fn ensure_host_bus() {
    static STARTING: Mutex<()> = Mutex::new(());
    let socket = Path::new("/run/dbus/system_bus_socket");
    if UnixStream::connect(socket).is_ok() {
        return;
    }
    let _guard = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    fs::create_dir_all(system_dir()).expect("create the system test directory");
    let _lock = lock(
        &system_dir().join("host-bus.lock"),
        "starting the host system bus",
    );
    if UnixStream::connect(socket).is_ok() {
        return;
    }
    fs::create_dir_all("/run/dbus").expect("create /run/dbus");
    let _ = fs::remove_file(socket);
    let _ = fs::remove_file("/run/dbus/pid");
    let status = Command::new(program("dbus-daemon"))
        .args(["--system", "--fork"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("start the host system bus (dbus-daemon --system): {e}"));
    assert!(
        status.success() && UnixStream::connect(socket).is_ok(),
        "the host system bus did not start (dbus-daemon --system --fork: {status}); \
         systemd-nspawn needs it"
    );
}

/// Creates the bridge `name` (up, no address) unless it exists.
fn ensure_bridge(name: &str) {
    assert!(
        (1..=15).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{name:?} is not a usable bridge name (1 to 15 of a-z, 0-9, -, _)"
    );
    let sys = Path::new("/sys/class/net").join(name);
    if !sys.exists() {
        let out = Command::new(program("ip"))
            .args(["link", "add", name, "type", "bridge"])
            .output()
            .unwrap_or_else(|e| panic!("run ip link add {name}: {e}"));
        // Another test may have created it meanwhile.
        assert!(
            out.status.success() || sys.exists(),
            "create the bridge {name}: {}",
            describe(&out)
        );
    }
    assert!(
        sys.join("bridge").exists(),
        "the host's interface {name} is not a bridge"
    );
    let out = Command::new(program("ip"))
        .args(["link", "set", name, "up"])
        .output()
        .unwrap_or_else(|e| panic!("run ip link set {name} up: {e}"));
    assert!(out.status.success(), "bring {name} up: {}", describe(&out));
}

fn check_node_name(name: &str) {
    // The host side of the veth is `vb-<name>`, and interface names have
    // at most 15 characters.
    assert!(
        (1..=12).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{name:?} is not a usable node name (1 to 12 of a-z, 0-9, -, starting with a letter)"
    );
}

fn overlay_arg(image: &Path, upper: &Path) -> OsString {
    let mut arg = OsString::from("--overlay=");
    arg.push(image);
    arg.push(":");
    arg.push(upper);
    arg.push(":/");
    arg
}

fn bind_arg(node: &str, bind: &Bind) -> OsString {
    for p in [&bind.host, &bind.container] {
        assert!(
            p.is_absolute() && !p.as_os_str().to_string_lossy().contains(':'),
            "node {node}: bind mount paths must be absolute and free of ':' ({})",
            p.display()
        );
    }
    assert!(
        bind.host.exists(),
        "node {node}: {} (to bind-mount) does not exist",
        bind.host.display()
    );
    let mut arg = OsString::from(if bind.read_only {
        "--bind-ro="
    } else {
        "--bind="
    });
    arg.push(&bind.host);
    arg.push(":");
    arg.push(&bind.container);
    arg
}

fn parse_cidr(cidr: &str) -> (Ipv4Addr, u8) {
    try_parse_cidr(cidr).unwrap_or_else(|e| panic!("{e}"))
}

fn try_parse_cidr(cidr: &str) -> Result<(Ipv4Addr, u8), String> {
    let (address, prefix) = cidr
        .split_once('/')
        .and_then(|(a, p)| {
            let address: Ipv4Addr = a.parse().ok()?;
            let prefix: u8 = p.parse().ok().filter(|p| *p <= 32)?;
            Some((address, prefix))
        })
        .ok_or_else(|| {
            format!("{cidr:?} is not an IPv4 address with a prefix length, like 192.0.2.11/24")
        })?;
    if !in_test_net(address) || prefix < TEST_NET.1 {
        return Err(format!(
            "{cidr} is not inside 192.0.2.0/24: node addresses stay in TEST-NET-1"
        ));
    }
    Ok((address, prefix))
}

fn in_test_net(address: Ipv4Addr) -> bool {
    let mask = u32::MAX << (32 - TEST_NET.1);
    u32::from(address) & mask == u32::from(TEST_NET.0)
}

// ---- images ------------------------------------------------------------

/// What decides an image's content; its hash names the image.
fn recipe(extra: &[String]) -> String {
    format!(
        "vigil system-test image, recipe {RECIPE_VERSION}\nsuite: {SUITE}\nvariant: minbase\n\
         architecture: {}\nbase: {}\nextra: {}\nmasked: {}\n",
        std::env::consts::ARCH,
        BASE_PACKAGES.join(" "),
        extra.join(" "),
        MASKED_UNITS.join(" "),
    )
}

/// 64-bit FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Builds the image at `root`, in `<root>.partial` first; only a complete
/// build is renamed to `root`. The caller holds the image's lock.
fn build_image(root: &Path, recipe: &str, extra: &[String]) {
    let partial = root.with_extension("partial");
    let log = root.with_extension("log");
    if partial.exists() {
        refuse_if_mounted(&partial);
        fs::remove_dir_all(&partial)
            .unwrap_or_else(|e| panic!("remove the unfinished {}: {e}", partial.display()));
    }
    let _ = fs::remove_file(&log);
    let mirror = debian_mirror();
    let started = Instant::now();
    eprintln!(
        "building the system-test image {} (Debian {SUITE} from {mirror}, extra packages: [{}]; \
         about a minute; log in {})",
        root.display(),
        extra.join(", "),
        log.display()
    );

    // In mount and PID namespaces of its own, so the /proc and /sys
    // debootstrap mounts in the target go away with it, and so do its
    // processes, also when it is interrupted.
    let mut debootstrap = Command::new(program("unshare"));
    debootstrap
        .args([
            "--mount",
            "--propagation=private",
            "--pid",
            "--fork",
            "--kill-child",
        ])
        .arg("--mount-proc")
        .arg(program("debootstrap"))
        .arg("--variant=minbase")
        .arg(format!("--include={}", BASE_PACKAGES.join(",")))
        .arg(SUITE)
        .arg(&partial)
        .arg(&mirror);
    run_logged(&mut debootstrap, &log, "debootstrap");

    // No service starts inside the chroot while packages are installed.
    write_image_file(
        &partial,
        "usr/sbin/policy-rc.d",
        "#!/bin/sh\nexit 101\n",
        0o755,
    );
    if !extra.is_empty() {
        chroot_run(&partial, &log, &["apt-get", "update"]);
        let mut install = vec!["apt-get", "install", "-y", "--no-install-recommends"];
        install.extend(extra.iter().map(String::as_str));
        chroot_run(&partial, &log, &install);
        chroot_run(&partial, &log, &["apt-get", "clean"]);
    }
    configure_image(&partial);
    write_image_file(&partial, "etc/vigil-image.recipe", recipe, 0o644);
    fs::rename(&partial, root)
        .unwrap_or_else(|e| panic!("rename {} to {}: {e}", partial.display(), root.display()));
    eprintln!(
        "built the system-test image {} in {:.0?}",
        root.display(),
        started.elapsed()
    );
}

/// Runs `args` in a chroot of `image`, with its own /proc (in private
/// mount and PID namespaces: the mount and every process started go away
/// when the command ends or is killed).
fn chroot_run(image: &Path, log: &Path, args: &[&str]) {
    let mut proc_arg = OsString::from("--mount-proc=");
    proc_arg.push(image.join("proc"));
    let mut cmd = Command::new(program("unshare"));
    clean_env(&mut cmd);
    for proxy in ["http_proxy", "https_proxy", "no_proxy"] {
        if let Some(value) = std::env::var_os(proxy) {
            cmd.env(proxy, value);
        }
    }
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .env("LC_ALL", "C")
        .args([
            "--mount",
            "--propagation=private",
            "--pid",
            "--fork",
            "--kill-child",
        ])
        .arg(proc_arg)
        .arg(program("chroot"))
        .arg(image)
        .args(args);
    run_logged(&mut cmd, log, &format!("chroot {}", args.join(" ")));
}

/// Makes the image fit to boot as many distinct nodes.
fn configure_image(image: &Path) {
    // Empty: each boot gets a machine ID of its own (from the container's
    // UUID). D-Bus reads the same one.
    write_image_file(image, "etc/machine-id", "", 0o444);
    let dbus_id = image.join("var/lib/dbus/machine-id");
    let _ = fs::remove_file(&dbus_id);
    if let Some(dir) = dbus_id.parent() {
        fs::create_dir_all(dir).expect("create var/lib/dbus");
    }
    std::os::unix::fs::symlink("/etc/machine-id", &dbus_id)
        .unwrap_or_else(|e| panic!("link {}: {e}", dbus_id.display()));
    // debootstrap copies the host's name; without the file, the name
    // `systemd-nspawn --hostname` gives stays.
    let _ = fs::remove_file(image.join("etc/hostname"));
    write_image_file(
        image,
        "etc/hosts",
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        0o644,
    );
    let units = image.join("etc/systemd/system");
    for unit in MASKED_UNITS {
        for wants in ["timers.target.wants", "multi-user.target.wants"] {
            let _ = fs::remove_file(units.join(wants).join(unit));
        }
        let mask = units.join(unit);
        let _ = fs::remove_file(&mask);
        std::os::unix::fs::symlink("/dev/null", &mask)
            .unwrap_or_else(|e| panic!("mask {}: {e}", mask.display()));
    }
}

fn write_image_file(image: &Path, path: &str, contents: &str, mode: u32) {
    let path = image.join(path);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    }
    let _ = fs::remove_file(&path);
    fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(&path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Refuses to delete a tree something is mounted in (removing it would
/// reach into the mounts).
fn refuse_if_mounted(dir: &Path) {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy();
    if let Some(line) = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&*prefix)))
    {
        panic!(
            "{} has a mount inside (left by an interrupted build?): {line}; \
             unmount it (`umount -R`) and retry",
            dir.display()
        );
    }
}

/// The Debian mirror: `VIGIL_DEBIAN_MIRROR`, else the first source of
/// the host's apt configuration that serves bookworm, else the first that
/// looks like a Debian archive, else deb.debian.org.
fn debian_mirror() -> String {
    if let Ok(mirror) = std::env::var("VIGIL_DEBIAN_MIRROR")
        && !mirror.is_empty()
    {
        return mirror;
    }
    let mut files: Vec<PathBuf> = fs::read_dir("/etc/apt/sources.list.d")
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.insert(0, PathBuf::from("/etc/apt/sources.list"));
    let mut sources = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        match file.extension().and_then(OsStr::to_str) {
            Some("sources") => sources.extend(deb822_sources(&text)),
            Some("list") => sources.extend(one_line_sources(&text)),
            _ => {}
        }
    }
    pick_mirror(&sources).unwrap_or_else(|| FALLBACK_MIRROR.to_string())
}

/// `(URI, suites)` of the `deb` entries of a deb822 `.sources` file.
fn deb822_sources(text: &str) -> Vec<(String, Vec<String>)> {
    let mut stanzas: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        let fields = stanzas.last_mut().expect("a stanza");
        if line.trim().is_empty() {
            if !fields.is_empty() {
                stanzas.push(Vec::new());
            }
        } else if line.starts_with('#') {
            // A comment.
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let mut out = Vec::new();
    for fields in stanzas {
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k == key)
                .map_or("", |(_, v)| v.as_str())
        };
        if get("enabled").eq_ignore_ascii_case("no")
            || !get("types").split_whitespace().any(|t| t == "deb")
        {
            continue;
        }
        let suites: Vec<String> = get("suites").split_whitespace().map(String::from).collect();
        for uri in get("uris").split_whitespace() {
            out.push((uri.to_string(), suites.clone()));
        }
    }
    out
}

/// `(URI, [suite])` of the `deb` lines of a one-line-style `.list` file.
fn one_line_sources(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut words = words.peekable();
        if words.peek().is_some_and(|w| w.starts_with('[')) {
            for w in words.by_ref() {
                if w.ends_with(']') {
                    break;
                }
            }
        }
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            out.push((uri.to_string(), vec![suite.to_string()]));
        }
    }
    out
}

fn pick_mirror(sources: &[(String, Vec<String>)]) -> Option<String> {
    let usable = |uri: &str| uri.starts_with("http://") || uri.starts_with("https://");
    sources
        .iter()
        .find(|(uri, suites)| usable(uri) && suites.iter().any(|s| s == SUITE))
        .or_else(|| {
            sources
                .iter()
                .find(|(uri, _)| usable(uri) && uri.trim_end_matches('/').ends_with("/debian"))
        })
        .map(|(uri, _)| uri.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_from_deb822_prefers_the_bookworm_stanza() {
        let text = "Types: deb\n# comment\nURIs: http://deb.debian.org/debian-security\n\
                    Suites: bookworm-security\nComponents: main\n\n\
                    Types: deb deb-src\nURIs: http://mirror.example/debian/\n\
                    Suites: bookworm bookworm-updates\nComponents: main\n\n\
                    Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n";
        assert_eq!(
            pick_mirror(&deb822_sources(text)).as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn mirror_from_one_line_sources() {
        let text = "# deb http://commented.example/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] https://other.example/apt stable main\n\
                    deb http://ftp.example/debian trixie main\n";
        assert_eq!(
            pick_mirror(&one_line_sources(text)).as_deref(),
            Some("http://ftp.example/debian")
        );
        assert_eq!(
            pick_mirror(&one_line_sources("deb cdrom:/ bookworm main\n")),
            None
        );
    }

    #[test]
    fn recipes_name_images_stably() {
        let a = recipe(&["iputils-ping".to_string()]);
        assert_eq!(fnv1a(a.as_bytes()), fnv1a(a.as_bytes()));
        assert_ne!(fnv1a(a.as_bytes()), fnv1a(recipe(&[]).as_bytes()));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn console_colours_are_stripped() {
        assert_eq!(
            strip_ansi("[\u{1b}[0;32m  OK  \u{1b}[0m] Started \u{1b}[0;1;39mdbus\u{1b}[0m.\n"),
            "[  OK  ] Started dbus.\n"
        );
    }

    #[test]
    fn addresses_stay_in_test_net() {
        assert_eq!(
            parse_cidr("192.0.2.11/24"),
            (Ipv4Addr::new(192, 0, 2, 11), 24)
        );
        assert!(try_parse_cidr("10.0.0.1/24").is_err());
        assert!(try_parse_cidr("192.0.2.1/16").is_err());
        assert!(try_parse_cidr("192.0.2.1").is_err());
        assert!(try_parse_cidr("192.0.2.1/33").is_err());
    }
}
