//! How this daemon applies a replicated change: `vigil-cib`'s operations
//! and patches, with the context the originating node decided. Every
//! replica runs exactly this on the same input, so all reach the same CIB
//! (or the same refusal).

use vigil_cib::acl::{self, Acls};
use vigil_cib::model::CibVersion;
use vigil_cib::ops::{self, Context, Op, Section};
use vigil_cib::patchset::{self, Patchset};
use vigil_cib::xml::{Document, Element};

use crate::replica::Apply;
use crate::request::{Change, Origin, Request};

/// The CIB of a new cluster.
pub const EMPTY_CIB: &str = "<cib admin_epoch=\"0\" epoch=\"0\" num_updates=\"0\" validate-with=\"pacemaker-3.10\" crm_feature_set=\"3.20.0\"><configuration><crm_config/><nodes/><resources/><constraints/></configuration><status/></cib>";

/// The change function of this daemon's replica.
#[derive(Debug, Default)]
pub struct Engine;

fn section(name: &str) -> Result<Option<Section>, String> {
    if name.is_empty() {
        return Ok(None);
    }
    name.parse::<Section>().map(Some)
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl Engine {
    /// A read by `user` (in `groups`): the whole CIB, a section, or what
    /// `xpath` selects (each match, one after the other), of what the
    /// CIB's ACLs let the user see.
    pub fn query(
        &self,
        cib: &Document,
        xpath: &str,
        section_name: &str,
        user: &str,
        groups: &[String],
    ) -> Result<String, String> {
        let op = Op::Query {
            xpath: opt(xpath),
            section: section(section_name)?,
        };
        // A query changes nothing; it runs on a copy only because `apply`
        // takes the CIB mutably.
        let mut scratch = cib.clone();
        let acls = if acl::is_superuser(user) {
            None
        } else {
            Some(Acls::from_cib(&cib.root))
        };
        if let Some(acls) = acls.filter(|a| a.required(user)) {
            match acls.filter_read(&cib.root, user, groups) {
                Some(visible) => scratch.root = visible,
                None => {
                    return Err(format!(
                        "permission denied: the CIB's ACLs let user '{user}' read nothing"
                    ));
                }
            }
        }
        let outcome =
            ops::apply(&mut scratch, &op, &Context::default()).map_err(|e| e.to_string())?;
        let mut out = String::new();
        for e in &outcome.result {
            out.push_str(&e.to_xml());
            out.push('\n');
        }
        Ok(out)
    }

    /// Applies the request; returns the CIB as it was, if it changed.
    fn run(&self, cib: &mut Document, request: &Request) -> Result<Option<Document>, String> {
        let ctx = Context {
            now: request.origin.now.clone(),
            origin: opt(&request.origin.node),
            client: opt(&request.origin.client),
            user: opt(&request.origin.user),
        };
        if let Change::Patch { xml } = &request.change {
            return with_acls(cib, &request.origin, |work| apply_patch(work, xml, &ctx));
        }
        let op = to_op(&request.change)?;
        with_acls(cib, &request.origin, |work| {
            ops::apply_keeping_previous(work, &op, &ctx)
                .map(|(_, previous)| previous)
                .map_err(|e| e.to_string())
        })
    }
}

/// The operation a change asks for (patches are applied otherwise).
fn to_op(change: &Change) -> Result<Op, String> {
    Ok(match change {
        Change::Create { section: s, xml } => Op::Create {
            section: section(s)?.ok_or("create needs a section (for example resources)")?,
            xml: xml.clone(),
        },
        Change::Modify {
            section: s,
            xml,
            create_if_missing,
        } => Op::Modify {
            section: section(s)?,
            xml: xml.clone(),
            create_if_missing: *create_if_missing,
        },
        Change::Replace {
            section: s,
            xpath,
            xml,
        } => Op::Replace {
            section: section(s)?,
            xpath: opt(xpath),
            xml: xml.clone(),
        },
        Change::Delete { section: s, xml } => Op::Delete {
            section: section(s)?,
            xml: xml.clone(),
        },
        Change::DeleteXpath { xpath, all } => Op::DeleteXpath {
            xpath: xpath.clone(),
            all_matches: *all,
        },
        Change::Erase => Op::Erase,
        Change::Bump => Op::Bump,
        Change::Upgrade => Op::Upgrade,
        Change::Patch { .. } => return Err("a patch cannot be part of a batch".into()),
        Change::Batch { changes } => Op::Batch {
            ops: changes
                .iter()
                .enumerate()
                .map(|(i, c)| to_op(c).map_err(|e| format!("change {} of the batch: {e}", i + 1)))
                .collect::<Result<_, _>>()?,
        },
    })
}

impl Apply for Engine {
    fn apply(&mut self, cib: &mut Document, change: &[u8]) -> Result<String, String> {
        let request = Request::decode(change)
            .ok_or("the change could not be read (nodes running different versions?)")?;
        Ok(match self.run(cib, &request)? {
            Some(before) => patchset::diff(&before.root, &cib.root).to_xml(),
            None => patchset::diff(&cib.root, &cib.root).to_xml(),
        })
    }

    fn diff(&mut self, old: &Document, new: &Document) -> String {
        patchset::diff(&old.root, &new.root).to_xml()
    }
}

/// Runs `change` on the CIB, and for a user the CIB's ACLs apply to,
/// keeps the result only if they allow every part of it (checked against
/// the ACLs of the CIB before the change, so that a change cannot grant
/// itself rights).
fn with_acls(
    cib: &mut Document,
    origin: &Origin,
    change: impl FnOnce(&mut Document) -> Result<Option<Document>, String>,
) -> Result<Option<Document>, String> {
    // Superusers (root, hacluster) make most changes: no need to read the
    // ACLs (and the cluster options) for them.
    if acl::is_superuser(&origin.user) {
        return change(cib);
    }
    let acls = Acls::from_cib(&cib.root);
    if !acls.required(&origin.user) {
        return change(cib);
    }
    let mut work = cib.clone();
    change(&mut work)?;
    acls.check_write(&cib.root, &work.root, &origin.user, &origin.groups)
        .map_err(|e| format!("permission denied: {e}"))?;
    Ok(Some(std::mem::replace(cib, work)))
}

/// Applies a v2 patchset as cibadmin --patch does: its source version must
/// be the CIB's; the result is validated like any change, and a change
/// that does not raise the version itself is given the next version.
fn apply_patch(cib: &mut Document, xml: &str, ctx: &Context) -> Result<Option<Document>, String> {
    if xml.len() > ops::MAX_XML_BYTES {
        return Err(format!(
            "the patch is {} bytes long, more than the limit of {} bytes",
            xml.len(),
            ops::MAX_XML_BYTES
        ));
    }
    let patch = Patchset::from_xml(xml).map_err(|e| format!("the patch: {e}"))?;
    let before = ops::version(&cib.root);
    let mut work = cib.clone();
    patch
        .apply(&mut work.root)
        .map_err(|e| format!("the patch does not apply: {e}"))?;
    let config_changed =
        section_el(&cib.root, "configuration") != section_el(&work.root, "configuration");
    let status_changed = section_el(&cib.root, "status") != section_el(&work.root, "status");
    let mut after = ops::version(&work.root);
    if after < before {
        return Err(format!(
            "the patch would take the CIB back from version {before} to {after}"
        ));
    }
    if config_changed && after.epoch == before.epoch && after.admin_epoch == before.admin_epoch {
        after = CibVersion {
            admin_epoch: before.admin_epoch,
            epoch: before.epoch + 1,
            num_updates: 0,
        };
    } else if (status_changed || config_changed) && after == before {
        after.num_updates += 1;
    }
    set_version(&mut work.root, after);
    ops::check_introduced(cib, &work).map_err(|e| e.to_string())?;
    if after != before {
        stamp(&mut work.root, ctx);
    }
    Ok(Some(std::mem::replace(cib, work)))
}

fn section_el<'a>(root: &'a Element, name: &str) -> Option<&'a Element> {
    root.child(name)
}

