//! `vigil resource create|delete|show` and `vigil constraint
//! location|colocation|order add`, `vigil constraint remove|list`: the
//! configuration, as `pcs resource create` and `pcs constraint` change it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vigil_cib::xml::{Document, Element};
use vigil_dbus::cib::ManagerProxy;

/// What to change.
#[derive(Debug, Clone)]
pub enum Action {
    Create {
        id: String,
        agent: String,
        params: Vec<String>,
        meta: Vec<String>,
        group: Option<String>,
        monitor: String,
        force: bool,
    },
    Delete {
        id: String,
    },
    Show {
        id: Option<String>,
    },
    Location {
        resource: String,
        node: String,
        score: String,
    },
    Colocation {
        resource: String,
        with: String,
        score: String,
    },
    Order {
        first: String,
        then: String,
        kind: String,
    },
    Remove {
        id: String,
    },
    List,
}

pub fn run(bus: Option<String>, action: Action) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    print!("{}", rt.block_on(change(bus, action))?);
    Ok(())
}

fn pairs(what: &str, items: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|i| {
            let (k, v) = i
                .split_once('=')
                .with_context(|| format!("{what} {i:?} is not NAME=VALUE"))?;
            if k.is_empty() {
                bail!("{what} {i:?} has no name");
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

fn nvset(kind: &str, owner: &str, values: &[(String, String)]) -> Element {
    let mut set = Element::new(kind);
    set.set_attr("id", format!("{owner}-{kind}"));
    for (k, v) in values {
        let mut nv = Element::new("nvpair");
        nv.set_attr("id", format!("{owner}-{kind}-{k}"));
        nv.set_attr("name", k.clone());
        nv.set_attr("value", v.clone());
        set.push(nv);
    }
    set
}

/// The ids of resources (of every kind) in a configuration.
fn resource_ids(conf: &Document) -> Vec<String> {
    conf.root
        .child("resources")
        .map(|r| {
            r.descendants()
                .filter(|e| {
                    matches!(
                        e.name.as_str(),
                        "primitive" | "group" | "clone" | "master" | "bundle"
                    )
                })
                .filter_map(|e| e.attr("id").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn require_resource(conf: &Document, id: &str) -> anyhow::Result<()> {
    let ids = resource_ids(conf);
    if ids.iter().any(|r| r == id) {
        Ok(())
    } else {
        bail!("no resource {id:?} (resources: {})", ids.join(", "))
    }
}

/// Whether a resource still runs somewhere, by the scheduler's reading of
/// the status.
fn active(cib: &Document, id: &str) -> bool {
    let status = std::panic::catch_unwind(|| {
        vigil_scheduler::Scheduler::run(cib, &vigil_scheduler::Options { now: Some(0) })
            .cluster_status(false)
    })
    .unwrap_or_default();
    status.lines().any(|l| {
        let t = l.trim_start();
        (t.starts_with(&format!("* {id}\t")) || t.starts_with(&format!("* {id} ")))
            && (t.contains("Started")
                || t.contains("Promoted")
                || t.contains("Unpromoted")
                || t.contains("FAILED"))
    })
}

async fn change(bus: Option<String>, action: Action) -> anyhow::Result<String> {
    let (conn, where_) = crate::bus::connect(bus.as_deref()).await?;
    crate::bus::require(&conn, &where_, vigil_dbus::cib::NAME, "vigil-cibd").await?;
    let cib = ManagerProxy::new(&conn).await?;
    let conf = Document::parse(
        &cib.query("", "configuration")
            .await
            .map_err(crate::bus::message)?,
    )
    .context("the CIB's configuration does not parse")?;
    let mut out = String::new();
    match action {
        Action::Create {
            id,
            agent,
            params,
            meta,
            group,
            monitor,
            force,
        } => {
            let a = vigil_executor::AgentRef::parse(&agent)?;
            let params = pairs("parameter", &params)?;
            let meta = pairs("meta-attribute", &meta)?;
            if resource_ids(&conf).contains(&id) {
                bail!("a resource {id:?} exists already (`vigil resource show {id}`)");
            }
            vigil_executor::metadata::duration_ms(&monitor)
                .with_context(|| format!("--monitor {monitor:?} is not a duration (e.g. 10s)"))?;
            // The agent's own view of the parameters, through this node's
            // executor when it runs.
            if !force && let Ok(x) = vigil_dbus::executor::ManagerProxy::new(&conn).await {
                let p: HashMap<&str, &str> = params
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                match x.validate(&id, &agent, p).await {
                    Ok((rc, reason, problems)) => {
                        let errors: Vec<String> = problems
                            .iter()
                            .filter(|(_, sev, _)| sev == "error")
                            .map(|(_, _, m)| m.clone())
                            .collect();
                        for (_, sev, m) in problems.iter().filter(|(_, s, _)| s != "error") {
                            let _ = writeln!(out, "{sev}: {m}");
                        }
                        if !errors.is_empty() || rc != 0 {
                            let mut why = errors.join("; ");
                            if rc != 0 {
                                if !why.is_empty() {
                                    why.push_str("; ");
                                }
                                why.push_str(&format!(
                                    "the agent's validate-all says: {}",
                                    if reason.is_empty() {
                                        format!("rc={rc}")
                                    } else {
                                        reason
                                    }
                                ));
                            }
                            bail!("{id} not created: {why} (--force creates it anyway)");
                        }
                    }
                    Err(e) => {
                        let m = crate::bus::message(e).to_string();
                        if m.contains("has no metadata") || m.contains("unknown agent class") {
                            bail!(
                                "{id} not created: {m} (is the agent installed on this node? --force creates it anyway)"
                            );
                        }
                    }
                }
            }
            let mut p = Element::new("primitive");
            p.set_attr("id", id.clone());
            p.set_attr("class", a.class.as_str());
            if let Some(prov) = &a.provider {
                p.set_attr("provider", prov.clone());
            }
            p.set_attr("type", a.kind.clone());
            if !params.is_empty() {
                p.push(nvset("instance_attributes", &id, &params));
            }
            if !meta.is_empty() {
                p.push(nvset("meta_attributes", &id, &meta));
            }
            let mut ops = Element::new("operations");
            let mut op = Element::new("op");
            op.set_attr("id", format!("{id}-monitor-interval-{monitor}"));
            op.set_attr("name", "monitor");
            op.set_attr("interval", monitor.clone());
            ops.push(op);
            p.push(ops);
            match &group {
                Some(g) => {
                    let mut ge = Element::new("group");
                    ge.set_attr("id", g.clone());
                    ge.push(p);
                    cib.modify("resources", &ge.to_xml(), true)
                        .await
                        .map_err(crate::bus::message)?;
                    let _ = writeln!(out, "created {id} ({agent}) in group {g}");
                }
                None => {
                    cib.create("resources", &p.to_xml())
                        .await
                        .map_err(crate::bus::message)?;
                    let _ = writeln!(out, "created {id} ({agent})");
                }
            }
        }
        Action::Delete { id } => {
            require_resource(&conf, &id)?;
            // Stopped first, as Pacemaker's tools do: deleting a running
            // resource would leave it running unmanaged.
            let kind = conf
                .root
                .descendants()
                .find(|e| e.attr("id") == Some(id.as_str()))
                .map(|e| e.name.clone())
                .unwrap_or_else(|| "primitive".into());
            let xml = format!(
                r#"<{kind} id="{id}"><meta_attributes id="{id}-meta_attributes"><nvpair id="{id}-meta_attributes-target-role" name="target-role" value="Stopped"/></meta_attributes></{kind}>"#
            );
            cib.modify("resources", &xml, false)
                .await
                .map_err(crate::bus::message)?;
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let whole =
                    Document::parse(&cib.query("", "").await.map_err(crate::bus::message)?)?;
                if !active(&whole, &id) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("{id} did not stop within 2 minutes; it stays configured, disabled");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            for xpath in [
                format!("//rsc_location[@rsc='{id}']"),
                format!("//rsc_colocation[@rsc='{id}' or @with-rsc='{id}']"),
                format!("//rsc_order[@first='{id}' or @then='{id}']"),
                format!("//resources//{kind}[@id='{id}']"),
            ] {
                let _ = cib.delete_xpath(&xpath, true).await;
            }
            let _ = writeln!(
                out,
                "deleted {id} (stopped first; its constraints went with it)"
            );
        }
        Action::Show { id } => match id {
            Some(id) => {
                require_resource(&conf, &id)?;
                let el = conf
                    .root
                    .descendants()
                    .find(|e| e.attr("id") == Some(id.as_str()))
                    .context("the resource vanished")?;
                let _ = writeln!(out, "{}", el.to_xml());
            }
            None => {
                for r in resource_ids(&conf) {
                    let _ = writeln!(out, "{r}");
                }
            }
        },
        Action::Location {
            resource,
            node,
            score,
        } => {
            require_resource(&conf, &resource)?;
            vigil_types::Score::parse_with_health(&score, &Default::default())
                .map_err(|e| anyhow::anyhow!("{score:?} is not a score: {}", e.0))?;
            let id = format!(
                "location-{resource}-{node}-{}",
                score.replace(['+', '-'], "").to_ascii_lowercase()
            );
            let xml = format!(
                r#"<rsc_location id="{id}" rsc="{resource}" node="{node}" score="{score}"/>"#
            );
            cib.create("constraints", &xml)
                .await
                .map_err(crate::bus::message)?;
            let _ = writeln!(out, "added {id}");
        }
        Action::Colocation {
            resource,
            with,
            score,
        } => {
            require_resource(&conf, &resource)?;
            require_resource(&conf, &with)?;
            vigil_types::Score::parse_with_health(&score, &Default::default())
                .map_err(|e| anyhow::anyhow!("{score:?} is not a score: {}", e.0))?;
            let id = format!("colocation-{resource}-{with}");
            let xml = format!(
                r#"<rsc_colocation id="{id}" rsc="{resource}" with-rsc="{with}" score="{score}"/>"#
            );
            cib.create("constraints", &xml)
                .await
                .map_err(crate::bus::message)?;
            let _ = writeln!(out, "added {id}");
        }
        Action::Order { first, then, kind } => {
            require_resource(&conf, &first)?;
            require_resource(&conf, &then)?;
            if !matches!(kind.as_str(), "Mandatory" | "Optional" | "Serialize") {
                bail!("--kind {kind:?} is not one of Mandatory, Optional, Serialize");
            }
            let id = format!("order-{first}-{then}");
            let xml =
                format!(r#"<rsc_order id="{id}" first="{first}" then="{then}" kind="{kind}"/>"#);
            cib.create("constraints", &xml)
                .await
                .map_err(crate::bus::message)?;
            let _ = writeln!(out, "added {id}: {first} then {then}");
        }
        Action::Remove { id } => {
            let found = conf.root.child("constraints").and_then(|c| {
                c.elements()
                    .find(|e| e.attr("id") == Some(id.as_str()))
                    .map(|e| e.name.clone())
            });
            let Some(kind) = found else {
                bail!("no constraint {id:?} (`vigil constraint list` shows them)");
            };
            cib.delete_xpath(&format!("//constraints/{kind}[@id='{id}']"), true)
                .await
                .map_err(crate::bus::message)?;
            let _ = writeln!(out, "removed {id}");
        }
        Action::List => {
            let Some(c) = conf.root.child("constraints") else {
                return Ok("no constraints\n".into());
            };
            for e in c.elements() {
                let a = |k: &str| e.attr(k).unwrap_or("");
                let line = match e.name.as_str() {
                    "rsc_location" => format!(
                        "location {}: {} on {} ({})",
                        a("id"),
                        a("rsc"),
                        a("node"),
                        a("score")
                    ),
                    "rsc_colocation" => format!(
                        "colocation {}: {} with {} ({})",
                        a("id"),
                        a("rsc"),
                        a("with-rsc"),
                        a("score")
                    ),
                    "rsc_order" => format!(
                        "order {}: {} then {} ({})",
                        a("id"),
                        a("first"),
                        a("then"),
                        if a("kind").is_empty() {
                            "Mandatory"
                        } else {
                            a("kind")
                        }
                    ),
                    other => format!("{other} {}", a("id")),
                };
                let _ = writeln!(out, "{line}");
            }
            if out.is_empty() {
                out.push_str("no constraints\n");
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_pairs() {
        let p = pairs("parameter", &["ip=192.0.2.5".into()]).unwrap();
        let set = nvset("instance_attributes", "vip", &p);
        assert_eq!(
            set.to_xml(),
            r#"<instance_attributes id="vip-instance_attributes"><nvpair id="vip-instance_attributes-ip" name="ip" value="192.0.2.5"/></instance_attributes>"#
        );
        assert!(
            pairs("parameter", &["x".into()])
                .unwrap_err()
                .to_string()
                .contains("NAME=VALUE")
        );
    }
}
