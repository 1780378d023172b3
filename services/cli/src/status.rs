//! `vigil status`: the cluster as this node sees it — membership and
//! quorum, the DC, and every node and resource as the CIB's status says
//! (crm_mon's first screen), with the fencing history's last entries.

use std::fmt::Write as _;
use std::time::SystemTime;

use anyhow::Context;
use vigil_cib::xml::Document;

pub fn run(bus: Option<String>, watch: bool, json: bool) -> anyhow::Result<()> {
    let rt = crate::bus::runtime()?;
    rt.block_on(async {
        let (conn, where_) = crate::bus::connect(bus.as_deref()).await?;
        if !watch {
            print!("{}", status(&conn, &where_, json).await?);
            return Ok(());
        }
        follow(&conn, &where_, json).await
    })
}

/// `--watch`: the status again at every change of the CIB (its status
/// section follows every operation, membership change and fencing), and
/// at least every few seconds, until interrupted.
async fn follow(conn: &zbus::Connection, where_: &str, json: bool) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let cib = vigil_dbus::cib::ManagerProxy::new(conn).await?;
    let mut changes = cib.receive_changed().await?;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        let text = match status(conn, where_, json).await {
            Ok(t) => t,
            Err(e) => format!("{e:#}\n"),
        };
        if tty && !json {
            // Clear the screen and go home, as watch(1) does.
            print!("\x1b[2J\x1b[H");
        } else if !json {
            println!("---");
        }
        print!("{text}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // The next change (or a quiet refresh), then what else came with it.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), changes.next()).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        while let Some(Some(_)) = futures_util::FutureExt::now_or_never(changes.next()) {}
    }
}

