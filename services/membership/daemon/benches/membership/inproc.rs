//! The protocol, UDP and crypto path without the bus: three
//! `vigil_membership::Membership` state machines in this process, one
//! thread each, on real UDP sockets on loopback, every datagram sealed and
//! opened with `transport::Sealer`/`Opener` under a cluster key. Each node
//! runs the daemon's loop (`runtime::Runtime::run`) minus the bus: per
//! turn a tick, a burst of sends, or every datagram the socket has ready
//! (up to 64), then one flush of the datagrams they caused, sealed and
//! sent; 10 ms ticks. Each node's "client" (client id 1 in group
//! `bench`) lives in the same thread: it calls `Input::Send` and sees
//! `Output::Deliver` directly, so latencies are protocol + UDP + crypto +
//! scheduling, with no bus.
//!
//! Every node also accounts for its thread's time: CPU time (from
//! `/proc/thread-self/stat`), and wall time spent opening datagrams, in
//! the state machine, sealing, and in `send_to`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::net::UdpSocket;

use vigil_membership::{Input, Membership, NodeId, Output};
use vigil_membershipd::transport::{AuthKey, ClusterTag, Opener, Sealer};

use crate::bus::{HEADER, header};
use crate::cluster::{Net, cpu_time, udp_rcvbuf_errors};
use crate::stats::now_ns;

const GROUP: &str = "bench";
/// As the daemon's loop: datagrams handled after the first before a flush.
const DRAIN: usize = 63;
const CLIENT: u64 = 1;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub nodes: u32,
    /// Messages each sending node sends.
    pub per_node: u64,
    /// Which nodes send.
    pub senders: Vec<NodeId>,
    /// Total offered rate in messages per second; `None`: as fast as flow
    /// control allows.
    pub rate: Option<f64>,
    pub size: usize,
    pub timeout: Duration,
}

/// What one node measured (after the load started).
#[derive(Debug, Default, Clone)]
pub struct NodeReport {
    pub own: Vec<u64>,
    pub remote: Vec<u64>,
    pub delivered: u64,
    pub cpu: Duration,
    pub open: Duration,
    pub handle: Duration,
    pub seal: Duration,
    pub send_to: Duration,
    pub datagrams_out: u64,
    pub datagrams_in: u64,
    pub bytes_out: u64,
    pub congested: u64,
    /// Views installed after the load started (each a false view change:
    /// no node failed).
    pub views: u64,
    /// Messages of this node reported `Undelivered` (dropped by a view
    /// change).
    pub undelivered: u64,
    /// The state machine's state at the end, when it had not delivered
    /// everything (for diagnosis).
    pub dump: Option<String>,
}

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    pub messages: u64,
    pub elapsed: Duration,
    pub complete: bool,
    pub nodes: Vec<NodeReport>,
    pub rcvbuf_drops: Option<u64>,
}

struct Ctl {
    ready: AtomicU32,
    go: AtomicBool,
    start: OnceLock<Instant>,
    stop: AtomicBool,
    delivered: Vec<AtomicU64>,
    done_ns: Vec<AtomicU64>,
}

