//! vigil-membershipd: Vigil's membership daemon (Corosync's job).
//!
//! Reads the cluster configuration and key, talks UDP to the other nodes
//! with every datagram sealed by the cluster key, runs the
//! `vigil-membership` state machine, and serves `org.vigil.membership1` on
//! the bus.

use vigil_membershipd::{config, dbus, runtime, transport};

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use clap::Parser;
use tokio::sync::mpsc;

use vigil_membership::Membership;

#[derive(Parser, Debug)]
#[command(
    name = "vigil-membershipd",
    version,
    about = "Vigil's membership daemon"
)]
struct Args {
    /// The cluster configuration
    #[arg(long, default_value = "/etc/vigil/cluster.toml")]
    config: PathBuf,
    /// The cluster key (`vigil cluster keygen` makes one)
    #[arg(long, default_value = transport::DEFAULT_KEY_PATH)]
    key: PathBuf,
    /// This node's id (default: the node named like this host, or owning
    /// one of its addresses)
    #[arg(long)]
    node: Option<u32>,
    /// D-Bus address to serve on (default: $VIGIL_BUS, else the system bus)
    #[arg(long)]
    bus: Option<String>,
    /// Where to keep state between runs (the highest ring sequence seen)
    #[arg(long, default_value = vigil_membershipd::state::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Check the configuration and key, then exit
    #[arg(long)]
    check: bool,
    /// Print the D-Bus introspection XML of the served object and exit
    #[arg(long)]
    bus_introspect: bool,
    /// For tests and the sandbox: a file listing the ids of nodes whose
    /// links are cut (neither heard nor sent to), read again whenever it
    /// changes
    #[arg(long, hide = true)]
    cut_links_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    vigil_runtime::daemon_main("vigil-membershipd", run(args))
}

fn shared(commands: mpsc::UnboundedSender<dbus::Command>) -> dbus::Shared {
    dbus::Shared {
        snapshot: Arc::new(Mutex::new(dbus::Snapshot::default())),
        clients: Arc::new(Mutex::new(dbus::Clients::for_this_run())),
        commands,
    }
}

async fn serve(bus: Option<&str>, shared: &dbus::Shared) -> anyhow::Result<zbus::Connection> {
    let builder = vigil_runtime::bus_builder(bus)
        .serve_at(dbus::PATH, dbus::Manager(shared.clone()))
        .serve_at(dbus::PATH, dbus::QuorumIface(shared.clone()))
        .serve_at(dbus::PATH, dbus::Group::bus(shared.clone()));
    vigil_runtime::claim_name(builder, dbus::NAME).await
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.bus_introspect {
        let (tx, _rx) = mpsc::unbounded_channel();
        let sh = shared(tx);
        let xml = introspect(&sh).await?;
        print!("{xml}");
        return Ok(());
    }
    let path = args.config.display().to_string();
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read the cluster configuration {path}"))?;
    let cfg = match config::parse(&text, &path) {
        Ok(c) => c,
        Err(errors) => bail!("the cluster configuration has errors:\n{errors}"),
    };
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let key = transport::read_key(&args.key)
        .with_context(|| format!("cannot use the cluster key {}", args.key.display()))?;
    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok());
    let local_addrs: Vec<IpAddr> = nix::ifaddrs::getifaddrs()
        .map(|it| {
            it.filter_map(|i| i.address)
                .filter_map(|a| {
                    a.as_sockaddr_in()
                        .map(|s| IpAddr::V4(s.ip()))
                        .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
                })
                .collect()
        })
        .unwrap_or_default();
    let me = cfg
        .local_node(args.node, hostname.as_deref(), &local_addrs)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .clone();
    if args.check {
        println!(
            "configuration {path} is valid; this is node {} ({}); key {}",
            me.id,
            me.name,
            key.fingerprint()
        );
        return Ok(());
    }
    let Some(bind_ip) = me.addresses.first().copied() else {
        bail!("node {} has no address in {path}", me.id);
    };
    let peers: BTreeMap<u32, SocketAddr> = cfg
        .nodes
        .iter()
        .filter(|n| n.id != me.id)
        .filter_map(|n| {
            n.addresses
                .first()
                .map(|a| (n.id, SocketAddr::new(*a, cfg.port)))
        })
        .collect();
    let ring_seq = vigil_membershipd::state::RingSeqFile::open(&args.state_dir)?;
    let mut mcfg = cfg.membership_config(me.id);
    mcfg.min_ring_seq = ring_seq.saved();
    let core = Membership::try_new(mcfg, 0).map_err(|e| anyhow::anyhow!("{e}"))?;

    let (tx, rx) = mpsc::unbounded_channel();
    let sh = shared(tx);
    if let Ok(mut s) = sh.snapshot.lock() {
        s.cluster_name = cfg.name.clone();
        s.nodes = cfg
            .nodes
            .iter()
            .map(|n| {
                let addr = n.addresses.first().map(ToString::to_string);
                (n.id, n.name.clone(), addr.unwrap_or_default())
            })
            .collect();
        s.votes = cfg.votes().into_iter().collect();
        s.local = me.id;
        s.ring = (0, me.id);
        s.members = vec![me.id];
        if let Some(q) = core.quorum() {
            s.set_quorum(&q);
        }
    }
    let bus_addr = vigil_runtime::bus_address(args.bus.as_deref());
    let bus = serve(bus_addr.as_deref(), &sh).await?;
    // After the bus name: a second daemon for this node fails on the name,
    // with a message that says so, before it touches the port.
    let socket = bind_socket(SocketAddr::new(bind_ip, cfg.port))?;
    let tag = transport::ClusterTag::derive(&key, &cfg.name);
    let ids = cfg.node_ids();
    let rt = runtime::Runtime {
        core,
        socket,
        peers,
        sealer: transport::Sealer::start(me.id),
        opener: transport::Opener::new(me.id, ids),
        key,
        tag,
        shared: sh,
        bus,
        start: std::time::Instant::now(),
        ring_seq,
        cuts: runtime::Cuts::new(args.cut_links_file.clone()),
    };
    tracing::info!(node = me.id, name = %me.name, %bind_ip, port = cfg.port, "membership daemon started");
    vigil_runtime::notify_ready(&format!("node {} ({}), alone so far", me.id, me.name));
    vigil_runtime::spawn_watchdog();
    rt.run(rx).await
}

