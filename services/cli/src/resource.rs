//! `vigil node standby|unstandby|maintenance` and `vigil resource
//! enable|disable|move|ban|clear|restart`: operator commands that are
//! changes of the CIB (the scheduler does the rest).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vigil_cib::xml::{Document, Element};
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
    Restart {
        resource: String,
        timeout: String,
    },
}

pub fn run(bus: Option<String>, action: Action) -> anyhow::Result<()> {
    let rt = crate::bus::runtime()?;
    print!("{}", rt.block_on(change(bus, action))?);
    Ok(())
}

/// A CIB id made of other ids (XML ids allow letters, digits, `-_.`).
pub(crate) fn id_of(parts: &[&str]) -> String {
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

/// The ids of the set (`kind`: meta_attributes, instance_attributes) and
/// nvpair directly under `el` that already hold `name`, if any: a change
/// goes there rather than into a second pair of the same name.
pub(crate) fn nvpair_ids(
    el: &vigil_cib::xml::Element,
    kind: &str,
    name: &str,
) -> Option<(String, String)> {
    el.elements().filter(|s| s.name == kind).find_map(|s| {
        let nv = s
            .elements()
            .find(|e| e.name == "nvpair" && e.attr("name") == Some(name))?;
        Some((s.attr("id")?.to_string(), nv.attr("id")?.to_string()))
    })
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

pub(crate) fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn node_id(conf: &Document, node: &str) -> anyhow::Result<String> {
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
pub(crate) fn resource_kind(conf: &Document, id: &str) -> anyhow::Result<String> {
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
        let ctl = crate::bus::controller(&conn, &where_).await?;
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
    let conf = crate::bus::configuration(&cib).await?;
    match action {
        Action::NodeAttr { node, name, value } => {
            let id = node_id(&conf, &node)?;
            // The setting where it is already (a CIB from elsewhere names
            // its sets and pairs its own way), else new ids.
            let el = conf.root.child("nodes").and_then(|n| {
                n.elements()
                    .find(|e| e.name == "node" && e.attr("id") == Some(id.as_str()))
            });
            let (set, nv) = el
                .and_then(|e| nvpair_ids(e, "instance_attributes", name))
                .unwrap_or_else(|| {
                    let set = id_of(&["nodes", &id]);
                    let nv = id_of(&[&set, name]);
                    (set, nv)
                });
            let xml = format!(
                r#"<node id="{id}" uname="{node}"><instance_attributes id="{set}"><nvpair id="{nv}" name="{name}" value="{value}"/></instance_attributes></node>"#
            );
            cib.modify("nodes", &xml, false)
                .await
                .map_err(crate::bus::message)?;
            Ok(format!("{node}: {name}={value}\n"))
        }
        Action::TargetRole { resource, role } => {
            let kind = resource_kind(&conf, &resource)?;
            let el = conf
                .root
                .descendants()
                .find(|e| e.name == kind && e.attr("id") == Some(resource.as_str()));
            let (set, nv) = el
                .and_then(|e| nvpair_ids(e, "meta_attributes", "target-role"))
                .unwrap_or_else(|| {
                    let set = id_of(&[&resource, "meta_attributes"]);
                    let nv = id_of(&[&set, "target-role"]);
                    (set, nv)
                });
            let xml = format!(
                r#"<{kind} id="{resource}"><meta_attributes id="{set}"><nvpair id="{nv}" name="target-role" value="{role}"/></meta_attributes></{kind}>"#
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
        Action::Restart { resource, timeout } => restart(&cib, &conf, &resource, &timeout).await,
    }
}

/// A resource's own `target-role`: its set's id, its nvpair's id and its
/// value, when it has one.
pub(crate) fn own_target_role(el: &Element) -> Option<(String, String, String)> {
    el.elements()
        .filter(|e| e.name == "meta_attributes")
        .find_map(|set| {
            let nv = set
                .elements()
                .find(|e| e.name == "nvpair" && e.attr("name") == Some("target-role"))?;
            Some((
                set.attr("id")?.to_string(),
                nv.attr("id")?.to_string(),
                nv.attr("value").unwrap_or("").to_string(),
            ))
        })
}

/// The modification that sets a resource's target-role in its set `set`,
/// nvpair `nv`.
pub(crate) fn target_role_xml(kind: &str, rsc: &str, set: &str, nv: &str, role: &str) -> String {
    format!(
        r#"<{kind} id="{rsc}"><meta_attributes id="{set}"><nvpair id="{nv}" name="target-role" value="{role}"/></meta_attributes></{kind}>"#
    )
}

/// The ids of a resource and every resource in it.
fn subtree_ids(el: &Element) -> std::collections::HashSet<String> {
    std::iter::once(el)
        .chain(el.descendants())
        .filter(|e| crate::tree::is_resource(e))
        .filter_map(|e| e.attr("id").map(str::to_string))
        .collect()
}

/// Where the resources of `ids` (clone instances `ID:N` included) are
/// active now, by `vigil status`'s reading of the CIB.
async fn active_in(
    cib: &ManagerProxy<'_>,
    ids: &std::collections::HashSet<String>,
) -> anyhow::Result<std::collections::BTreeMap<String, Vec<String>>> {
    let doc = Document::parse(&cib.query("", "").await.map_err(crate::bus::message)?)
        .context("the CIB does not parse")?;
    Ok(crate::status::active_nodes(&doc, now_epoch())?
        .into_iter()
        .filter(|(id, nodes)| !nodes.is_empty() && ids.contains(id.split(':').next().unwrap_or(id)))
        .collect())
}

/// `vigil resource restart`: stopped everywhere (target-role Stopped),
/// then its own target-role as it was, and running again where the
/// cluster places it. Progress goes to standard output as it happens.
async fn restart(
    cib: &ManagerProxy<'_>,
    conf: &Document,
    resource: &str,
    timeout: &str,
) -> anyhow::Result<String> {
    use std::io::Write;
    let wait = parse_timeout(timeout)?;
    let kind = resource_kind(conf, resource)?;
    let el = conf
        .root
        .child("resources")
        .and_then(|r| r.descendants().find(|e| e.attr("id") == Some(resource)))
        .context("the resource vanished")?;
    let ids = subtree_ids(el);
    let before = active_in(cib, &ids).await?;
    let Some(top) = before.get(resource) else {
        bail!(
            "{resource} is not running, so there is nothing to restart              (`vigil resource enable {resource}` starts a disabled resource;              `vigil why {resource}` says why it is stopped)"
        );
    };
    let progress = |line: String| {
        println!("{line}");
        let _ = std::io::stdout().flush();
    };
    progress(format!(
        "{resource}: running on {}; stopping it (target-role=Stopped)",
        top.join(", ")
    ));
    let previous = own_target_role(el);
    let (set, nv) = match &previous {
        Some((set, nv, _)) => (set.clone(), nv.clone()),
        None => {
            let set = el
                .elements()
                .find(|e| e.name == "meta_attributes")
                .and_then(|e| e.attr("id"))
                .map(str::to_string)
                .unwrap_or_else(|| id_of(&[resource, "meta_attributes"]));
            let nv = id_of(&[&set, "target-role"]);
            (set, nv)
        }
    };
    let had_set = el
        .elements()
        .any(|e| e.name == "meta_attributes" && e.attr("id") == Some(set.as_str()));
    cib.modify(
        "resources",
        &target_role_xml(&kind, resource, &set, &nv, "Stopped"),
        false,
    )
    .await
    .map_err(crate::bus::message)?;
    // Puts the target-role back as it was; says what it did.
    let restore = || async {
        let r = match &previous {
            Some((_, _, role)) => cib
                .modify(
                    "resources",
                    &target_role_xml(&kind, resource, &set, &nv, role),
                    false,
                )
                .await
                .map(|_| format!("target-role back to {role}")),
            None if had_set => cib
                .delete_xpath(&format!("//resources//nvpair[@id='{nv}']"), false)
                .await
                .map(|_| "target-role removed again (it had none)".to_string()),
            None => cib
                .delete_xpath(&format!("//resources//meta_attributes[@id='{set}']"), false)
                .await
                .map(|_| "target-role removed again (it had none)".to_string()),
        };
        r.map_err(|e| {
            anyhow::anyhow!(
                "could not put {resource}'s target-role back ({});                  `vigil resource enable {resource}` lets it run",
                crate::bus::message(e)
            )
        })
    };
    let start = Instant::now();
    loop {
        let now = active_in(cib, &ids).await?;
        if now.is_empty() {
            break;
        }
        if start.elapsed() > wait {
            let said = restore().await?;
            let still: Vec<String> = now
                .iter()
                .map(|(r, n)| format!("{r} on {}", n.join(", ")))
                .collect();
            bail!(
                "{resource} did not stop within {timeout} (still active: {}); {said};                  `vigil why {resource}` and `vigil status` tell more",
                still.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    progress(format!(
        "{resource}: stopped everywhere after {:.1}s",
        start.elapsed().as_secs_f64()
    ));
    let said = restore().await?;
    progress(format!("{resource}: {said}; starting it"));
    let start = Instant::now();
    loop {
        let now = active_in(cib, &ids).await?;
        let missing: Vec<&String> = before.keys().filter(|r| !now.contains_key(*r)).collect();
        if missing.is_empty() {
            let top = now.get(resource).cloned().unwrap_or_default();
            return Ok(format!(
                "{resource}: running again on {} after {:.1}s\n",
                top.join(", "),
                start.elapsed().as_secs_f64()
            ));
        }
        if start.elapsed() > wait {
            bail!(
                "{resource} stopped, but did not start again within {timeout} ({} not running;                  its target-role is as before); `vigil why {resource}` says why",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `--timeout`: a time span (`90s`, `2min`, `500ms`).
pub(crate) fn parse_timeout(t: &str) -> anyhow::Result<Duration> {
    match vigil_cib::time::parse_ms(t.trim()) {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms as u64)),
        _ => bail!("--timeout {t:?} is not a positive time span (e.g. 90s, 2min, 500ms)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_go_where_they_already_are() {
        let doc = Document::parse(
            r#"<primitive id="web"><meta_attributes id="web-meta"><nvpair id="web-tr" name="target-role" value="Started"/></meta_attributes></primitive>"#,
        )
        .unwrap();
        assert_eq!(
            nvpair_ids(&doc.root, "meta_attributes", "target-role"),
            Some(("web-meta".into(), "web-tr".into()))
        );
        assert_eq!(nvpair_ids(&doc.root, "meta_attributes", "is-managed"), None);
        assert_eq!(
            nvpair_ids(&doc.root, "instance_attributes", "target-role"),
            None
        );
    }

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

    #[test]
    fn restart_parts() {
        assert_eq!(parse_timeout("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_timeout("2min").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_timeout("500ms").unwrap(), Duration::from_millis(500));
        for bad in ["0", "soon", "-1s"] {
            let e = parse_timeout(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("time span"), "{e}");
        }
        let conf = Document::parse(
            r#"<resources><primitive id="a"><meta_attributes id="a-m"><nvpair id="a-m-s" name="resource-stickiness" value="1"/><nvpair id="a-m-t" name="target-role" value="Started"/></meta_attributes></primitive><group id="g"><primitive id="b"/></group></resources>"#,
        )
        .unwrap();
        let a = conf
            .root
            .descendants()
            .find(|e| e.attr("id") == Some("a"))
            .unwrap();
        assert_eq!(
            own_target_role(a),
            Some(("a-m".into(), "a-m-t".into(), "Started".into()))
        );
        let g = conf
            .root
            .descendants()
            .find(|e| e.attr("id") == Some("g"))
            .unwrap();
        assert_eq!(own_target_role(g), None);
        let mut ids: Vec<String> = subtree_ids(g).into_iter().collect();
        ids.sort();
        assert_eq!(ids, ["b", "g"]);
        assert_eq!(
            target_role_xml(
                "group",
                "g",
                "g-meta_attributes",
                "g-meta_attributes-target-role",
                "Stopped"
            ),
            r#"<group id="g"><meta_attributes id="g-meta_attributes"><nvpair id="g-meta_attributes-target-role" name="target-role" value="Stopped"/></meta_attributes></group>"#
        );
    }
}