fn set_version(root: &mut Element, v: CibVersion) {
    root.set_attr("admin_epoch", v.admin_epoch.to_string());
    root.set_attr("epoch", v.epoch.to_string());
    root.set_attr("num_updates", v.num_updates.to_string());
}

/// The root attributes pacemaker-based sets on every change.
fn stamp(root: &mut Element, ctx: &Context) {
    if !ctx.now.is_empty() {
        root.set_attr("cib-last-written", ctx.now.as_str());
    }
    if let Some(o) = &ctx.origin {
        root.set_attr("update-origin", o.as_str());
    }
    if let Some(c) = &ctx.client {
        root.set_attr("update-client", c.as_str());
    }
    if let Some(u) = &ctx.user {
        root.set_attr("update-user", u.as_str());
    }
}

/// The v2 patchset between two CIB texts (the bus's `Diff`).
pub fn diff(old: &str, new: &str) -> Result<String, String> {
    let a = Document::parse(old).map_err(|e| format!("the old CIB: {e}"))?;
    let b = Document::parse(new).map_err(|e| format!("the new CIB: {e}"))?;
    Ok(patchset::diff(&a.root, &b.root).to_xml())
}

/// Now, as Pacemaker writes `cib-last-written` (`Sun Nov 22 03:50:54
/// 2026`, UTC).
pub fn now_text() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    ctime(secs)
}

