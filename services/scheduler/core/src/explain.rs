//! Why a resource runs where it runs, or is stopped, as data: where each
//! of its primitives is, what the cluster is about to do with them, their
//! final scores per node, and the configuration that shaped those (meta
//! attributes, constraints, defaults, the moves and bans operators left).
//! `vigil why`, the controller's `Explain` method and front-ends render
//! it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use vigil_cib::xml::Document;

use crate::{Options, Scheduler};

/// One primitive of the resource explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub id: String,
    /// Its state as the status shows it (`Started n2`, `Stopped
    /// (disabled)`), or `not known to the cluster yet`.
    pub state: String,
    /// The final allocation score per node, highest first (ties by name).
    pub scores: Vec<(String, String)>,
}

/// A piece of configuration that shapes the placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// `meta`, `location`, `move-ban`, `colocation`, `order`, `defaults`
    /// or the constraint's element name.
    pub kind: String,
    /// The element's id (empty for a meta attribute).
    pub id: String,
    /// In words.
    pub text: String,
}

/// The whole explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub resource: String,
    pub placements: Vec<Placement>,
    /// The lines of the transition summary about its primitives.
    pub about_to: Vec<String>,
    pub reasons: Vec<Reason>,
}

fn score_value(s: &str) -> i64 {
    match s {
        "INFINITY" | "+INFINITY" => 1_000_000,
        "-INFINITY" => -1_000_000,
        _ => s.parse().unwrap_or(0),
    }
}

/// Explains `resource` in the CIB `doc` at `now` (seconds since the
/// epoch). Errors name the problem (an unknown resource, a CIB the
/// scheduler cannot read).
pub fn explain(doc: &Document, now: i64, resource: &str) -> Result<Explanation, String> {
    let conf = doc
        .root
        .child("configuration")
        .ok_or("the CIB has no configuration")?;
    let resources = conf.child("resources");
    let Some(el) = resources.and_then(|r| r.descendants().find(|e| e.attr("id") == Some(resource)))
    else {
        let ids: Vec<&str> = resources
            .into_iter()
            .flat_map(|r| r.descendants())
            .filter(|e| {
                matches!(
                    e.name.as_str(),
                    "primitive" | "group" | "clone" | "master" | "bundle"
                )
            })
            .filter_map(|e| e.attr("id"))
            .collect();
        return Err(format!(
            "no resource {resource:?} (resources: {})",
            ids.join(", ")
        ));
    };
    let primitives: Vec<String> = if el.name == "primitive" {
        vec![resource.to_string()]
    } else {
        el.descendants()
            .filter(|e| e.name == "primitive")
            .filter_map(|e| e.attr("id").map(str::to_string))
            .collect()
    };
    let (status, scores, summary) = std::panic::catch_unwind(|| {
        let s = Scheduler::run(doc, &Options { now: Some(now) });
        (
            s.cluster_status(false),
            s.score_lines(),
            s.transition_summary(),
        )
    })
    .map_err(|_| "the policy engine cannot read this CIB".to_string())?;
    let mut placements = Vec::new();
    for p in &primitives {
        let state = status
            .lines()
            .map(str::trim_start)
            .find(|l| l.starts_with(&format!("* {p}\t")))
            .and_then(|l| l.split(":\t").nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "not known to the cluster yet".into());
        // The last line per node is the one that decided.
        let mut last: BTreeMap<String, String> = BTreeMap::new();
        let marker = format!(": {p} allocation score on ");
        for l in &scores {
            if let Some((_, on)) = l.split_once(&marker)
                && let Some((node, score)) = on.split_once(": ")
            {
                last.insert(node.to_string(), score.to_string());
            }
        }
        let mut by: Vec<(String, String)> = last.into_iter().collect();
        by.sort_by_key(|(_, s)| std::cmp::Reverse(score_value(s)));
        placements.push(Placement {
            id: p.clone(),
            state,
            scores: by,
        });
    }
    let about_to = summary
        .iter()
        .filter(|l| {
            primitives
                .iter()
                .any(|p| l.split_whitespace().any(|w| w == p))
        })
        .map(|l| l.trim().trim_start_matches("* ").to_string())
        .collect();
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
                reasons.push(Reason {
                    kind: "meta".into(),
                    id: String::new(),
                    text: format!("{n}={v} on {resource}"),
                });
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
            let id = a("id").to_string();
            let node_or_rule = if e.attr("node").is_some() {
                format!("on {} {}", a("node"), a("score"))
            } else {
                "by a rule".to_string()
            };
            let (kind, text) = match e.name.as_str() {
                "rsc_location" if id.starts_with("cli-") => (
                    "move-ban",
                    format!(
                        "{id} ({} {node_or_rule}) — left by vigil resource move/ban; `vigil resource clear {}` removes it",
                        a("rsc"),
                        a("rsc")
                    ),
                ),
                "rsc_location" => (
                    "location",
                    format!("location {id}: {} {node_or_rule}", a("rsc")),
                ),
                "rsc_colocation" => (
                    "colocation",
                    format!(
                        "colocation {id}: {} with {} {}",
                        a("rsc"),
                        a("with-rsc"),
                        a("score")
                    ),
                ),
                "rsc_order" => (
                    "order",
                    format!("order {id}: {} then {}", a("first"), a("then")),
                ),
                other => (other, format!("{other} {id}")),
            };
            reasons.push(Reason {
                kind: kind.into(),
                id,
                text,
            });
        }
    }
    if let Some(d) = conf.child("rsc_defaults") {
        for nv in d.descendants().filter(|e| e.name == "nvpair") {
            if nv.attr("name") == Some("resource-stickiness") {
                reasons.push(Reason {
                    kind: "defaults".into(),
                    id: nv.attr("id").unwrap_or_default().to_string(),
                    text: format!(
                        "resource-stickiness={} for every resource (it stays where it runs)",
                        nv.attr("value").unwrap_or("")
                    ),
                });
            }
        }
    }
    Ok(Explanation {
        resource: resource.to_string(),
        placements,
        about_to,
        reasons,
    })
}

