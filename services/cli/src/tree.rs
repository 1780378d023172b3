//! `vigil group add|remove|delete`, `vigil clone` and `vigil unclone`:
//! the shape of the resource tree (which primitives run together as a
//! group, which resources run as clones).
//!
//! Each command reads the configuration, computes the new `resources`
//! section here (pure functions, unit-tested), and sends the difference of
//! its top-level resources as one CIB batch: all or nothing, one version
//! step, so the scheduler never sees a resource in two places or in none.
//! A container that goes away (an emptied or deleted group, an unwrapped
//! clone) must not leave constraints behind naming it: they are named and
//! the change refused, or with `--force` removed in the same batch.

use std::collections::HashSet;
use std::fmt::Write as _;

use anyhow::bail;
use vigil_cib::xml::{Element, Node};
use vigil_dbus::cib::ManagerProxy;

/// What to change.
#[derive(Debug, Clone)]
pub enum Action {
    GroupAdd {
        group: String,
        members: Vec<String>,
        position: Option<Position>,
        force: bool,
    },
    GroupRemove {
        group: String,
        members: Vec<String>,
        force: bool,
    },
    GroupDelete {
        group: String,
        force: bool,
    },
    Clone {
        resource: String,
        meta: Vec<String>,
        promotable: bool,
        force: bool,
    },
    Unclone {
        resource: String,
        force: bool,
    },
}

/// Where `group add` puts the members: before or after a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    Before(String),
    After(String),
}

pub fn run(bus: Option<String>, action: Action) -> anyhow::Result<()> {
    let rt = crate::bus::runtime()?;
    print!("{}", rt.block_on(change(bus, action))?);
    Ok(())
}

/// The kinds of resource elements.
pub(crate) fn is_resource(e: &Element) -> bool {
    matches!(
        e.name.as_str(),
        "primitive" | "group" | "clone" | "master" | "bundle"
    )
}

fn is_clone(e: &Element) -> bool {
    matches!(e.name.as_str(), "clone" | "master")
}

/// Where a resource is: its element and its parent resource (none at the
/// top level).
struct Found<'a> {
    el: &'a Element,
    parent: Option<&'a Element>,
}

fn find<'a>(resources: &'a Element, id: &str) -> Option<Found<'a>> {
    fn walk<'a>(e: &'a Element, parent: Option<&'a Element>, id: &str) -> Option<Found<'a>> {
        for c in e.elements().filter(|c| is_resource(c)) {
            if c.attr("id") == Some(id) {
                return Some(Found { el: c, parent });
            }
            if let Some(f) = walk(c, Some(c), id) {
                return Some(f);
            }
        }
        None
    }
    walk(resources, None, id)
}

/// The error for a resource that is not there, with the ones that are.
fn unknown(resources: &Element, id: &str) -> anyhow::Error {
    let ids: Vec<&str> = resources
        .descendants()
        .filter(|e| is_resource(e))
        .filter_map(|e| e.attr("id"))
        .collect();
    anyhow::anyhow!("no resource {id:?} (resources: {})", ids.join(", "))
}

fn find_mut<'a>(e: &'a mut Element, id: &str) -> Option<&'a mut Element> {
    if e.attr("id") == Some(id) {
        return Some(e);
    }
    e.elements_mut()
        .filter(|c| is_resource(c))
        .find_map(|c| find_mut(c, id))
}

/// Takes resource `id` out of the tree below `e`.
fn take(e: &mut Element, id: &str) -> Option<Element> {
    if let Some(i) = e
        .children
        .iter()
        .position(|c| matches!(c, Node::Element(c) if is_resource(c) && c.attr("id") == Some(id)))
    {
        return match e.children.remove(i) {
            Node::Element(el) => Some(el),
            _ => None,
        };
    }
    e.elements_mut()
        .filter(|c| is_resource(c))
        .find_map(|c| take(c, id))
}

/// The resources a group or clone holds.
fn members(e: &Element) -> Vec<&Element> {
    e.elements().filter(|c| is_resource(c)).collect()
}

