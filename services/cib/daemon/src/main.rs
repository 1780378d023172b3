//! vigil-cibd: Vigil's CIB daemon (pacemaker-based's job).
//!
//! Keeps this node's replica of the CIB, equal to the other nodes' through
//! the membership group `cib`, writes it to disk, and serves
//! `org.vigil.cib1` on the bus.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use tokio::sync::mpsc;

use vigil_cib::xml::Document;
use vigil_cibd::{dbus, engine, replica, runtime, store, writer};

#[derive(Parser, Debug)]
#[command(name = "vigil-cibd", version, about = "Vigil's CIB daemon")]
struct Args {
    /// D-Bus address to serve on (default: $VIGIL_BUS, else the system bus)
    #[arg(long)]
    bus: Option<String>,
    /// Where the CIB is kept
    #[arg(long, default_value = store::DEFAULT_DIR)]
    state_dir: PathBuf,
    /// This node's name, written into the CIB as the origin of its changes
    /// (default: the host name)
    #[arg(long)]
    node_name: Option<String>,
    /// Accept a stored CIB whose digest does not match, and write its
    /// digest (only when you know the file is right)
    #[arg(long)]
    accept_digest: bool,
    /// Print the D-Bus introspection XML of the served object and exit
    #[arg(long)]
    bus_introspect: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    vigil_runtime::daemon_main("vigil-cibd", run(args))
}

fn shared(commands: mpsc::UnboundedSender<dbus::Command>) -> dbus::Shared {
    dbus::Shared {
        snapshot: Arc::new(Mutex::new(dbus::Snapshot::default())),
        commands,
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.bus_introspect {
        let (tx, _rx) = mpsc::unbounded_channel();
        let manager = dbus::Manager::new(shared(tx));
        print!(
            "{}",
            vigil_runtime::introspect(dbus::NAME, dbus::PATH, manager).await?
        );
        return Ok(());
    }
    let opened = store::Store::open(&args.state_dir, args.accept_digest)?;
    let witnesses = opened.witnesses.clone();
    for note in &opened.notes {
        tracing::warn!("{note}");
    }
    let cib = match opened.cib {
        Some(doc) => doc,
        None => {
            tracing::info!(
                dir = %args.state_dir.display(),
                "no stored CIB: starting from an empty one (the cluster's copy replaces it if newer)"
            );
            Document::parse(engine::EMPTY_CIB)?
        }
    };
    let node_name = args
        .node_name
        .clone()
        .unwrap_or_else(|| nix_hostname().unwrap_or_else(|| "localhost".to_string()));
    let (tx, rx) = mpsc::unbounded_channel();
    let sh = shared(tx);
    if let Ok(mut s) = sh.snapshot.lock() {
        let v = store::version_of(&cib);
        s.version = (v.admin_epoch, v.epoch, v.num_updates);
    }
    let bus_addr = vigil_runtime::bus_address(args.bus.as_deref());
    let builder = vigil_runtime::bus_builder(bus_addr.as_deref())
        .serve_at(dbus::PATH, dbus::Manager::new(sh.clone()));
    let bus = vigil_runtime::claim_name(builder, dbus::NAME).await?;
    let (writer, acks) = writer::Writer::start(opened.store)?;
    tracing::info!(version = %store::version_of(&cib), node = %node_name, "CIB daemon started");
    vigil_runtime::notify_ready(&format!(
        "CIB {} (this node's copy), joining the cluster",
        store::version_of(&cib)
    ));
    vigil_runtime::spawn_watchdog();
    let rt = runtime::Runtime {
        replica: replica::Replica::new(0, cib, witnesses),
        engine: engine::Engine,
        node_name,
        shared: sh,
        bus,
        writer,
    };
    rt.run(rx, acks).await
}

fn nix_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
