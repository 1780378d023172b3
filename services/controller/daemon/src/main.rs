//! vigil-controld: Vigil's controller (pacemaker-controld's job).
//!
//! Joins the membership group `crmd`; the member with the lowest node id
//! is the DC, which schedules and carries out transitions; every node runs
//! what the DC asks through its executor and records the results in the
//! CIB.

use std::process::ExitCode;

use clap::Parser;

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
    let address = vigil_runtime::bus_address(args.bus.as_deref());
    let bus = vigil_runtime::bus_builder(address.as_deref())
        .build()
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the bus: {e}"))?;
    vigil_runtime::notify_ready("joining the cluster");
    vigil_runtime::spawn_watchdog();
    vigil_controld::runtime::run(bus, node).await
}