impl Explanation {
    /// In plain words, as `vigil why` prints it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for p in &self.placements {
            let _ = writeln!(out, "{}: {}", p.id, p.state);
        }
        if !self.about_to.is_empty() {
            let _ = writeln!(out, "\nThe cluster is about to:");
            for l in &self.about_to {
                let _ = writeln!(out, "  {l}");
            }
        }
        for p in &self.placements {
            if !p.scores.is_empty() {
                let _ = writeln!(
                    out,
                    "\nScores of {} (the highest wins; -INFINITY means never):\n  {}",
                    p.id,
                    p.scores
                        .iter()
                        .map(|(n, s)| format!("{n} {s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        if !self.reasons.is_empty() {
            let _ = writeln!(out, "\nWhat shapes it:");
            for r in &self.reasons {
                let _ = writeln!(out, "  {}", r.text);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CIB: &str = r#"<cib crm_feature_set="3.20.5" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0" have-quorum="1" dc-uuid="1">
  <configuration>
    <crm_config><cluster_property_set id="o"><nvpair id="o1" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
    <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
    <resources>
      <group id="web">
        <primitive id="ip" class="ocf" provider="heartbeat" type="Dummy"/>
        <primitive id="server" class="ocf" provider="heartbeat" type="Dummy"/>
      </group>
      <primitive id="db" class="ocf" provider="heartbeat" type="Dummy">
        <meta_attributes id="db-m"><nvpair id="db-t" name="target-role" value="Stopped"/></meta_attributes>
      </primitive>
    </resources>
    <constraints>
      <rsc_location id="cli-prefer-web" rsc="web" node="n2" score="INFINITY"/>
      <rsc_colocation id="db-apart" rsc="db" with-rsc="web" score="-INFINITY"/>
    </constraints>
  </configuration>
  <status>
    <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"/>
    <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"/>
  </status>
</cib>"#;

    #[test]
    fn a_moved_group_and_a_disabled_primitive() {
        let doc = Document::parse(CIB).unwrap();
        let e = explain(&doc, 1_700_000_000, "web").unwrap();
        assert_eq!(
            e.placements
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>(),
            ["ip", "server"]
        );
        assert_eq!(e.placements[0].scores[0].0, "n2", "{e:?}");
        assert!(
            e.about_to
                .iter()
                .any(|l| l.contains("Start") && l.contains("ip")),
            "{e:?}"
        );
        let kinds: Vec<&str> = e.reasons.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["move-ban", "colocation"]);
        assert!(e.to_text().contains("vigil resource clear web"));
        let d = explain(&doc, 1_700_000_000, "db").unwrap();
        assert!(
            d.reasons
                .iter()
                .any(|r| r.text == "target-role=Stopped on db"),
            "{d:?}"
        );
        assert!(d.to_text().starts_with("db: "), "{}", d.to_text());
        let err = explain(&doc, 0, "nope").unwrap_err();
        assert!(
            err.contains("no resource \"nope\"") && err.contains("web, ip"),
            "{err}"
        );
    }
}
