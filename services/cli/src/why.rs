//! `vigil why RESOURCE`: in plain words, where a resource runs (or why it
//! is stopped), and the scores and constraints that decided it, from the
//! policy engine run on the live CIB.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use anyhow::{Context, bail};
use vigil_cib::xml::Document;

pub fn run(bus: Option<String>, resource: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let xml = rt.block_on(async {
        let (conn, where_) = crate::bus::connect(bus.as_deref()).await?;
        crate::bus::require(&conn, &where_, vigil_dbus::cib::NAME, "vigil-cibd").await?;
        let cib = vigil_dbus::cib::ManagerProxy::new(&conn).await?;
        cib.query("", "").await.map_err(crate::bus::message)
    })?;
    let doc = Document::parse(&xml).context("the CIB does not parse")?;
    print!("{}", explain(&doc, resource)?);
    Ok(())
}

/// The explanation for `resource` in this CIB.
pub fn explain(doc: &Document, resource: &str) -> anyhow::Result<String> {
    let conf = doc
        .root
        .child("configuration")
        .context("the CIB has no configuration")?;
    let el = conf
        .child("resources")
        .and_then(|r| r.descendants().find(|e| e.attr("id") == Some(resource)))
        .with_context(|| format!("no resource {resource:?}"))?;
    let primitives: Vec<String> = if el.name == "primitive" {
        vec![resource.to_string()]
    } else {
        el.descendants()
            .filter(|e| e.name == "primitive")
            .filter_map(|e| e.attr("id").map(str::to_string))
            .collect()
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (status, scores, summary) = std::panic::catch_unwind(|| {
        let s = vigil_scheduler::Scheduler::run(doc, &vigil_scheduler::Options { now: Some(now) });
        (
            s.cluster_status(false),
            s.score_lines(),
            s.transition_summary(),
        )
    })
    .map_err(|_| anyhow::anyhow!("the policy engine cannot read this CIB"))?;
    let mut out = String::new();
    // Where it is, as the status says.
    for p in &primitives {
        let line = status
            .lines()
            .map(str::trim_start)
            .find(|l| l.starts_with(&format!("* {p}\t")));
        let state = line
            .and_then(|l| l.split(":\t").nth(1))
            .map(str::trim)
            .unwrap_or("not known to the cluster yet");
        let _ = writeln!(out, "{p}: {state}");
    }
    // What is about to change.
    let pending: Vec<&String> = summary
        .iter()
        .filter(|l| {
            primitives
                .iter()
                .any(|p| l.split_whitespace().any(|w| w == p))
        })
        .collect();
    if !pending.is_empty() {
        let _ = writeln!(out, "\nThe cluster is about to:");
        for l in pending {
            let _ = writeln!(out, "  {}", l.trim().trim_start_matches("* "));
        }
    }
    // The final scores per node (the last line per resource and node is
    // the one that decided).
    for p in &primitives {
        let mut last: BTreeMap<String, String> = BTreeMap::new();
        let marker = format!(": {p} allocation score on ");
        for l in &scores {
            if let Some((_, on)) = l.split_once(&marker)
                && let Some((node, score)) = on.split_once(": ")
            {
                last.insert(node.to_string(), score.to_string());
            }
        }
        if !last.is_empty() {
            let mut by: Vec<(String, String)> = last.into_iter().collect();
            by.sort_by_key(|(_, s)| std::cmp::Reverse(score_value(s)));
            let _ = writeln!(
                out,
                "\nScores of {p} (the highest wins; -INFINITY means never):\n  {}",
                by.iter()
                    .map(|(n, s)| format!("{n} {s}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    // What shaped them.
    let mut reasons = Vec::new();
    let ids: Vec<&str> = std::iter::once(resource)
        .chain(primitives.iter().map(String::as_str))
        .collect();
    if let Some(meta) = el.child("meta_attributes") {
        for nv in meta.children_named("nvpair") {
            if let (Some(n), Some(v)) = (nv.attr("name"), nv.attr("value"))
                && matches!(
                    n,
                    "target-role" | "resource-stickiness" | "migration-threshold" | "is-managed"
                )
            {
                reasons.push(format!("{n}={v} on {resource}"));
            }
        }
    }
    if let Some(c) = conf.child("constraints") {
        for e in c.elements() {
            let a = |k: &str| e.attr(k).unwrap_or("");
            let mentions = ["rsc", "with-rsc", "first", "then"]
                .iter()
                .any(|k| ids.contains(&a(k)));
            if !mentions {
                continue;
            }
            reasons.push(match e.name.as_str() {
                "rsc_location" if a("rsc").starts_with("cli-") || a("id").starts_with("cli-") => format!(
                    "{} ({} on {} {}) — left by vigil resource move/ban; `vigil resource clear {}` removes it",
                    a("id"), a("rsc"), a("node"), a("score"), a("rsc")
                ),
                "rsc_location" => format!("location {}: {} on {} {}", a("id"), a("rsc"), a("node"), a("score")),
                "rsc_colocation" => format!("colocation {}: {} with {} {}", a("id"), a("rsc"), a("with-rsc"), a("score")),
                "rsc_order" => format!("order {}: {} then {}", a("id"), a("first"), a("then")),
                other => format!("{other} {}", a("id")),
            });
        }
    }
    if let Some(d) = conf.child("rsc_defaults") {
        for nv in d.descendants().filter(|e| e.name == "nvpair") {
            if nv.attr("name") == Some("resource-stickiness") {
                reasons.push(format!(
                    "resource-stickiness={} for every resource (it stays where it runs)",
                    nv.attr("value").unwrap_or("")
                ));
            }
        }
    }
    if !reasons.is_empty() {
        let _ = writeln!(out, "\nWhat shapes it:");
        for r in reasons {
            let _ = writeln!(out, "  {r}");
        }
    }
    if out.is_empty() {
        bail!("nothing is known about {resource}");
    }
    Ok(out)
}

fn score_value(s: &str) -> i64 {
    match s {
        "INFINITY" | "+INFINITY" => 1_000_000,
        "-INFINITY" => -1_000_000,
        _ => s.parse().unwrap_or(0),
    }
}
