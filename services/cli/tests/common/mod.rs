//! What the `vigil` end-to-end tests share: running the real `vigil`
//! binary as a user would, reading `vigil status`, waiting, and a sandbox
//! that is always taken down.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");

/// Runs `vigil ARGS` (with `VIGIL_BUS=bus` when given): (success, stdout
/// and stderr).
pub fn vigil(args: &[&str], bus: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(VIGIL);
    cmd.args(args);
    match bus {
        Some(b) => cmd.env("VIGIL_BUS", b),
        None => cmd.env_remove("VIGIL_BUS"),
    };
    let out = cmd.output().expect("run vigil");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The node a resource is started on, per `vigil status`.
pub fn started_on(status: &str, rsc: &str) -> Option<String> {
    status
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("* {rsc}\t")))
        .and_then(|l| l.split("Started ").nth(1))
        // "Started n2 (UNCLEAN)" is not started anywhere usable.
        .filter(|n| !n.contains("UNCLEAN"))
        .and_then(|n| n.split_whitespace().next())
        .map(str::to_string)
}

/// The primitives of the sandbox's demo configuration.
pub const DEMO_PRIMITIVES: [&str; 4] = ["web-ip", "web-server", "db", "db-backup"];

/// Whether `vigil status` shows every demo primitive started.
pub fn all_started(status: &str) -> bool {
    DEMO_PRIMITIVES
        .iter()
        .all(|r| started_on(status, r).is_some())
}

/// The DC's name, per `vigil status`.
pub fn dc_of(status: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.trim().strip_prefix("* Current DC: "))
        .and_then(|l| l.split_whitespace().next())
        .filter(|n| *n != "NONE")
        .map(str::to_string)
}

/// A sandbox of `nodes` nodes with the demo primitives started: the
/// sandbox, n1's bus and the status that showed them; `None` when the test
/// must skip.
pub fn started_sandbox(test: &str, nodes: u32) -> Option<(Sandbox, String, String)> {
    if !daemons_built(test) {
        return None;
    }
    let s = Sandbox::up(nodes);
    let bus = s.bus("n1");
    let status = wait_for("the demo resources to start", || {
        let (ok, st) = vigil(&["status"], Some(&bus));
        if ok && all_started(&st) {
            Ok(st)
        } else {
            Err(st)
        }
    });
    Some((s, bus, status))
}

