//! `org.vigil.membership1` (contract: `org.vigil.membership1.xml`): the
//! node's view and quorum, and process groups with totally ordered
//! delivery.
//!
//! [`GroupChannel`] is how another daemon takes part in a group: it opens
//! a channel (`Manager.OpenChannel`, a private connection to the
//! membership daemon), subscribes to the group's signals on it, joins, and
//! hands every event over in order.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde_bytes::Bytes;
use tokio::sync::mpsc;

/// The bus name and object path.
pub const NAME: &str = "org.vigil.membership1";
pub const PATH: &str = "/org/vigil/membership1";
const GROUP_IFACE: &str = "org.vigil.membership1.Group";

#[zbus::proxy(
    interface = "org.vigil.membership1.Manager",
    default_service = "org.vigil.membership1",
    default_path = "/org/vigil/membership1"
)]
pub trait Manager {
    #[zbus(property)]
    fn cluster_name(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn local_node_id(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn ring_id(&self) -> zbus::Result<(u64, u32)>;
    #[zbus(property)]
    fn members(&self) -> zbus::Result<Vec<u32>>;
    #[zbus(property)]
    fn nodes(&self) -> zbus::Result<Vec<(u32, String, String, bool)>>;
    #[zbus(property)]
    fn datagrams_accepted(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn datagrams_dropped(&self) -> zbus::Result<BTreeMap<String, u64>>;
    fn open_channel(&self) -> zbus::Result<zbus::OwnedFd>;
    #[zbus(signal)]
    fn view_changed(&self, ring: (u64, u32), members: Vec<u32>) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.vigil.membership1.Quorum",
    default_service = "org.vigil.membership1",
    default_path = "/org/vigil/membership1"
)]
pub trait Quorum {
    #[zbus(property)]
    fn quorate(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn expected_votes(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn total_votes(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn quorum(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn flags(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn node_votes(&self) -> zbus::Result<Vec<(u32, u32)>>;
    fn set_expected_votes(&self, votes: u32) -> zbus::Result<()>;
    #[zbus(signal)]
    fn quorum_state_changed(
        &self,
        quorate: bool,
        expected_votes: u32,
        total_votes: u32,
    ) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.vigil.membership1.Group",
    default_service = "org.vigil.membership1",
    default_path = "/org/vigil/membership1"
)]
pub trait Group {
    fn join(&self, group: &str) -> zbus::Result<()>;
    fn leave(&self, group: &str) -> zbus::Result<()>;
    fn send(&self, group: &str, payload: &Bytes) -> zbus::Result<()>;
    fn send_batch(&self, group: &str, payloads: &[&Bytes]) -> zbus::Result<u32>;
    #[zbus(signal)]
    fn delivered(&self, group: String, messages: Vec<(u32, u64, Vec<u8>)>) -> zbus::Result<()>;
    #[zbus(signal)]
    fn undelivered(&self, group: String, payload: Vec<u8>) -> zbus::Result<()>;
    #[zbus(signal)]
    fn group_changed(
        &self,
        group: String,
        members: Vec<Member>,
        joined: Vec<Member>,
        left: Vec<Member>,
    ) -> zbus::Result<()>;
}

/// A member of a process group: a client on a node.
pub type Member = (u32, u64);

/// What happens in a group, in the cluster's total order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// A message, from a member.
    Delivered { from: Member, payload: Vec<u8> },
    /// The group's members changed.
    Changed {
        members: Vec<Member>,
        joined: Vec<Member>,
        left: Vec<Member>,
    },
    /// A message this client sent was not delivered and never will be.
    Undelivered { payload: Vec<u8> },
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Flow control: too many messages wait to be ordered; retry shortly.
    #[error("the membership daemon is congested")]
    Congested,
    #[error("{0}")]
    Other(String),
}

/// Membership in one group over a channel to the local membership daemon.
#[derive(Debug, Clone)]
pub struct GroupChannel {
    group: String,
    proxy: GroupProxy<'static>,
    node: u32,
}

impl GroupChannel {
    /// Opens a channel to the membership daemon on `bus`, subscribes to
    /// the group's events, joins `group`, and returns the channel and its
    /// events. The events end when the channel closes (the membership
    /// daemon stopped).
    pub async fn open(
        bus: &zbus::Connection,
        group: &str,
    ) -> zbus::Result<(GroupChannel, mpsc::UnboundedReceiver<GroupEvent>)> {
        let manager = ManagerProxy::new(bus).await?;
        let node = manager.local_node_id().await?;
        let fd = manager.open_channel().await?;
        let stream = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(fd));
        let conn = zbus::connection::Builder::unix_stream(stream)
            .p2p()
            .build()
            .await?;
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(GROUP_IFACE)
            .path(PATH)
            .build()?;
        let mut signals =
            zbus::MessageStream::for_match_rule(rule, &conn, std::num::NonZeroUsize::new(1 << 16))
                .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let wanted = group.to_string();
        tokio::spawn(async move {
            while let Some(msg) = signals.next().await {
                let Ok(msg) = msg else { continue };
                for event in parse(&msg, &wanted) {
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        let proxy = GroupProxy::builder(&conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        proxy.join(group).await?;
        Ok((
            GroupChannel {
                group: group.to_string(),
                proxy,
                node,
            },
            rx,
        ))
    }

    /// [`GroupChannel::open`], trying again every second until the
    /// membership daemon answers; `waiting` is called once, with the
    /// first error, when it does not at once (to tell the operator).
    pub async fn open_when_ready(
        bus: &zbus::Connection,
        group: &str,
        waiting: impl FnOnce(&zbus::Error),
    ) -> (GroupChannel, mpsc::UnboundedReceiver<GroupEvent>) {
        let mut waiting = Some(waiting);
        loop {
            match GroupChannel::open(bus, group).await {
                Ok(c) => return c,
                Err(e) => {
                    if let Some(w) = waiting.take() {
                        w(&e);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// This node's id.
    pub fn node(&self) -> u32 {
        self.node
    }

    /// Sends `payloads` in order, in as few calls as flow control allows,
    /// waiting out congestion for at most `patience` in all. On an error,
    /// some of the first payloads may have been sent.
    pub async fn send_all(&self, payloads: &[&[u8]], patience: Duration) -> Result<(), SendError> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut pause = Duration::from_millis(1);
        let mut rest: Vec<&Bytes> = payloads.iter().map(|p| Bytes::new(p)).collect();
        while !rest.is_empty() {
            match self.proxy.send_batch(&self.group, &rest).await {
                Ok(n) => {
                    let n = (n as usize).min(rest.len());
                    rest.drain(..n);
                    if n > 0 {
                        pause = Duration::from_millis(1);
                        continue;
                    }
                }
                Err(e) if !e.to_string().contains("congested") => {
                    return Err(SendError::Other(e.to_string()));
                }
                Err(_) => {}
            }
            // Congested: wait, then send the rest.
            if tokio::time::Instant::now() + pause >= deadline {
                return Err(SendError::Congested);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        Ok(())
    }
}

/// The events of one group signal (a `Delivered` signal may carry many
/// messages).
fn parse(msg: &zbus::Message, group: &str) -> Vec<GroupEvent> {
    let header = msg.header();
    let Some(member) = header.member() else {
        return Vec::new();
    };
    let body = msg.body();
    match member.as_str() {
        "Delivered" => match body.deserialize::<(&str, Vec<(u32, u64, &[u8])>)>() {
            Ok((g, messages)) if g == group => messages
                .into_iter()
                .map(|(node, client, payload)| GroupEvent::Delivered {
                    from: (node, client),
                    payload: payload.to_vec(),
                })
                .collect(),
            _ => Vec::new(),
        },
        "GroupChanged" => {
            type Args<'a> = (&'a str, Vec<Member>, Vec<Member>, Vec<Member>);
            match body.deserialize::<Args<'_>>() {
                Ok((g, members, joined, left)) if g == group => vec![GroupEvent::Changed {
                    members,
                    joined,
                    left,
                }],
                _ => Vec::new(),
            }
        }
        "Undelivered" => match body.deserialize::<(&str, &[u8])>() {
            Ok((g, payload)) if g == group => vec![GroupEvent::Undelivered {
                payload: payload.to_vec(),
            }],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}
