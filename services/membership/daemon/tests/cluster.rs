//! Process tests: real `vigil-membershipd` daemons on 127.0.X.Y, each
//! serving its own private bus, driven and observed over D-Bus the way a
//! user or another Vigil daemon would.
//!
//! Every test uses its own 127.0.X.0/24 addresses and a port free at the
//! start, so the tests run in parallel. They skip (with a message) where
//! `dbus-daemon` is not installed. Waits are generous and nothing here
//! measures speed.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use zbus::proxy::CacheProperties;

use common::{
    Cluster, DAEMON, GroupProxy, NAME, PATH, WAIT, dbus_daemon_available, eventually,
    run_with_deadline, steadily,
};

macro_rules! require_dbus {
    ($test:literal) => {
        if !dbus_daemon_available($test) {
            return;
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_form_one_quorate_view() {
    require_dbus!("three_nodes_form_one_quorate_view");
    let cluster = Cluster::new(11, 3).await;
    cluster.start(&[1, 2, 3]).await;
    let views = cluster.wait_agreed(&[1, 2, 3], &[1, 2, 3]).await;
    for (id, v) in (1..=3).zip(&views) {
        assert!(v.quorate, "node {id} is not quorate: {v:?}");
        assert_eq!(v.expected_votes, 3, "node {id}: {v:?}");
        assert!(v.ring.0 > 0, "node {id} still shows its start ring: {v:?}");
    }
    for id in 1..=3 {
        let m = cluster.manager(id).await;
        assert_eq!(m.local_node_id().await.expect("LocalNodeId"), id);
        assert_eq!(m.cluster_name().await.expect("ClusterName"), "t11");
        let nodes = m.nodes().await.expect("Nodes");
        let expected: Vec<(u32, String, String, bool)> = (1..=3)
            .map(|i| (i, format!("n{i}"), format!("127.0.11.{i}"), true))
            .collect();
        assert_eq!(nodes, expected, "Nodes of node {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_leaves_the_view_and_rejoins_after_restart() {
    require_dbus!("a_killed_node_leaves_the_view_and_rejoins_after_restart");
    let cluster = Cluster::new(12, 3).await;
    cluster.start(&[1, 2, 3]).await;
    let first = cluster.wait_agreed(&[1, 2, 3], &[1, 2, 3]).await[0].ring;

    let m1 = cluster.manager(1).await;
    let mut changes = m1
        .receive_view_changed()
        .await
        .expect("subscribe to ViewChanged");

    cluster.kill(&[3]);
    let views = cluster.wait_agreed(&[1, 2], &[1, 2]).await;
    let second = views[0].ring;
    assert!(
        second.0 > first.0,
        "ring {second:?} after the loss is not above {first:?}"
    );
    for (id, v) in [1, 2].into_iter().zip(&views) {
        assert!(v.quorate, "node {id} lost quorum with 2 of 3 votes: {v:?}");
    }
    expect_view_changed(&mut changes, second, &[1, 2]).await;

    cluster.start(&[3]).await;
    let views = cluster.wait_agreed(&[1, 2, 3], &[1, 2, 3]).await;
    let third = views[0].ring;
    assert!(
        third.0 > second.0,
        "ring {third:?} after the rejoin is not above {second:?}"
    );
    assert!(views.iter().all(|v| v.quorate), "{views:?}");
    expect_view_changed(&mut changes, third, &[1, 2, 3]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_restart_never_reuses_a_ring_id() {
    require_dbus!("a_whole_cluster_restart_never_reuses_a_ring_id");
    let cluster = Cluster::new(19, 2).await;
    cluster.start(&[1, 2]).await;
    let before = cluster.wait_agreed(&[1, 2], &[1, 2]).await[0].ring;
    cluster.kill(&[1, 2]);
    // Both start afresh; only what they kept on disk tells them which rings
    // existed.
    cluster.start(&[1, 2]).await;
    let after = cluster.wait_agreed(&[1, 2], &[1, 2]).await[0].ring;
    assert!(
        after.0 > before.0,
        "ring {after:?} after the restart is not above {before:?}"
    );
}

/// Reads ViewChanged signals until one for `ring` with `members`; panics
/// if another view with `members` or a higher ring comes instead, or none
/// comes in time.
async fn expect_view_changed(
    changes: &mut common::ViewChangedStream,
    ring: (u64, u32),
    members: &[u32],
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let Ok(Some(signal)) = tokio::time::timeout_at(deadline, changes.next()).await else {
            panic!("no ViewChanged for ring {ring:?} {members:?}; saw only {seen:?}");
        };
        let args = signal.args().expect("ViewChanged arguments");
        let got = (*args.ring(), args.members().clone());
        if got.0 == ring && got.1 == members {
            return;
        }
        assert!(
            got.0.0 < ring.0,
            "ViewChanged {got:?} instead of {ring:?} {members:?} (before it: {seen:?})"
        );
        seen.push(got);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_node_of_three_loses_quorum() {
    require_dbus!("the_last_node_of_three_loses_quorum");
    let cluster = Cluster::new(13, 3).await;
    cluster.start(&[1, 2, 3]).await;
    let first = cluster.wait_agreed(&[1, 2, 3], &[1, 2, 3]).await[0].ring;
    assert!(cluster.view(3).await.expect("view of node 3").quorate);

    cluster.kill(&[1, 2]);
    let alone = eventually("node 3 to be alone without quorum", async || {
        let v = cluster.view(3).await?;
        if v.members == [3] && !v.quorate {
            Ok(v)
        } else {
            Err(format!("{v:?}"))
        }
    })
    .await;
    assert!(alone.ring.0 > first.0, "{alone:?} after {first:?}");
    assert_eq!(alone.expected_votes, 3, "{alone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_key_never_joins() {
    require_dbus!("a_node_with_another_key_never_joins");
    let cluster = Cluster::new(14, 3).await;
    let mut other = common::random_key();
    other[0] ^= 1; // different even if /dev/urandom repeated itself
    cluster.set_key(3, &other);
    cluster.start(&[1, 2, 3]).await;
    let ring = cluster.wait_agreed(&[1, 2], &[1, 2]).await[0].ring;

    steadily(
        "the view [1, 2] without node 3",
        Duration::from_secs(3),
        async || {
            let views = cluster.agreed(&[1, 2], &[1, 2]).await?;
            if views[0].ring != ring {
                return Err(format!("the ring changed from {ring:?}: {views:?}"));
            }
            if !views.iter().all(|v| v.quorate) {
                return Err(format!("2 of 3 votes are not quorate: {views:?}"));
            }
            let v3 = cluster.view(3).await?;
            if v3.members != [3] || v3.quorate {
                return Err(format!("node 3 with the wrong key shows {v3:?}"));
            }
            Ok(())
        },
    )
    .await;

    let m1 = cluster.manager(1).await;
    let dropped = eventually("node 1 to count datagrams of another cluster", async || {
        let d = m1.datagrams_dropped().await.map_err(|e| e.to_string())?;
        if d.get("other_cluster").copied().unwrap_or(0) > 0 {
            Ok(d)
        } else {
            Err(format!("DatagramsDropped = {d:?}"))
        }
    })
    .await;
    assert_eq!(
        dropped.get("bad_tag").copied().unwrap_or(0),
        0,
        "another key gives another cluster tag, so nothing should get as far as decryption: {dropped:?}"
    );
}

/// How a test client talks to its daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// Through the bus.
    Bus,
    /// On a channel (`Manager.OpenChannel`).
    Channel,
}

/// A client of one node, joined to a group.
struct Client {
    node: u32,
    via: Via,
    /// The bus connection, or the channel.
    conn: zbus::Connection,
    group: GroupProxy<'static>,
    delivered: common::DeliveredStream,
    changed: common::GroupChangedStream,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("node", &self.node)
            .field("via", &self.via)
            .field("name", &self.conn.unique_name())
            .finish_non_exhaustive()
    }
}

impl Client {
    async fn join(cluster: &Cluster, node: u32, group: &str, via: Via) -> Client {
        let bus = cluster.connect(node).await;
        let conn = match via {
            Via::Bus => bus,
            Via::Channel => {
                let fd = common::ManagerProxy::new(&bus)
                    .await
                    .expect("Manager proxy")
                    .open_channel()
                    .await
                    .unwrap_or_else(|e| panic!("OpenChannel on node {node}: {e}"));
                let stream = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(fd));
                zbus::connection::Builder::unix_stream(stream)
                    .p2p()
                    .build()
                    .await
                    .unwrap_or_else(|e| panic!("the channel of node {node}: {e}"))
            }
        };
        let proxy = GroupProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .expect("Group proxy");
        let delivered = proxy
            .receive_delivered()
            .await
            .expect("subscribe to Delivered");
        let changed = proxy
            .receive_group_changed()
            .await
            .expect("subscribe to GroupChanged");
        proxy
            .join(group)
            .await
            .unwrap_or_else(|e| panic!("Join({group}) on node {node}: {e}"));
        Client {
            node,
            via,
            conn,
            group: proxy,
            delivered,
            changed,
        }
    }

    /// Reads GroupChanged signals for `group` until one satisfies `done`,
    /// returning its members and who left.
    async fn wait_group(
        &mut self,
        group: &str,
        what: &str,
        done: impl Fn(&[(u32, u64)], &[(u32, u64)]) -> bool,
    ) -> Vec<(u32, u64)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let Ok(Some(signal)) = tokio::time::timeout_at(deadline, self.changed.next()).await
            else {
                panic!(
                    "the client on node {} saw no GroupChanged {what}; saw {seen:?}",
                    self.node
                );
            };
            let args = signal.args().expect("GroupChanged arguments");
            if args.group() != group {
                continue;
            }
            if done(args.members(), args.left()) {
                return args.members().clone();
            }
            seen.push((
                args.members().clone(),
                args.joined().clone(),
                args.left().clone(),
            ));
        }
    }

    /// Sends `payload`, retrying while the node says it is congested.
    async fn send(&self, group: &str, payload: &[u8]) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self
                .group
                .send(group, serde_bytes::Bytes::new(payload))
                .await
            {
                Ok(()) => return,
                Err(e) if e.to_string().contains("congested") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("Send on node {}: {e}", self.node),
            }
        }
    }

    /// Sends `payloads` with SendBatch, the rest again while the node
    /// accepts only some.
    async fn send_batch(&self, group: &str, payloads: &[&[u8]]) {
        let deadline = Instant::now() + WAIT;
        let mut rest = payloads;
        while !rest.is_empty() {
            let batch: Vec<&serde_bytes::Bytes> =
                rest.iter().map(|p| serde_bytes::Bytes::new(p)).collect();
            match self.group.send_batch(group, &batch).await {
                Ok(n) => {
                    assert!(
                        n >= 1,
                        "SendBatch on node {} accepted nothing without an error",
                        self.node
                    );
                    rest = &rest[n as usize..];
                }
                Err(e) if e.to_string().contains("congested") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("Send on node {}: {e}", self.node),
            }
        }
    }

    /// Reads `n` messages of `group` from Delivered signals: (node, client,
    /// payload).
    async fn receive(&mut self, group: &str, n: usize) -> Vec<(u32, u64, Vec<u8>)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut got = Vec::new();
        while got.len() < n {
            let Ok(Some(signal)) = tokio::time::timeout_at(deadline, self.delivered.next()).await
            else {
                panic!(
                    "the client on node {} got {} of {n} messages: {}",
                    self.node,
                    got.len(),
                    describe(&got)
                );
            };
            let args = signal.args().expect("Delivered arguments");
            if args.group() == group {
                got.extend(args.messages().iter().cloned());
            }
        }
        got
    }
}

fn describe(msgs: &[(u32, u64, Vec<u8>)]) -> String {
    let texts: Vec<String> = msgs
        .iter()
        .map(|(n, c, p)| format!("{n}/{c}:{}", String::from_utf8_lossy(p)))
        .collect();
    texts.join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_messages_reach_every_client_in_one_order() {
    require_dbus!("group_messages_reach_every_client_in_one_order");
    const PER_CLIENT: usize = 6;
    let cluster = Cluster::new(15, 3).await;
    cluster.start(&[1, 2, 3]).await;
    cluster.wait_agreed(&[1, 2, 3], &[1, 2, 3]).await;

    // On node 2 the client uses a channel; it must see what bus clients
    // see.
    let mut clients = Vec::new();
    for (node, via) in [(1, Via::Bus), (2, Via::Channel), (3, Via::Bus)] {
        clients.push(Client::join(&cluster, node, "g", via).await);
    }
    // Each client learns its own (node, client) from the group membership
    // once all three joins are ordered.
    let mut ids = Vec::new();
    for c in &mut clients {
        let members = c
            .wait_group("g", "with a member on every node", |members, _| {
                members.iter().map(|m| m.0).collect::<BTreeSet<_>>() == BTreeSet::from([1, 2, 3])
            })
            .await;
        assert_eq!(members.len(), 3, "one client per node: {members:?}");
        let me = members
            .iter()
            .copied()
            .find(|m| m.0 == c.node)
            .expect("own member");
        ids.push(me);
    }

    // Every client sends at the same time: node 3 in one batch.
    let send_all = async |c: &Client| {
        let texts: Vec<String> = (0..PER_CLIENT)
            .map(|i| format!("from node {} #{i}", c.node))
            .collect();
        if c.node == 3 {
            let payloads: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
            c.send_batch("g", &payloads).await;
        } else {
            for t in &texts {
                c.send("g", t.as_bytes()).await;
            }
        }
    };
    tokio::join!(
        send_all(&clients[0]),
        send_all(&clients[1]),
        send_all(&clients[2])
    );

    let total = PER_CLIENT * clients.len();
    let mut orders = Vec::new();
    for c in &mut clients {
        orders.push(c.receive("g", total).await);
    }
    for (c, order) in clients.iter().zip(&orders) {
        assert_eq!(
            order,
            &orders[0],
            "the client on node {} delivered another order than the one on node 1:\n  node {}: {}\n  node 1: {}",
            c.node,
            c.node,
            describe(order),
            describe(&orders[0])
        );
    }
    // All messages, each once, each from its sender, FIFO per sender.
    let order = &orders[0];
    for (sender, &(node, client)) in clients.iter().zip(&ids) {
        let from: Vec<String> = order
            .iter()
            .filter(|m| (m.0, m.1) == (node, client))
            .map(|m| String::from_utf8_lossy(&m.2).into_owned())
            .collect();
        let expected: Vec<String> = (0..PER_CLIENT)
            .map(|i| format!("from node {} #{i}", sender.node))
            .collect();
        assert_eq!(from, expected, "messages of client {node}/{client}");
    }

    // A client leaving the bus leaves the group, and so does one that
    // closes its channel.
    for (gone, gone_id) in [
        (clients.pop().expect("client 3"), ids[2]),
        (clients.pop().expect("client 2"), ids[1]),
    ] {
        assert_eq!(
            gone.via,
            if gone.node == 3 {
                Via::Bus
            } else {
                Via::Channel
            }
        );
        drop(gone);
        for c in &mut clients {
            c.wait_group(
                "g",
                &format!("with {gone_id:?} in `left`"),
                |members, left| left.contains(&gone_id) && !members.contains(&gone_id),
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_introspection_matches_the_contract() {
    require_dbus!("live_introspection_matches_the_contract");
    let cluster = Cluster::new(17, 1).await;
    cluster.start(&[1]).await;
    let proxy = zbus::fdo::IntrospectableProxy::builder(cluster.conn(1))
        .destination(NAME)
        .path(PATH)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .expect("Introspectable proxy");
    let live = proxy.introspect().await.expect("Introspect");
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../dbus-interfaces/org.vigil.membership1.xml");
    let contract = std::fs::read_to_string(&path).expect("read the contract");
    if live != contract {
        let first = live
            .lines()
            .zip(contract.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| live.lines().count().min(contract.lines().count()));
        panic!(
            "the daemon's object on the bus differs from {} from line {}:\n  served:   {:?}\n  contract: {:?}",
            path.display(),
            first + 1,
            live.lines().nth(first).unwrap_or("<end>"),
            contract.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

// ---------------------------------------------------------------------------
// Mistakes a user makes, and what the daemon says about them.

/// A one-node configuration in a new temporary directory.
fn one_node_config(text_after_cluster: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("cluster.toml");
    std::fs::write(
        &path,
        format!(
            "[cluster]\nname = \"e\"\nport = 15405\n{text_after_cluster}\n\
             [[node]]\nid = 1\nname = \"e1\"\naddresses = [\"127.0.16.1\"]\n"
        ),
    )
    .expect("write the configuration");
    (dir, path)
}

fn daemon(
    config: &std::path::Path,
    key: &std::path::Path,
    extra: &[&str],
) -> (i32, String, String) {
    let mut cmd = Command::new(DAEMON);
    cmd.arg("--config")
        .arg(config)
        .arg("--key")
        .arg(key)
        .args(["--node", "1"])
        .args(extra)
        .env("VIGIL_LOG_STDERR", "1")
        .env_remove("VIGIL_BUS");
    let out = run_with_deadline(cmd);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_key_file_is_named_with_how_to_make_one() {
    let (dir, config) = one_node_config("");
    let key = dir.path().join("no-such-authkey");
    let (code, _, stderr) = daemon(&config, &key, &["--bus", "unix:path=/nonexistent"]);
    assert_ne!(code, 0, "started without a key; stderr: {stderr}");
    assert!(
        stderr.contains(&key.display().to_string()),
        "stderr does not name {}: {stderr}",
        key.display()
    );
    assert!(
        stderr.contains("vigil cluster keygen"),
        "stderr does not say how to make a key: {stderr}"
    );
}

#[test]
fn a_key_readable_by_others_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, config) = one_node_config("");
    let key = dir.path().join("authkey");
    std::fs::write(&key, common::random_key()).expect("write key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, _, stderr) = daemon(&config, &key, &["--check"]);
    assert_ne!(code, 0, "accepted a world-readable key; stderr: {stderr}");
    assert!(
        stderr.contains(&format!("chmod 0400 {}", key.display())),
        "stderr does not give the chmod: {stderr}"
    );
}

#[test]
fn configuration_mistakes_are_reported_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let key = dir.path().join("authkey");
    common::write_key(&key, &common::random_key());

    let syntax = dir.path().join("syntax.toml");
    std::fs::write(&syntax, "[cluster\nname = \"e\"\n").expect("write");
    let (code, _, stderr) = daemon(&syntax, &key, &["--check"]);
    assert_ne!(code, 0, "a syntax error was accepted; stderr: {stderr}");
    let at = format!("{}:1:", syntax.display());
    assert!(
        stderr.contains(&at) && has_line_col(&stderr, &syntax.display().to_string()),
        "stderr has no {at}COL: {stderr}"
    );

    let (_d, unknown) = one_node_config("prot = 5405");
    let (code, _, stderr) = daemon(&unknown, &key, &["--check"]);
    assert_ne!(code, 0, "an unknown key was accepted; stderr: {stderr}");
    let at = format!("{}:4:1:", unknown.display());
    assert!(stderr.contains(&at), "stderr has no {at}: {stderr}");
    assert!(
        stderr.contains("prot"),
        "stderr does not name the key: {stderr}"
    );
}

/// Whether `text` contains `FILE:LINE:COL` for `file`.
fn has_line_col(text: &str, file: &str) -> bool {
    text.match_indices(&format!("{file}:")).any(|(i, m)| {
        let rest = &text[i + m.len()..];
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().unwrap_or("");
        let col = parts.next().unwrap_or("");
        parts.next().is_some()
            && !line.is_empty()
            && line.bytes().all(|b| b.is_ascii_digit())
            && !col.is_empty()
            && col.bytes().all(|b| b.is_ascii_digit())
    })
}

#[test]
fn check_accepts_a_good_configuration_and_names_the_node() {
    let (dir, config) = one_node_config("");
    let key = dir.path().join("authkey");
    common::write_key(&key, &common::random_key());
    let (code, stdout, stderr) = daemon(&config, &key, &["--check"]);
    assert_eq!(code, 0, "--check failed: {stderr}");
    assert!(
        stdout.contains("node 1 (e1)"),
        "--check does not name the node: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_for_the_same_node_is_refused() {
    require_dbus!("a_second_daemon_for_the_same_node_is_refused");
    let cluster = Cluster::new(16, 2).await;
    cluster.start(&[1]).await;

    // Exactly the same command again: refused, and the first daemon goes on.
    let out = run_with_deadline(cluster.command(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a second daemon started; stderr: {stderr}"
    );
    cluster.assert_running(1);

    // The same node on the same bus with a configuration that differs in
    // the port (an edited copy): the bus name is what is taken.
    let text = std::fs::read_to_string(&cluster.config).expect("read the configuration");
    let port = std::net::UdpSocket::bind("127.0.16.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let edited: String = text
        .lines()
        .map(|l| {
            if l.starts_with("port = ") {
                format!("port = {port}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let copy = cluster.config.with_file_name("copy.toml");
    std::fs::write(&copy, edited).expect("write the edited configuration");
    let out = run_with_deadline(cluster.command_with_config(1, &copy));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a second daemon started; stderr: {stderr}"
    );
    assert!(
        stderr.contains(NAME) && stderr.contains("already running"),
        "stderr does not say that {NAME} is taken: {stderr}"
    );

    cluster.assert_running(1);
    let id = cluster
        .manager(1)
        .await
        .local_node_id()
        .await
        .expect("LocalNodeId");
    assert_eq!(id, 1, "the first daemon no longer answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_started_the_same_way_says_it_is_already_running() {
    require_dbus!("a_second_daemon_started_the_same_way_says_it_is_already_running");
    let cluster = Cluster::new(18, 2).await;
    cluster.start(&[1]).await;
    let out = run_with_deadline(cluster.command(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a second daemon started; stderr: {stderr}"
    );
    assert!(
        stderr.contains(NAME) && stderr.contains("already running"),
        "stderr does not say the daemon is already running: {stderr}"
    );
    cluster.assert_running(1);
}
