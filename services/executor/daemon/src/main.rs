//! vigil-execd: Vigil's executor (pacemaker-execd's job).
//!
//! Runs this node's resource agents — OCF, LSB, systemd units — one
//! operation at a time per resource, with recurring monitors, and serves
//! `org.vigil.executor1` on the bus.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use tokio::sync::mpsc;

use vigil_execd::agents::{Agents, Config};
use vigil_execd::dbus::{self, Job, Manager, Shared};
use vigil_execd::runtime::Runtime;
use vigil_runtime::auth::Callers;

#[derive(Parser, Debug)]
#[command(name = "vigil-execd", version, about = "Vigil's resource executor")]
struct Args {
    /// D-Bus address to serve on (default: $VIGIL_BUS, else the system bus)
    #[arg(long)]
    bus: Option<String>,
    /// This node's name, as agents are told (default: the host name)
    #[arg(long)]
    node_name: Option<String>,
    /// The OCF root (agents are under ROOT/resource.d/PROVIDER/TYPE)
    #[arg(long, default_value = vigil_executor::ocf::DEFAULT_ROOT)]
    ocf_root: String,
    /// Where LSB init scripts are looked up by name
    #[arg(long, default_value = vigil_executor::lsb::INIT_DIR)]
    lsb_dir: PathBuf,
    /// Where fence agents are (for listing)
    #[arg(long, default_value = "/usr/sbin")]
    fence_dir: PathBuf,
    /// Keep agents' state files here (HA_RSCTMP, HA_VARRUN) instead of
    /// /run: for several nodes on one machine
    #[arg(long)]
    agent_state_dir: Option<PathBuf>,
    /// D-Bus address of systemd's bus (default: the system bus)
    #[arg(long)]
    systemd_bus: Option<String>,
    /// Where systemd runtime drop-ins are written
    #[arg(long, default_value = "/run/systemd/system")]
    systemd_runtime_dir: PathBuf,
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
    vigil_runtime::daemon_main("vigil-execd", run(args))
}

fn config(args: &Args) -> Config {
    let node = args
        .node_name
        .clone()
        .unwrap_or_else(|| hostname().unwrap_or_else(|| "localhost".to_string()));
    Config {
        node,
        ocf_root: args.ocf_root.clone(),
        lsb_dir: args.lsb_dir.clone(),
        fence_dir: args.fence_dir.clone(),
        agent_state_dir: args.agent_state_dir.clone(),
        systemd_bus: args.systemd_bus.clone(),
        node_bus: vigil_runtime::bus_address(args.bus.as_deref()),
        systemd_runtime_dir: args.systemd_runtime_dir.clone(),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let agents = Arc::new(Agents::new(config(&args)));
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Shared {
        commands: tx,
        agents: agents.clone(),
        job_states: Arc::new(Mutex::new(Default::default())),
        callers: Arc::new(Callers::new()),
    };
    if args.bus_introspect {
        print!(
            "{}",
            vigil_runtime::introspect(dbus::NAME, dbus::PATH, Manager::new(shared.clone())).await?
        );
        return Ok(());
    }
    if args.bus_introspect_job {
        let job = Job {
            id: 1,
            resource: String::new(),
            action: String::new(),
            interval_ms: 0,
            shared: shared.clone(),
        };
        print!(
            "{}",
            vigil_runtime::introspect(dbus::NAME, dbus::job_path(1).as_str(), job).await?
        );
        return Ok(());
    }
    if let Some(dir) = &args.agent_state_dir {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the agent state directory {}: {e}",
                dir.display()
            )
        })?;
    }
    let bus_addr = vigil_runtime::bus_address(args.bus.as_deref());
    let builder = vigil_runtime::bus_builder(bus_addr.as_deref())
        .serve_at(dbus::PATH, Manager::new(shared.clone()));
    let bus = vigil_runtime::claim_name(builder, dbus::NAME).await?;
    tracing::info!(
        node = %agents.config.node,
        ocf_root = %agents.config.ocf_root,
        "executor started"
    );
    vigil_runtime::notify_ready("ready to run resource agents");
    vigil_runtime::spawn_watchdog();
    Runtime::new(agents, shared, bus).run(rx).await
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
