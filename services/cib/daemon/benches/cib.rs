//! Replicated CIB changes on 3 nodes on loopback: latency from the D-Bus
//! call to the change applied on every replica, and throughput.
//!
//! ```text
//! cargo bench -p vigil-cibd --bench cib [-- --seconds N --in-flight N]
//! ```
//!
//! Three nodes (127.0.X.1..3), each running `vigil-membershipd` and
//! `vigil-cibd` on its own private bus, the bench a client of every bus.
//! A change counts as applied on a replica when that replica's `Changed`
//! signal for its version arrives; the latency of a change is from just
//! before the call to the last of the three signals. Two kinds of change,
//! each from clients on every node:
//!
//! - configuration: `Modify` of a cluster option (bumps `epoch`; each
//!   replica writes it to disk, fsync included, before the origin answers);
//! - status: `Modify` of a node's transient attribute in the status
//!   section (bumps `num_updates`; not written to disk, as in Pacemaker);
//! - status in batches: ten such changes in one `Batch` call (one
//!   replicated change, one version step), as the controller records many
//!   operation results at once; counted as ten changes.
//!
//! Sequential (one change at a time, for latency) and concurrent (several
//! calls in flight per node, for throughput). Without `--bench` (as `cargo
//! test --benches` runs it) a short smoke run checks that everything
//! arrives, and prints no verdicts.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use vigil_dbus::cib::{ManagerProxy, Version};
use vigil_testkit::{Daemon, Nodes, eventually, sibling_binary};
use zbus::proxy::CacheProperties;

const CIBD: &str = env!("CARGO_BIN_EXE_vigil-cibd");

/// When each replica applied each version.
type Seen = Arc<Mutex<BTreeMap<Version, Vec<Instant>>>>;

struct Bench {
    proxies: Vec<ManagerProxy<'static>>,
    seen: Seen,
    _daemons: Vec<Daemon>,
    _nodes: Nodes,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let value = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seconds = value("--seconds", if full { 5 } else { 1 });
    let in_flight = value("--in-flight", 16) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(full, seconds, in_flight))
}

async fn run(full: bool, seconds: u64, in_flight: usize) -> anyhow::Result<()> {
    println!(
        "vigil-cibd benchmark ({} build, {})",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        if full {
            "full"
        } else {
            "smoke: run with `cargo bench` for the figures"
        }
    );
    let Some(membershipd) = sibling_binary("cib bench", CIBD, "vigil-membershipd") else {
        return Ok(());
    };
    let b = start(&membershipd).await?;
    println!(
        "3 nodes on loopback, each vigil-membershipd + vigil-cibd on a private bus; latency: call -> Changed signal on all 3 replicas"
    );
    for kind in [Kind::Config, Kind::Status, Kind::StatusBatch] {
        let n = if full { 500 } else { 20 };
        let lat = sequential(&b, kind, n).await?;
        report(
            &format!("{}, one at a time ({n} changes)", kind.label()),
            lat,
            None,
            full,
        );
        let (lat, elapsed) = concurrent(&b, kind, seconds, in_flight).await?;
        let per_call = if let Kind::StatusBatch = kind {
            BATCH
        } else {
            1
        };
        let rate = (lat.len() as u64 * per_call) as f64 / elapsed.as_secs_f64();
        report(
            &format!(
                "{}, {in_flight} in flight per node for {seconds} s",
                kind.label()
            ),
            lat,
            Some(rate),
            full,
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Config,
    Status,
    /// Status changes, `BATCH` to a call (`Batch`).
    StatusBatch,
}

/// Status changes in one `Batch` call.
const BATCH: u64 = 10;

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Config => "configuration changes (written to disk)",
            Kind::Status => "status changes",
            Kind::StatusBatch => "status changes, 10 to a Batch call",
        }
    }

    /// (section, xml) of change number `i` made on node `node`.
    fn change(self, node: usize, i: u64) -> (&'static str, String) {
        match self {
            Kind::Config => (
                "crm_config",
                format!(
                    "<cluster_property_set id=\"bench\"><nvpair id=\"bench-n{node}\" name=\"bench-n{node}\" value=\"{i}\"/></cluster_property_set>"
                ),
            ),
            Kind::Status | Kind::StatusBatch => (
                "status",
                format!(
                    "<node_state id=\"{node}\" uname=\"n{node}\"><transient_attributes id=\"{node}\"><instance_attributes id=\"status-{node}\"><nvpair id=\"status-{node}-bench\" name=\"bench\" value=\"{i}\"/></instance_attributes></transient_attributes></node_state>"
                ),
            ),
        }
    }
}