/// The UDP socket systemd passed (`vigil-membershipd.socket`), or one bound
/// here on this node's first configured address.
fn bind_socket(addr: SocketAddr) -> anyhow::Result<tokio::net::UdpSocket> {
    if let Some(fd) = vigil_runtime::take_activated_socket() {
        let std_sock = std::net::UdpSocket::from(fd);
        let local = std_sock
            .local_addr()
            .context("the socket systemd passed is not a UDP socket")?;
        if local == addr {
            tracing::info!(%local, "using the UDP socket passed by systemd");
        } else {
            tracing::warn!(
                %local,
                configured = %addr,
                "using the UDP socket passed by systemd, but it is not bound to this node's configured address and port; peers send to the configured one"
            );
        }
        return finish_socket(std_sock);
    }
    let std_sock = std::net::UdpSocket::bind(addr).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "cannot bind UDP {addr}: another program uses this port (another cluster's daemon?); \
                 change [cluster] port or stop it"
        ),
        std::io::ErrorKind::AddrNotAvailable => anyhow::anyhow!(
            "cannot bind UDP {addr}: no interface of this host has that address; \
                 check this node's addresses in the configuration"
        ),
        _ => anyhow::Error::new(e).context(format!("cannot bind UDP {addr}")),
    })?;
    tracing::info!(local = %addr, "bound the UDP socket");
    finish_socket(std_sock)
}

/// Enlarged buffers, then non-blocking for tokio.
fn finish_socket(sock: std::net::UdpSocket) -> anyhow::Result<tokio::net::UdpSocket> {
    runtime::enlarge_socket_buffers(&sock);
    sock.set_nonblocking(true)?;
    Ok(tokio::net::UdpSocket::from_std(sock)?)
}

/// The introspection XML of the served object, from a private peer-to-peer
/// connection (no bus needed).
async fn introspect(sh: &dbus::Shared) -> anyhow::Result<String> {
    let (a, b) = std::os::unix::net::UnixStream::pair()?;
    let guid = zbus::Guid::generate();
    let server = zbus::connection::Builder::unix_stream(a)
        .server(guid)
        .p2p()
        .serve_at(dbus::PATH, dbus::Manager(sh.clone()))
        .serve_at(dbus::PATH, dbus::QuorumIface(sh.clone()))
        .serve_at(dbus::PATH, dbus::Group::bus(sh.clone()))
        .build();
    let client = zbus::connection::Builder::unix_stream(b).p2p().build();
    let (server, client) = tokio::try_join!(server, client)?;
    let proxy = zbus::fdo::IntrospectableProxy::builder(&client)
        .destination("org.vigil.membership1")
        .path(dbus::PATH)
        .build()
        .await?;
    let xml = proxy.introspect().await?;
    drop(server);
    Ok(xml)
}
