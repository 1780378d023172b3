//! `vigil node attribute NODE [NAME [VALUE]]`: node attributes, as
//! crm_attribute reads and writes them. A permanent attribute (lifetime
//! `forever`, the default) is an nvpair of the node's
//! `instance_attributes` in the CIB's `nodes` section; a transient one
//! (lifetime `reboot`) lives in the status section until the node's
//! controller stops, and is changed through the controller (which can
//! dampen a change: write it once it has held for a while).

use std::fmt::Write as _;

use anyhow::{Context, bail};
use vigil_cib::xml::{Document, Element};
use vigil_dbus::cib::ManagerProxy;

/// How long an attribute lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// In the configuration (`nodes` section).
    Forever,
    /// In the status section, until the node's controller stops.
    Reboot,
}

impl Lifetime {
    pub fn parse(s: &str) -> anyhow::Result<Lifetime> {
        match s {
            "forever" | "permanent" => Ok(Lifetime::Forever),
            "reboot" | "transient" => Ok(Lifetime::Reboot),
            other => bail!("--lifetime {other:?} is not forever or reboot"),
        }
    }

    fn word(self) -> &'static str {
        match self {
            Lifetime::Forever => "permanent",
            Lifetime::Reboot => "transient",
        }
    }
}

/// What to do.
#[derive(Debug, Clone)]
pub struct Request {
    pub node: String,
    pub name: Option<String>,
    pub value: Option<String>,
    pub delete: bool,
    /// None: not given (`forever` for changes, both kinds for reads).
    pub lifetime: Option<Lifetime>,
    pub dampen: Option<String>,
}

/// A request's checks that need no cluster, and its dampening in ms.
pub fn check(r: &Request) -> anyhow::Result<u64> {
    if let Some(name) = &r.name
        && (name.is_empty()
            || name
                .chars()
                .any(|c| c.is_control() || c == '\'' || c == '"'))
    {
        bail!(
            "{name:?} is not an attribute name: give a name without quotes or control characters"
        );
    }
    if r.delete && r.value.is_some() {
        bail!("--delete takes no VALUE: `vigil node attribute NODE NAME --delete`");
    }
    if r.delete && r.name.is_none() {
        bail!("--delete needs the attribute's NAME");
    }
    let dampen = match &r.dampen {
        None => 0,
        Some(d) => {
            if r.lifetime != Some(Lifetime::Reboot) {
                bail!(
                    "--dampen applies to transient attributes only (--lifetime reboot): \
                     a permanent attribute is written at once"
                );
            }
            if r.value.is_none() && !r.delete {
                bail!("--dampen applies to a change: give a VALUE or --delete");
            }
            dampen_ms(d)?
        }
    };
    Ok(dampen)
}

/// `--dampen`: a time span (`5s`, `500ms`, `2min`), 0 for none.
pub fn dampen_ms(d: &str) -> anyhow::Result<u64> {
    match vigil_cib::time::parse_ms(d.trim()) {
        Ok(ms) if ms >= 0 => Ok(ms as u64),
        _ => bail!("--dampen {d:?} is not a time span (e.g. 5s, 500ms, 2min)"),
    }
}

/// Names and values, in order.
pub type Pairs = Vec<(String, String)>;

/// A node's attributes in the CIB: permanent ones (its `nodes` entry) and
/// transient ones (its `node_state`), each (name, value) in order.
pub fn attributes(cib: &Element, node: &str) -> (Pairs, Pairs) {
    let pairs = |e: &Element| -> Pairs {
        e.elements()
            .filter(|s| s.name == "instance_attributes")
            .flat_map(|s| s.elements())
            .filter(|nv| nv.name == "nvpair")
            .filter_map(|nv| Some((nv.attr("name")?.to_string(), nv.attr("value")?.to_string())))
            .collect()
    };
    let permanent = cib
        .child("configuration")
        .and_then(|c| c.child("nodes"))
        .and_then(|n| {
            n.elements()
                .find(|e| e.name == "node" && e.attr("uname") == Some(node))
        })
        .map(pairs)
        .unwrap_or_default();
    let transient = cib
        .child("status")
        .and_then(|s| {
            s.elements()
                .find(|e| e.name == "node_state" && e.attr("uname") == Some(node))
        })
        .map(|ns| {
            ns.elements()
                .filter(|e| e.name == "transient_attributes")
                .flat_map(pairs)
                .collect()
        })
        .unwrap_or_default();
    (permanent, transient)
}

