//! `vigil node standby|unstandby|maintenance` and `vigil resource
//! enable|disable|move|ban|clear`: operator commands that are changes of
//! the CIB (the scheduler does the rest).

use anyhow::Context;
use vigil_cib::xml::Document;
use vigil_dbus::cib::ManagerProxy;

/// What to change.
#[derive(Debug, Clone)]
pub enum Action {
    NodeAttr {
        node: String,
        name: &'static str,
        value: &'static str,
    },
    TargetRole {
        resource: String,
        role: &'static str,
    },
    Move {
        resource: String,
        node: String,
        lifetime: Option<String>,
    },
    Ban {
        resource: String,
        node: String,
        lifetime: Option<String>,
    },
    Clear {
        resource: String,
    },
    Cleanup {
        resource: String,
        node: Option<String>,
    },
}

pub fn run(bus: Option<String>, action: Action) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    print!("{}", rt.block_on(change(bus, action))?);
    Ok(())
}

/// A CIB id made of other ids (XML ids allow letters, digits, `-_.`).
fn id_of(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The end of a move's or ban's lifetime, `lifetime` from `now` (seconds
/// since the epoch): an ISO 8601 duration (`PT10M`, `P1D`) or a time span
/// (`10min`, `90s`, `2h`). Returns the end as the CIB writes dates.
pub fn lifetime_end(lifetime: &str, now: i64) -> anyhow::Result<(String, i64)> {
    use vigil_cib::time::{DateTime, Duration, parse_ms};
    let bad = || {
        anyhow::anyhow!(
            "{lifetime:?} is not a lifetime: give an ISO 8601 duration (PT10M, P1D) \
             or a time span (90s, 10min, 2h)"
        )
    };
    let t = lifetime.trim();
    let start = DateTime::from_epoch_seconds(now);
    let end = if t.starts_with(['P', 'p']) {
        let d = Duration::parse(t).map_err(|_| bad())?;
        start.add_duration(&d)
    } else {
        let ms = parse_ms(t).map_err(|_| bad())?;
        DateTime::from_epoch_seconds(now + ms.div_euclid(1000))
    };
    let secs = end.to_epoch_seconds();
    if secs <= now {
        return Err(anyhow::anyhow!(
            "the lifetime {lifetime:?} ends at once: give a positive duration"
        ));
    }
    Ok((end.to_string_with_offset(), secs))
}

/// A location constraint for `resource` on `node` with `score`, for as
/// long as `end` (when given) has not passed.
fn cli_location(id: &str, resource: &str, node: &str, score: &str, end: Option<&str>) -> String {
    match end {
        None => format!(
            r#"<rsc_location id="{id}" rsc="{resource}" node="{node}" score="{score}" role="Started"/>"#
        ),
        Some(end) => format!(
            r##"<rsc_location id="{id}" rsc="{resource}" role="Started"><rule id="{id}-rule" score="{score}" boolean-op="and"><expression id="{id}-expr" attribute="#uname" operation="eq" value="{node}" type="string"/><date_expression id="{id}-lifetime" operation="lt" end="{end}"/></rule></rsc_location>"##
        ),
    }
}

fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn configuration(cib: &ManagerProxy<'_>) -> anyhow::Result<Document> {
    let xml = cib
        .query("", "configuration")
        .await
        .map_err(crate::bus::message)?;
    Document::parse(&xml).context("the CIB's configuration does not parse")
}

fn node_id(conf: &Document, node: &str) -> anyhow::Result<String> {
    let nodes: Vec<(String, String)> = conf
        .root
        .descendants()
        .filter(|e| e.name == "node")
        .filter_map(|e| Some((e.attr("uname")?.to_string(), e.attr("id")?.to_string())))
        .collect();
    nodes
        .iter()
        .find(|(u, _)| u == node)
        .map(|(_, id)| id.clone())
        .with_context(|| {
            format!(
                "no node {node:?} in the configuration (nodes: {})",
                nodes
                    .iter()
                    .map(|(u, _)| u.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// The element name of resource `id` (primitive, group, clone, bundle).
fn resource_kind(conf: &Document, id: &str) -> anyhow::Result<String> {
    let resources = conf
        .root
        .child("resources")
        .context("the configuration has no resources")?;
    resources
        .descendants()
        .find(|e| {
            matches!(
                e.name.as_str(),
                "primitive" | "group" | "clone" | "master" | "bundle"
            ) && e.attr("id") == Some(id)
        })
        .map(|e| e.name.clone())
        .with_context(|| {
            let ids: Vec<&str> = resources
                .descendants()
                .filter(|e| matches!(e.name.as_str(), "primitive" | "group" | "clone" | "bundle"))
                .filter_map(|e| e.attr("id"))
                .collect();
            format!("no resource {id:?} (resources: {})", ids.join(", "))
        })
}

async fn change(bus: Option<String>, action: Action) -> anyhow::Result<String> {
    let (conn, where_) = crate::bus::connect(bus.as_deref()).await?;
    if let Action::Cleanup { resource, node } = &action {
        crate::bus::require(
            &conn,
            &where_,
            vigil_dbus::controller::NAME,
            "vigil-controld",
        )
        .await?;
        let ctl = vigil_dbus::controller::ManagerProxy::new(&conn).await?;
        ctl.cleanup(resource, node.as_deref().unwrap_or(""))
            .await
            .map_err(crate::bus::message)?;
        return Ok(format!(
            "{resource}: history and failures forgotten{}; the cluster probes it afresh\n",
            node.as_deref()
                .map(|n| format!(" on {n}"))
                .unwrap_or_default()
        ));
    }
    crate::bus::require(&conn, &where_, vigil_dbus::cib::NAME, "vigil-cibd").await?;
    let cib = ManagerProxy::new(&conn).await?;
    let conf = configuration(&cib).await?;
    match action {
        Action::NodeAttr { node, name, value } => {
            let id = node_id(&conf, &node)?;
            let set = id_of(&["nodes", &id]);
            let xml = format!(
                r#"<node id="{id}" uname="{node}"><instance_attributes id="{set}"><nvpair id="{}" name="{name}" value="{value}"/></instance_attributes></node>"#,
                id_of(&[&set, name])
            );
            cib.modify("nodes", &xml, false)
                .await
                .map_err(crate::bus::message)?;
            Ok(format!("{node}: {name}={value}\n"))
        }
        Action::TargetRole { resource, role } => {
            let kind = resource_kind(&conf, &resource)?;
            let set = id_of(&[&resource, "meta_attributes"]);
            let xml = format!(
                r#"<{kind} id="{resource}"><meta_attributes id="{set}"><nvpair id="{}" name="target-role" value="{role}"/></meta_attributes></{kind}>"#,
                id_of(&[&set, "target-role"])
            );
            cib.modify("resources", &xml, false)
                .await
                .map_err(crate::bus::message)?;
            Ok(format!("{resource}: target-role={role}\n"))
        }
        Action::Move {
            resource,
            node,
            lifetime,
        } => {
            resource_kind(&conf, &resource)?;
            node_id(&conf, &node)?;
            let end = lifetime
                .as_deref()
                .map(|l| lifetime_end(l, now_epoch()))
                .transpose()?;
            let id = id_of(&["cli-prefer", &resource]);
            let xml = cli_location(
                &id,
                &resource,
                &node,
                "INFINITY",
                end.as_ref().map(|(e, _)| e.as_str()),
            );
            // Replacing an earlier move to elsewhere.
            let _ = cib
                .delete_xpath(&format!("//rsc_location[@id='{id}']"), true)
                .await;
            cib.create("constraints", &xml)
                .await
                .map_err(crate::bus::message)?;
            Ok(match end {
                None => format!(
                    "{resource} moves to {node}: the location constraint {id} keeps it there \
                     (even back from failures elsewhere) until `vigil resource clear {resource}`\n"
                ),
                Some((end, _)) => format!(
                    "{resource} moves to {node}: the location constraint {id} keeps it there \
                     until {end} (or `vigil resource clear {resource}`); the constraint stays \
                     in the configuration, expired, until cleared\n"
                ),
            })
        }
        Action::Ban {
            resource,
            node,
            lifetime,
        } => {
            resource_kind(&conf, &resource)?;
            node_id(&conf, &node)?;
            let end = lifetime
                .as_deref()
                .map(|l| lifetime_end(l, now_epoch()))
                .transpose()?;
            let id = id_of(&["cli-ban", &resource, "on", &node]);
            let xml = cli_location(
                &id,
                &resource,
                &node,
                "-INFINITY",
                end.as_ref().map(|(e, _)| e.as_str()),
            );
            let _ = cib
                .delete_xpath(&format!("//rsc_location[@id='{id}']"), true)
                .await;
            cib.create("constraints", &xml)
                .await
                .map_err(crate::bus::message)?;
            Ok(match end {
                None => format!(
                    "{resource} may no longer run on {node}: the location constraint {id} stays \
                     until `vigil resource clear {resource}`\n"
                ),
                Some((end, _)) => format!(
                    "{resource} may not run on {node} until {end} (or `vigil resource clear \
                     {resource}`): the location constraint {id}\n"
                ),
            })
        }
        Action::Clear { resource } => {
            resource_kind(&conf, &resource)?;
            let prefer = id_of(&["cli-prefer", &resource]);
            let ban = format!("{}-on-", id_of(&["cli-ban", &resource]));
            let ids: Vec<String> = conf
                .root
                .descendants()
                .filter(|e| e.name == "rsc_location")
                .filter_map(|e| e.attr("id"))
                .filter(|id| *id == prefer || id.starts_with(&ban))
                .map(str::to_string)
                .collect();
            if ids.is_empty() {
                return Ok(format!("{resource} has no move or ban to clear\n"));
            }
            for id in &ids {
                cib.delete_xpath(&format!("//rsc_location[@id='{id}']"), true)
                    .await
                    .map_err(crate::bus::message)?;
            }
            Ok(format!("cleared {}\n", ids.join(", ")))
        }
        Action::Cleanup { .. } => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        let now = 1_700_000_000;
        assert_eq!(lifetime_end("PT10M", now).unwrap().1, now + 600);
        assert_eq!(lifetime_end("90s", now).unwrap().1, now + 90);
        assert_eq!(lifetime_end("2h", now).unwrap().1, now + 7200);
        assert_eq!(lifetime_end("P1D", now).unwrap().1, now + 86_400);
        let (text, _) = lifetime_end("PT1M", now).unwrap();
        assert_eq!(
            vigil_cib::time::DateTime::parse(&text)
                .unwrap()
                .to_epoch_seconds(),
            now + 60
        );
        for bad in ["soon", "P", "-5s", "0"] {
            let e = lifetime_end(bad, now).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn ids_are_valid() {
        assert_eq!(
            id_of(&["cli-ban", "web:0", "on", "n1"]),
            "cli-ban-web_0-on-n1"
        );
        let conf = Document::parse(
            r#"<configuration><nodes><node id="1" uname="n1"/></nodes>
            <resources><group id="g"><primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/></group></resources></configuration>"#,
        )
        .unwrap();
        assert_eq!(node_id(&conf, "n1").unwrap(), "1");
        assert!(
            node_id(&conf, "n9")
                .unwrap_err()
                .to_string()
                .contains("nodes: n1")
        );
        assert_eq!(resource_kind(&conf, "g").unwrap(), "group");
        assert_eq!(resource_kind(&conf, "a").unwrap(), "primitive");
        let e = resource_kind(&conf, "zz").unwrap_err().to_string();
        assert!(
            e.contains("no resource \"zz\"") && e.contains("g, a"),
            "{e}"
        );
    }
}
