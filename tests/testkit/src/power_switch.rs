//! The power switch of the system test tier: what `agents/fence_vigil_container`
//! asks to power a node off.
//!
//! The switch runs in the test process (the host side), knows each node's
//! plug as a name and a host PID (a container's systemd, see
//! [`crate::nspawn::Node::pid1`]), and answers over TCP, one request line
//! and one reply line per connection:
//!
//! | request       | reply                                                    |
//! |---------------|----------------------------------------------------------|
//! | `off NAME`    | `ok` once the PID is gone (SIGKILL: a pulled plug), or `error TEXT` |
//! | `on NAME`     | `ok` when the node runs, else `error unsupported: ...` (it cannot power nodes on) |
//! | `status NAME` | `on` while the PID lives, `off` after, or `error TEXT`  |
//! | `list`        | the plug names, separated by one space (an empty line for none) |
//!
//! Requests are at most 256 bytes; anything else gets `error TEXT`. The
//! PID is signalled only while it is the process that was plugged in (same
//! start time), so a reused PID is never killed. [`PowerSwitch::log`]
//! holds every request seen, in order, so a test can check that a node was
//! fenced exactly once.
//!
//! Nodes reach the switch over their bridge. Bind it in a
//! [`crate::nspawn::BridgeEndpoint`] (the host itself has no address on
//! the nodes' network):
//!
//! ```no_run
//! use vigil_testkit::nspawn::BridgeEndpoint;
//! use vigil_testkit::power_switch::{DEFAULT_PORT, PowerSwitch};
//!
//! let station = BridgeEndpoint::attach("br-vigil", "192.0.2.1/24");
//! let switch = station.run(|| PowerSwitch::serve((station.address(), DEFAULT_PORT).into()));
//! # let n2_pid1 = 0;
//! switch.plug("n2", n2_pid1);
//! // ... a node runs `fence_vigil_container` with ip=192.0.2.1 ...
//! assert_eq!(switch.log().iter().filter(|r| *r == "off n2").count(), 1);
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The port `fence_vigil_container` asks by default.
pub const DEFAULT_PORT: u16 = 5410;
/// The longest request line accepted, without its line end.
pub const MAX_REQUEST: usize = 256;
/// How long a client may take to send its request or read the reply.
const IO_WAIT: Duration = Duration::from_secs(5);
/// How long `off` waits for the killed process to be gone (less than the
/// agent's default bound on a request, 8 s).
const OFF_WAIT: Duration = Duration::from_secs(6);
/// How often the accepting thread looks for a stop.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// A power switch serving the nodes plugged into it; stops on drop.
#[derive(Debug)]
pub struct PowerSwitch {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    plugs: BTreeMap<String, Plug>,
    log: Vec<String>,
}

/// A plugged-in process: its PID and its start time (field 22 of
/// `/proc/PID/stat`), which tells it from a later process of the same PID.
#[derive(Debug, Clone, Copy)]
struct Plug {
    pid: u32,
    start: u64,
}

impl PowerSwitch {
    /// Listens on `bind` (port 0 picks a free one, see
    /// [`PowerSwitch::address`]) and answers on a thread of its own, one
    /// more thread per connection. Panics when it cannot listen there.
    pub fn serve(bind: SocketAddr) -> PowerSwitch {
        let listener = TcpListener::bind(bind)
            .unwrap_or_else(|e| panic!("the power switch cannot listen on {bind}: {e}"));
        let address = listener.local_addr().expect("the switch's address");
        listener
            .set_nonblocking(true)
            .expect("make the switch's listener non-blocking");
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("power-switch".into())
                .spawn(move || accept(&listener, &shared))
                .expect("start the power switch thread")
        };
        PowerSwitch {
            address,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Plugs the node `name` (what the agent's `plug` names; 1 to 64 of
    /// `A-Za-z0-9._-`, starting with a letter or digit) in: its power is
    /// the process `pid1`, which must be running. Plugging a name again
    /// replaces its process.
    pub fn plug(&self, name: &str, pid1: u32) {
        assert!(valid_name(name), "{name:?} is not a plug name");
        let start = proc_start(pid1).unwrap_or_else(|| {
            panic!("cannot plug {name} into the switch: PID {pid1} is not running")
        });
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .plugs
            .insert(name.to_string(), Plug { pid: pid1, start });
    }

    /// Every request received so far, in order (`"off n2"`, `"list"`, ...;
    /// cut to [`MAX_REQUEST`] bytes, without the line end).
    pub fn log(&self) -> Vec<String> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .log
            .clone()
    }
}

impl Drop for PowerSwitch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Accepts connections until told to stop, then waits for the ones in
/// progress (each bounded by [`IO_WAIT`] and [`OFF_WAIT`]).
fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut handlers: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let shared = Arc::clone(shared);
                match std::thread::Builder::new()
                    .name("power-switch-conn".into())
                    .spawn(move || serve_connection(stream, &shared))
                {
                    Ok(handle) => handlers.push(handle),
                    Err(e) => eprintln!("power switch: cannot start a connection thread: {e}"),
                }
                handlers.retain(|h| !h.is_finished());
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("power switch: accept failed: {e}");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
    for handle in handlers {
        let _ = handle.join();
    }
}

fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(IO_WAIT));
    let _ = stream.set_write_timeout(Some(IO_WAIT));
    let reply = match read_request(&mut stream) {
        Ok(request) => {
            shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .log
                .push(request.clone());
            answer(&request, shared)
        }
        Err(why) => format!("error {why}"),
    };
    let _ = stream.write_all(format!("{reply}\n").as_bytes());
    let _ = stream.flush();
}

/// One line, at most [`MAX_REQUEST`] bytes, without its line end.
fn read_request(stream: &mut TcpStream) -> Result<String, String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) if line.is_empty() => return Err("empty request".into()),
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() >= MAX_REQUEST => {
                return Err(format!("request longer than {MAX_REQUEST} bytes"));
            }
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the request: {e}")),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| "the request is not UTF-8".into())
}

fn answer(request: &str, shared: &Shared) -> String {
    let words: Vec<&str> = request.split_whitespace().collect();
    let plug = |name: &str| {
        shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .plugs
            .get(name)
            .copied()
    };
    match words.as_slice() {
        ["list"] => {
            let state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.plugs.keys().cloned().collect::<Vec<_>>().join(" ")
        }
        [verb @ ("off" | "on" | "status"), name] => {
            let Some(p) = plug(name) else {
                return format!("error unknown plug {name}");
            };
            match *verb {
                "status" if p.alive() => "on".into(),
                "status" => "off".into(),
                "on" if p.alive() => "ok".into(),
                "on" => format!("error unsupported: this switch cannot power {name} on"),
                _ => p.power_off(name),
            }
        }
        _ => format!(
            "error unknown request {:?} (expected off NAME, on NAME, status NAME or list)",
            request.chars().take(64).collect::<String>()
        ),
    }
}

impl Plug {
    /// Whether the plugged-in process still runs (a zombie does not).
    fn alive(&self) -> bool {
        proc_start(self.pid) == Some(self.start)
    }

    /// Kills the process and waits until it is gone.
    fn power_off(&self, name: &str) -> String {
        let end = Instant::now() + OFF_WAIT;
        while self.alive() {
            // Checked right before every signal: the PID is only signalled
            // while it is the plugged-in process.
            let pid = Pid::from_raw(i32::try_from(self.pid).expect("a PID fits in i32"));
            if let Err(e) = kill(pid, Signal::SIGKILL)
                && e != nix::errno::Errno::ESRCH
            {
                return format!("error cannot kill {name} (PID {}): {e}", self.pid);
            }
            if Instant::now() > end {
                return format!(
                    "error {name} (PID {}) still runs {OFF_WAIT:?} after SIGKILL",
                    self.pid
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        "ok".into()
    }
}

/// The start time of a running process (field 22 of `/proc/PID/stat`);
/// `None` when there is no such process or it is a zombie.
fn proc_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields from the third on follow the command name, in parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&("Z" | "X" | "x")) | None) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plug_names() {
        assert!(valid_name("n1") && valid_name("node-2.example_x"));
        assert!(!valid_name("") && !valid_name("-n") && !valid_name("a b") && !valid_name("a/b"));
        assert!(!valid_name(&"a".repeat(65)));
    }

    #[test]
    fn start_times() {
        assert!(proc_start(std::process::id()).is_some());
        assert_eq!(proc_start(0), None);
    }
}