/// The listing of a node's attributes (or of one), marked permanent or
/// transient; `None` when there is none to show.
pub fn render(
    node: &str,
    permanent: &[(String, String)],
    transient: &[(String, String)],
    name: Option<&str>,
    lifetime: Option<Lifetime>,
) -> Option<String> {
    let mut out = String::new();
    for (kind, list) in [
        (Lifetime::Forever, permanent),
        (Lifetime::Reboot, transient),
    ] {
        if lifetime.is_some_and(|l| l != kind) {
            continue;
        }
        for (k, v) in list {
            if name.is_none_or(|n| n == k) {
                let _ = writeln!(out, "{k}={v} ({})", kind.word());
            }
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(match name {
        Some(_) => out,
        None => format!("{node}:\n{}", indent(&out)),
    })
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

/// The permanent attribute's change: the nvpair to modify (an existing
/// one keeps its set and id).
fn permanent_xml(conf: &Element, node_id: &str, node: &str, name: &str, value: &str) -> String {
    let existing = conf
        .child("nodes")
        .and_then(|n| {
            n.elements()
                .find(|e| e.name == "node" && e.attr("id") == Some(node_id))
        })
        .and_then(|n| crate::resource::nvpair_ids(n, "instance_attributes", name));
    let (set, nv) = existing.unwrap_or_else(|| {
        let set = crate::resource::id_of(&["nodes", node_id]);
        let nv = crate::resource::id_of(&[&set, name]);
        (set, nv)
    });
    let mut n = Element::new("node");
    n.set_attr("id", node_id);
    n.set_attr("uname", node);
    let mut s = Element::new("instance_attributes");
    s.set_attr("id", set);
    let mut p = Element::new("nvpair");
    p.set_attr("id", nv);
    p.set_attr("name", name);
    p.set_attr("value", value);
    s.push(p);
    n.push(s);
    n.to_xml()
}

pub fn run(bus: Option<String>, r: Request) -> anyhow::Result<()> {
    let dampen = check(&r)?;
    let rt = crate::bus::runtime()?;
    print!("{}", rt.block_on(change(bus, r, dampen))?);
    Ok(())
}

async fn change(bus: Option<String>, r: Request, dampen: u64) -> anyhow::Result<String> {
    let (conn, where_) = crate::bus::connect(bus.as_deref()).await?;
    crate::bus::require(&conn, &where_, vigil_dbus::cib::NAME, "vigil-cibd").await?;
    let cib = ManagerProxy::new(&conn).await?;
    let doc = Document::parse(&cib.query("", "").await.map_err(crate::bus::message)?)
        .context("the CIB does not parse")?;
    let conf = doc
        .root
        .child("configuration")
        .context("the CIB has no configuration")?;
    let conf_doc = Document::new(conf.clone());
    let node_id = crate::resource::node_id(&conf_doc, &r.node)?;
    let (permanent, transient) = attributes(&doc.root, &r.node);
    let node = &r.node;
    let Some(name) = r.name.as_deref() else {
        return Ok(render(node, &permanent, &transient, None, r.lifetime)
            .unwrap_or_else(|| format!("{node} has no attributes\n")));
    };
    let lifetime = r.lifetime.unwrap_or(Lifetime::Forever);
    match (&r.value, r.delete) {
        (None, false) => {
            render(node, &permanent, &transient, Some(name), r.lifetime).with_context(|| {
                format!(
                    "{node} has no {}attribute {name:?}",
                    r.lifetime
                        .map(|l| format!("{} ", l.word()))
                        .unwrap_or_default()
                )
            })
        }
        (Some(value), _) if lifetime == Lifetime::Forever => {
            cib.modify(
                "nodes",
                &permanent_xml(conf, &node_id, node, name, value),
                false,
            )
            .await
            .map_err(crate::bus::message)?;
            Ok(format!("{node}: {name}={value} (permanent)\n"))
        }
        (None, true) if lifetime == Lifetime::Forever => {
            if !permanent.iter().any(|(k, _)| k == name) {
                let hint = if transient.iter().any(|(k, _)| k == name) {
                    " (it has a transient one: --lifetime reboot deletes that)"
                } else {
                    ""
                };
                bail!("{node} has no permanent attribute {name:?} to delete{hint}");
            }
            cib.delete_xpath(
                &format!(
                    "/cib/configuration/nodes/node[@id='{node_id}']/instance_attributes/nvpair[@name='{name}']"
                ),
                true,
            )
            .await
            .map_err(crate::bus::message)?;
            Ok(format!("{node}: {name} deleted (permanent)\n"))
        }
        (value, _) => {
            let ctl = crate::bus::controller(&conn, &where_).await?;
            let when = if dampen > 0 {
                format!(", written once it holds for {dampen} ms")
            } else {
                String::new()
            };
            match value {
                Some(v) => {
                    ctl.set_attribute(node, name, v, dampen)
                        .await
                        .map_err(crate::bus::message)?;
                    Ok(format!("{node}: {name}={v} (transient{when})\n"))
                }
                None => {
                    ctl.delete_attribute(node, name, dampen)
                        .await
                        .map_err(crate::bus::message)?;
                    Ok(format!("{node}: {name} deleted (transient{when})\n"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: Option<&str>, value: Option<&str>, delete: bool) -> Request {
        Request {
            node: "n1".into(),
            name: name.map(str::to_string),
            value: value.map(str::to_string),
            delete,
            lifetime: None,
            dampen: None,
        }
    }

    #[test]
    fn requests_are_checked() {
        assert_eq!(check(&req(Some("a"), Some("1"), false)).unwrap(), 0);
        let e = check(&req(Some("a"), Some("1"), true)).unwrap_err();
        assert!(e.to_string().contains("--delete takes no VALUE"), "{e}");
        let e = check(&req(None, None, true)).unwrap_err();
        assert!(e.to_string().contains("needs the attribute's NAME"), "{e}");
        let e = check(&req(Some("a'b"), Some("1"), false)).unwrap_err();
        assert!(e.to_string().contains("not an attribute name"), "{e}");
        let mut r = req(Some("a"), Some("1"), false);
        r.dampen = Some("5s".into());
        let e = check(&r).unwrap_err();
        assert!(e.to_string().contains("transient attributes only"), "{e}");
        r.lifetime = Some(Lifetime::Reboot);
        assert_eq!(check(&r).unwrap(), 5000);
        r.dampen = Some("soon".into());
        let e = check(&r).unwrap_err();
        assert!(e.to_string().contains("\"soon\" is not a time span"), "{e}");
        let mut r = req(Some("a"), None, false);
        r.lifetime = Some(Lifetime::Reboot);
        r.dampen = Some("1s".into());
        assert!(check(&r).unwrap_err().to_string().contains("give a VALUE"));
    }

    #[test]
    fn durations_and_lifetimes() {
        assert_eq!(dampen_ms("5s").unwrap(), 5000);
        assert_eq!(dampen_ms("500ms").unwrap(), 500);
        assert_eq!(dampen_ms("2min").unwrap(), 120_000);
        assert_eq!(dampen_ms("0").unwrap(), 0);
        assert!(dampen_ms("-5s").is_err());
        assert!(dampen_ms("").is_err());
        assert_eq!(Lifetime::parse("forever").unwrap(), Lifetime::Forever);
        assert_eq!(Lifetime::parse("reboot").unwrap(), Lifetime::Reboot);
        assert!(
            Lifetime::parse("week")
                .unwrap_err()
                .to_string()
                .contains("not forever or reboot")
        );
    }

    #[test]
    fn reading_and_writing() {
        let cib = Document::parse(
            r#"<cib><configuration><nodes><node id="1" uname="n1"><instance_attributes id="nodes-1"><nvpair id="x" name="rack" value="r1"/></instance_attributes></node><node id="2" uname="n2"/></nodes></configuration><status><node_state id="1" uname="n1"><transient_attributes id="1"><instance_attributes id="status-1"><nvpair id="status-1-ping" name="ping" value="5"/></instance_attributes></transient_attributes></node_state></status></cib>"#,
        )
        .unwrap()
        .root;
        let (p, t) = attributes(&cib, "n1");
        assert_eq!(p, [("rack".to_string(), "r1".to_string())]);
        assert_eq!(t, [("ping".to_string(), "5".to_string())]);
        assert_eq!(
            render("n1", &p, &t, None, None).unwrap(),
            "n1:\n  rack=r1 (permanent)\n  ping=5 (transient)\n"
        );
        assert_eq!(
            render("n1", &p, &t, Some("ping"), None).unwrap(),
            "ping=5 (transient)\n"
        );
        assert!(render("n1", &p, &t, Some("ping"), Some(Lifetime::Forever)).is_none());
        assert!(render("n2", &[], &[], None, None).is_none());
        let conf = cib.child("configuration").unwrap();
        // An existing nvpair keeps its set and id; a new one gets ours.
        assert_eq!(
            permanent_xml(conf, "1", "n1", "rack", "r2"),
            r#"<node id="1" uname="n1"><instance_attributes id="nodes-1"><nvpair id="x" name="rack" value="r2"/></instance_attributes></node>"#
        );
        assert_eq!(
            permanent_xml(conf, "2", "n2", "rack", "r2"),
            r#"<node id="2" uname="n2"><instance_attributes id="nodes-2"><nvpair id="nodes-2-rack" name="rack" value="r2"/></instance_attributes></node>"#
        );
    }
}
