//! Failover time in the sandbox: 3 nodes at default settings, fencing
//! on. From pulling the plug of the node that runs the Dummy resource `db`
//! (`vigil sandbox kill`) to `db` running on a survivor, as the survivors'
//! executors report it (asked every 10 ms). Each run boots a fresh
//! sandbox; the median over the runs is the figure (target: under 2 s).
//!
//! `cargo build --release --workspace --bins && cargo bench -p vigil
//! --bench failover` does 7 runs
//! (`VIGIL_FAILOVER_RUNS` to change that); under `cargo test` it is a
//! one-run smoke test.

use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use common::Sandbox;

/// Where `db` runs, from the executors of `nodes` (the first that says
/// so).
async fn db_runs_on(conns: &[(String, zbus::Connection)]) -> Option<String> {
    for (node, conn) in conns {
        let Ok(x) = vigil_dbus::executor::ManagerProxy::new(conn).await else {
            continue;
        };
        if let Ok(Ok((_, state, _, _, _))) =
            tokio::time::timeout(Duration::from_millis(200), x.get_resource("db")).await
            && state == "running"
        {
            return Some(node.clone());
        }
    }
    None
}

/// One run: the failover time.
fn run_once(rt: &tokio::runtime::Runtime) -> Duration {
    let sandbox = Sandbox::up(3);
    let nodes = ["n1", "n2", "n3"];
    let conns: Vec<(String, zbus::Connection)> = rt.block_on(async {
        let mut v = Vec::new();
        for n in nodes {
            let c = zbus::connection::Builder::address(sandbox.bus(n).as_str())
                .build()
                .await
                .unwrap();
            v.push((n.to_string(), c));
        }
        v
    });
    // Wait until db runs, and the cluster has been quiet for a moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    let home = loop {
        if let Some(n) = rt.block_on(db_runs_on(&conns)) {
            break n;
        }
        assert!(Instant::now() < deadline, "db never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_secs(2));
    let survivors: Vec<(String, zbus::Connection)> =
        conns.into_iter().filter(|(n, _)| *n != home).collect();
    let t0 = Instant::now();
    let (ok, out) = sandbox.run(&["kill", &home]);
    assert!(ok, "{out}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if rt.block_on(db_runs_on(&survivors)).is_some() {
            return t0.elapsed();
        }
        assert!(Instant::now() < deadline, "db never came back");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn main() {
    const T: &str = "failover";
    if !common::daemons_built(T) {
        return;
    }
    let bench = std::env::args().any(|a| a == "--bench");
    let runs: usize = if bench {
        std::env::var("VIGIL_FAILOVER_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(7)
    } else {
        1
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut times: Vec<Duration> = (0..runs)
        .map(|i| {
            let t = run_once(&rt);
            eprintln!("run {}: {} ms", i + 1, t.as_millis());
            t
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "failover (sandbox, 3 nodes, fencing on, default settings): median {} ms over {} run(s) \
         (min {} ms, max {} ms); target under 2000 ms",
        median.as_millis(),
        times.len(),
        times[0].as_millis(),
        times[times.len() - 1].as_millis()
    );
}