fn member_ids(e: &Element) -> Vec<String> {
    members(e)
        .iter()
        .filter_map(|m| m.attr("id").map(str::to_string))
        .collect()
}

/// Removes every container below `resources` that holds no resource any
/// more (a group emptied by a move, then a clone of it), returning their
/// ids.
fn prune_empty(resources: &mut Element) -> Vec<String> {
    let mut gone = Vec::new();
    loop {
        let empty = resources
            .descendants()
            .find(|e| {
                matches!(e.name.as_str(), "group" | "clone" | "master") && members(e).is_empty()
            })
            .and_then(|e| e.attr("id").map(str::to_string));
        match empty {
            Some(id) => {
                take(resources, &id);
                gone.push(id);
            }
            None => return gone,
        }
    }
}

/// `group add`: `new` members (primitives) into `group` (made when
/// missing), at the end or before/after a member; primitives in another
/// group leave it. Returns the new resources section and the containers
/// that emptied and went.
pub fn group_add(
    resources: &Element,
    group: &str,
    new: &[String],
    position: Option<&Position>,
) -> anyhow::Result<(Element, Vec<String>)> {
    let mut seen = HashSet::new();
    for m in new {
        if !seen.insert(m) {
            bail!("{m} is named twice");
        }
    }
    let existing = find(resources, group);
    let current: Vec<String> = match &existing {
        Some(f) if f.el.name == "group" => member_ids(f.el),
        Some(f) => bail!(
            "{group} is a {}, not a group; choose another name for the group",
            f.el.name
        ),
        None => Vec::new(),
    };
    for m in new {
        let f = find(resources, m).ok_or_else(|| unknown(resources, m))?;
        if f.el.name != "primitive" {
            bail!("{m} is a {}: only primitives go into a group", f.el.name);
        }
        if let Some(p) = f.parent {
            if is_clone(p) {
                bail!(
                    "{m} is cloned ({}): `vigil unclone {m}` first",
                    p.attr("id").unwrap_or("")
                );
            }
            if p.attr("id") == Some(group) && position.is_none() {
                bail!("{m} is in {group} already (--before or --after moves it within the group)");
            }
        }
    }
    if let Some(Position::Before(x) | Position::After(x)) = position {
        if existing.is_none() {
            bail!("{group} does not exist yet, so there is no {x} in it to place members next to");
        }
        if new.contains(x) {
            bail!("{x} is one of the resources being placed; place them next to another member");
        }
        if !current.contains(x) {
            bail!(
                "{x} is not in {group} (its members: {})",
                current.join(", ")
            );
        }
    }
    let mut out = resources.clone();
    let mut moved = Vec::new();
    for m in new {
        moved.push(take(&mut out, m).expect("found above"));
    }
    let gone: Vec<String> = prune_empty(&mut out)
        .into_iter()
        .filter(|g| g != group)
        .collect();
    match find_mut(&mut out, group) {
        Some(g) => {
            let at = match position {
                None => g.children.len(),
                Some(Position::Before(x) | Position::After(x)) => {
                    let i = g
                        .children
                        .iter()
                        .position(
                            |c| matches!(c, Node::Element(e) if e.attr("id") == Some(x.as_str())),
                        )
                        .expect("checked above");
                    if matches!(position, Some(Position::After(_))) {
                        i + 1
                    } else {
                        i
                    }
                }
            };
            for (k, m) in moved.into_iter().enumerate() {
                g.children.insert(at + k, Node::Element(m));
            }
        }
        None => {
            // A group that only had these members emptied and went; it
            // comes back with them.
            let mut g = Element::new("group");
            g.set_attr("id", group);
            if let Some(f) = existing {
                g = f.el.clone();
                g.children
                    .retain(|c| !matches!(c, Node::Element(e) if is_resource(e)));
            }
            for m in moved {
                g.push(m);
            }
            out.push(g);
        }
    }
    Ok((out, gone))
}

