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
    },
    Ban {
        resource: String,
        node: String,
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
        Action::Move { resource, node } => {
            resource_kind(&conf, &resource)?;
            node_id(&conf, &node)?;
            let id = id_of(&["cli-prefer", &resource]);
            let xml = format!(
                r#"<rsc_location id="{id}" rsc="{resource}" node="{node}" score="INFINITY" role="Started"/>"#
            );
            // Replacing an earlier move to elsewhere.
            let _ = cib
                .delete_xpath(&format!("//rsc_location[@id='{id}']"), true)
                .await;
            cib.create("constraints", &xml)
                .await
                .map_err(crate::bus::message)?;
            Ok(format!(
                "{resource} moves to {node}: the location constraint {id} keeps it there \
                 (even back from failures elsewhere) until `vigil resource clear {resource}`\n"
            ))
        }
        Action::Ban { resource, node } => {
            resource_kind(&conf, &resource)?;
            node_id(&conf, &node)?;
            let id = id_of(&["cli-ban", &resource, "on", &node]);
            let xml = format!(
                r#"<rsc_location id="{id}" rsc="{resource}" node="{node}" score="-INFINITY" role="Started"/>"#
            );
            let _ = cib
                .delete_xpath(&format!("//rsc_location[@id='{id}']"), true)
                .await;
            cib.create("constraints", &xml)
                .await
                .map_err(crate::bus::message)?;
            Ok(format!(
                "{resource} may no longer run on {node}: the location constraint {id} stays \
                 until `vigil resource clear {resource}`\n"
            ))
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
