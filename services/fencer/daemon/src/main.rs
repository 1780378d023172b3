//! vigil-fenced: Vigil's fencer (pacemaker-fenced's job).
//!
//! Keeps the cluster's fencing in step with the other nodes' fencers
//! through the membership group `fencing`, runs fence agents when this
//! node is an operation's executioner, and serves `org.vigil.fencing1`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use tokio::sync::mpsc;

use vigil_fenced::dbus::{self, Job, Manager, Shared};
use vigil_fenced::runner::Runner;
use vigil_fenced::runtime::Runtime;
use vigil_runtime::auth::Callers;

#[derive(Parser, Debug)]
#[command(name = "vigil-fenced", version, about = "Vigil's fencer")]
struct Args {
    /// D-Bus address to serve on (default: $VIGIL_BUS, else the system bus)
    #[arg(long)]
    bus: Option<String>,
    /// This node's name until the membership daemon says (default: the
    /// host name)
    #[arg(long)]
    node_name: Option<String>,
    /// Where fence agents are
    #[arg(long, default_value = "/usr/sbin")]
    agent_dir: PathBuf,
    /// Print the D-Bus introspection XML of the served manager object and
    /// exit
    #[arg(long)]
    bus_introspect: bool,
    /// Print the D-Bus introspection XML of a job object and exit
    #[arg(long)]
    bus_introspect_job: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    vigil_runtime::daemon_main("vigil-fenced", run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Shared {
        commands: tx,
        config: Arc::new(Mutex::new(Arc::default())),
        runner: Arc::new(Runner::new(args.agent_dir.clone())),
        callers: Arc::new(Callers::new()),
    };
    if args.bus_introspect {
        let manager = Manager {
            shared: shared.clone(),
        };
        print!(
            "{}",
            vigil_runtime::introspect(dbus::NAME, dbus::PATH, manager).await?
        );
        return Ok(());
    }
    if args.bus_introspect_job {
        let job = Job {
            id: 1,
            target: String::new(),
            action: String::new(),
        };
        print!(
            "{}",
            vigil_runtime::introspect(dbus::NAME, dbus::job_path(1).as_str(), job).await?
        );
        return Ok(());
    }
    let node = args.node_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    });
    let bus_addr = vigil_runtime::bus_address(args.bus.as_deref());
    let builder = vigil_runtime::bus_builder(bus_addr.as_deref()).serve_at(
        dbus::PATH,
        Manager {
            shared: shared.clone(),
        },
    );
    let bus = vigil_runtime::claim_name(builder, dbus::NAME).await?;
    tracing::info!(node = %node, agents = %args.agent_dir.display(), "fencer started");
    vigil_runtime::notify_ready("joining the fencing group");
    vigil_runtime::spawn_watchdog();
    Runtime { shared, bus, node }.run(rx).await
}