async fn start(membershipd: &std::path::Path) -> anyhow::Result<Bench> {
    let nodes = Nodes::new(46, 3);
    let mut daemons = Vec::new();
    for id in 1..=3 {
        daemons.push(nodes.start_membership(membershipd, id).await);
    }
    let mut proxies = Vec::new();
    let seen: Seen = Arc::default();
    for id in 1..=3u32 {
        let mut cmd = Command::new(CIBD);
        cmd.arg("--bus")
            .arg(nodes.bus(id))
            .arg("--state-dir")
            .arg(nodes.state(id, "cib"))
            .arg("--node-name")
            .arg(format!("n{id}"));
        let d = Daemon::start(
            &format!("vigil-cibd of node {id}"),
            cmd,
            &nodes.log(id, "cib"),
        );
        nodes.wait_for_name(&d, id, "org.vigil.cib1").await;
        daemons.push(d);
        let conn = nodes.connect(id).await;
        let p = ManagerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        let mut changed = p.receive_changed().await?;
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(sig) = changed.next().await {
                let at = Instant::now();
                if let Ok(args) = sig.args() {
                    seen.lock()
                        .unwrap()
                        .entry(*args.version())
                        .or_default()
                        .push(at);
                }
            }
        });
        proxies.push(p);
    }
    for p in &proxies {
        eventually("every replica to be in step", async || {
            match p.synced().await {
                Ok(true) => Ok(()),
                Ok(false) => Err("not yet".into()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
    }
    Ok(Bench {
        proxies,
        seen,
        _daemons: daemons,
        _nodes: nodes,
    })
}

/// Makes change `i` (or a batch of them) on node `node`; returns the
/// latency to all replicas.
async fn one(b: &Bench, kind: Kind, node: usize, i: u64) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let v = if let Kind::StatusBatch = kind {
        // Ten nodes' states in one call.
        let changes: Vec<(&str, String)> = (0..BATCH)
            .map(|k| kind.change(10 + k as usize, i))
            .collect();
        let list: Vec<(&str, &str, &str, bool)> = changes
            .iter()
            .map(|(section, xml)| ("modify", *section, xml.as_str(), true))
            .collect();
        b.proxies[node]
            .batch(&list)
            .await
            .map_err(|e| anyhow::anyhow!("batch on node {}: {e}", node + 1))?
    } else {
        let (section, xml) = kind.change(node + 1, i);
        b.proxies[node]
            .modify(section, &xml, true)
            .await
            .map_err(|e| anyhow::anyhow!("modify on node {}: {e}", node + 1))?
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(times) = b.seen.lock().unwrap().get(&v)
            && times.len() >= 3
        {
            let last = times.iter().max().copied().unwrap_or(t0);
            return Ok(last.saturating_duration_since(t0));
        }
        if Instant::now() > deadline {
            anyhow::bail!("version {v:?} did not reach all 3 replicas within 10 s");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

async fn sequential(b: &Bench, kind: Kind, n: u64) -> anyhow::Result<Vec<Duration>> {
    let mut lat = Vec::new();
    for i in 0..n {
        lat.push(one(b, kind, (i % 3) as usize, 1_000_000 + i).await?);
    }
    Ok(lat)
}

async fn concurrent(
    b: &Bench,
    kind: Kind,
    seconds: u64,
    in_flight: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(2_000_000));
    let results = futures_util::future::join_all((0..3 * in_flight).map(|slot| {
        let counter = counter.clone();
        async move {
            let mut lat = Vec::new();
            while Instant::now() < end {
                let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                lat.push(one(b, kind, slot % 3, i).await?);
            }
            anyhow::Ok(lat)
        }
    }))
    .await;
    let elapsed = start.elapsed();
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok((all, elapsed))
}

fn report(what: &str, mut lat: Vec<Duration>, rate: Option<f64>, full: bool) {
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    println!();
    println!("  {what}");
    println!(
        "    latency: p50 {}  p99 {}  max {}",
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(lat.last().copied().unwrap_or_default())
    );
    if let Some(rate) = rate {
        println!("    throughput: {rate:.0} changes/s applied on all 3 replicas");
    }
    if !full {
        return;
    }
    // One at a time, the latency target; many in flight, the throughput
    // target (its latencies include waiting behind the others).
    match rate {
        None => {
            let p50 = pct(0.5);
            println!(
                "    => p50 {} (target < 2 ms {})",
                ms(p50),
                if p50 < Duration::from_millis(2) {
                    "met"
                } else {
                    "MISSED"
                }
            );
        }
        Some(r) => println!(
            "    => {r:.0} changes/s (target >= 2,000 {})",
            if r >= 2000.0 { "met" } else { "MISSED" }
        ),
    }
}
