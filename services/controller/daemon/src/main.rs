//! vigil-controld: Vigil's controller (pacemaker-controld's job).
//!
//! Joins the membership group `crmd`; the member with the lowest node id
//! is the DC, which schedules and carries out transitions; every node runs
//! what the DC asks through its executor and records the results in the
//! CIB.

use std::process::ExitCode;

use clap::Parser;
use vigil_controld::dbus;

#[derive(Parser, Debug)]
#[command(name = "vigil-controld", version, about = "Vigil's controller")]
struct Args {
    /// D-Bus address of this node's bus (default: $VIGIL_BUS, else the
    /// system bus)
    #[arg(long)]
    bus: Option<String>,
    /// This node's name until the membership daemon says (default: the
    /// host name)
    #[arg(long)]
    node_name: Option<String>,
    /// Print the D-Bus introspection XML of the served object and exit
    #[arg(long)]
    bus_introspect: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    vigil_runtime::daemon_main("vigil-controld", run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let node = args.node_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    });
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let view = std::sync::Arc::new(std::sync::Mutex::new(dbus::View::default()));
    let manager = dbus::Manager {
        commands: tx,
        view: view.clone(),
        callers: vigil_runtime::auth::Callers::new(),
    };
    if args.bus_introspect {
        print!(
            "{}",
            vigil_runtime::introspect(dbus::NAME, dbus::PATH, manager).await?
        );
        return Ok(());
    }
    let address = vigil_runtime::bus_address(args.bus.as_deref());
    let builder = vigil_runtime::bus_builder(address.as_deref()).serve_at(dbus::PATH, manager);
    let bus = vigil_runtime::claim_name(builder, dbus::NAME).await?;
    vigil_runtime::notify_ready("joining the cluster");
    vigil_runtime::spawn_watchdog();
    vigil_controld::runtime::run(bus, node, rx, view).await
}
