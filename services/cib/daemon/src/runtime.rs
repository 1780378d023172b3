//! The daemon's loop: bus commands in, changes out to the group `cib`,
//! group events into the replica, its effects out (replies, signals,
//! writes to disk).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use vigil_cib::model::CibVersion;
use vigil_dbus::membership::{GroupChannel, GroupEvent};
use zbus::object_server::SignalEmitter;

use crate::dbus::{self, Command, Shared, Version};
use crate::engine::Engine;
use crate::replica::{Effect, Message, Replica};
use crate::request::{Origin, Request};
use crate::writer::{Ack, Writer};

/// The membership group the replicas share.
pub const GROUP: &str = "cib";

/// How long a change waits out the membership daemon's flow control.
const SEND_PATIENCE: Duration = Duration::from_secs(30);

type Reply = oneshot::Sender<Result<Version, String>>;

/// Everything the loop owns.
#[derive(Debug)]
pub struct Runtime {
    pub replica: Replica,
    pub engine: Engine,
    pub node_name: String,
    pub shared: Shared,
    pub bus: zbus::Connection,
    pub writer: Writer,
}

/// A change on its way to the group, and who waits for it.
#[derive(Debug)]
struct Outgoing {
    request: Option<u64>,
    payload: Vec<u8>,
}

