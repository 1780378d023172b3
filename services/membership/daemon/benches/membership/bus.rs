//! Ordered messages through the D-Bus API of real daemons: every node's
//! bench client joins one group, sends with `Group.Send` and receives every
//! message as a unicast `Delivered` signal.
//!
//! Each payload starts with a header: phase (u32), sending node (u32),
//! sequence (u64) and the send time (u64, nanoseconds since [`EPOCH`]),
//! then padding up to the message size. The latency of a delivery is its
//! arrival time at the bench minus that send time: Send call → Delivered
//! signal at the sender's own client ("own") and at the other nodes'
//! clients ("remote").

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use futures_util::StreamExt;
use tokio::sync::Notify;
use zbus::{MatchRule, MessageStream};

use crate::cluster::{self, Cluster, GroupProxy};
use crate::stats::{EPOCH, now_ns};

pub const GROUP: &str = "bench";
pub const HEADER: usize = 24;

/// Writes the header into `payload`.
pub fn stamp(payload: &mut [u8], phase: u32, node: u32, seq: u64) {
    payload[0..4].copy_from_slice(&phase.to_le_bytes());
    payload[4..8].copy_from_slice(&node.to_le_bytes());
    payload[8..16].copy_from_slice(&seq.to_le_bytes());
    payload[16..24].copy_from_slice(&now_ns().to_le_bytes());
}

/// Reads (phase, node, seq, sent_ns) from a payload.
pub fn header(payload: &[u8]) -> Option<(u32, u32, u64, u64)> {
    let p = payload.get(..HEADER)?;
    let u32_at = |i: usize| u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&p[i..i + 8]);
        u64::from_le_bytes(b)
    };
    Some((u32_at(0), u32_at(4), u64_at(8), u64_at(16)))
}

/// What the delivery listeners saw of the current phase.
#[derive(Debug, Default)]
pub struct Recorder {
    pub phase: u32,
    /// Messages each client must receive in this phase.
    pub expect: u64,
    /// Received per client (index: node id - 1).
    pub got: Vec<u64>,
    /// Latencies in nanoseconds.
    pub own: Vec<u64>,
    pub remote: Vec<u64>,
    /// When every client had everything.
    pub done: Option<Instant>,
    /// Deliveries of other phases, or unreadable.
    pub stray: u64,
    /// `Undelivered` signals: messages a view change dropped.
    pub undelivered: u64,
    /// When the last delivery of this phase arrived.
    pub last: Option<Instant>,
}

impl Recorder {
    fn reset(&mut self, phase: u32, expect: u64, nodes: usize) {
        *self = Recorder {
            phase,
            expect,
            got: vec![0; nodes],
            ..Recorder::default()
        };
    }

    fn complete(&self) -> bool {
        self.got.iter().all(|g| *g >= self.expect)
    }
}

/// The bench clients of a cluster, joined to [`GROUP`].
#[derive(Debug)]
pub struct Clients {
    pub proxies: Vec<GroupProxy<'static>>,
    pub rec: Arc<Mutex<Recorder>>,
    pub notify: Arc<Notify>,
    pub n: u32,
}

impl Clients {
    /// Subscribes to deliveries, joins the group on every node and waits
    /// until a message from every node reaches every client.
    pub async fn join(c: &Cluster) -> anyhow::Result<Clients> {
        let rec = Arc::new(Mutex::new(Recorder::default()));
        let notify = Arc::new(Notify::new());
        let mut proxies = Vec::new();
        for (i, conn) in c.conns.iter().enumerate() {
            listen(conn, i, rec.clone(), notify.clone()).await?;
            let p = GroupProxy::builder(conn)
                .cache_properties(zbus::proxy::CacheProperties::No)
                .build()
                .await?;
            p.join(GROUP).await?;
            proxies.push(p);
        }
        let clients = Clients {
            proxies,
            rec,
            notify,
            n: c.n,
        };
        // Joins are ordered asynchronously: send rounds of one message per
        // node until one round reaches every client.
        for round in 0..100u32 {
            clients.reset(1_000_000 + round, 1);
            for (i, p) in clients.proxies.iter().enumerate() {
                let mut payload = vec![0u8; HEADER];
                stamp(&mut payload, 1_000_000 + round, i as u32 + 1, 0);
                let _ = p.send(GROUP, &payload).await;
            }
            let _ = tokio::time::timeout(Duration::from_millis(300), clients.wait_done()).await;
            let ok = clients
                .rec
                .lock()
                .map(|r| r.got.iter().all(|g| *g == c.n as u64));
            if ok.unwrap_or(false) {
                return Ok(clients);
            }
        }
        bail!("the group never reached every client")
    }

    fn reset(&self, phase: u32, expect: u64) {
        if let Ok(mut r) = self.rec.lock() {
            r.reset(phase, expect, self.n as usize);
        }
    }

    async fn wait_done(&self) {
        loop {
            let notified = self.notify.notified();
            if self.rec.lock().map(|r| r.done.is_some()).unwrap_or(true) {
                return;
            }
            notified.await;
        }
    }
}

