//! A vigil-execd on a private bus, with an OCF root holding the real
//! agents of this machine plus the tests' own (provider `vigiltest`), and
//! a way to run one operation and wait for its result.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use vigil_dbus::executor::{ManagerProxy, OperationRecord};
use vigil_testkit::{Bus, Daemon};

pub const REAL_OCF_ROOT: &str = "/usr/lib/ocf";

pub struct Exec {
    pub dir: tempfile::TempDir,
    pub bus: Bus,
    pub daemon: Daemon,
    pub conn: zbus::Connection,
    pub ocf_root: PathBuf,
    pub state_dir: PathBuf,
}

/// Whether the real agents (Debian's resource-agents and
/// pacemaker-resource-agents) are installed; says why a test skips when
/// not (a failure when VIGIL_REQUIRE_ALL is set).
pub fn real_agents(test: &str) -> bool {
    let have = Path::new("/usr/lib/ocf/resource.d/heartbeat/Dummy").exists()
        && Path::new("/usr/lib/ocf/resource.d/pacemaker/Stateful").exists();
    if !have {
        eprintln!(
            "SKIPPED {test}: install resource-agents and pacemaker-resource-agents for the real OCF agents"
        );
        assert!(
            std::env::var_os("VIGIL_REQUIRE_ALL").is_none(),
            "{test}: the real OCF agents are required (VIGIL_REQUIRE_ALL is set)"
        );
    }
    have
}

/// Writes an executable file.
pub fn write_exec(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

impl Exec {
    /// Starts the daemon; `prepare` may add agents under the OCF root
    /// before it starts (`resource.d/vigiltest/`).
    pub async fn start(test: &str, prepare: impl FnOnce(&Path)) -> Option<Exec> {
        Exec::start_with(test, prepare, |_| {}).await
    }

    pub async fn start_with(
        test: &str,
        prepare: impl FnOnce(&Path),
        wrap: impl FnOnce(&mut Vec<String>),
    ) -> Option<Exec> {
        Exec::start_full(test, prepare, wrap, false).await
    }

    /// Starts the daemon on a bus every user may use.
    pub async fn start_open(test: &str) -> Option<Exec> {
        Exec::start_full(test, |_| {}, |_| {}, true).await
    }

    async fn start_full(
        test: &str,
        prepare: impl FnOnce(&Path),
        wrap: impl FnOnce(&mut Vec<String>),
        open: bool,
    ) -> Option<Exec> {
        if !vigil_testkit::dbus_daemon_available(test) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        if open {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let ocf_root = dir.path().join("ocf");
        std::fs::create_dir_all(ocf_root.join("resource.d/vigiltest")).unwrap();
        for link in ["lib", "resource.d/heartbeat", "resource.d/pacemaker"] {
            let real = Path::new(REAL_OCF_ROOT).join(link);
            if real.exists() {
                std::os::unix::fs::symlink(&real, ocf_root.join(link)).unwrap();
            }
        }
        prepare(&ocf_root);
        let state_dir = dir.path().join("agent-state");
        let bus = if open {
            Bus::start_open(&dir.path().join("bus"))
        } else {
            Bus::start(&dir.path().join("bus"))
        };
        let mut argv: Vec<String> = vec![
            env!("CARGO_BIN_EXE_vigil-execd").to_string(),
            "--bus".into(),
            bus.address().to_string(),
            "--node-name".into(),
            "n1".into(),
            "--ocf-root".into(),
            ocf_root.display().to_string(),
            "--agent-state-dir".into(),
            state_dir.display().to_string(),
            "--lsb-dir".into(),
            dir.path().join("init.d").display().to_string(),
            // No systemd here: a bus where nobody answers for it.
            "--systemd-bus".into(),
            bus.address().to_string(),
        ];
        wrap(&mut argv);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).env("RUST_LOG", "debug,zbus=warn");
        let daemon = Daemon::start("vigil-execd", cmd, &dir.path().join("execd.log"));
        let conn = zbus::connection::Builder::address(bus.address())
            .build()
            .await
            .unwrap();
        vigil_testkit::eventually("the executor owns its name", async || {
            daemon.assert_running();
            vigil_testkit::has_owner(&conn, "org.vigil.executor1").await
        })
        .await;
        Some(Exec {
            dir,
            bus,
            daemon,
            conn,
            ocf_root,
            state_dir,
        })
    }

    pub async fn manager(&self) -> ManagerProxy<'static> {
        ManagerProxy::new(&self.conn).await.unwrap()
    }

    /// Adds a test agent `ocf:vigiltest:NAME`.
    pub fn agent(&self, name: &str, body: &str) {
        write_exec(&self.ocf_root.join("resource.d/vigiltest").join(name), body);
    }

    /// Runs one operation and returns its record (and the job's result).
    pub async fn run(&self, op: Op<'_>) -> (OperationRecord, String) {
        let m = self.manager().await;
        let mut completed = m.receive_operation_completed().await.unwrap();
        let mut removed = m.receive_job_removed().await.unwrap();
        let (id, _path) = m
            .execute(
                op.resource,
                op.agent,
                op.action,
                op.interval_ms,
                op.timeout_ms,
                op.params.clone(),
                op.meta.clone(),
                HashMap::new(),
            )
            .await
            .unwrap_or_else(|e| panic!("execute {} {}: {e}", op.resource, op.action));
        let deadline = Duration::from_millis(op.timeout_ms.max(20_000) + 15_000);
        let record = tokio::time::timeout(deadline, async {
            loop {
                let sig = completed.next().await.expect("the signal stream");
                let args = sig.args().unwrap();
                if args.job_id == id {
                    return args.record;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no result for {} {}", op.resource, op.action));
        let (_target, result) = job_end(&mut removed, id).await;
        (record, result)
    }

    /// The processes whose process group is `pgid` (zombies excepted).
    pub fn group_members(pgid: u32) -> Vec<u32> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // pid (comm) state ppid pgrp ...
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
                out.push(pid);
            }
        }
        out
    }

    /// How many descriptors the daemon has open.
    pub fn open_fds(&self) -> usize {
        let pid = self.daemon.pid().expect("the daemon runs");
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.daemon.log).unwrap_or_default()
    }
}