async fn status(conn: &zbus::Connection, where_: &str, json: bool) -> anyhow::Result<String> {
    let conn = conn.clone();
    let cib = vigil_dbus::cib::ManagerProxy::new(&conn).await?;
    let xml = cib.query("", "").await.map_err(|e| {
        anyhow::anyhow!("cannot read the CIB on {where_} ({e}); is vigil-cibd running?")
    })?;
    let doc = Document::parse(&xml).context("the CIB does not parse")?;
    let mut out = String::new();
    let name = doc
        .root
        .descendants()
        .find(|e| e.name == "nvpair" && e.attr("name") == Some("cluster-name"))
        .and_then(|e| e.attr("value"))
        .unwrap_or("(unnamed)")
        .to_string();
    let dc = doc.root.attr("dc-uuid").and_then(|id| {
        doc.root
            .descendants()
            .find(|e| e.name == "node" && e.attr("id") == Some(id))
            .and_then(|e| e.attr("uname"))
            .map(str::to_string)
    });
    let quorate: Option<bool> = match vigil_dbus::membership::QuorumProxy::new(&conn).await {
        Ok(q) => q.quorate().await.ok(),
        Err(_) => None,
    };
    let quorum = match quorate {
        Some(true) => "partition with quorum",
        Some(false) => "partition WITHOUT quorum",
        None => "quorum unknown (is vigil-membershipd running?)",
    };
    let history = match vigil_dbus::fencing::ManagerProxy::new(&conn).await {
        Ok(f) => f.history("").await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let version = format!(
        "{}.{}.{}",
        doc.root.attr("admin_epoch").unwrap_or("0"),
        doc.root.attr("epoch").unwrap_or("0"),
        doc.root.attr("num_updates").unwrap_or("0")
    );
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if json {
        let s = std::panic::catch_unwind(|| {
            vigil_scheduler::Scheduler::run(&doc, &vigil_scheduler::Options { now: Some(now) })
        })
        .map_err(|_| anyhow::anyhow!("cannot read the status of this CIB"))?;
        let v = to_json(&s, &name, dc.as_deref(), quorate, &version, &history);
        return Ok(format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let _ = writeln!(out, "Cluster Summary:");
    let _ = writeln!(out, "  * Cluster: {name}");
    let _ = writeln!(
        out,
        "  * Current DC: {} - {quorum}",
        dc.as_deref().unwrap_or("NONE")
    );
    let _ = writeln!(out, "  * CIB version: {version}");
    let (text, failed, counts) = std::panic::catch_unwind(|| {
        let s = vigil_scheduler::Scheduler::run(&doc, &vigil_scheduler::Options { now: Some(now) });
        (s.cluster_status(false), s.failed_actions(), s.fail_counts())
    })
    .map_err(|_| anyhow::anyhow!("cannot render the status of this CIB"))?;
    let _ = writeln!(out, "\n{}", text.trim_end());
    if !counts.is_empty() {
        let _ = writeln!(out, "\nFail Counts:");
        for c in &counts {
            let _ = writeln!(
                out,
                "  * {} on {}: {}{}",
                c.resource,
                c.node,
                if c.count >= 1_000_000 {
                    "INFINITY".to_string()
                } else {
                    c.count.to_string()
                },
                if c.threshold > 0 {
                    format!(" (leaves the node at {})", c.threshold)
                } else {
                    String::new()
                }
            );
        }
    }
    if !failed.is_empty() {
        use vigil_scheduler::failures::{rc_text, status_text};
        let _ = writeln!(out, "\nFailed Resource Actions:");
        for f in &failed {
            let _ = writeln!(
                out,
                "  * {} on {} '{}' ({}): call={}, status='{}'{}, last-rc-change='{}', queued={}ms, exec={}ms",
                f.operation_key,
                f.node,
                rc_text(f.rc),
                f.rc,
                f.call_id,
                status_text(f.status),
                if f.exit_reason.is_empty() {
                    String::new()
                } else {
                    format!(", exitreason='{}'", f.exit_reason)
                },
                date(f.last_rc_change),
                f.queue_ms,
                f.exec_ms
            );
        }
        let _ = writeln!(
            out,
            "  (`vigil resource cleanup RESOURCE` forgets them once the cause is fixed)"
        );
    }
    if !history.is_empty() {
        let _ = writeln!(out, "\nFencing History:");
        for e in history.iter().rev().take(5) {
            let _ = writeln!(
                out,
                "  * {} of {} {}{}",
                e.action,
                e.target,
                match e.outcome.as_str() {
                    "done" => format!("successful: executed by {}", e.executioner),
                    "confirmed" => "confirmed by hand".to_string(),
                    _ => format!("failed: {}", e.reason),
                },
                if e.client.is_empty() {
                    String::new()
                } else {
                    format!(" (asked by {} on {})", e.client, e.origin)
                }
            );
        }
    }
    Ok(out)
}

/// A time for people (UTC).
fn date(epoch: i64) -> String {
    if epoch <= 0 {
        return "unknown".into();
    }
    vigil_cib::time::DateTime::from_epoch_seconds(epoch).to_string_with_offset()
}

/// Where each resource is active (its nodes, empty when stopped), as
/// `vigil status` reads it: the scheduler's unpacking of the CIB's status
/// section at `now`. A group or clone is active where any of its members
/// is.
pub fn active_nodes(
    doc: &Document,
    now: i64,
) -> anyhow::Result<std::collections::BTreeMap<String, Vec<String>>> {
    let s = std::panic::catch_unwind(|| {
        vigil_scheduler::Scheduler::run(doc, &vigil_scheduler::Options { now: Some(now) })
    })
    .map_err(|_| anyhow::anyhow!("cannot read the status of this CIB"))?;
    Ok(s.resources
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                r.running_on
                    .iter()
                    .map(|n| s.nodes[*n].uname.clone())
                    .collect(),
            )
        })
        .collect())
}