pub fn run(plan: &Plan) -> anyhow::Result<Report> {
    let net = Net::pick(plan.nodes)?;
    let cfg = net.config("bench")?;
    let key = AuthKey::generate();
    let tag = ClusterTag::derive(&key, &cfg.name);
    let ids = cfg.node_ids();
    let peers: BTreeMap<NodeId, SocketAddr> = cfg
        .nodes
        .iter()
        .map(|n| (n.id, SocketAddr::new(n.addresses[0], cfg.port)))
        .collect();
    let ctl = Arc::new(Ctl {
        ready: AtomicU32::new(0),
        go: AtomicBool::new(false),
        start: OnceLock::new(),
        stop: AtomicBool::new(false),
        delivered: (0..plan.nodes).map(|_| AtomicU64::new(0)).collect(),
        done_ns: (0..plan.nodes).map(|_| AtomicU64::new(0)).collect(),
    });
    let total = plan.per_node * plan.senders.len() as u64;
    let mut threads = Vec::new();
    for &id in &ids {
        let socket = std::net::UdpSocket::bind(peers[&id])
            .with_context(|| format!("cannot bind {}", peers[&id]))?;
        // As the daemon does.
        vigil_membershipd::runtime::enlarge_socket_buffers(&socket);
        socket.set_nonblocking(true)?;
        let mcfg = cfg.membership_config(id);
        let core = Membership::try_new(mcfg, 0).map_err(|e| anyhow::anyhow!("{e}"))?;
        let node = Node {
            core,
            peers: peers
                .iter()
                .filter(|(n, _)| **n != id)
                .map(|(n, a)| (*n, *a))
                .collect(),
            key: key.clone(),
            tag,
            sealer: Sealer::start(id),
            opener: Opener::new(id, ids.clone()),
            me: id,
            total,
            quota: if plan.senders.contains(&id) {
                plan.per_node
            } else {
                0
            },
            rate: plan.rate.map(|r| r / plan.senders.len() as f64),
            size: plan.size.max(HEADER),
            n: plan.nodes as usize,
            ctl: ctl.clone(),
            rep: NodeReport::default(),
            congested: false,
            sent: 0,
            measuring: false,
        };
        threads.push(
            std::thread::Builder::new()
                .name(format!("node{id}"))
                .spawn(move || -> anyhow::Result<NodeReport> {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    rt.block_on(node.run(socket))
                })?,
        );
    }
    let stop_all = |ctl: &Ctl| ctl.stop.store(true, Ordering::SeqCst);
    // Formation and group joins.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ctl.ready.load(Ordering::SeqCst) < plan.nodes {
        if Instant::now() > deadline || threads.iter().any(|t| t.is_finished()) {
            stop_all(&ctl);
            for t in threads {
                let _ = t.join();
            }
            bail!("the in-process nodes did not form a view with everyone in the group");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let drops_before = udp_rcvbuf_errors();
    let start = Instant::now();
    let _ = ctl.start.set(start);
    ctl.go.store(true, Ordering::SeqCst);
    let deadline = start + plan.timeout;
    let mut complete = false;
    while Instant::now() < deadline {
        if ctl
            .delivered
            .iter()
            .all(|d| d.load(Ordering::Relaxed) >= total)
        {
            complete = true;
            break;
        }
        if threads.iter().any(|t| t.is_finished()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let end_ns = ctl
        .done_ns
        .iter()
        .map(|d| d.load(Ordering::SeqCst))
        .max()
        .unwrap_or(0);
    stop_all(&ctl);
    let drops_after = udp_rcvbuf_errors();
    let mut nodes = Vec::new();
    for t in threads {
        match t.join() {
            Ok(r) => nodes.push(r?),
            Err(_) => bail!("an in-process node panicked"),
        }
    }
    let start_ns = start.duration_since(*crate::stats::EPOCH).as_nanos() as u64;
    let elapsed = if complete {
        Duration::from_nanos(end_ns.saturating_sub(start_ns))
    } else {
        start.elapsed()
    };
    Ok(Report {
        messages: total,
        elapsed,
        complete,
        nodes,
        rcvbuf_drops: drops_before
            .zip(drops_after)
            .map(|(b, a)| a.saturating_sub(b)),
    })
}

struct Node {
    core: Membership,
    peers: BTreeMap<NodeId, SocketAddr>,
    key: AuthKey,
    tag: ClusterTag,
    sealer: Sealer,
    opener: Opener,
    me: NodeId,
    total: u64,
    quota: u64,
    /// This node's rate, messages per second.
    rate: Option<f64>,
    size: usize,
    n: usize,
    ctl: Arc<Ctl>,
    rep: NodeReport,
    congested: bool,
    sent: u64,
    measuring: bool,
}

impl Node {
    async fn run(mut self, socket: std::net::UdpSocket) -> anyhow::Result<NodeReport> {
        let socket = UdpSocket::from_std(socket)?;
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut pace = tokio::time::interval(Duration::from_millis(1));
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut buf = vec![0u8; 65_536];
        let mut ready = false;
        let mut cpu0 = Duration::ZERO;
        let outs = self.core.handle(Input::Join {
            group: GROUP.into(),
            client: CLIENT,
        });
        self.dispatch(&socket, outs).await;
        loop {
            let sending = self.measuring && self.sent < self.quota;
            tokio::select! {
                r = socket.recv_from(&mut buf) => {
                    let Ok((len, _addr)) = r else { continue };
                    // As the daemon: everything ready first, then one flush.
                    let mut outs = self.receive(&buf[..len]);
                    for _ in 0..DRAIN {
                        let Ok((len, _addr)) = socket.try_recv_from(&mut buf) else {
                            break;
                        };
                        outs.extend(self.receive(&buf[..len]));
                    }
                    let t = Instant::now();
                    outs.extend(self.core.flush());
                    self.account(|r| r.handle += t.elapsed());
                    self.dispatch(&socket, outs).await;
                }
                _ = tick.tick() => {
                    let now_ms = start.elapsed().as_millis() as u64;
                    let t = Instant::now();
                    let outs = self.core.handle(Input::Tick { now_ms });
                    self.account(|r| r.handle += t.elapsed());
                    self.dispatch(&socket, outs).await;
                    if !ready
                        && self.core.view().members.len() == self.n
                        && !self.core.changing()
                        && self.core.groups().get(GROUP).is_some_and(|g| g.len() == self.n)
                    {
                        ready = true;
                        self.ctl.ready.fetch_add(1, Ordering::SeqCst);
                    }
                    if self.ctl.stop.load(Ordering::SeqCst) {
                        break;
                    }
                }
                _ = pace.tick(), if sending => {}
            }
            if !self.measuring && self.ctl.go.load(Ordering::SeqCst) {
                self.measuring = true;
                cpu0 = cpu_time("thread-self").unwrap_or_default();
            }
            if self.measuring && self.sent < self.quota && !self.congested {
                self.send_due(&socket).await;
            }
        }
        if self.measuring {
            self.rep.cpu = cpu_time("thread-self")
                .unwrap_or_default()
                .saturating_sub(cpu0);
        }
        if self.rep.delivered < self.total {
            self.rep.dump = Some(format!(
                "sent {} of {}, congested {}\n{:#?}",
                self.sent, self.quota, self.congested, self.core
            ));
        }
        Ok(self.rep)
    }

    /// Opens a datagram and hands it to the state machine, deferring the
    /// datagrams it causes.
    fn receive(&mut self, datagram: &[u8]) -> Vec<Output> {
        let t = Instant::now();
        let opened = self.opener.open(&self.key, self.tag, datagram);
        self.account(|r| r.open += t.elapsed());
        let Ok((from, bytes)) = opened else {
            return Vec::new();
        };
        self.account(|r| r.datagrams_in += 1);
        let t = Instant::now();
        let outs = self.core.handle_deferred(Input::Datagram { from, bytes });
        self.account(|r| r.handle += t.elapsed());
        outs
    }

    fn account(&mut self, f: impl FnOnce(&mut NodeReport)) {
        if self.measuring {
            f(&mut self.rep);
        }
    }

    /// Sends what is due: at the paced rate, or (saturating) a burst of 16
    /// per turn until flow control says congested.
    async fn send_due(&mut self, socket: &UdpSocket) {
        let due = match (self.rate, self.ctl.start.get()) {
            (Some(rate), Some(start)) => {
                ((start.elapsed().as_secs_f64() * rate) as u64 + 1).min(self.quota)
            }
            _ => (self.sent + 16).min(self.quota),
        };
        let mut payload = vec![0u8; self.size];
        while self.sent < due && !self.congested {
            crate::bus::stamp(&mut payload, 1, self.me, self.sent);
            let t = Instant::now();
            let outs = self.core.handle_deferred(Input::Send {
                group: GROUP.into(),
                client: CLIENT,
                payload: payload.clone(),
            });
            self.rep.handle += t.elapsed();
            let refused = outs.iter().any(|o| matches!(o, Output::Congested { .. }));
            self.dispatch(socket, outs).await;
            if refused {
                self.rep.congested += 1;
                break;
            }
            self.sent += 1;
        }
        // The burst leaves together, as the daemon sends a burst of bus
        // commands.
        let t = Instant::now();
        let outs = self.core.flush();
        self.rep.handle += t.elapsed();
        self.dispatch(socket, outs).await;
    }

    async fn dispatch(&mut self, socket: &UdpSocket, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Datagram { to, bytes } => {
                    let Some(addr) = self.peers.get(&to).copied() else {
                        continue;
                    };
                    let t = Instant::now();
                    let sealed = self.sealer.seal(&self.key, self.tag, &bytes);
                    self.account(|r| r.seal += t.elapsed());
                    if let Ok(d) = sealed {
                        let t = Instant::now();
                        let _ = socket.send_to(&d, addr).await;
                        let len = d.len() as u64;
                        self.account(|r| {
                            r.send_to += t.elapsed();
                            r.datagrams_out += 1;
                            r.bytes_out += len;
                        });
                    }
                }
                Output::Deliver { payload, .. } => {
                    // Only the measured phase sends phase-1 messages; a
                    // node may deliver one before it noticed the start.
                    let now = now_ns();
                    if let Some((1, from, _, sent)) = header(&payload) {
                        let lat = now.saturating_sub(sent);
                        if from == self.me {
                            self.rep.own.push(lat);
                        } else {
                            self.rep.remote.push(lat);
                        }
                        self.rep.delivered += 1;
                        let i = self.me as usize - 1;
                        self.ctl.delivered[i].store(self.rep.delivered, Ordering::Relaxed);
                        if self.rep.delivered == self.total {
                            self.ctl.done_ns[i].store(now, Ordering::SeqCst);
                        }
                    }
                }
                Output::ViewChange(_) => self.account(|r| r.views += 1),
                Output::Undelivered { .. } => self.account(|r| r.undelivered += 1),
                Output::Congested { .. } => self.congested = true,
                Output::Writable => self.congested = false,
                _ => {}
            }
        }
    }
}