/// Waits for job `id`'s JobRemoved: (target, result).
pub async fn job_end(
    removed: &mut vigil_dbus::executor::JobRemovedStream,
    id: u32,
) -> (String, String) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let sig = removed.next().await.expect("the signal stream");
            let args = sig.args().unwrap();
            if args.id == id {
                return (args.target.to_string(), args.result.to_string());
            }
        }
    })
    .await
    .expect("the job ends")
}

/// One operation to run.
#[derive(Clone)]
pub struct Op<'a> {
    pub resource: &'a str,
    pub agent: &'a str,
    pub action: &'a str,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub params: HashMap<&'a str, &'a str>,
    pub meta: HashMap<&'a str, &'a str>,
}

pub fn op<'a>(resource: &'a str, agent: &'a str, action: &'a str) -> Op<'a> {
    Op {
        resource,
        agent,
        action,
        interval_ms: 0,
        timeout_ms: 20_000,
        params: HashMap::new(),
        meta: HashMap::new(),
    }
}

impl<'a> Op<'a> {
    pub fn param(mut self, k: &'a str, v: &'a str) -> Op<'a> {
        self.params.insert(k, v);
        self
    }
    pub fn meta(mut self, k: &'a str, v: &'a str) -> Op<'a> {
        self.meta.insert(k, v);
        self
    }
    pub fn timeout(mut self, ms: u64) -> Op<'a> {
        self.timeout_ms = ms;
        self
    }
    pub fn every(mut self, ms: u64) -> Op<'a> {
        self.interval_ms = ms;
        self
    }
}