/// `group remove`: `gone` members out of `group`, to the top level.
/// Returns the new resources section and the containers that emptied.
pub fn group_remove(
    resources: &Element,
    group: &str,
    gone: &[String],
) -> anyhow::Result<(Element, Vec<String>)> {
    let f = find(resources, group).ok_or_else(|| unknown(resources, group))?;
    if f.el.name != "group" {
        bail!("{group} is a {}, not a group", f.el.name);
    }
    let current = member_ids(f.el);
    let mut seen = HashSet::new();
    for m in gone {
        if !seen.insert(m) {
            bail!("{m} is named twice");
        }
        if !current.contains(m) {
            bail!(
                "{m} is not in {group} (its members: {})",
                current.join(", ")
            );
        }
    }
    let mut out = resources.clone();
    let mut freed = Vec::new();
    for m in gone {
        freed.push(take(&mut out, m).expect("a member"));
    }
    let emptied = prune_empty(&mut out);
    for m in freed {
        out.push(m);
    }
    Ok((out, emptied))
}

/// `group delete`: the group goes, its members stay as top-level
/// primitives. Returns the new resources section and what the group's
/// own attributes were (they go with it).
pub fn group_delete(resources: &Element, group: &str) -> anyhow::Result<(Element, Vec<String>)> {
    let f = find(resources, group).ok_or_else(|| unknown(resources, group))?;
    if f.el.name != "group" {
        bail!("{group} is a {}, not a group", f.el.name);
    }
    if let Some(p) = f.parent {
        bail!(
            "{group} is cloned ({}): a clone holds one resource, so `vigil unclone {group}` first",
            p.attr("id").unwrap_or("")
        );
    }
    let dropped: Vec<String> =
        f.el.elements()
            .filter(|e| matches!(e.name.as_str(), "meta_attributes" | "instance_attributes"))
            .flat_map(|s| s.elements())
            .filter_map(|nv| Some(format!("{}={}", nv.attr("name")?, nv.attr("value")?)))
            .collect();
    let mut out = resources.clone();
    let g = take(&mut out, group).expect("found above");
    for c in g.children {
        if let Node::Element(e) = c
            && is_resource(&e)
        {
            out.push(e);
        }
    }
    Ok((out, dropped))
}

/// Clone options Pacemaker knows, and whether each is a number (else a
/// boolean). Other meta attributes of resources are accepted as they are.
const CLONE_OPTIONS: [(&str, bool); 10] = [
    ("clone-max", true),
    ("clone-node-max", true),
    ("clone-min", true),
    ("promoted-max", true),
    ("promoted-node-max", true),
    ("notify", false),
    ("globally-unique", false),
    ("ordered", false),
    ("interleave", false),
    ("promotable", false),
];

/// Meta attributes of any resource, also allowed on a clone.
const RESOURCE_META: [&str; 15] = [
    "target-role",
    "is-managed",
    "maintenance",
    "priority",
    "resource-stickiness",
    "migration-threshold",
    "failure-timeout",
    "multiple-active",
    "requires",
    "allow-migrate",
    "allow-unhealthy-nodes",
    "critical",
    "description",
    "container-attribute-target",
    "remote-node",
];