/// Counts and times the `Delivered` signals of one client.
async fn listen(
    conn: &zbus::Connection,
    index: usize,
    rec: Arc<Mutex<Recorder>>,
    notify: Arc<Notify>,
) -> anyhow::Result<()> {
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.vigil.membership1.Group")
        .path(cluster::PATH)
        .build()?;
    let mut stream = MessageStream::for_match_rule(rule, conn, NonZeroUsize::new(1 << 20)).await?;
    let _ = &*EPOCH;
    tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            let now = now_ns();
            let at = Instant::now();
            let Ok(msg) = msg else { continue };
            let member = msg.header().member().map(|m| m.to_string());
            if member.as_deref() == Some("Undelivered") {
                if let Ok(mut r) = rec.lock() {
                    r.undelivered += 1;
                }
                continue;
            }
            if member.as_deref() != Some("Delivered") {
                continue;
            }
            let body = msg.body();
            let parsed = body.deserialize::<(&str, u32, u64, &[u8])>();
            let Ok(mut r) = rec.lock() else { return };
            let Some((phase, node, _seq, sent)) = parsed.ok().and_then(|(_, _, _, p)| header(p))
            else {
                r.stray += 1;
                continue;
            };
            if phase != r.phase || r.got.len() <= index {
                r.stray += 1;
                continue;
            }
            r.got[index] += 1;
            r.last = Some(at);
            let lat = now.saturating_sub(sent);
            if node as usize == index + 1 {
                r.own.push(lat);
            } else {
                r.remote.push(lat);
            }
            if r.done.is_none() && r.complete() {
                r.done = Some(at);
                notify.notify_waiters();
            }
        }
    });
    Ok(())
}

/// How a phase offers its load.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// Every node's client keeps `window` Send calls in flight.
    Saturate { window: usize },
    /// The clients together send `rate` messages per second.
    Paced { rate: f64 },
}

/// What one phase measured.
#[derive(Debug)]
pub struct PhaseResult {
    pub messages: u64,
    pub elapsed: Duration,
    pub complete: bool,
    pub own: Vec<u64>,
    pub remote: Vec<u64>,
    /// Send calls refused as congested (and retried).
    pub retries: u64,
    pub errors: Vec<String>,
    /// Messages reported `Undelivered` to their senders.
    pub undelivered: u64,
    /// Deliveries per client.
    pub got: Vec<u64>,
}

async fn send_retrying(p: &GroupProxy<'static>, payload: &[u8]) -> Result<u64, String> {
    let mut retries = 0;
    loop {
        match p.send(GROUP, payload).await {
            Ok(()) => return Ok(retries),
            Err(e) if e.to_string().contains("congested") => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Every node sends `per_node` messages of `size` bytes under `load`;
/// returns when every client received all of them (or after `timeout`).
pub async fn run_phase(
    clients: &Clients,
    phase: u32,
    per_node: u64,
    size: usize,
    load: Load,
    timeout: Duration,
) -> PhaseResult {
    let total = per_node * clients.n as u64;
    clients.reset(phase, total);
    let retries = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, p) in clients.proxies.iter().enumerate() {
        let node = i as u32 + 1;
        match load {
            Load::Saturate { window } => {
                let window = window.max(1) as u64;
                for w in 0..window {
                    let (p, retries, errors) = (p.clone(), retries.clone(), errors.clone());
                    tasks.spawn(async move {
                        let mut seq = w;
                        let mut payload = vec![0u8; size.max(HEADER)];
                        while seq < per_node {
                            stamp(&mut payload, phase, node, seq);
                            match send_retrying(&p, &payload).await {
                                Ok(r) => {
                                    retries.fetch_add(r, std::sync::atomic::Ordering::Relaxed);
                                }
                                Err(e) => {
                                    if let Ok(mut v) = errors.lock() {
                                        v.push(e);
                                    }
                                    return;
                                }
                            }
                            seq += window;
                        }
                    });
                }
            }
            Load::Paced { rate } => {
                let period = Duration::from_secs_f64(clients.n as f64 / rate);
                let offset = period.mul_f64(i as f64 / clients.n as f64);
                let (p, retries, errors) = (p.clone(), retries.clone(), errors.clone());
                tasks.spawn(async move {
                    let mut sends = tokio::task::JoinSet::new();
                    for seq in 0..per_node {
                        let at = start + offset + period.mul_f64(seq as f64);
                        tokio::time::sleep_until(at.into()).await;
                        let (p, retries, errors) = (p.clone(), retries.clone(), errors.clone());
                        sends.spawn(async move {
                            let mut payload = vec![0u8; size.max(HEADER)];
                            stamp(&mut payload, phase, node, seq);
                            match send_retrying(&p, &payload).await {
                                Ok(r) => {
                                    retries.fetch_add(r, std::sync::atomic::Ordering::Relaxed);
                                }
                                Err(e) => {
                                    if let Ok(mut v) = errors.lock() {
                                        v.push(e);
                                    }
                                }
                            }
                        });
                        while sends.try_join_next().is_some() {}
                    }
                    while sends.join_next().await.is_some() {}
                });
            }
        }
    }
    // Until every client has everything, the time limit passes, or
    // nothing arrives for 15 s (a view change dropped messages).
    let deadline = start + timeout;
    let complete = loop {
        if tokio::time::timeout(Duration::from_millis(500), clients.wait_done())
            .await
            .is_ok()
        {
            break true;
        }
        let last = clients
            .rec
            .lock()
            .ok()
            .and_then(|r| r.last)
            .unwrap_or(start);
        if Instant::now() > deadline || last.elapsed() > Duration::from_secs(15) {
            break false;
        }
    };
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let (own, remote, done, undelivered, got) = match clients.rec.lock() {
        Ok(mut r) => (
            std::mem::take(&mut r.own),
            std::mem::take(&mut r.remote),
            r.done,
            r.undelivered,
            r.got.clone(),
        ),
        Err(_) => (Vec::new(), Vec::new(), None, 0, Vec::new()),
    };
    let elapsed = done.map_or_else(|| start.elapsed(), |d| d - start);
    let mut errors = errors.lock().map(|v| v.clone()).unwrap_or_default();
    errors.dedup();
    PhaseResult {
        messages: total,
        elapsed,
        complete,
        own,
        remote,
        retries: retries.load(std::sync::atomic::Ordering::Relaxed),
        errors,
        undelivered,
        got,
    }
}