fn ctime(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = vigil_cib::time::DateTime::from_epoch_seconds(secs);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[(t.weekday() as usize + 6) % 7],
        MONTHS[(t.month() as usize).saturating_sub(1) % 12],
        t.monthday(),
        t.hours(),
        t.minutes(),
        t.seconds(),
        t.year()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(change: Change) -> Vec<u8> {
        Request {
            change,
            origin: Origin {
                node: "n1".into(),
                client: "test".into(),
                user: "root".into(),
                groups: Vec::new(),
                now: "Sun Nov 22 03:50:54 2026".into(),
            },
        }
        .encode()
    }

    #[test]
    fn changes_patches_and_refusals() {
        let mut cib = Document::parse(EMPTY_CIB).unwrap();
        let mut e = Engine;
        let patch = e
            .apply(
                &mut cib,
                &request(Change::Create {
                    section: "resources".into(),
                    xml:
                        "<primitive id=\"d\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\"/>"
                            .into(),
                }),
            )
            .unwrap();
        assert!(patch.contains("primitive"), "{patch}");
        assert_eq!(ops::version(&cib.root).epoch, 1);
        assert_eq!(cib.root.attr("update-origin"), Some("n1"));
        // The patch it produced applies to the old CIB on another replica.
        let mut other = Document::parse(EMPTY_CIB).unwrap();
        e.apply(&mut other, &request(Change::Patch { xml: patch.clone() }))
            .unwrap();
        assert_eq!(
            other.root.child("configuration"),
            cib.root.child("configuration")
        );
        // Refusals leave the CIB alone.
        let before = cib.clone();
        let err = e
            .apply(&mut cib, &request(Change::Patch { xml: patch }))
            .unwrap_err();
        assert!(err.contains("patch"), "{err}");
        let err = e
            .apply(
                &mut cib,
                &request(Change::Create {
                    section: "nowhere".into(),
                    xml: "<x/>".into(),
                }),
            )
            .unwrap_err();
        assert!(err.contains("nowhere"), "{err}");
        assert_eq!(cib, before);
        assert!(
            e.query(&cib, "//primitive", "", "root", &[])
                .unwrap()
                .contains("Dummy")
        );
        assert!(
            e.query(&cib, "", "status", "root", &[])
                .unwrap()
                .contains("status")
        );
    }

    #[test]
    fn ctime_is_pacemakers_format() {
        assert_eq!(ctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime(1_795_319_454), "Sun Nov 22 03:50:54 2026");
    }
}
