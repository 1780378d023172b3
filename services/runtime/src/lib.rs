//! vigil-runtime: what every Vigil daemon needs from the operating system,
//! in one place: logging to the journal (or stderr where no journald runs),
//! systemd readiness and watchdog notifications, and the D-Bus connection
//! (the system bus, or a private bus named by `--bus`/`VIGIL_BUS`), and
//! who may call what ([`auth`]: the caller's identity, polkit).

use std::time::Duration;

pub mod auth;

/// Sends log records to journald when it is there, to stderr otherwise.
/// `RUST_LOG` filters (default `info`, with the D-Bus library's chatter at
/// `warn`).
pub fn init_logging(identifier: &str) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,zbus=warn"));
    let journald = std::path::Path::new("/run/systemd/journal/socket").exists()
        && std::env::var_os("VIGIL_LOG_STDERR").is_none();
    let registry = tracing_subscriber::registry().with(filter);
    if journald && let Ok(layer) = tracing_journald::layer() {
        let _ = registry
            .with(
                layer
                    .with_syslog_identifier(identifier.to_string())
                    // Fields keep their names (`vigil_resource` is
                    // `VIGIL_RESOURCE`), so `journalctl VIGIL_RESOURCE=web`
                    // finds a resource's history.
                    .with_field_prefix(None),
            )
            .try_init();
        return;
    }
    let _ = registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .try_init();
}

/// Tells systemd the daemon is ready (no-op outside systemd).
pub fn notify_ready(status: &str) {
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// Updates the status line `systemctl status` shows.
pub fn notify_status(status: &str) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(status)]);
}

/// The first socket systemd passed this process (socket activation, as
/// `vigil-membershipd.socket` does), owned; `None` when started otherwise.
/// Only the first call can return a socket.
#[allow(unsafe_code)]
pub fn take_activated_socket() -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if TAKEN.swap(true, Ordering::SeqCst) {
        return None;
    }
    let fd = sd_notify::listen_fds().ok()?.next()?;
    // SAFETY: sd_notify::listen_fds checked LISTEN_PID against this process
    // and returned a descriptor systemd passed to it (3 and up), which no
    // other code in this process opened or owns; TAKEN makes sure it is
    // wrapped at most once.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Pings the systemd watchdog at half its interval, when one is set.
pub fn spawn_watchdog() {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = (interval / 2).max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
    });
}

/// The bus address to use: the argument, else `VIGIL_BUS`, else the
/// system bus (`None`).
pub fn bus_address(arg: Option<&str>) -> Option<String> {
    arg.map(str::to_string)
        .or_else(|| std::env::var("VIGIL_BUS").ok())
        .filter(|a| !a.is_empty())
}

/// A connection builder for the chosen bus.
pub fn bus_builder(address: Option<&str>) -> zbus::connection::Builder<'static> {
    match address {
        Some(a) => zbus::connection::Builder::address(a),
        None => zbus::connection::Builder::system(),
    }
}

/// Connects to the chosen bus and takes `name`, failing (rather than
/// queueing or replacing) when another process owns it: two daemons of one
/// kind on one node is an error the operator must see.
pub async fn claim_name(
    builder: zbus::connection::Builder<'static>,
    name: &'static str,
) -> anyhow::Result<zbus::Connection> {
    use anyhow::Context;
    use zbus::fdo::{RequestNameFlags, RequestNameReply};
    let conn = builder.build().await.context("cannot connect to the bus")?;
    let reply = conn
        .request_name_with_flags(name, RequestNameFlags::DO_NOT_QUEUE)
        .await
        .with_context(|| {
            format!("cannot own the bus name {name} (is this daemon already running?)")
        })?;
    match reply {
        RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner => Ok(conn),
        _ => anyhow::bail!(
            "another process already owns the bus name {name}; is this daemon already running?"
        ),
    }
}

/// The introspection XML of `iface` served at `path`, from a private
/// peer-to-peer connection (no bus needed): what a daemon's
/// `--bus-introspect` prints, checked against its reviewed contract.
pub async fn introspect<I: zbus::object_server::Interface>(
    name: &str,
    path: &str,
    iface: I,
) -> anyhow::Result<String> {
    let (a, b) = std::os::unix::net::UnixStream::pair()?;
    let server = zbus::connection::Builder::unix_stream(a)
        .server(zbus::Guid::generate())
        .p2p()
        .serve_at(path.to_string(), iface)
        .build();
    let client = zbus::connection::Builder::unix_stream(b).p2p().build();
    let (server, client) = tokio::try_join!(server, client)?;
    let proxy = zbus::fdo::IntrospectableProxy::builder(&client)
        .destination(name.to_string())
        .path(path.to_string())
        .build()
        .await?;
    let xml = proxy.introspect().await?;
    drop(server);
    Ok(xml)
}

/// Runs a daemon's `main`: logging under `name`, a Tokio runtime with two
/// worker threads, and `run`'s error, if any, printed as `NAME: error`
/// (with its causes) and turned into a failing exit status.
pub fn daemon_main<F>(name: &str, run: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    init_logging(name);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
