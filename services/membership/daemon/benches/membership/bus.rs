//! Ordered messages through the D-Bus API of real daemons: every node's
//! bench client joins one group, sends with `Group.Send` (or
//! `Group.SendBatch`) and receives every message in a unicast `Delivered`
//! signal, through the bus or on a channel (`Manager.OpenChannel`, a
//! peer-to-peer connection to the daemon).
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

/// How the bench clients talk to their daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Bus,
    Channel,
}

impl Via {
    /// For the printed figures.
    pub fn label(self) -> &'static str {
        match self {
            Via::Bus => "through the bus",
            Via::Channel => "on channels",
        }
    }

    /// The `--only` name.
    pub fn part(self) -> &'static str {
        match self {
            Via::Bus => "bus",
            Via::Channel => "channel",
        }
    }
}

/// The bench clients of a cluster, joined to [`GROUP`].
#[derive(Debug)]
pub struct Clients {
    /// One per node, on the bus or on the node's channel (which the proxy
    /// keeps open).
    pub proxies: Vec<GroupProxy<'static>>,
    pub rec: Arc<Mutex<Recorder>>,
    pub notify: Arc<Notify>,
    pub n: u32,
}

impl Clients {
    /// Subscribes to deliveries, joins the group on every node and waits
    /// until a message from every node reaches every client.
    pub async fn join(c: &Cluster, via: Via) -> anyhow::Result<Clients> {
        let rec = Arc::new(Mutex::new(Recorder::default()));
        let notify = Arc::new(Notify::new());
        let mut proxies = Vec::new();
        for i in 0..c.conns.len() {
            let conn = match via {
                Via::Bus => c.conns[i].clone(),
                Via::Channel => c.open_channel(i as u32 + 1).await?,
            };
            listen(&conn, i, rec.clone(), notify.clone()).await?;
            let p = GroupProxy::builder(&conn)
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
            clients.reset(1_000_000 + round, u64::from(c.n));
            for (i, p) in clients.proxies.iter().enumerate() {
                let mut payload = vec![0u8; HEADER];
                stamp(&mut payload, 1_000_000 + round, i as u32 + 1, 0);
                let _ = p.send(GROUP, serde_bytes::Bytes::new(&payload)).await;
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
        let got = match clients.rec.lock() {
            Ok(r) => format!("{:?} (stray {})", r.got, r.stray),
            Err(_) => "unknown: a delivery listener panicked".to_string(),
        };
        bail!(
            "the group never reached every client: in the last round of one message per node, the clients got {got}"
        )
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
            let Ok((_group, messages)) = body.deserialize::<(&str, Vec<(u32, u64, &[u8])>)>()
            else {
                if let Ok(mut r) = rec.lock() {
                    r.stray += 1;
                }
                continue;
            };
            let Ok(mut r) = rec.lock() else { return };
            for (_, _, payload) in messages {
                let Some((phase, node, _seq, sent)) = header(payload) else {
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
    /// Every node's client keeps `window` calls in flight, each a Send
    /// (`batch` 1) or a SendBatch of `batch` messages.
    Saturate { window: usize, batch: usize },
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
        match p.send(GROUP, serde_bytes::Bytes::new(payload)).await {
            Ok(()) => return Ok(retries),
            Err(e) if e.to_string().contains("congested") => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Sends `payloads` with SendBatch, the rest again (after 1 ms) while the
/// node accepts only some; returns how many calls were refused or cut
/// short.
async fn send_batch_retrying(p: &GroupProxy<'static>, payloads: &[Vec<u8>]) -> Result<u64, String> {
    let mut retries = 0;
    let mut rest: Vec<&serde_bytes::Bytes> = payloads
        .iter()
        .map(|p| serde_bytes::Bytes::new(p))
        .collect();
    while !rest.is_empty() {
        match p.send_batch(GROUP, &rest).await {
            Ok(n) if n as usize >= rest.len() => return Ok(retries),
            Ok(n) => {
                rest.drain(..n as usize);
                retries += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) if e.to_string().contains("congested") => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(retries)
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
            Load::Saturate { window, batch } => {
                // Slot w sends messages w, w + window, ... (in batches of
                // consecutive slots' numbers when batching).
                let window = window.max(1) as u64;
                let batch = batch.max(1) as u64;
                for w in 0..window {
                    let (p, retries, errors) = (p.clone(), retries.clone(), errors.clone());
                    tasks.spawn(async move {
                        let mut first = w * batch;
                        let mut payloads = vec![vec![0u8; size.max(HEADER)]; batch as usize];
                        while first < per_node {
                            let n = batch.min(per_node - first) as usize;
                            for (k, payload) in payloads.iter_mut().take(n).enumerate() {
                                stamp(payload, phase, node, first + k as u64);
                            }
                            let sent = if batch == 1 {
                                send_retrying(&p, &payloads[0]).await
                            } else {
                                send_batch_retrying(&p, &payloads[..n]).await
                            };
                            match sent {
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
                            first += window * batch;
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