/// Checks a clone's meta attributes: known names with values of their
/// type; with `force`, any name.
pub fn check_clone_meta(meta: &[(String, String)], force: bool) -> anyhow::Result<()> {
    for (k, v) in meta {
        match CLONE_OPTIONS.iter().find(|(n, _)| n == k) {
            Some((_, true)) => {
                if v.trim().parse::<u32>().is_err() {
                    bail!("{k}={v:?}: {k} is a count (0, 1, 2, ...)");
                }
            }
            Some((_, false)) => {
                if !matches!(
                    v.to_ascii_lowercase().as_str(),
                    "true" | "false" | "yes" | "no" | "on" | "off" | "1" | "0" | "y" | "n"
                ) {
                    bail!("{k}={v:?}: {k} is true or false");
                }
            }
            None if force || RESOURCE_META.contains(&k.as_str()) => {}
            None => bail!(
                "{k} is not a clone option (clone options: {}; --force sets it anyway)",
                CLONE_OPTIONS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    Ok(())
}

/// `clone`: wraps top-level primitive or group `rsc` in clone `RSC-clone`
/// with `meta` attributes. Returns the new resources section and the
/// clone's id.
pub fn clone(
    resources: &Element,
    rsc: &str,
    meta: &[(String, String)],
    taken: &HashSet<String>,
) -> anyhow::Result<(Element, String)> {
    let f = find(resources, rsc).ok_or_else(|| unknown(resources, rsc))?;
    match (f.el.name.as_str(), f.parent) {
        ("primitive" | "group", None) => {}
        ("primitive", Some(p)) if p.name == "group" => {
            let g = p.attr("id").unwrap_or("");
            bail!("{rsc} is in group {g}: clone the whole group (`vigil clone {g}`)")
        }
        (_, Some(p)) if is_clone(p) => {
            bail!("{rsc} is cloned already ({})", p.attr("id").unwrap_or(""))
        }
        (kind, _) => bail!("{rsc} is a {kind}: only primitives and groups can be cloned"),
    }
    let id = crate::resource::id_of(&[rsc, "clone"]);
    if taken.contains(&id) {
        bail!("the id {id} is taken already; the clone would need it");
    }
    let mut c = Element::new("clone");
    c.set_attr("id", id.clone());
    if !meta.is_empty() {
        let set_id = crate::resource::id_of(&[&id, "meta_attributes"]);
        let mut set = Element::new("meta_attributes");
        set.set_attr("id", set_id.clone());
        for (k, v) in meta {
            let mut nv = Element::new("nvpair");
            nv.set_attr("id", crate::resource::id_of(&[&set_id, k]));
            nv.set_attr("name", k.clone());
            nv.set_attr("value", v.clone());
            set.push(nv);
        }
        c.push(set);
    }
    let mut out = resources.clone();
    c.push(take(&mut out, rsc).expect("found above"));
    out.push(c);
    Ok((out, id))
}

/// `unclone`: clone `rsc` (or the clone around resource `rsc`) gives way
/// to what it holds. Returns the new resources section, the clone's id
/// and its own attributes (they go with it).
pub fn unclone(resources: &Element, rsc: &str) -> anyhow::Result<(Element, String, Vec<String>)> {
    let f = find(resources, rsc).ok_or_else(|| unknown(resources, rsc))?;
    let clone = if is_clone(f.el) {
        f.el
    } else {
        match f.parent {
            Some(p) if is_clone(p) => p,
            _ => {
                let around = resources
                    .descendants()
                    .find(|c| is_clone(c) && c.descendants().any(|e| e.attr("id") == Some(rsc)));
                match (around, f.parent) {
                    (Some(c), Some(g)) => bail!(
                        "{rsc} is in group {}, which is cloned as {}: `vigil unclone {}`",
                        g.attr("id").unwrap_or(""),
                        c.attr("id").unwrap_or(""),
                        c.attr("id").unwrap_or("")
                    ),
                    _ => bail!("{rsc} is not cloned"),
                }
            }
        }
    };
    let id = clone.attr("id").unwrap_or("").to_string();
    let dropped: Vec<String> = clone
        .elements()
        .filter(|e| matches!(e.name.as_str(), "meta_attributes" | "instance_attributes"))
        .flat_map(|s| s.elements())
        .filter_map(|nv| Some(format!("{}={}", nv.attr("name")?, nv.attr("value")?)))
        .collect();
    let mut out = resources.clone();
    let c = take(&mut out, &id).expect("found above");
    for child in c.children {
        if let Node::Element(e) = child
            && is_resource(&e)
        {
            out.push(e);
        }
    }
    Ok((out, id, dropped))
}

/// The constraints naming resource `id` (directly or in a set), as
/// (element name, constraint id).
pub fn constraints_naming(conf: &Element, id: &str) -> Vec<(String, String)> {
    let Some(c) = conf.child("constraints") else {
        return Vec::new();
    };
    c.elements()
        .filter(|e| {
            ["rsc", "with-rsc", "first", "then"]
                .iter()
                .any(|a| e.attr(a) == Some(id))
                || e.descendants()
                    .any(|r| r.name == "resource_ref" && r.attr("id") == Some(id))
        })
        .map(|e| (e.name.clone(), e.attr("id").unwrap_or("").to_string()))
        .collect()
}

/// The batch that turns resources section `old` into `new`, by top-level
/// resource: deletes, then replacements, then creations.
pub fn batch(old: &Element, new: &Element) -> Vec<(String, String, String, bool)> {
    let tops = |e: &Element| -> Vec<Element> {
        e.elements()
            .filter(|c| c.attr("id").is_some())
            .cloned()
            .collect()
    };
    let (a, b) = (tops(old), tops(new));
    let by_id = |list: &[Element], e: &Element| {
        list.iter()
            .find(|x| x.name == e.name && x.attr("id") == e.attr("id"))
            .cloned()
    };
    let mut changes = Vec::new();
    for e in &a {
        if by_id(&b, e).is_none() {
            changes.push((
                "delete-xpath".to_string(),
                String::new(),
                format!(
                    "/cib/configuration/resources/{}[@id='{}']",
                    e.name,
                    e.attr("id").unwrap_or("")
                ),
                false,
            ));
        }
    }
    for e in &b {
        match by_id(&a, e) {
            Some(before) if before == *e => {}
            Some(_) => changes.push(("replace".into(), "resources".into(), e.to_xml(), false)),
            None => {}
        }
    }
    for e in &b {
        if by_id(&a, e).is_none() {
            changes.push(("create".into(), "resources".into(), e.to_xml(), false));
        }
    }
    changes
}

/// Ids a constraint's XPath may quote: no quotes in them.
fn quotable(id: &str) -> anyhow::Result<()> {
    if id.contains(['\'', '"']) {
        bail!("{id:?} has quotes, which no resource id has");
    }
    Ok(())
}

async fn change(bus: Option<String>, action: Action) -> anyhow::Result<String> {
    let (conn, where_) = crate::bus::connect(bus.as_deref()).await?;
    crate::bus::require(&conn, &where_, vigil_dbus::cib::NAME, "vigil-cibd").await?;
    let cib = ManagerProxy::new(&conn).await?;
    let conf = crate::bus::configuration(&cib).await?;
    let empty = Element::new("resources");
    let resources = conf.root.child("resources").unwrap_or(&empty);
    let mut out = String::new();
    // The new section, the containers that go away, and what to say.
    let (new, gone, force, said) = match action {
        Action::GroupAdd {
            group,
            members,
            position,
            force,
        } => {
            for id in members.iter().chain([&group]) {
                quotable(id)?;
            }
            let (new, gone) = group_add(resources, &group, &members, position.as_ref())?;
            let mut said = format!(
                "{group}: {}",
                member_ids(find(&new, &group).expect("made").el).join(", ")
            );
            for g in &gone {
                let _ = write!(said, "; {g} emptied and deleted");
            }
            (new, gone, force, said)
        }
        Action::GroupRemove {
            group,
            members,
            force,
        } => {
            quotable(&group)?;
            let (new, gone) = group_remove(resources, &group, &members)?;
            let mut said = format!("{} left {group}", members.join(", "));
            match find(&new, &group) {
                Some(g) => {
                    let _ = write!(said, " (its members: {})", member_ids(g.el).join(", "));
                }
                None => {
                    let _ = write!(
                        said,
                        "; {group} emptied and deleted (a group needs a member)"
                    );
                }
            }
            for g in gone.iter().filter(|g| **g != group) {
                let _ = write!(said, "; {g} emptied and deleted");
            }
            (new, gone, force, said)
        }
        Action::GroupDelete { group, force } => {
            quotable(&group)?;
            let kept = find(resources, &group)
                .map(|f| member_ids(f.el))
                .unwrap_or_default();
            let (new, dropped) = group_delete(resources, &group)?;
            let mut said = format!(
                "{group} deleted; {} stay as resources of their own",
                kept.join(", ")
            );
            if !dropped.is_empty() {
                let _ = write!(said, " (the group's {} went with it)", dropped.join(", "));
            }
            (new, vec![group], force, said)
        }
        Action::Clone {
            resource,
            meta,
            promotable,
            force,
        } => {
            quotable(&resource)?;
            let mut meta = crate::configure::pairs("meta-attribute", &meta)?;
            if promotable {
                if let Some((_, v)) = meta.iter().find(|(k, _)| k == "promotable") {
                    bail!("--promotable and promotable={v} both given; give one");
                }
                meta.push(("promotable".into(), "true".into()));
            }
            check_clone_meta(&meta, force)?;
            let (new, id) = clone(
                resources,
                &resource,
                &meta,
                &crate::configure::all_ids(&conf.root),
            )?;
            let mut said = format!("{resource} is cloned as {id}");
            if !meta.is_empty() {
                let m: Vec<String> = meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = write!(said, " ({})", m.join(", "));
            }
            let naming = constraints_naming(&conf.root, &resource);
            if !naming.is_empty() {
                let _ = write!(
                    said,
                    "\nnote: {} still name {resource}; constraints for every instance name {id}",
                    naming
                        .iter()
                        .map(|(_, c)| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            (new, Vec::new(), false, said)
        }
        Action::Unclone { resource, force } => {
            quotable(&resource)?;
            let (new, id, dropped) = unclone(resources, &resource)?;
            let mut said = format!("{id} unwrapped: what it held runs as one resource again");
            if !dropped.is_empty() {
                let _ = write!(said, " (the clone's {} went with it)", dropped.join(", "));
            }
            (new, vec![id], force, said)
        }
    };
    // Constraints must not name what goes away.
    let naming: Vec<(String, String)> = gone
        .iter()
        .flat_map(|g| constraints_naming(&conf.root, g))
        .collect();
    let mut changes: Vec<(String, String, String, bool)> = Vec::new();
    if !naming.is_empty() {
        let list = naming
            .iter()
            .map(|(_, c)| c.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if !force {
            bail!(
                "{} would go, but constraints name it: {list}; nothing was changed \
                 (remove them with `vigil constraint remove ID`, or --force removes them with it)",
                gone.join(", ")
            );
        }
        for (kind, id) in &naming {
            quotable(id)?;
            changes.push((
                "delete-xpath".into(),
                String::new(),
                format!("/cib/configuration/constraints/{kind}[@id='{id}']"),
                false,
            ));
        }
        let _ = writeln!(
            out,
            "removed the constraints naming {}: {list}",
            gone.join(", ")
        );
    }
    changes.extend(batch(resources, &new));
    if changes.is_empty() {
        let _ = writeln!(out, "nothing changed");
        return Ok(out);
    }
    let refs: Vec<(&str, &str, &str, bool)> = changes
        .iter()
        .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), *d))
        .collect();
    cib.batch(&refs).await.map_err(crate::bus::message)?;
    let _ = writeln!(out, "{said}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(xml: &str) -> Element {
        vigil_cib::xml::Document::parse(xml).unwrap().root
    }

    const R: &str = r#"<resources><primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/><group id="g"><meta_attributes id="g-meta"><nvpair id="g-meta-t" name="target-role" value="Stopped"/></meta_attributes><primitive id="b" class="ocf" provider="heartbeat" type="Dummy"/><primitive id="c" class="ocf" provider="heartbeat" type="Dummy"/></group><group id="h"><primitive id="d" class="ocf" provider="heartbeat" type="Dummy"/></group><clone id="e-clone"><primitive id="e" class="ocf" provider="heartbeat" type="Dummy"/></clone></resources>"#;

    fn ids(e: &Element) -> Vec<String> {
        member_ids(e)
    }

    #[test]
    fn group_add_places_and_moves() {
        let r = section(R);
        // A new group from a top-level primitive and one from another
        // group, which empties and goes.
        let (new, gone) = group_add(&r, "n", &["a".into(), "d".into()], None).unwrap();
        assert_eq!(gone, vec!["h".to_string()]);
        let n = find(&new, "n").unwrap();
        assert_eq!(ids(n.el), ["a", "d"]);
        assert!(find(&new, "h").is_none());
        assert_eq!(ids(&new), ["g", "e-clone", "n"]);
        // Into an existing group, before and after a member.
        let (new, gone) =
            group_add(&r, "g", &["a".into()], Some(&Position::Before("c".into()))).unwrap();
        assert!(gone.is_empty());
        assert_eq!(ids(find(&new, "g").unwrap().el), ["b", "a", "c"]);
        let (new, _) = group_add(
            &r,
            "g",
            &["a".into(), "d".into()],
            Some(&Position::After("b".into())),
        )
        .unwrap();
        assert_eq!(ids(find(&new, "g").unwrap().el), ["b", "a", "d", "c"]);
        // The group keeps its own attributes.
        assert!(find(&new, "g").unwrap().el.to_xml().contains("g-meta-t"));
        // Within the group.
        let (new, _) =
            group_add(&r, "g", &["c".into()], Some(&Position::Before("b".into()))).unwrap();
        assert_eq!(ids(find(&new, "g").unwrap().el), ["c", "b"]);
        let batch = batch(&r, &new);
        assert_eq!(batch.len(), 1, "{batch:?}");
        assert_eq!(batch[0].0, "replace");
        assert!(batch[0].2.starts_with("<group id=\"g\">"), "{}", batch[0].2);
    }

    #[test]
    fn group_add_refuses_what_cannot_be() {
        let r = section(R);
        let err = |g: &str, m: &[&str], p: Option<Position>| {
            let m: Vec<String> = m.iter().map(|s| s.to_string()).collect();
            group_add(&r, g, &m, p.as_ref()).unwrap_err().to_string()
        };
        let e = err("g", &["zz"], None);
        assert!(
            e.contains("no resource \"zz\"") && e.contains("a, g, b"),
            "{e}"
        );
        assert!(err("g", &["h"], None).contains("h is a group: only primitives"));
        assert!(err("g", &["e"], None).contains("e is cloned (e-clone)"));
        assert!(err("a", &["d"], None).contains("a is a primitive, not a group"));
        assert!(err("g", &["b"], None).contains("b is in g already"));
        assert!(err("g", &["a", "a"], None).contains("a is named twice"));
        let e = err("g", &["a"], Some(Position::After("d".into())));
        assert!(e.contains("d is not in g (its members: b, c)"), "{e}");
        assert!(
            err("new", &["a"], Some(Position::After("b".into()))).contains("does not exist yet")
        );
        assert!(
            err("g", &["a", "d"], Some(Position::After("a".into())))
                .contains("a is one of the resources being placed")
        );
    }

    #[test]
    fn group_remove_and_delete() {
        let r = section(R);
        let (new, gone) = group_remove(&r, "g", &["b".into()]).unwrap();
        assert!(gone.is_empty());
        assert_eq!(ids(find(&new, "g").unwrap().el), ["c"]);
        assert_eq!(ids(&new), ["a", "g", "h", "e-clone", "b"]);
        let b = batch(&r, &new);
        assert_eq!(
            b.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
            ["replace", "create"]
        );
        // The last member out: the group goes.
        let (new, gone) = group_remove(&r, "h", &["d".into()]).unwrap();
        assert_eq!(gone, ["h"]);
        assert_eq!(ids(&new), ["a", "g", "e-clone", "d"]);
        let b = batch(&r, &new);
        assert_eq!(b[0].0, "delete-xpath");
        assert_eq!(b[0].2, "/cib/configuration/resources/group[@id='h']");
        assert_eq!(b[1].0, "create");
        let e = group_remove(&r, "g", &["d".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("d is not in g (its members: b, c)"), "{e}");
        assert!(
            group_remove(&r, "a", &["a".into()])
                .unwrap_err()
                .to_string()
                .contains("a is a primitive, not a group")
        );
        // Ungroup: members stay, in order; the group's attributes are named.
        let (new, dropped) = group_delete(&r, "g").unwrap();
        assert_eq!(ids(&new), ["a", "h", "e-clone", "b", "c"]);
        assert_eq!(dropped, ["target-role=Stopped"]);
        assert!(
            group_delete(&r, "zz")
                .unwrap_err()
                .to_string()
                .contains("no resource \"zz\"")
        );
    }

    #[test]
    fn clone_and_unclone() {
        let r = section(R);
        let taken = crate::configure::all_ids(&r);
        let meta = vec![
            ("clone-max".to_string(), "2".to_string()),
            ("interleave".to_string(), "true".to_string()),
        ];
        let (new, id) = clone(&r, "a", &meta, &taken).unwrap();
        assert_eq!(id, "a-clone");
        let c = find(&new, "a-clone").unwrap().el;
        assert_eq!(
            c.to_xml(),
            r#"<clone id="a-clone"><meta_attributes id="a-clone-meta_attributes"><nvpair id="a-clone-meta_attributes-clone-max" name="clone-max" value="2"/><nvpair id="a-clone-meta_attributes-interleave" name="interleave" value="true"/></meta_attributes><primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/></clone>"#
        );
        let b = batch(&r, &new);
        assert_eq!(
            b.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
            ["delete-xpath", "create"]
        );
        // A group clones whole; its members do not, nor do clones.
        assert!(clone(&r, "g", &[], &taken).is_ok());
        assert!(
            clone(&r, "b", &[], &taken)
                .unwrap_err()
                .to_string()
                .contains("b is in group g: clone the whole group")
        );
        assert!(
            clone(&r, "e", &[], &taken)
                .unwrap_err()
                .to_string()
                .contains("e is cloned already (e-clone)")
        );
        assert!(
            clone(&r, "e-clone", &[], &taken)
                .unwrap_err()
                .to_string()
                .contains("only primitives and groups")
        );
        // Unclone by the clone's id or the resource's.
        for name in ["e", "e-clone"] {
            let (new, id, _) = unclone(&r, name).unwrap();
            assert_eq!(id, "e-clone");
            assert_eq!(ids(&new), ["a", "g", "h", "e"]);
        }
        assert!(
            unclone(&r, "a")
                .unwrap_err()
                .to_string()
                .contains("a is not cloned")
        );
        let (cloned, _) = clone(&r, "g", &[], &taken).unwrap();
        let e = unclone(&cloned, "b").unwrap_err().to_string();
        assert!(
            e.contains("b is in group g, which is cloned as g-clone: `vigil unclone g-clone`"),
            "{e}"
        );
    }

    #[test]
    fn clone_options_are_checked() {
        let m = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(check_clone_meta(&m("clone-max", "3"), false).is_ok());
        assert!(check_clone_meta(&m("target-role", "Stopped"), false).is_ok());
        let e = check_clone_meta(&m("clone-max", "many"), false).unwrap_err();
        assert!(e.to_string().contains("clone-max is a count"), "{e}");
        let e = check_clone_meta(&m("interleave", "maybe"), false).unwrap_err();
        assert!(e.to_string().contains("true or false"), "{e}");
        let e = check_clone_meta(&m("clone-maxx", "1"), false).unwrap_err();
        assert!(
            e.to_string().contains("clone-maxx is not a clone option")
                && e.to_string().contains("clone-node-max"),
            "{e}"
        );
        assert!(check_clone_meta(&m("clone-maxx", "1"), true).is_ok());
    }

    #[test]
    fn constraints_that_name_a_resource() {
        let conf = section(
            r#"<configuration><constraints><rsc_location id="l" rsc="g" node="n1" score="1"/><rsc_colocation id="c" rsc="x" with-rsc="g" score="1"/><rsc_order id="o" first="x" then="y"/><rsc_order id="s"><resource_set id="s-1"><resource_ref id="g"/></resource_set></rsc_order></constraints></configuration>"#,
        );
        let n: Vec<String> = constraints_naming(&conf, "g")
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert_eq!(n, ["l", "c", "s"]);
        assert!(constraints_naming(&conf, "zz").is_empty());
    }
}
