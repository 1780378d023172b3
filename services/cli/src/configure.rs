//! `vigil resource create|update|delete|show` and `vigil constraint
//! location|colocation|order add`, `vigil constraint remove|list`: the
//! configuration, as `pcs resource create|update` and `pcs constraint`
//! change it.

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
    Update {
        id: String,
        params: Vec<String>,
        meta: Vec<String>,
        force: bool,
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
    let rt = crate::bus::runtime()?;
    print!("{}", rt.block_on(change(bus, action))?);
    Ok(())
}

pub(crate) fn pairs(what: &str, items: &[String]) -> anyhow::Result<Vec<(String, String)>> {
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

/// A change `update` makes to a name/value set: `NAME=VALUE` sets NAME,
/// `NAME=` removes it.
pub(crate) type NvChange = (String, Option<String>);

/// `update`'s `NAME=VALUE` / `NAME=` items; a name given twice is a
/// mistake.
pub(crate) fn nv_changes(what: &str, items: &[String]) -> anyhow::Result<Vec<NvChange>> {
    let mut out: Vec<NvChange> = Vec::new();
    for (k, v) in pairs(what, items)? {
        if k.chars().any(|c| c.is_control() || c == '\'' || c == '"') {
            bail!("{what} name {k:?} has quotes or control characters");
        }
        if out.iter().any(|(n, _)| *n == k) {
            bail!("{what} {k:?} is given twice");
        }
        out.push((k, (!v.is_empty()).then_some(v)));
    }
    Ok(out)
}

/// Every id in an element tree.
pub(crate) fn all_ids(root: &Element) -> std::collections::HashSet<String> {
    std::iter::once(root)
        .chain(root.descendants())
        .filter_map(|e| e.attr("id").map(str::to_string))
        .collect()
}

/// An id made of `parts` that `taken` does not have yet (then taken).
pub(crate) fn fresh_id(parts: &[&str], taken: &mut std::collections::HashSet<String>) -> String {
    let base = crate::resource::id_of(parts);
    let mut id = base.clone();
    let mut n = 1;
    while taken.contains(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    taken.insert(id.clone());
    id
}

/// Applies `changes` to `el`'s own `kind` sets (`instance_attributes` or
/// `meta_attributes`): a value replaces the name's value wherever the
/// name is set, or is added to the first set (created if there is none);
/// a removal removes the name from every set (an emptied set goes too).
/// A name to remove that is not set is an error naming what is set.
/// Returns what changed, in words.
pub(crate) fn apply_nv(
    el: &mut Element,
    kind: &str,
    what: &str,
    changes: &[NvChange],
    taken: &mut std::collections::HashSet<String>,
) -> anyhow::Result<Vec<String>> {
    use vigil_cib::xml::Node;
    let owner = el.attr("id").unwrap_or("").to_string();
    let mut done = Vec::new();
    for (name, value) in changes {
        let mut found = false;
        for set in el.elements_mut().filter(|e| e.name == kind) {
            match value {
                Some(v) => {
                    for nv in set
                        .elements_mut()
                        .filter(|e| e.name == "nvpair" && e.attr("name") == Some(name.as_str()))
                    {
                        nv.set_attr("value", v.clone());
                        found = true;
                    }
                }
                None => {
                    let before = set.children.len();
                    set.children.retain(|c| {
                        !matches!(c, Node::Element(e)
                            if e.name == "nvpair" && e.attr("name") == Some(name.as_str()))
                    });
                    found |= set.children.len() != before;
                }
            }
        }
        match value {
            Some(v) => {
                if !found {
                    if !el.elements().any(|e| e.name == kind) {
                        let mut set = Element::new(kind);
                        set.set_attr("id", fresh_id(&[&owner, kind], taken));
                        // Sets come before a group's or clone's members.
                        el.children.insert(0, Node::Element(set));
                    }
                    let set = el
                        .elements_mut()
                        .find(|e| e.name == kind)
                        .expect("a set was just made");
                    let set_id = set.attr("id").unwrap_or(kind).to_string();
                    let mut nv = Element::new("nvpair");
                    nv.set_attr("id", fresh_id(&[&set_id, name], taken));
                    nv.set_attr("name", name.clone());
                    nv.set_attr("value", v.clone());
                    set.push(nv);
                }
                done.push(format!("{name}={v}"));
            }
            None => {
                if !found {
                    let set: Vec<String> = el
                        .elements()
                        .filter(|e| e.name == kind)
                        .flat_map(|s| s.elements())
                        .filter_map(|e| e.attr("name").map(str::to_string))
                        .collect();
                    bail!(
                        "{owner} has no {what} {name:?} to remove ({})",
                        if set.is_empty() {
                            format!("it has no {what}s")
                        } else {
                            format!("its {what}s: {}", set.join(", "))
                        }
                    );
                }
                el.children.retain(|c| {
                    !matches!(c, Node::Element(e) if e.name == kind && e.elements().next().is_none())
                });
                done.push(format!("{name} removed"));
            }
        }
    }
    Ok(done)
}

/// The parameters an element's own `instance_attributes` give (the first
/// value of a name wins).
fn params_of(el: &Element) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for nv in el
        .elements()
        .filter(|e| e.name == "instance_attributes")
        .flat_map(|s| s.elements())
        .filter(|e| e.name == "nvpair")
    {
        if let (Some(n), Some(v)) = (nv.attr("name"), nv.attr("value"))
            && !out.iter().any(|(k, _)| k == n)
        {
            out.push((n.to_string(), v.to_string()));
        }
    }
    out
}

/// A primitive's agent (`class:provider:type`), from its template when
/// it has one.
fn agent_of(conf: &Document, el: &Element) -> Option<String> {
    let src = match el.attr("template") {
        Some(t) if el.attr("type").is_none() => conf
            .root
            .descendants()
            .find(|e| e.name == "template" && e.attr("id") == Some(t))?,
        _ => el,
    };
    let class = src.attr("class")?;
    let kind = src.attr("type")?;
    Some(match src.attr("provider") {
        Some(p) => format!("{class}:{p}:{kind}"),
        None => format!("{class}:{kind}"),
    })
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
pub(crate) fn resource_ids(conf: &Document) -> Vec<String> {
    conf.root
        .child("resources")
        .map(|r| {
            r.descendants()
                .filter(|e| crate::tree::is_resource(e))
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

/// Checks the parameters a resource will have (all of them) with agent
/// `agent` on this node, through its executor: the agent's metadata
/// (required parameters, integers, booleans, selects) and its
/// `validate-all`. `new_names` (the parameters being set by `update`)
/// must be parameters the agent has; for `update` the executor must be
/// there too (`must_check`). Warnings go to `out`; the error says what is
/// wrong, without the caller's advice.
async fn agent_check(
    conn: &zbus::Connection,
    id: &str,
    agent: &str,
    params: &[(String, String)],
    new_names: Option<&[String]>,
    out: &mut String,
) -> anyhow::Result<()> {
    let must_check = new_names.is_some();
    let x = match vigil_dbus::executor::ManagerProxy::new(conn).await {
        Ok(x) => x,
        Err(e) if must_check => bail!("cannot ask this node's executor about {agent}: {e}"),
        Err(_) => return Ok(()),
    };
    let metadata_error =
        |m: &str| m.contains("has no metadata") || m.contains("unknown agent class");
    if let Some(names) = new_names {
        let xml = match x.agent_metadata(agent).await {
            Ok(xml) => xml,
            Err(e) => {
                let m = crate::bus::message(e).to_string();
                if metadata_error(&m) {
                    bail!("{m} (is the agent installed on this node?)");
                }
                bail!(
                    "cannot read {agent}'s metadata through this node's executor \
                     (is vigil-execd running?): {m}"
                );
            }
        };
        let md = vigil_executor::metadata::parse(&xml)
            .map_err(|e| anyhow::anyhow!("{agent}'s metadata does not parse: {}", e.0))?;
        let unknown: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| *n != "OCF_CHECK_LEVEL" && md.parameter(n).is_none())
            .collect();
        if !unknown.is_empty() {
            let known: Vec<&str> = md.parameters.iter().map(|p| p.name.as_str()).collect();
            bail!(
                "{agent} has no parameter {} (its parameters: {})",
                unknown
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    let p: HashMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match x.validate(id, agent, p).await {
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
                bail!("{why}");
            }
        }
        Err(e) => {
            let m = crate::bus::message(e).to_string();
            if metadata_error(&m) {
                bail!("{m} (is the agent installed on this node?)");
            }
            if must_check {
                bail!(
                    "cannot check the parameters through this node's executor (is vigil-execd running?): {m}"
                );
            }
        }
    }
    Ok(())
}

async fn change(bus: Option<String>, action: Action) -> anyhow::Result<String> {
    let (conn, where_) = crate::bus::connect(bus.as_deref()).await?;
    crate::bus::require(&conn, &where_, vigil_dbus::cib::NAME, "vigil-cibd").await?;
    let cib = ManagerProxy::new(&conn).await?;
    let conf = crate::bus::configuration(&cib).await?;
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
            if !force {
                agent_check(&conn, &id, &agent, &params, None, &mut out)
                    .await
                    .map_err(|why| {
                        anyhow::anyhow!("{id} not created: {why:#} (--force creates it anyway)")
                    })?;
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
        Action::Update {
            id,
            params,
            meta,
            force,
        } => {
            let params = nv_changes("parameter", &params)?;
            let meta = nv_changes("meta-attribute", &meta)?;
            require_resource(&conf, &id)?;
            let el = conf
                .root
                .child("resources")
                .and_then(|r| r.descendants().find(|e| e.attr("id") == Some(id.as_str())))
                .context("the resource vanished")?;
            if params.is_empty() && meta.is_empty() {
                bail!(
                    "nothing to change for {id}: give parameters NAME=VALUE (NAME= removes one) \
                     or --meta NAME=VALUE"
                );
            }
            if !params.is_empty() && el.name != "primitive" {
                bail!(
                    "{id} is a {}: only primitives have parameters; change its meta attributes \
                     with --meta NAME=VALUE",
                    el.name
                );
            }
            let mut taken = all_ids(&conf.root);
            let mut new = el.clone();
            let mut said = apply_nv(
                &mut new,
                "instance_attributes",
                "parameter",
                &params,
                &mut taken,
            )?;
            said.extend(
                apply_nv(
                    &mut new,
                    "meta_attributes",
                    "meta attribute",
                    &meta,
                    &mut taken,
                )?
                .into_iter()
                .map(|m| format!("meta {m}")),
            );
            if !params.is_empty() && !force {
                let agent = agent_of(&conf, el).with_context(|| {
                    format!("{id} names no agent (class and type); --force changes it unchecked")
                })?;
                let set: Vec<String> = params
                    .iter()
                    .filter(|(_, v)| v.is_some())
                    .map(|(k, _)| k.clone())
                    .collect();
                agent_check(&conn, &id, &agent, &params_of(&new), Some(&set), &mut out)
                    .await
                    .map_err(|why| {
                        anyhow::anyhow!("{id} not changed: {why:#} (--force changes it anyway)")
                    })?;
            }
            if new == *el {
                let _ = writeln!(out, "{id}: unchanged ({})", said.join(", "));
            } else {
                cib.replace("resources", "", &new.to_xml())
                    .await
                    .map_err(crate::bus::message)?;
                let _ = writeln!(out, "{id}: {}", said.join(", "));
            }
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

    #[test]
    fn update_changes() {
        let c = nv_changes("parameter", &["a=1".into(), "b=".into()]).unwrap();
        assert_eq!(c, [("a".into(), Some("1".into())), ("b".into(), None)]);
        for (bad, why) in [
            ("x", "is not NAME=VALUE"),
            ("=1", "has no name"),
            ("a\"b=1", "quotes"),
        ] {
            let e = nv_changes("parameter", &[bad.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = nv_changes("parameter", &["a=1".into(), "a=2".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"a\" is given twice"), "{e}");
    }

    #[test]
    fn update_sets() {
        let conf = Document::parse(
            r#"<configuration><resources><primitive id="d" class="ocf" provider="heartbeat" type="Dummy"><instance_attributes id="d-instance_attributes"><nvpair id="d-ia-fake" name="fake" value="x"/><nvpair id="d-ia-state" name="state" value="/s"/></instance_attributes><operations/></primitive><primitive id="t" template="tpl"/><template id="tpl" class="ocf" provider="pacemaker" type="Stateful"/></resources></configuration>"#,
        )
        .unwrap();
        let el = conf
            .root
            .descendants()
            .find(|e| e.attr("id") == Some("d"))
            .unwrap();
        let mut taken = all_ids(&conf.root);
        let mut new = el.clone();
        let said = apply_nv(
            &mut new,
            "instance_attributes",
            "parameter",
            &nv_changes(
                "parameter",
                &["fake=y".into(), "state=".into(), "op_sleep=2".into()],
            )
            .unwrap(),
            &mut taken,
        )
        .unwrap();
        assert_eq!(said, ["fake=y", "state removed", "op_sleep=2"]);
        assert_eq!(
            params_of(&new),
            [("fake".into(), "y".into()), ("op_sleep".into(), "2".into())]
        );
        let said = apply_nv(
            &mut new,
            "meta_attributes",
            "meta attribute",
            &[("target-role".into(), Some("Stopped".into()))],
            &mut taken,
        )
        .unwrap();
        assert_eq!(said, ["target-role=Stopped"]);
        assert_eq!(
            new.to_xml(),
            r#"<primitive id="d" class="ocf" provider="heartbeat" type="Dummy"><meta_attributes id="d-meta_attributes"><nvpair id="d-meta_attributes-target-role" name="target-role" value="Stopped"/></meta_attributes><instance_attributes id="d-instance_attributes"><nvpair id="d-ia-fake" name="fake" value="y"/><nvpair id="d-instance_attributes-op_sleep" name="op_sleep" value="2"/></instance_attributes><operations/></primitive>"#
        );
        // Removing the last one removes the set; removing what is not set
        // says what is.
        let mut last = new.clone();
        apply_nv(
            &mut last,
            "meta_attributes",
            "meta attribute",
            &[("target-role".into(), None)],
            &mut taken,
        )
        .unwrap();
        assert!(!last.to_xml().contains("meta_attributes"));
        let e = apply_nv(
            &mut new,
            "instance_attributes",
            "parameter",
            &[("nope".into(), None)],
            &mut taken,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("d has no parameter \"nope\" to remove (its parameters: fake, op_sleep)"),
            "{e}"
        );
        // A taken id is not given twice.
        let mut other = el.clone();
        other.children.clear();
        let mut taken = all_ids(&conf.root);
        taken.insert("d-instance_attributes-x".into());
        apply_nv(
            &mut other,
            "instance_attributes",
            "parameter",
            &[("x".into(), Some("1".into()))],
            &mut taken,
        )
        .unwrap();
        assert!(
            other.to_xml().contains(r#"id="d-instance_attributes-1""#),
            "{}",
            other.to_xml()
        );
        assert!(other.to_xml().contains(r#"id="d-instance_attributes-1-x""#));
        assert_eq!(agent_of(&conf, el).as_deref(), Some("ocf:heartbeat:Dummy"));
        let t = conf
            .root
            .descendants()
            .find(|e| e.attr("id") == Some("t"))
            .unwrap();
        assert_eq!(
            agent_of(&conf, t).as_deref(),
            Some("ocf:pacemaker:Stateful")
        );
    }
}