impl Runtime {
    /// Runs until the command channel closes or the membership daemon goes
    /// away (then systemd restarts this daemon, which joins again).
    pub async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut acks: mpsc::UnboundedReceiver<Ack>,
    ) -> anyhow::Result<()> {
        // Joining the group may wait for the membership daemon; reads are
        // served from this node's copy meanwhile.
        let (joined_tx, mut joined_rx) = oneshot::channel();
        tokio::spawn(join(self.bus.clone(), joined_tx));
        let mut events: Option<mpsc::UnboundedReceiver<GroupEvent>> = None;
        let mut out_tx: Option<mpsc::UnboundedSender<Outgoing>> = None;
        let mut node = 0;
        let (failed_tx, mut failed) = mpsc::unbounded_channel::<(u64, String)>();
        let emitter = SignalEmitter::new(&self.bus, dbus::PATH)?.into_owned();
        let mut next_request: u64 = 0;
        let mut waiting: BTreeMap<u64, Reply> = BTreeMap::new();
        // Replies held until their version is on disk.
        let mut held: Vec<(CibVersion, Reply)> = Vec::new();
        loop {
            tokio::select! {
                joined = &mut joined_rx, if events.is_none() => {
                    let Ok((group, ev)) = joined else {
                        anyhow::bail!("could not join the membership group {GROUP}");
                    };
                    node = group.node();
                    self.replica.set_node(node);
                    let (tx, rx) = mpsc::unbounded_channel::<Outgoing>();
                    tokio::spawn(send_loop(group, rx, failed_tx.clone()));
                    out_tx = Some(tx);
                    events = Some(ev);
                }
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return Ok(()) };
                    match cmd {
                        Command::Query { xpath, section, user, groups, reply } => {
                            let _ = reply.send(self.engine.query(
                                self.replica.cib(),
                                &xpath,
                                &section,
                                &user,
                                &groups,
                            ));
                        }
                        Command::Change { change, client, user, groups, reply } => {
                            let Some(out_tx) = &out_tx else {
                                let _ = reply.send(Err(
                                    "this node has not joined the cluster yet (is vigil-membershipd running?); \
                                     changes need it; reads show this node's copy"
                                        .into(),
                                ));
                                continue;
                            };
                            next_request += 1;
                            let request = Request {
                                change,
                                origin: Origin {
                                    node: self.node_name.clone(),
                                    client,
                                    user,
                                    groups,
                                    now: crate::engine::now_text(),
                                },
                            };
                            let payload = Message::Change {
                                origin: node,
                                request: next_request,
                                change: request.encode(),
                            }
                            .encode();
                            waiting.insert(next_request, reply);
                            for piece in Message::frame(payload, next_request) {
                                let _ = out_tx.send(Outgoing { request: Some(next_request), payload: piece });
                            }
                        }
                    }
                }
                ev = next_event(&mut events) => {
                    let Some(ev) = ev else {
                        anyhow::bail!("the membership daemon closed the channel; restarting to join again");
                    };
                    let effects = match ev {
                        GroupEvent::Changed { members, joined, left } => {
                            tracing::debug!(?members, ?joined, ?left, "the group {GROUP} changed");
                            self.replica.group_changed(members, &joined, &left)
                        }
                        GroupEvent::Delivered { payload, from } => {
                            if tracing::enabled!(tracing::Level::DEBUG) {
                                let kind = match Message::decode(&payload) {
                                    Some(Message::Change { request, .. }) => format!("change {request}"),
                                    Some(Message::Offer { round, node, version, .. }) => {
                                        format!("offer of node {node} at {version:?} for {round:?}")
                                    }
                                    Some(Message::Full { index, count, .. }) => format!("copy {index}/{count}"),
                                    Some(Message::Part { request, index, count, .. }) => {
                                        format!("part {index}/{count} of request {request}")
                                    }
                                    None => "unreadable".into(),
                                };
                                tracing::debug!(?from, "delivered: {kind}");
                            }
                            self.replica.delivered_from(from, &payload, &mut self.engine)
                        }
                        GroupEvent::Undelivered { payload } => {
                            // The membership changed before this node saw
                            // the change ordered: nodes on the other side
                            // may have applied it. Sending it again could
                            // apply it twice, so the caller decides.
                            // (Offers and CIB copies need no resend: the
                            // group change starts a new sync round.)
                            let request = match Message::decode(&payload) {
                                Some(Message::Change { request, .. } | Message::Part { request, .. }) => request,
                                _ => 0,
                            };
                            if let Some(reply) = waiting.remove(&request)
                            {
                                let _ = reply.send(Err(
                                    "the cluster membership changed while this change was being sent; it may or \
                                     may not have been applied: query the CIB and try again if it is missing"
                                        .into(),
                                ));
                            }
                            Vec::new()
                        }
                    };
                    if let Some(out_tx) = &out_tx {
                        self.effects(effects, out_tx, &emitter, &mut waiting, &mut held).await;
                    }
                }
                ack = acks.recv() => {
                    let Some(ack) = ack else { continue };
                    match ack {
                        Ok(v) => {
                            self.writer.acked(v);
                            self.write_if_idle();
                            let (ready, rest): (Vec<_>, Vec<_>) = held.into_iter().partition(|(hv, _)| *hv <= v);
                            held = rest;
                            for (hv, reply) in ready {
                                let _ = reply.send(Ok(tuple(hv)));
                            }
                        }
                        Err((v, e)) => {
                            self.writer.failed(v);
                            self.write_if_idle();
                            tracing::error!(version = %v, "cannot write the CIB to disk: {e}");
                            let (failed_now, rest): (Vec<_>, Vec<_>) = held.into_iter().partition(|(hv, _)| *hv <= v);
                            held = rest;
                            for (hv, reply) in failed_now {
                                let _ = reply.send(Err(format!(
                                    "the change was applied by the cluster as version {hv}, but this node could not write it to disk: {e}"
                                )));
                            }
                        }
                    }
                }
                f = failed.recv() => {
                    if let Some((request, e)) = f
                        && let Some(reply) = waiting.remove(&request)
                    {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
    }

    async fn effects(
        &mut self,
        effects: Vec<Effect>,
        out: &mpsc::UnboundedSender<Outgoing>,
        emitter: &SignalEmitter<'static>,
        waiting: &mut BTreeMap<u64, Reply>,
        held: &mut Vec<(CibVersion, Reply)>,
    ) {
        // Versions made by configuration changes: written to disk (once,
        // the newest state, after these effects), and their replies wait
        // for it.
        let mut config: Vec<CibVersion> = Vec::new();
        for e in effects {
            match e {
                Effect::Send(m) => {
                    for piece in Message::frame(m.encode(), 0) {
                        let _ = out.send(Outgoing {
                            request: None,
                            payload: piece,
                        });
                    }
                }
                Effect::Changed { from, to, patch } => {
                    if to.admin_epoch != from.admin_epoch || to.epoch != from.epoch {
                        // Configuration changes are written; the status is
                        // rebuilt from the nodes after a restart, as in
                        // Pacemaker.
                        config.push(to);
                    }
                    if let Ok(mut s) = self.shared.snapshot.lock() {
                        s.version = tuple(to);
                    }
                    let _ = dbus::Manager::changed(emitter, tuple(to), &patch).await;
                }
                Effect::Reply { request, result } => {
                    let Some(reply) = waiting.remove(&request) else {
                        continue;
                    };
                    match result {
                        Ok(v)
                            if config.contains(&v) && self.writer.durable.is_none_or(|d| d < v) =>
                        {
                            held.push((v, reply));
                        }
                        Ok(v) => {
                            let _ = reply.send(Ok(tuple(v)));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Effect::Replaced {
                    own,
                    winner_node,
                    winner,
                    lost,
                } => {
                    tracing::warn!(
                        own = %own,
                        winner = %winner,
                        winner_node,
                        "this node's CIB {own} had changes made while apart from node {winner_node}; \
                         the cluster keeps node {winner_node}'s CIB {winner}, and these changes are \
                         not in it (apply them again if they are still wanted): {lost}"
                    );
                }
                Effect::Synced => {
                    tracing::info!(version = %self.replica.version(), "the CIB is in step with the cluster");
                    if let Ok(mut s) = self.shared.snapshot.lock() {
                        s.synced = true;
                        s.version = tuple(self.replica.version());
                    }
                    vigil_runtime::notify_status(&format!(
                        "CIB {} in step with the cluster",
                        self.replica.version()
                    ));
                    let _ = self.synced_changed().await;
                }
            }
        }
        if !config.is_empty() {
            self.writer.wanted = true;
            self.write_if_idle();
        }
        if !self.replica.synced()
            && let Ok(mut s) = self.shared.snapshot.lock()
        {
            s.synced = false;
        }
    }

    /// Hands the current CIB to the writer if a write is wanted and none is
    /// under way: while one is, changes pile up and the next write takes
    /// them all (the CIB is serialised once per write, not per change).
    fn write_if_idle(&mut self) {
        if self.writer.wanted && !self.writer.busy() {
            self.writer.wanted = false;
            self.writer.submit(
                self.replica.version(),
                self.replica.cib().to_xml(),
                self.replica.witnesses().cloned(),
            );
        }
    }

    async fn synced_changed(&self) -> zbus::Result<()> {
        let iface = self
            .bus
            .object_server()
            .interface::<_, dbus::Manager>(dbus::PATH)
            .await?;
        let ctx = iface.signal_emitter();
        iface.get().await.synced_changed(ctx).await
    }
}

/// The next group event, once joined (never, before).
async fn next_event(
    events: &mut Option<mpsc::UnboundedReceiver<GroupEvent>>,
) -> Option<GroupEvent> {
    match events {
        Some(e) => e.recv().await,
        None => std::future::pending().await,
    }
}

/// Joins the group, waiting for the membership daemon if it is not there
/// yet.
async fn join(
    bus: zbus::Connection,
    done: oneshot::Sender<(GroupChannel, mpsc::UnboundedReceiver<GroupEvent>)>,
) {
    let c = GroupChannel::open_when_ready(&bus, GROUP, |e| {
        tracing::warn!(
            "cannot join the membership group {GROUP} ({e}); is vigil-membershipd running? Trying again every second"
        );
        vigil_runtime::notify_status("waiting for vigil-membershipd");
    })
    .await;
    tracing::info!(node = c.0.node(), "joined the membership group {GROUP}");
    let _ = done.send(c);
}

fn tuple(v: CibVersion) -> Version {
    (v.admin_epoch, v.epoch, v.num_updates)
}

/// Sends the loop's messages to the group in order, waiting out flow
/// control; what queued up meanwhile goes in one call. A change that
/// cannot be sent fails its caller.
async fn send_loop(
    group: GroupChannel,
    mut out: mpsc::UnboundedReceiver<Outgoing>,
    failed: mpsc::UnboundedSender<(u64, String)>,
) {
    while let Some(first) = out.recv().await {
        let mut batch = vec![first];
        while batch.len() < 64 {
            match out.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        let payloads: Vec<&[u8]> = batch.iter().map(|o| o.payload.as_slice()).collect();
        if let Err(e) = group.send_all(&payloads, SEND_PATIENCE).await {
            tracing::warn!("cannot send to the membership group {GROUP}: {e}");
            for o in &batch {
                if let Some(request) = o.request {
                    let _ = failed.send((
                        request,
                        format!("the change could not be sent to the cluster: {e}"),
                    ));
                }
            }
        }
    }
}