/// The status as JSON. The shape is stable (its `version` changes if it
/// ever must; keys may be added):
///
/// ```text
/// { "version": 1,
///   "cluster": { "name", "dc" (null: none), "quorate" (null: unknown),
///                "cib_version" },
///   "nodes": [ { "name", "id", "online", "standby", "maintenance",
///                "unclean", "pending", "shutdown" } ],
///   "resources": [ { "id", "kind" (primitive|group|clone|bundle),
///                    "agent" (primitives, else null), "parent" (or null),
///                    "role" (Stopped|Started|Unpromoted|Promoted|Unknown),
///                    "nodes" (where it is active), "managed", "failed",
///                    "disabled" (target-role Stopped) } ],
///   "fencing": [ { "target", "action", "outcome" (done|failed|confirmed),
///                  "executioner", "origin", "client", "reason",
///                  "completed_at" (seconds since the epoch) } ],
///   "failed_actions": [ { "operation_key", "resource", "node", "rc",
///                         "rc_text", "status", "exit_reason", "call_id",
///                         "last_rc_change" (seconds since the epoch) } ],
///   "fail_counts": [ { "resource", "node", "count" (1000000: INFINITY),
///                      "last_failure", "migration_threshold" } ] }
/// ```
fn to_json(
    s: &vigil_scheduler::Scheduler,
    name: &str,
    dc: Option<&str>,
    quorate: Option<bool>,
    version: &str,
    history: &[vigil_dbus::fencing::HistoryEntry],
) -> serde_json::Value {
    use serde_json::json;
    use vigil_scheduler::model::Variant;
    let nodes: Vec<_> = s
        .nodes
        .iter()
        .map(|n| {
            json!({
                "name": n.uname, "id": n.id, "online": n.online, "standby": n.standby,
                "maintenance": n.maintenance, "unclean": n.unclean, "pending": n.pending,
                "shutdown": n.shutdown,
            })
        })
        .collect();
    let resources: Vec<_> = s
        .resources
        .iter()
        .map(|r| {
            let kind = match r.variant {
                Variant::Primitive => "primitive",
                Variant::Group => "group",
                Variant::Clone => "clone",
                Variant::Bundle => "bundle",
            };
            let agent = (r.variant == Variant::Primitive).then(|| match &r.provider {
                Some(p) => format!("{}:{p}:{}", r.class, r.agent),
                None => format!("{}:{}", r.class, r.agent),
            });
            json!({
                "id": r.id, "kind": kind, "agent": agent,
                "parent": r.parent.map(|p| s.resources[p].id.clone()),
                "role": r.orig_role.to_string(),
                "nodes": r.running_on.iter().map(|n| s.nodes[*n].uname.clone()).collect::<Vec<_>>(),
                "managed": r.flags.managed, "failed": r.flags.failed,
                "disabled": r.meta.get("target-role").is_some_and(|v| v.eq_ignore_ascii_case("stopped")),
            })
        })
        .collect();
    let fencing: Vec<_> = history
        .iter()
        .map(|e| {
            json!({
                "target": e.target, "action": e.action, "outcome": e.outcome,
                "executioner": e.executioner, "origin": e.origin, "client": e.client,
                "reason": e.reason, "completed_at": e.completed_at,
            })
        })
        .collect();
    let failed: Vec<_> = s
        .failed_actions()
        .into_iter()
        .map(|f| {
            json!({
                "operation_key": f.operation_key, "resource": f.resource, "node": f.node,
                "rc": f.rc, "rc_text": vigil_scheduler::failures::rc_text(f.rc),
                "status": vigil_scheduler::failures::status_text(f.status),
                "exit_reason": f.exit_reason, "call_id": f.call_id,
                "last_rc_change": f.last_rc_change,
            })
        })
        .collect();
    let counts: Vec<_> = s
        .fail_counts()
        .into_iter()
        .map(|c| {
            json!({
                "resource": c.resource, "node": c.node, "count": c.count,
                "last_failure": c.last_failure, "migration_threshold": c.threshold,
            })
        })
        .collect();
    json!({
        "version": 1,
        "cluster": { "name": name, "dc": dc, "quorate": quorate, "cib_version": version },
        "nodes": nodes,
        "resources": resources,
        "fencing": fencing,
        "failed_actions": failed,
        "fail_counts": counts,
    })
}
