//! `vigil status`: the cluster as this node sees it — membership and
//! quorum, the DC, and every node and resource as the CIB's status says
//! (crm_mon's first screen), with the fencing history's last entries.

use std::fmt::Write as _;
use std::time::SystemTime;

use anyhow::Context;
use vigil_cib::xml::Document;

pub fn run(bus: Option<String>, watch: bool) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let (conn, where_) = crate::bus::connect(bus.as_deref()).await?;
        if !watch {
            print!("{}", status(&conn, &where_).await?);
            return Ok(());
        }
        follow(&conn, &where_).await
    })
}

/// `--watch`: the status again at every change of the CIB (its status
/// section follows every operation, membership change and fencing), and
/// at least every few seconds, until interrupted.
async fn follow(conn: &zbus::Connection, where_: &str) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let cib = vigil_dbus::cib::ManagerProxy::new(conn).await?;
    let mut changes = cib.receive_changed().await?;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        let text = match status(conn, where_).await {
            Ok(t) => t,
            Err(e) => format!("{e:#}\n"),
        };
        if tty {
            // Clear the screen and go home, as watch(1) does.
            print!("\x1b[2J\x1b[H");
        } else {
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

async fn status(conn: &zbus::Connection, where_: &str) -> anyhow::Result<String> {
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
    let quorum = match vigil_dbus::membership::QuorumProxy::new(&conn).await {
        Ok(q) => match q.quorate().await {
            Ok(true) => "partition with quorum".to_string(),
            Ok(false) => "partition WITHOUT quorum".to_string(),
            Err(_) => "quorum unknown (is vigil-membershipd running?)".to_string(),
        },
        Err(_) => "quorum unknown".to_string(),
    };
    let _ = writeln!(out, "Cluster Summary:");
    let _ = writeln!(out, "  * Cluster: {name}");
    let _ = writeln!(
        out,
        "  * Current DC: {} - {quorum}",
        dc.as_deref().unwrap_or("NONE")
    );
    let _ = writeln!(
        out,
        "  * CIB version: {}.{}.{}",
        doc.root.attr("admin_epoch").unwrap_or("0"),
        doc.root.attr("epoch").unwrap_or("0"),
        doc.root.attr("num_updates").unwrap_or("0")
    );
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let text = std::panic::catch_unwind(|| {
        vigil_scheduler::Scheduler::run(&doc, &vigil_scheduler::Options { now: Some(now) })
            .cluster_status(false)
    })
    .map_err(|_| anyhow::anyhow!("cannot render the status of this CIB"))?;
    let _ = writeln!(out, "\n{}", text.trim_end());
    if let Ok(f) = vigil_dbus::fencing::ManagerProxy::new(&conn).await
        && let Ok(h) = f.history("").await
        && !h.is_empty()
    {
        let _ = writeln!(out, "\nFencing History:");
        for e in h.iter().rev().take(5) {
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
