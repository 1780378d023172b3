//! `vigil membership status`, `vigil quorum status` and `vigil quorum
//! expected-votes`: questions to the local `vigil-membershipd` over D-Bus.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use vigil_dbus::membership::{ManagerProxy, NAME, QuorumProxy};

/// What to ask.
#[derive(Debug, Clone, Copy)]
pub enum Query {
    Membership,
    Quorum,
    SetExpectedVotes(u32),
}

/// Connects to the bus and answers `query` on stdout.
pub fn run(bus: Option<String>, query: Query) -> anyhow::Result<()> {
    let rt = crate::bus::runtime()?;
    let out = rt.block_on(ask(bus, query))?;
    print!("{out}");
    Ok(())
}

async fn ask(bus: Option<String>, query: Query) -> anyhow::Result<String> {
    let (conn, where_) = crate::bus::connect(bus.as_deref()).await?;
    crate::bus::require(&conn, &where_, NAME, "vigil-membershipd").await?;
    match query {
        Query::Membership => membership(&conn).await,
        Query::Quorum => quorum(&conn).await,
        Query::SetExpectedVotes(votes) => {
            let q = QuorumProxy::new(&conn).await?;
            q.set_expected_votes(votes).await.map_err(|e| {
                anyhow::anyhow!("cannot set expected votes to {votes}: {}", why(&e))
            })?;
            Ok(format!(
                "expected votes set to {votes}; every node applies it in the same order\n"
            ))
        }
    }
}

/// The message of a D-Bus error without the error name in front.
fn why(e: &zbus::Error) -> String {
    let text = match e {
        zbus::Error::MethodError(_, Some(msg), _) => msg.clone(),
        other => other.to_string(),
    };
    match text.split_once(": ") {
        Some((name, rest)) if name.starts_with("org.freedesktop.DBus.Error.") => rest.to_string(),
        _ => text,
    }
}

async fn membership(conn: &zbus::Connection) -> anyhow::Result<String> {
    let m = ManagerProxy::new(conn).await?;
    let local = m.local_node_id().await?;
    let ring = m.ring_id().await?;
    let members = m.members().await?;
    let nodes = m.nodes().await?;
    let accepted = m.datagrams_accepted().await?;
    let dropped = m.datagrams_dropped().await?;
    let mut o = String::new();
    let _ = writeln!(o, "Cluster:      {}", m.cluster_name().await?);
    let local_name = nodes
        .iter()
        .find(|n| n.0 == local)
        .map(|n| n.1.as_str())
        .unwrap_or("?");
    let _ = writeln!(o, "Local node:   {local} ({local_name})");
    let _ = writeln!(
        o,
        "Ring id:      {}.{} (representative node {}, sequence {})",
        ring.1, ring.0, ring.1, ring.0
    );
    let _ = writeln!(
        o,
        "Members:      {} of {} configured node(s)",
        members.len(),
        nodes.len()
    );
    o.push('\n');
    o.push_str(&node_table(
        &["Node", "Name", "Address", "Status"],
        nodes.iter().map(|(id, name, addr, member)| {
            let mut status = if *member { "member" } else { "not in view" }.to_string();
            if *id == local {
                status.push_str(" (local)");
            }
            vec![id.to_string(), name.clone(), addr.clone(), status]
        }),
    ));
    o.push('\n');
    let total: u64 = dropped.values().sum();
    let reasons: Vec<String> = dropped
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{r}={n}"))
        .collect();
    let _ = write!(o, "Datagrams:    {accepted} accepted, {total} dropped");
    if !reasons.is_empty() {
        let _ = write!(o, " ({})", reasons.join(" "));
    }
    o.push('\n');
    if dropped.get("other_cluster").is_some_and(|n| *n > 0) {
        o.push_str(
            "              other_cluster: a node sends with another cluster name or key; \
             compare `vigil-membershipd --check` fingerprints\n",
        );
    }
    Ok(o)
}

async fn quorum(conn: &zbus::Connection) -> anyhow::Result<String> {
    let m = ManagerProxy::new(conn).await?;
    let q = QuorumProxy::new(conn).await?;
    let local = m.local_node_id().await?;
    let ring = m.ring_id().await?;
    let members = m.members().await?;
    let nodes = m.nodes().await?;
    let votes = q.node_votes().await?;
    let mut o = String::new();
    let _ = writeln!(o, "Quorum information");
    let _ = writeln!(o, "  Nodes:          {}", members.len());
    let _ = writeln!(o, "  Node id:        {local}");
    let _ = writeln!(o, "  Ring id:        {}.{}", ring.1, ring.0);
    let quorate = q.quorate().await?;
    let _ = writeln!(
        o,
        "  Quorate:        {}",
        if quorate { "yes" } else { "no" }
    );
    o.push('\n');
    let _ = writeln!(o, "Votes");
    let _ = writeln!(o, "  Expected votes: {}", q.expected_votes().await?);
    let _ = writeln!(o, "  Total votes:    {}", q.total_votes().await?);
    let _ = writeln!(o, "  Quorum:         {}", q.quorum().await?);
    let flags = q.flags().await?;
    let _ = writeln!(
        o,
        "  Flags:          {}",
        if flags.is_empty() { "-" } else { &flags }
    );
    o.push('\n');
    let names: BTreeMap<u32, &str> = nodes.iter().map(|n| (n.0, n.1.as_str())).collect();
    o.push_str(&node_table(
        &["Node", "Votes", "Name", "Status"],
        votes.iter().map(|(id, v)| {
            let mut status = if members.contains(id) {
                "member"
            } else {
                "not in view"
            }
            .to_string();
            if *id == local {
                status.push_str(" (local)");
            }
            vec![
                id.to_string(),
                v.to_string(),
                names.get(id).copied().unwrap_or("?").to_string(),
                status,
            ]
        }),
    ));
    Ok(o)
}

/// A table with a header; numeric columns (the first two) right-aligned.
fn node_table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let numeric = |i: usize| header[i] == "Node" || header[i] == "Votes";
    let mut o = String::new();
    let line = |cells: Vec<String>, o: &mut String| {
        let mut parts = Vec::new();
        for (i, c) in cells.iter().enumerate() {
            parts.push(if numeric(i) {
                format!("{c:>w$}", w = widths[i])
            } else {
                format!("{c:<w$}", w = widths[i])
            });
        }
        let _ = writeln!(o, "{}", parts.join("  ").trim_end());
    };
    line(header.iter().map(|h| (*h).to_string()).collect(), &mut o);
    for r in rows {
        line(r, &mut o);
    }
    o
}