/// Tries `f` every 200 ms until it succeeds, for at most `secs` seconds.
pub fn wait_for_within<T>(what: &str, secs: u64, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("timed out waiting for {what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// [`wait_for_within`] 30 s.
pub fn wait_for<T>(what: &str, f: impl FnMut() -> Result<T, String>) -> T {
    wait_for_within(what, 30, f)
}

/// Whether the sandbox's daemons were built beside `vigil` (the test
/// skips, saying so, when not; `VIGIL_REQUIRE_ALL` makes that a failure).
pub fn daemons_built(test: &str) -> bool {
    if !vigil_testkit::dbus_daemon_available(test) {
        return false;
    }
    let beside = Path::new(VIGIL).parent().unwrap();
    if !beside.join("vigil-controld").exists() {
        eprintln!(
            "SKIPPED {test}: build the daemons beside {VIGIL} first (cargo build --workspace \
             --bins; with --release for cargo bench)"
        );
        assert!(
            std::env::var_os("VIGIL_REQUIRE_ALL").is_none(),
            "{test}: the daemons are required"
        );
        return false;
    }
    true
}

/// A sandbox in a temporary directory, taken down (with the ends of its
/// logs printed when the test fails) however the test ends.
pub struct Sandbox {
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    // Last: the next test's sandbox starts once this one is down.
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

/// One sandbox at a time in a test binary (they would race for a port).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Sandbox {
    /// `vigil sandbox up --nodes N` in a fresh directory.
    pub fn up(nodes: u32) -> Sandbox {
        let guard = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tmp = tempfile::tempdir().unwrap();
        let s = Sandbox {
            dir: tmp.path().join("sandbox"),
            _tmp: tmp,
            _one_at_a_time: guard,
        };
        let (ok, out) = vigil(
            &[
                "sandbox",
                "up",
                "--nodes",
                &nodes.to_string(),
                "--dir",
                s.d(),
            ],
            None,
        );
        assert!(ok, "{out}");
        s
    }

    /// The directory, as an argument.
    pub fn d(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// Node `name`'s bus address.
    pub fn bus(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("nodes/{name}/bus")))
            .unwrap()
            .trim()
            .to_string()
    }

    /// `vigil sandbox ARGS --dir DIR`.
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let mut all: Vec<&str> = vec!["sandbox"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--dir", self.d()]);
        vigil(&all, None)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in ["n1", "n2", "n3"] {
                for log in ["vigil-controld.log", "vigil-fenced.log"] {
                    let path = self.dir.join("nodes").join(node).join("logs").join(log);
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(25).collect();
                    eprintln!(
                        "---- {} ----\n{}",
                        path.display(),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
            }
        }
        let _ = Command::new(VIGIL)
            .args(["sandbox", "down", "--dir"])
            .arg(&self.dir)
            .output();
    }
}

/// Watches that no resource ever runs on two nodes at once: every 100 ms,
/// the executor of every node that is on is asked which of `resources`
/// it runs, until the watch is checked.
pub struct NeverTwice {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u64, Vec<String>)>>,
}

impl NeverTwice {
    pub fn start(sandbox: &Sandbox, resources: &[&str]) -> NeverTwice {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let nodes_dir = sandbox.dir.join("nodes");
        let resources: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut conns: std::collections::BTreeMap<String, zbus::Connection> =
                    Default::default();
                let mut samples = 0u64;
                let mut twice = Vec::new();
                while !flag.load(Ordering::Relaxed) {
                    let mut on: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
                    let mut names: Vec<String> = std::fs::read_dir(&nodes_dir)
                        .map(|rd| {
                            rd.flatten()
                                .map(|e| e.file_name().to_string_lossy().into_owned())
                                .collect()
                        })
                        .unwrap_or_default();
                    names.sort();
                    for node in names {
                        let Ok(bus) = std::fs::read_to_string(nodes_dir.join(&node).join("bus"))
                        else {
                            continue;
                        };
                        let bus = bus.trim().to_string();
                        if !conns.contains_key(&node) {
                            let c = tokio::time::timeout(
                                Duration::from_millis(300),
                                zbus::connection::Builder::address(bus.as_str()).build(),
                            )
                            .await;
                            let Ok(Ok(conn)) = c else { continue };
                            conns.insert(node.clone(), conn);
                        }
                        let conn = conns[&node].clone();
                        let Ok(x) = vigil_dbus::executor::ManagerProxy::new(&conn).await else {
                            conns.remove(&node);
                            continue;
                        };
                        for r in &resources {
                            let got =
                                tokio::time::timeout(Duration::from_millis(300), x.get_resource(r))
                                    .await;
                            match got {
                                Ok(Ok((_, state, _, _, _))) if state == "running" => {
                                    on.entry(r.as_str()).or_default().push(node.clone());
                                }
                                Ok(Ok(_)) => {}
                                // Not known there, or the node is off.
                                Ok(Err(zbus::Error::FDO(_))) => {}
                                _ => {
                                    conns.remove(&node);
                                    break;
                                }
                            }
                        }
                    }
                    samples += 1;
                    for (r, nodes) in on {
                        if nodes.len() > 1 {
                            twice.push(format!("sample {samples}: {r} runs on {nodes:?}"));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                (samples, twice)
            })
        });
        NeverTwice {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops watching; panics if a resource was seen on two nodes.
    pub fn check(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (samples, twice) = self.thread.take().unwrap().join().unwrap();
        assert!(samples > 0, "the watch took no sample");
        assert!(
            twice.is_empty(),
            "resources ran on two nodes at once:\n{}",
            twice.join("\n")
        );
        eprintln!("never twice: {samples} samples, no resource on two nodes");
    }
}

impl Drop for NeverTwice {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
