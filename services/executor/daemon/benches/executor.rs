//! Executor benchmark: `cargo bench -p vigil-execd --bench executor`.
//!
//! 1. Overhead per operation: the time from `Execute` on the bus to the
//!    `OperationCompleted` signal, minus the agent's own run time (the
//!    same agent, `/bin/true` as an OCF agent, started directly by this
//!    program). Target: under 2 ms.
//! 2. CPU with 500 resources monitored every 10 s: the daemon's own CPU
//!    time (and, apart, its agents') over a window. Target: under 5% of
//!    one core.
//!
//! `VIGIL_BENCH_OPS` (default 500) sets how many operations the first part
//! runs; `VIGIL_BENCH_SECONDS` (default 30) the second part's window;
//! `VIGIL_BENCH_RESOURCES` (default 500) its resources. Without `--bench`
//! (as `cargo test --benches` runs it) a short smoke run checks that
//! everything works, and its figures mean nothing.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use vigil_dbus::executor::ManagerProxy;
use vigil_testkit::{Bus, Daemon};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// (user + system) CPU seconds of a process, and of its waited children.
fn cpu(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // After "pid (comm)": state=0 ... utime=11 stime=12 cutime=13 cstime=14.
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    ((f[11] + f[12]) as f64 / tick, (f[13] + f[14]) as f64 / tick)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if Command::new("dbus-daemon")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED executor bench: dbus-daemon is required");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ocf");
    std::fs::create_dir_all(root.join("resource.d/bench")).unwrap();
    std::os::unix::fs::symlink("/bin/true", root.join("resource.d/bench/True")).unwrap();
    let bus = Bus::start(&dir.path().join("bus"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil-execd"));
    cmd.args(["--bus", bus.address(), "--node-name", "bench"])
        .args(["--ocf-root", root.to_str().unwrap()])
        .args([
            "--agent-state-dir",
            dir.path().join("state").to_str().unwrap(),
        ])
        .args(["--systemd-bus", bus.address()])
        .env("RUST_LOG", "warn");
    let daemon = Daemon::start("vigil-execd", cmd, &dir.path().join("execd.log"));
    let conn = zbus::connection::Builder::address(bus.address())
        .build()
        .await
        .unwrap();
    vigil_testkit::eventually("the executor is up", async || {
        vigil_testkit::has_owner(&conn, "org.vigil.executor1").await
    })
    .await;
    let m = ManagerProxy::new(&conn).await.unwrap();
    let pid = daemon.pid().unwrap();
    let full = std::env::args().any(|a| a == "--bench");
    if !full {
        println!("smoke run (cargo bench runs the real one):");
    }

    // 1. Overhead per operation.
    let ops = env_u64("VIGIL_BENCH_OPS", if full { 500 } else { 20 }) as usize;
    let agent = root.join("resource.d/bench/True");
    let mut direct = Vec::with_capacity(ops);
    for _ in 0..ops {
        let t = Instant::now();
        let s = Command::new(&agent)
            .arg("monitor")
            .env_clear()
            .status()
            .unwrap();
        assert!(s.success());
        direct.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut completed = m.receive_operation_completed().await.unwrap();
    let mut e2e = Vec::with_capacity(ops);
    let mut exec = Vec::with_capacity(ops);
    let warmup = if full { 20 } else { 2 };
    for i in 0..ops + warmup {
        let t = Instant::now();
        let (id, _) = m
            .execute(
                "r",
                "ocf:bench:True",
                "monitor",
                0,
                20_000,
                HashMap::new(),
                HashMap::new(),
                HashMap::new(),
            )
            .await
            .unwrap();
        let rec = loop {
            let s = completed.next().await.unwrap();
            let a = s.args().unwrap();
            if a.job_id == id {
                break a.record;
            }
        };
        if i >= warmup {
            e2e.push(t.elapsed().as_secs_f64() * 1e3);
            exec.push(rec.exec_ms as f64);
        }
    }
    for v in [&mut direct, &mut e2e, &mut exec] {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    let (d50, e50, e99) = (
        percentile(&direct, 0.5),
        percentile(&e2e, 0.5),
        percentile(&e2e, 0.99),
    );
    println!(
        "executor overhead per operation ({ops} sequential monitors of /bin/true as an OCF agent):"
    );
    println!(
        "  agent run directly:        p50 {d50:.2} ms  p99 {:.2} ms",
        percentile(&direct, 0.99)
    );
    println!("  Execute -> OperationCompleted: p50 {e50:.2} ms  p99 {e99:.2} ms");
    println!(
        "  executor's own exec time:  p50 {:.0} ms",
        percentile(&exec, 0.5)
    );
    println!(
        "  overhead (p50 end to end - p50 direct): {:.2} ms   target < 2 ms",
        e50 - d50
    );

    // 2. CPU with many recurring monitors.
    let resources = env_u64("VIGIL_BENCH_RESOURCES", if full { 500 } else { 10 });
    let seconds = env_u64("VIGIL_BENCH_SECONDS", if full { 30 } else { 1 });
    for i in 0..resources {
        let r = format!("res{i}");
        // Spread the first runs over the interval, as a cluster's start-up
        // spreads them.
        let delay = i * 10_000 / resources.max(1);
        let opts = HashMap::from([("start-delay-ms", zbus::Variant::from(delay))]);
        m.execute(
            &r,
            "ocf:bench:True",
            "monitor",
            10_000,
            20_000,
            HashMap::new(),
            HashMap::new(),
            opts,
        )
        .await
        .unwrap();
    }
    // Let the first round pass, then measure.
    tokio::time::sleep(Duration::from_secs(if full { 11 } else { 1 })).await;
    let (own0, kids0) = cpu(pid);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (own1, kids1) = cpu(pid);
    let wall = t0.elapsed().as_secs_f64();
    let own = (own1 - own0) / wall * 100.0;
    let kids = (kids1 - kids0) / wall * 100.0;
    let runs = resources as f64 * wall / 10.0;
    println!(
        "CPU with {resources} resources monitored every 10s, over {wall:.0}s (~{runs:.0} monitor runs):"
    );
    println!("  vigil-execd itself: {own:.2}% of one core   target < 5%");
    println!("  the agents it ran:  {kids:.2}% of one core (not counted above)");
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        .unwrap_or_default();
    println!("  vigil-execd RSS: {rss} kB");
    daemon.assert_running();
}
