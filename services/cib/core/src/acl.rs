//! Pacemaker's access control lists (ACLs) over the CIB.
//!
//! The CIB daemon uses this module to show a caller only what it may read
//! ([`Acls::filter_read`]) and to refuse a change it may not make
//! ([`Acls::check_write`]). The semantics are Pacemaker's (Pacemaker
//! Explained, "Access Control Lists"; `lib/common/acl.c`, and
//! `lib/common/xml.c` for how changes are compared).
//!
//! # Who is subject to ACLs
//!
//! ACLs apply only when the cluster option `enable-acl` is true, and never
//! to the superusers `root` and `hacluster` ([`SUPERUSERS`]). When they
//! apply, everything is denied unless a permission of the user grants it: a
//! user with no `acl_target` (and in no `acl_group`) that names them may
//! read nothing and change nothing.
//!
//! # What the ACLs say
//!
//! The `<acls>` section holds `acl_role`s, each a list of `acl_permission`s
//! (`kind` read, write or deny; the elements selected by `xpath`, by
//! `reference` (an id: `//*[@id='REF']`) or by `object-type` (an element
//! name: `//TYPE`, and with `attribute` only those that have that attribute:
//! `//TYPE[@ATTR]`), and `acl_target`s (users, by `name` or else `id`) and
//! `acl_group`s (Unix groups, likewise) that list the roles they have with
//! `<role id="..."/>`. A user's permissions are those of every role of their
//! `acl_target` and of each `acl_group` of a group they are in (the caller
//! says which groups; Pacemaker itself looks only at the group's member
//! list, not at the user's primary group). Permissions written directly in
//! an `acl_target`/`acl_group` are used too, as Pacemaker does (with a
//! warning). The older `pacemaker-1.x` form is read as Pacemaker's
//! `upgrade-1.3.xsl` converts it: `acl_user` is a target, `role_ref` a role
//! reference, and `read`/`write`/`deny` (in an `acl_role` or directly in the
//! `acl_user`) permissions with `tag` as `object-type`, `ref` as `reference`
//! (an `attribute` with it is ignored) and an `attribute` with an `xpath`
//! appended to it as `[@ATTRIBUTE]`.
//!
//! An XPath that selects attributes (`//nvpair/@value`) applies to the
//! elements that have them, as in Pacemaker (and its documentation: "the
//! permissions apply to the entire element"); it is rewritten to a
//! predicate (`//nvpair/self::*[@value]`) and reported as a warning. `/`
//! selects the `<cib>` element.
//!
//! # Precedence
//!
//! Each permission marks the elements it selects (`acl.c`:
//! `pcmk__apply_acls`). An element's access is decided by the nearest
//! marked element among itself and its ancestors (`pcmk__check_acl` walks
//! up from the element and stops at the first mark that decides):
//!
//! - at one element, deny beats write beats read, whichever roles they come
//!   from (`is_mode_allowed`: deny refuses everything; write gives read);
//! - a mark on a deeper element beats marks above it: write below a deny
//!   grants write, deny below a write denies (Pacemaker's tests "allow
//!   overrides deny" and "deny overrides allow");
//! - for a write, a read-only mark decides nothing and the walk goes on up
//!   (read below write leaves the element writable);
//! - with no mark on the way up to `<cib>`, access is denied.
//!
//! # Reads
//!
//! As `xml_acl_filtered_copy` and `purge_xml_attributes`: an element the
//! user may read is shown whole (its attributes, text and comments), except
//! for descendants they may not read; an element they may not read is shown
//! only when something below it is readable, and then as a skeleton that
//! keeps its name and `id` and nothing else (no other attribute, text or
//! comment). When nothing at all is readable, the user may read nothing
//! ([`Acls::filter_read`] gives `None`; Pacemaker answers "Permission
//! denied"). The daemon should filter the whole CIB and then answer the
//! query (section or XPath) from the filtered copy.
//!
//! # Writes
//!
//! A change is the pair of trees before and after. Elements are paired as
//! Pacemaker's change tracking pairs them (`pcmk__xml_mark_changes`): a
//! child matches the first unmatched child of the other tree with the same
//! name and the same `id` (or both without one). Then:
//!
//! - an element whose attributes changed (added, removed or given another
//!   value) must be writable, both before and after the change (Pacemaker
//!   checks the tree before the change for `cibadmin --modify` and the tree
//!   after it for `--replace`; requiring both means a change can neither
//!   start from nor end in a place the user may not write, e.g. by renaming
//!   an `nvpair` into a writable name);
//! - a deleted element must be writable in the tree before the change;
//! - a created element must be writable in the tree after it, unless it is
//!   "scaffolding": an element with no attribute other than `id`, outside
//!   `<acls>` (`implicitly_allowed`); each created element below it is
//!   checked the same way.
//!
//! The `<cib>` attributes the daemon maintains itself ([`VERSION_ATTRIBUTES`]:
//! `epoch`, `num_updates`, `cib-last-written`, `update-origin`,
//! `update-client`, `update-user`) are not the user's change and are not
//! checked; Pacemaker checks ACLs before it bumps them. Text and comments
//! are not checked (Pacemaker lets them through too). The ACLs used are
//! those of the CIB before the change: build [`Acls`] from the current CIB,
//! so that a change cannot grant itself permissions.
//!
//! # Where this is stricter than Pacemaker
//!
//! (`tests/acl.rs` checks the first four against Pacemaker's `cibadmin`
//! when it is installed: Pacemaker allows what is refused here.)
//!
//! - A changed element must be writable before and after the change
//!   (Pacemaker's `--replace` looks only at after: a user who may write
//!   `//nvpair[@name='target-role']` may there rename any `nvpair` into a
//!   `target-role`).
//! - Deleting an element deletes everything below it, so every element of
//!   a deleted subtree must be writable (Pacemaker checks only its top,
//!   which lets a deny below a writable element be deleted with its
//!   parent).
//! - A new order of existing children is a change of their parent, which
//!   must be writable (Pacemaker checks no ACL for moves; the order of a
//!   group's members is its start order).
//! - A user with no permissions at all may not create even scaffolding.
//! - A deny permission that cannot be evaluated (an XPath outside
//!   [`crate::xpath`]'s subset, or too expensive) denies its users
//!   everything; Pacemaker's deny with a broken XPath denies nothing. A read
//!   or write permission that cannot be evaluated grants nothing, as in
//!   Pacemaker.
//! - An empty user name is an ordinary (non-super) user; Pacemaker skips ACLs
//!   when no user is known.
//! - Marks are computed once, on the whole tree; Pacemaker re-evaluates deny
//!   XPaths on a copy it is already pruning, which can leave a denied
//!   element visible when its XPath tests something an earlier deny
//!   removed.
//!
//! With two `<acls>` sections, Pacemaker uses neither (it looks for exactly
//! one); neither does this module, and it says so in a diagnostic.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use crate::model::Cib;
use crate::time::DateTime;
use crate::validate::Diagnostic;
use crate::xml::{Document, Element, Node};
use crate::xpath::{self, XPath};

/// The users ACLs never apply to: `root` and the cluster daemons' user
/// (`pcmk__is_privileged`).
pub const SUPERUSERS: [&str; 2] = ["root", "hacluster"];

/// The `<cib>` attributes the CIB daemon sets itself on every change
/// (versions and who last wrote it), which a write check ignores.
pub const VERSION_ATTRIBUTES: [&str; 6] = [
    "epoch",
    "num_updates",
    "cib-last-written",
    "update-origin",
    "update-client",
    "update-user",
];

/// Whether ACLs never apply to `user`.
pub fn is_superuser(user: &str) -> bool {
    SUPERUSERS.contains(&user)
}

/// What a permission grants (or takes away).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Read,
    Write,
    Deny,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        match s {
            "read" => Some(Kind::Read),
            "write" => Some(Kind::Write),
            "deny" => Some(Kind::Deny),
            _ => None,
        }
    }

    /// `read`, `write` or `deny`, as in the CIB.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Write => "write",
            Kind::Deny => "deny",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `acl_permission` (or legacy `read`/`write`/`deny`), as Pacemaker
/// unpacks it: a kind and the XPath of the elements it applies to.
#[derive(Debug, Clone)]
pub struct Permission {
    /// Its `id` (`"without ID"` when it has none).
    pub id: String,
    pub kind: Kind,
    /// The `acl_role` it is in, or the `acl_target`/`acl_group` it is
    /// written in directly.
    pub role: String,
    /// The XPath it applies to, as written or as built from `reference`,
    /// `object-type` and `attribute`.
    pub xpath: String,
    /// Why it cannot be evaluated, when it cannot.
    pub error: Option<String>,
    compiled: Option<XPath>,
}

#[derive(Debug, Clone)]
struct Subject {
    /// An `acl_group` (else a user: `acl_target` or `acl_user`).
    group: bool,
    name: String,
    /// Indices into `Acls::permissions`, in Pacemaker's order.
    permissions: Vec<usize>,
}

/// The ACLs of one CIB, ready to filter reads and check writes. Build it
/// with [`Acls::from_cib`] from the CIB as it is before a change.
#[derive(Debug, Clone, Default)]
pub struct Acls {
    enabled: bool,
    subjects: Vec<Subject>,
    permissions: Vec<Permission>,
    diagnostics: Vec<Diagnostic>,
}

/// What a refused change would have done to the element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Create,
    Delete,
    /// Set, change or remove these attributes.
    Change {
        attributes: Vec<String>,
    },
    /// Put its children in another order.
    Reorder,
}

/// Why a user may not make a change: who, the first element (a path such
/// as `/cib/configuration/resources/primitive[@id='web']`), what they tried
/// to do to it and why it is not allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclError {
    pub user: String,
    pub path: String,
    pub refused: Refused,
    pub reason: String,
}

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ACLs do not allow user '{}' to ", self.user)?;
        match &self.refused {
            Refused::Create => write!(f, "create {}", self.path)?,
            Refused::Delete => write!(f, "delete {}", self.path)?,
            Refused::Change { attributes } => {
                let list: Vec<String> = attributes.iter().map(|a| format!("'{a}'")).collect();
                let noun = if attributes.len() == 1 {
                    "attribute"
                } else {
                    "attributes"
                };
                write!(f, "change {noun} {} of {}", list.join(", "), self.path)?;
            }
            Refused::Reorder => write!(f, "reorder the children of {}", self.path)?,
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for AclError {}

impl Acls {
    /// The ACLs of the CIB rooted at `root`, with `enable-acl` evaluated
    /// without a time (a cluster option set whose rule needs the date
    /// counts as not passing; see [`Acls::from_cib_at`]).
    pub fn from_cib(root: &Element) -> Acls {
        Acls::from_cib_at(root, None)
    }

    /// The ACLs of the CIB rooted at `root`, with `enable-acl` evaluated at
    /// `now`.
    pub fn from_cib_at(root: &Element, now: Option<DateTime>) -> Acls {
        let mut acls = Acls {
            enabled: enable_acl(root, now),
            ..Acls::default()
        };
        let sections: Vec<&Element> = root.descendants().filter(|e| e.name == "acls").collect();
        match sections.as_slice() {
            [] => {}
            [section] => acls.unpack(section),
            [_, more @ ..] => {
                for extra in more {
                    acls.diagnostics.push(Diagnostic::error(
                        extra,
                        format!(
                            "the CIB has {} <acls> sections; Pacemaker uses none of them when \
                             there is more than one, so no user other than root and hacluster \
                             has any access while ACLs are enabled; merge them into one \
                             /cib/configuration/acls",
                            sections.len()
                        ),
                    ));
                }
            }
        }
        acls
    }

    /// Whether `enable-acl` is true.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether ACLs apply to `user`: they are enabled and `user` is not a
    /// superuser.
    pub fn required(&self, user: &str) -> bool {
        self.enabled && !is_superuser(user)
    }

    /// What is wrong with the ACL definitions: unknown roles, permissions
    /// without a kind or a selection, XPaths that cannot be used, ...
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The permissions that apply to `user`, a member of `groups`, in
    /// Pacemaker's order (the order does not change the outcome), whether or
    /// not ACLs are enabled.
    pub fn permissions_of(&self, user: &str, groups: &[String]) -> Vec<&Permission> {
        self.user_permissions(user, groups)
            .into_iter()
            .map(|i| &self.permissions[i])
            .collect()
    }

    fn user_permissions(&self, user: &str, groups: &[String]) -> Vec<usize> {
        let mut out = Vec::new();
        for s in &self.subjects {
            let applies = if s.group {
                groups.contains(&s.name)
            } else {
                s.name == user
            };
            if applies {
                out.extend(&s.permissions);
            }
        }
        out
    }

    /// What `user` (a member of `groups`) may see of `cib`: a copy without
    /// what they may not read (see the module documentation), the whole CIB
    /// when ACLs do not apply to them, or `None` when they may read nothing
    /// at all.
    pub fn filter_read(&self, cib: &Element, user: &str, groups: &[String]) -> Option<Element> {
        if !self.required(user) {
            return Some(cib.clone());
        }
        let perms = self.user_permissions(user, groups);
        if perms.is_empty() {
            return None;
        }
        let marks = self.marks(&perms, cib);
        if marks.broken.is_some() {
            return None;
        }
        let mut path = Vec::new();
        prune(cib, &marks, Decision::Default, &mut path)
    }

    /// Whether `user` (a member of `groups`) may turn `old` into `new`:
    /// every element created, deleted or changed must be writable for them
    /// (see the module documentation). `Ok` when ACLs do not apply to them.
    pub fn check_write(
        &self,
        old: &Element,
        new: &Element,
        user: &str,
        groups: &[String],
    ) -> Result<(), AclError> {
        if !self.required(user) {
            return Ok(());
        }
        let perms = self.user_permissions(user, groups);
        let (old_marks, new_marks) = if perms.is_empty() {
            (Marks::default(), Marks::default())
        } else {
            (self.marks(&perms, old), self.marks(&perms, new))
        };
        let check = WriteCheck {
            acls: self,
            user,
            no_permissions: perms.is_empty(),
        };
        let mut o = Cursor::new(&old_marks);
        let mut n = Cursor::new(&new_marks);
        if old.name != new.name {
            o.enter(old, None);
            check.deleted(&mut o)?;
            o.leave();
            n.enter(new, None);
            let r = check.created(&mut n);
            n.leave();
            return r;
        }
        o.enter(old, None);
        n.enter(new, None);
        check.pair(&mut o, &mut n)
    }

    /// Where each permission of `perms` applies in `tree`.
    fn marks(&self, perms: &[usize], tree: &Element) -> Marks {
        let mut marks = Marks::default();
        for &i in perms {
            let p = &self.permissions[i];
            let selected = match &p.compiled {
                Some(x) => x.select(tree).map_err(|e| e.to_string()),
                None => Err(p
                    .error
                    .clone()
                    .unwrap_or_else(|| "it cannot be evaluated".into())),
            };
            match selected {
                Ok(paths) => {
                    for path in paths {
                        let m = marks.at.entry(path).or_default();
                        let slot = match p.kind {
                            Kind::Read => &mut m.read,
                            Kind::Write => &mut m.write,
                            Kind::Deny => &mut m.deny,
                        };
                        slot.get_or_insert(i);
                    }
                }
                Err(e) => {
                    if p.kind == Kind::Deny && marks.broken.is_none() {
                        marks.broken = Some((i, e));
                    }
                }
            }
        }
        marks
    }

    // -----------------------------------------------------------------
    // Unpacking.

    fn unpack(&mut self, section: &Element) {
        // Roles first: a target may name a role defined after it (Pacemaker
        // looks roles up in the whole document).
        let mut roles: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for role in section.children_named("acl_role") {
            let Some(id) = role.attr("id") else {
                self.diagnostics.push(Diagnostic::error(
                    role,
                    "this acl_role has no id, so no target or group can refer to it; it is \
                     ignored",
                ));
                continue;
            };
            if roles.contains_key(id) {
                self.diagnostics.push(Diagnostic::warning(
                    role,
                    format!(
                        "another acl_role before this one has id '{id}'; references to '{id}' \
                         use the first one, and this one is ignored"
                    ),
                ));
                continue;
            }
            let mut perms = Vec::new();
            for child in role.elements() {
                match child.name.as_str() {
                    "acl_permission" => perms.extend(self.permission(child, id)),
                    "read" | "write" | "deny" => perms.extend(self.legacy_permission(child, id)),
                    _ => {}
                }
            }
            roles.insert(id.to_string(), perms);
        }

        for subject in section.elements() {
            let (group, legacy) = match subject.name.as_str() {
                "acl_target" => (false, false),
                "acl_group" => (true, false),
                "acl_user" => (false, true),
                _ => continue,
            };
            let name = if legacy {
                subject.attr("id")
            } else {
                subject.attr("name").or_else(|| subject.attr("id"))
            };
            let Some(name) = name else {
                self.diagnostics.push(Diagnostic::error(
                    subject,
                    format!(
                        "this {} has neither name nor id, so it applies to no {}; it is ignored",
                        subject.name,
                        if group { "group" } else { "user" }
                    ),
                ));
                continue;
            };
            let label = format!("{} {name}", subject.name);
            let mut perms = Vec::new();
            for child in subject.elements() {
                match child.name.as_str() {
                    "role" | "role_ref" => {
                        let Some(id) = child.attr("id") else {
                            self.diagnostics.push(Diagnostic::error(
                                child,
                                format!(
                                    "this <{}> in {label} has no id naming an acl_role; it is \
                                     ignored",
                                    child.name
                                ),
                            ));
                            continue;
                        };
                        match roles.get(id) {
                            Some(p) => perms.extend(p),
                            None => self.diagnostics.push(Diagnostic::error(
                                child,
                                format!(
                                    "{label} refers to role '{id}', but there is no acl_role \
                                     with that id; the reference is ignored, so it grants \
                                     nothing"
                                ),
                            )),
                        }
                    }
                    "acl_permission" => {
                        self.diagnostics.push(Diagnostic::warning(
                            child,
                            format!(
                                "acl_permission written directly in {label}; it is used, but it \
                                 belongs in an acl_role that {label} refers to with <role/>"
                            ),
                        ));
                        perms.extend(self.permission(child, &label));
                    }
                    "read" | "write" | "deny" if legacy => {
                        perms.extend(self.legacy_permission(child, &label));
                    }
                    _ => {}
                }
            }
            self.subjects.push(Subject {
                group,
                name: name.to_string(),
                permissions: perms,
            });
        }
    }

    /// Unpacks an `acl_permission`.
    fn permission(&mut self, el: &Element, role: &str) -> Option<usize> {
        let id = self.permission_id(el, role);
        let kind = self.permission_kind(el, el.attr("kind"), &id, role)?;
        let xpath = el.attr("xpath");
        let reference = el.attr("reference");
        let tag = el.attr("object-type");
        let attribute = el.attr("attribute");
        if xpath.is_none() && reference.is_none() && tag.is_none() {
            self.diagnostics.push(Diagnostic::error(
                el,
                format!(
                    "acl_permission '{id}' in {role} says nothing about where it applies (it \
                     needs one of xpath, reference or object-type); it is ignored"
                ),
            ));
            return None;
        }
        let expr = if let Some(x) = xpath {
            if reference.is_some() || tag.is_some() || attribute.is_some() {
                self.diagnostics.push(Diagnostic::warning(
                    el,
                    format!(
                        "acl_permission '{id}' has xpath and also reference, object-type or \
                         attribute; as in Pacemaker, only the xpath is used"
                    ),
                ));
            }
            x.to_string()
        } else {
            if tag.is_none() && attribute.is_some() {
                self.diagnostics.push(Diagnostic::warning(
                    el,
                    format!(
                        "acl_permission '{id}' has attribute without object-type; it applies \
                         to every element with that attribute"
                    ),
                ));
            }
            if reference.is_some() && (tag.is_some() || attribute.is_some()) {
                self.diagnostics.push(Diagnostic::warning(
                    el,
                    format!(
                        "acl_permission '{id}' has reference together with object-type or \
                         attribute; all of them must match, as in Pacemaker"
                    ),
                ));
            }
            built_xpath(tag, reference, attribute)
        };
        Some(self.add_permission(el, id, kind, role, expr))
    }

    /// Unpacks a `pacemaker-1.x` `read`, `write` or `deny` element as
    /// `upgrade-1.3.xsl` converts it.
    fn legacy_permission(&mut self, el: &Element, role: &str) -> Option<usize> {
        let id = self.permission_id(el, role);
        let kind = self.permission_kind(el, Some(el.name.as_str()), &id, role)?;
        let attribute = el.attr("attribute");
        let expr = if let Some(r) = el.attr("ref") {
            if attribute.is_some() {
                self.diagnostics.push(Diagnostic::warning(
                    el,
                    format!(
                        "<{}> '{id}' has ref and attribute; as Pacemaker's upgrade does, the \
                         attribute is ignored and the permission applies to the whole element",
                        el.name
                    ),
                ));
            }
            built_xpath(None, Some(r), None)
        } else if let Some(t) = el.attr("tag") {
            built_xpath(Some(t), None, attribute)
        } else if let Some(x) = el.attr("xpath") {
            match attribute {
                Some(a) => format!("{x}[@{a}]"),
                None => x.to_string(),
            }
        } else {
            self.diagnostics.push(Diagnostic::error(
                el,
                format!(
                    "<{}> '{id}' in {role} says nothing about where it applies (it needs tag, \
                     ref or xpath); it is ignored",
                    el.name
                ),
            ));
            return None;
        };
        Some(self.add_permission(el, id, kind, role, expr))
    }

    fn permission_id(&mut self, el: &Element, role: &str) -> String {
        match el.attr("id") {
            Some(id) => id.to_string(),
            None => {
                self.diagnostics.push(Diagnostic::warning(
                    el,
                    format!("a <{}> in {role} has no id; it is used anyway", el.name),
                ));
                "without ID".to_string()
            }
        }
    }

    fn permission_kind(
        &mut self,
        el: &Element,
        kind: Option<&str>,
        id: &str,
        role: &str,
    ) -> Option<Kind> {
        let Some(kind) = kind else {
            self.diagnostics.push(Diagnostic::error(
                el,
                format!(
                    "acl_permission '{id}' in {role} has no kind (read, write or deny); it is \
                     ignored"
                ),
            ));
            return None;
        };
        let k = Kind::parse(kind);
        if k.is_none() {
            self.diagnostics.push(Diagnostic::error(
                el,
                format!(
                    "acl_permission '{id}' in {role} has kind '{kind}', which is none of read, \
                     write and deny; it is ignored"
                ),
            ));
        }
        k
    }

    fn add_permission(
        &mut self,
        el: &Element,
        id: String,
        kind: Kind,
        role: &str,
        expr: String,
    ) -> usize {
        let (compiled, error) = match compile_acl_xpath(&expr) {
            Ok((x, rewritten)) => {
                if let Some(r) = rewritten {
                    self.diagnostics.push(Diagnostic::warning(
                        el,
                        format!(
                            "the xpath of permission '{id}' selects attributes; as in \
                             Pacemaker, it applies to the elements that have them (evaluated \
                             as {r}); select the elements with a predicate instead"
                        ),
                    ));
                }
                (Some(x), None)
            }
            Err(e) => {
                let consequence = match kind {
                    Kind::Deny => {
                        "so the users and groups that have it are denied everything (a deny \
                         that cannot be evaluated must not let anything through)"
                    }
                    Kind::Read | Kind::Write => "so it grants nothing",
                };
                self.diagnostics.push(Diagnostic::error(
                    el,
                    format!("permission '{id}' in {role} cannot be evaluated: {e}; {consequence}"),
                ));
                (None, Some(e.to_string()))
            }
        };
        self.permissions.push(Permission {
            id,
            kind,
            role: role.to_string(),
            xpath: expr,
            error,
            compiled,
        });
        self.permissions.len() - 1
    }

    // -----------------------------------------------------------------
    // Messages.

    fn denial(&self, user: &str, no_permissions: bool, cur: &Cursor<'_, '_>) -> Option<String> {
        if no_permissions {
            return Some(format!(
                "ACLs are enabled and user '{user}' has no permissions (no acl_target names \
                 them and no acl_group of theirs has a role)"
            ));
        }
        if let Some((i, e)) = &cur.marks.broken {
            let p = &self.permissions[*i];
            return Some(format!(
                "their deny permission '{}' (role '{}') cannot be evaluated ({e}), so every \
                 change of theirs is refused",
                p.id, p.role
            ));
        }
        let access = cur.access();
        match access.write {
            Decision::Allow { .. } => None,
            Decision::Deny { perm, depth } => {
                let p = &self.permissions[perm];
                let place = if depth + 1 == cur.els.len() {
                    "it".to_string()
                } else {
                    cur.path_to(depth)
                };
                Some(format!(
                    "permission '{}' (kind deny, role '{}') applies to {place}",
                    p.id, p.role
                ))
            }
            Decision::Default => {
                let read_only = match access.read {
                    Decision::Allow { perm, .. } => {
                        format!(
                            " (permission '{}' of role '{}' lets them only read it)",
                            self.permissions[perm].id, self.permissions[perm].role
                        )
                    }
                    _ => String::new(),
                };
                Some(format!(
                    "none of their permissions grants write access to it or to an element \
                     above it{read_only}"
                ))
            }
        }
    }
}

/// `enable-acl`, read as Pacemaker's `cib_acl_enabled` does.
fn enable_acl(root: &Element, now: Option<DateTime>) -> bool {
    let Some(configuration) = root.child("configuration") else {
        return false;
    };
    // The model needs a document; the status is of no use here.
    let mut shallow = Element {
        name: root.name.clone(),
        attrs: root.attrs.clone(),
        children: Vec::new(),
        pos: root.pos,
    };
    shallow.push(configuration.clone());
    let doc = Document::new(shallow);
    match Cib::from_document(&doc) {
        Ok(cib) => cib.cluster_options_at(now).0.enable_acl,
        Err(_) => false,
    }
}

/// The XPath Pacemaker builds for `object-type`, `reference` and
/// `attribute` (`create_acl`).
fn built_xpath(tag: Option<&str>, reference: Option<&str>, attribute: Option<&str>) -> String {
    let mut s = format!("//{}", tag.unwrap_or("*"));
    match (reference, attribute) {
        (Some(r), Some(a)) => s.push_str(&format!("[@id={} and @{a}]", quote(r))),
        (Some(r), None) => s.push_str(&format!("[@id={}]", quote(r))),
        (None, Some(a)) => s.push_str(&format!("[@{a}]")),
        (None, None) => {}
    }
    s
}

/// `s` as an XPath string literal.
fn quote(s: &str) -> String {
    if s.contains('\'') {
        format!("\"{s}\"")
    } else {
        format!("'{s}'")
    }
}

/// Compiles an ACL's XPath. `/` is the `<cib>` element, and a path ending
/// in an attribute step selects the elements that have the attribute (both
/// as Pacemaker applies them); the second value is the rewritten
/// expression, when it was rewritten.
fn compile_acl_xpath(expr: &str) -> Result<(XPath, Option<String>), xpath::XPathError> {
    if expr.trim() == "/" {
        return xpath::compile("/*").map(|x| (x, None));
    }
    let err = match xpath::compile(expr) {
        Ok(x) => return Ok((x, None)),
        Err(e) => e,
    };
    match attribute_step_rewrite(expr) {
        Some(rewritten) => match xpath::compile(&rewritten) {
            Ok(x) => Ok((x, Some(rewritten))),
            Err(_) => Err(err),
        },
        None => Err(err),
    }
}

/// `P/@a` as `P/self::*[@a]`, `P//@a` as `P/descendant-or-self::*[@a]` and
/// `//@a` as `//*[@a]`, for a single path whose last step is an attribute.
fn attribute_step_rewrite(expr: &str) -> Option<String> {
    let expr = expr.trim();
    // The last '/' outside brackets, parentheses and quotes; no top-level
    // union.
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut last_slash = None;
    for (i, c) in expr.char_indices() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' | '(' => depth += 1,
                ']' | ')' => depth -= 1,
                '|' if depth == 0 => return None,
                '/' if depth == 0 => last_slash = Some(i),
                _ => {}
            },
        }
    }
    let slash = last_slash?;
    let tail = expr[slash + 1..].trim();
    let name = tail
        .strip_prefix('@')
        .or_else(|| tail.strip_prefix("attribute::"))?
        .trim();
    let is_name = name == "*"
        || (!name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')));
    if !is_name {
        return None;
    }
    let head = &expr[..slash];
    if let Some(base) = head.strip_suffix('/') {
        if base.trim().is_empty() {
            Some(format!("//*[@{name}]"))
        } else {
            Some(format!("{base}/descendant-or-self::*[@{name}]"))
        }
    } else if head.trim().is_empty() {
        None
    } else {
        Some(format!("{head}/self::*[@{name}]"))
    }
}

// ---------------------------------------------------------------------------
// Evaluation.

/// The first permission of each kind that selects an element.
#[derive(Debug, Clone, Copy, Default)]
struct Mark {
    read: Option<usize>,
    write: Option<usize>,
    deny: Option<usize>,
}

#[derive(Debug, Default)]
struct Marks {
    /// By index path from the root.
    at: BTreeMap<Vec<usize>, Mark>,
    /// A deny permission that could not be evaluated, and why.
    broken: Option<(usize, String)>,
}

/// What decides one kind of access to an element: the nearest marked
/// element at or above it (its depth, 0 for the root) and the permission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Decision {
    #[default]
    Default,
    Allow {
        perm: usize,
        depth: usize,
    },
    Deny {
        perm: usize,
        depth: usize,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct Access {
    read: Decision,
    write: Decision,
}

impl Access {
    /// The access to an element at `depth` with `mark`, below an element
    /// with access `self`.
    fn below(self, mark: Option<&Mark>, depth: usize) -> Access {
        let Some(m) = mark else {
            return self;
        };
        if let Some(perm) = m.deny {
            let d = Decision::Deny { perm, depth };
            return Access { read: d, write: d };
        }
        Access {
            read: match m.write.or(m.read) {
                Some(perm) => Decision::Allow { perm, depth },
                None => self.read,
            },
            write: match m.write {
                Some(perm) => Decision::Allow { perm, depth },
                None => self.write,
            },
        }
    }
}

/// The readable part of `e` (at `path`, below an element whose read access
/// is `inherited`), or `None` when nothing in it is readable.
fn prune(
    e: &Element,
    marks: &Marks,
    inherited: Decision,
    path: &mut Vec<usize>,
) -> Option<Element> {
    let parent = Access {
        read: inherited,
        write: Decision::Default,
    };
    let read = parent.below(marks.at.get(path.as_slice()), path.len()).read;
    let readable = matches!(read, Decision::Allow { .. });
    let mut out = Element {
        name: e.name.clone(),
        attrs: if readable {
            e.attrs.clone()
        } else {
            e.attrs.iter().filter(|(k, _)| k == "id").cloned().collect()
        },
        children: Vec::new(),
        pos: e.pos,
    };
    let mut kept = false;
    let mut index = 0;
    for node in &e.children {
        match node {
            Node::Element(c) => {
                path.push(index);
                index += 1;
                if let Some(c) = prune(c, marks, read, path) {
                    out.children.push(Node::Element(c));
                    kept = true;
                }
                path.pop();
            }
            other => {
                if readable {
                    out.children.push(other.clone());
                }
            }
        }
    }
    (readable || kept).then_some(out)
}

/// A position in one of the two trees of a write check: the elements from
/// the root down, their index paths and their access.
struct Cursor<'t, 'm> {
    marks: &'m Marks,
    els: Vec<&'t Element>,
    path: Vec<usize>,
    access: Vec<Access>,
}

impl<'t, 'm> Cursor<'t, 'm> {
    fn new(marks: &'m Marks) -> Self {
        Cursor {
            marks,
            els: Vec::new(),
            path: Vec::new(),
            access: Vec::new(),
        }
    }

    /// Goes down to `e`, the `index`th element child of the current element
    /// (`None` for the root).
    fn enter(&mut self, e: &'t Element, index: Option<usize>) {
        if let Some(i) = index {
            self.path.push(i);
        }
        let parent = self.access.last().copied().unwrap_or_default();
        let a = parent.below(self.marks.at.get(self.path.as_slice()), self.els.len());
        self.els.push(e);
        self.access.push(a);
    }

    fn leave(&mut self) {
        self.els.pop();
        self.access.pop();
        if !self.els.is_empty() {
            self.path.pop();
        }
    }

    fn current(&self) -> &'t Element {
        self.els[self.els.len() - 1]
    }

    fn access(&self) -> Access {
        self.access.last().copied().unwrap_or_default()
    }

    /// Whether an element above the current one is `<acls>`.
    fn inside_acls(&self) -> bool {
        self.els[..self.els.len() - 1]
            .iter()
            .any(|e| e.name == "acls")
    }

    /// The path of the element at `depth`.
    fn path_to(&self, depth: usize) -> String {
        let mut s = String::new();
        for e in &self.els[..=depth] {
            s.push('/');
            s.push_str(&e.name);
            if let Some(id) = e.attr("id") {
                s.push_str(&format!("[@id={}]", quote(id)));
            }
        }
        s
    }

    fn path_string(&self) -> String {
        self.path_to(self.els.len() - 1)
    }
}

struct WriteCheck<'a> {
    acls: &'a Acls,
    user: &'a str,
    no_permissions: bool,
}

impl WriteCheck<'_> {
    fn refuse(&self, cur: &Cursor<'_, '_>, refused: Refused, reason: String) -> AclError {
        AclError {
            user: self.user.to_string(),
            path: cur.path_string(),
            refused,
            reason,
        }
    }

    fn denial(&self, cur: &Cursor<'_, '_>) -> Option<String> {
        self.acls.denial(self.user, self.no_permissions, cur)
    }

    /// A change of the element itself: writable before and after.
    fn changed(
        &self,
        o: &Cursor<'_, '_>,
        n: &Cursor<'_, '_>,
        refused: Refused,
    ) -> Result<(), AclError> {
        if let Some(reason) = self.denial(o) {
            return Err(self.refuse(n, refused, reason));
        }
        if let Some(reason) = self.denial(n) {
            return Err(self.refuse(n, refused, format!("after the change, {reason}")));
        }
        Ok(())
    }

    /// The current elements of `o` and `n` are a pair.
    fn pair<'t>(&self, o: &mut Cursor<'t, '_>, n: &mut Cursor<'t, '_>) -> Result<(), AclError> {
        let (oe, ne) = (o.current(), n.current());
        let root_cib = n.els.len() == 1 && ne.name == "cib";
        let exempt = |k: &str| root_cib && VERSION_ATTRIBUTES.contains(&k);
        let mut attributes = BTreeSet::new();
        for (k, v) in &ne.attrs {
            if oe.attr(k) != Some(v.as_str()) && !exempt(k) {
                attributes.insert(k.clone());
            }
        }
        for (k, _) in &oe.attrs {
            if ne.attr(k).is_none() && !exempt(k) {
                attributes.insert(k.clone());
            }
        }
        if !attributes.is_empty() {
            self.changed(
                o,
                n,
                Refused::Change {
                    attributes: attributes.into_iter().collect(),
                },
            )?;
        }

        // Pair the children: the first unmatched one with the same name and
        // id (`find_matching_children`).
        let old_kids: Vec<&'t Element> = oe.elements().collect();
        let new_kids: Vec<&'t Element> = ne.elements().collect();
        let mut waiting: BTreeMap<(&str, Option<&str>), VecDeque<usize>> = BTreeMap::new();
        for (i, c) in new_kids.iter().enumerate() {
            waiting
                .entry((c.name.as_str(), c.attr("id")))
                .or_default()
                .push_back(i);
        }
        let mut partner: Vec<Option<usize>> = vec![None; new_kids.len()];
        let mut previous: Option<usize> = None;
        let mut reordered = false;
        for (oi, c) in old_kids.iter().enumerate() {
            let found = waiting
                .get_mut(&(c.name.as_str(), c.attr("id")))
                .and_then(VecDeque::pop_front);
            match found {
                Some(ni) => {
                    partner[ni] = Some(oi);
                    if previous.is_some_and(|p| p > ni) {
                        reordered = true;
                    }
                    previous = Some(ni);
                }
                None => {
                    o.enter(c, Some(oi));
                    let r = self.deleted(o);
                    o.leave();
                    r?;
                }
            }
        }
        if reordered {
            self.changed(o, n, Refused::Reorder)?;
        }
        for (ni, c) in new_kids.iter().enumerate() {
            n.enter(c, Some(ni));
            let r = match partner[ni] {
                Some(oi) => {
                    o.enter(old_kids[oi], Some(oi));
                    let r = self.pair(o, n);
                    o.leave();
                    r
                }
                None => self.created(n),
            };
            n.leave();
            r?;
        }
        Ok(())
    }

    /// The current element of `o` and everything below it are deleted.
    fn deleted(&self, o: &mut Cursor<'_, '_>) -> Result<(), AclError> {
        if let Some(reason) = self.denial(o) {
            return Err(self.refuse(o, Refused::Delete, reason));
        }
        let e = o.current();
        for (i, c) in e.elements().enumerate() {
            o.enter(c, Some(i));
            let r = self.deleted(o);
            o.leave();
            r?;
        }
        Ok(())
    }

    /// The current element of `n` and everything below it are created.
    fn created(&self, n: &mut Cursor<'_, '_>) -> Result<(), AclError> {
        let e = n.current();
        let scaffolding =
            !self.no_permissions && e.attrs.iter().all(|(k, _)| k == "id") && !n.inside_acls();
        if !scaffolding && let Some(reason) = self.denial(n) {
            return Err(self.refuse(n, Refused::Create, reason));
        }
        for (i, c) in e.elements().enumerate() {
            n.enter(c, Some(i));
            let r = self.created(n);
            n.leave();
            r?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Element {
        Document::parse(text).unwrap().root
    }

    /// A small CIB with `enable-acl` and the given `<acls>` content.
    fn cib(acls: &str, resources: &str) -> Element {
        parse(&format!(
            "<cib epoch=\"1\" num_updates=\"0\" admin_epoch=\"0\"><configuration>\
             <crm_config><cluster_property_set id=\"o\">\
             <nvpair id=\"o-acl\" name=\"enable-acl\" value=\"true\"/>\
             </cluster_property_set></crm_config><nodes/>\
             <resources>{resources}</resources><constraints/>\
             <acls>{acls}</acls></configuration><status/></cib>"
        ))
    }

    const RSC: &str = "<primitive id=\"a\" class=\"ocf\" provider=\"x\" type=\"y\">\
         <meta_attributes id=\"a-m\"><nvpair id=\"a-m-t\" name=\"target-role\" value=\"Started\"/>\
         </meta_attributes></primitive>\
         <primitive id=\"b\" class=\"ocf\" provider=\"x\" type=\"y\"/>";

    fn role(user: &str, perms: &str) -> String {
        format!(
            "<acl_role id=\"r-{user}\">{perms}</acl_role>\
             <acl_target id=\"{user}\"><role id=\"r-{user}\"/></acl_target>"
        )
    }

    fn with_attr(root: &Element, xpath: &str, name: &str, value: &str) -> Element {
        let mut t = root.clone();
        let x = xpath::compile(xpath).unwrap();
        for p in x.select(root).unwrap() {
            xpath::element_at_mut(&mut t, &p)
                .unwrap()
                .set_attr(name, value);
        }
        t
    }

    #[test]
    fn attribute_steps_are_rewritten_to_their_elements() {
        assert_eq!(
            attribute_step_rewrite("//nvpair/@value").as_deref(),
            Some("//nvpair/self::*[@value]")
        );
        assert_eq!(
            attribute_step_rewrite("//@score").as_deref(),
            Some("//*[@score]")
        );
        assert_eq!(
            attribute_step_rewrite("/cib//@id").as_deref(),
            Some("/cib/descendant-or-self::*[@id]")
        );
        assert_eq!(
            attribute_step_rewrite("//primitive[@id='a/b']/attribute::class").as_deref(),
            Some("//primitive[@id='a/b']/self::*[@class]")
        );
        assert_eq!(attribute_step_rewrite("//a/@x | //b/@y"), None);
        assert_eq!(attribute_step_rewrite("//primitive"), None);
        let root = parse("<cib><a x=\"1\"/><a/><b><a x=\"2\"/></b></cib>");
        let (x, r) = compile_acl_xpath("//a/@x").unwrap();
        assert!(r.is_some());
        assert_eq!(x.select(&root).unwrap(), vec![vec![0], vec![2, 0]]);
        let (x, r) = compile_acl_xpath("/").unwrap();
        assert!(r.is_none());
        assert_eq!(x.select(&root).unwrap(), vec![Vec::<usize>::new()]);
    }

    #[test]
    fn built_xpaths_follow_pacemaker() {
        assert_eq!(built_xpath(Some("primitive"), None, None), "//primitive");
        assert_eq!(built_xpath(None, Some("web"), None), "//*[@id='web']");
        assert_eq!(
            built_xpath(Some("nvpair"), None, Some("value")),
            "//nvpair[@value]"
        );
        assert_eq!(
            built_xpath(Some("nvpair"), Some("it's"), Some("value")),
            "//nvpair[@id=\"it's\" and @value]"
        );
        assert_eq!(built_xpath(None, None, Some("x")), "//*[@x]");
    }

    #[test]
    fn deeper_marks_win_and_deny_wins_at_one_element() {
        // Same element: deny beats write beats read, across roles.
        let acls = "<acl_role id=\"w\"><acl_permission id=\"w1\" kind=\"write\" xpath=\"/cib\"/></acl_role>\
             <acl_role id=\"d\"><acl_permission id=\"d1\" kind=\"deny\" xpath=\"/cib\"/></acl_role>\
             <acl_role id=\"r\"><acl_permission id=\"r1\" kind=\"read\" xpath=\"/cib\"/></acl_role>\
             <acl_target id=\"u\"><role id=\"r\"/><role id=\"w\"/><role id=\"d\"/></acl_target>\
             <acl_target id=\"v\"><role id=\"r\"/><role id=\"w\"/></acl_target>";
        let root = cib(acls, RSC);
        let a = Acls::from_cib(&root);
        assert!(a.diagnostics().is_empty(), "{:?}", a.diagnostics());
        assert!(a.filter_read(&root, "u", &[]).is_none());
        let changed = with_attr(&root, "//primitive[@id='b']", "type", "z");
        let e = a.check_write(&root, &changed, "u", &[]).unwrap_err();
        assert!(e.reason.contains("'d1'"), "{e}");
        assert!(a.check_write(&root, &changed, "v", &[]).is_ok());
        assert_eq!(a.filter_read(&root, "v", &[]).unwrap(), root);

        // Deeper wins: deny /cib but write //primitive[@id='b'].
        let root = cib(
            &role(
                "m",
                "<acl_permission id=\"m1\" kind=\"deny\" xpath=\"/cib\"/>\
                 <acl_permission id=\"m2\" kind=\"write\" reference=\"b\"/>",
            ),
            RSC,
        );
        let a = Acls::from_cib(&root);
        let ok = with_attr(&root, "//primitive[@id='b']", "type", "z");
        assert!(a.check_write(&root, &ok, "m", &[]).is_ok());
        let bad = with_attr(&root, "//primitive[@id='a']", "type", "z");
        let e = a.check_write(&root, &bad, "m", &[]).unwrap_err();
        assert_eq!(e.path, "/cib/configuration/resources/primitive[@id='a']");
        assert!(
            e.reason.contains("'m1'") && e.reason.contains("/cib"),
            "{e}"
        );
        let seen = a.filter_read(&root, "m", &[]).unwrap();
        assert_eq!(
            seen.to_xml(),
            "<cib><configuration><resources>\
             <primitive id=\"b\" class=\"ocf\" provider=\"x\" type=\"y\"/>\
             </resources></configuration></cib>"
        );
    }

    #[test]
    fn read_marks_do_not_stop_write_inheritance() {
        let root = cib(
            &role(
                "u",
                "<acl_permission id=\"w\" kind=\"write\" xpath=\"//resources\"/>\
                 <acl_permission id=\"r\" kind=\"read\" reference=\"a\"/>",
            ),
            RSC,
        );
        let a = Acls::from_cib(&root);
        let changed = with_attr(&root, "//primitive[@id='a']", "type", "z");
        assert!(a.check_write(&root, &changed, "u", &[]).is_ok());
    }

    #[test]
    fn diagnostics_name_broken_definitions() {
        let root = cib(
            "<acl_role id=\"r\">\
               <acl_permission id=\"p1\" kind=\"read\" xpath=\"//primitive[\"/>\
               <acl_permission id=\"p2\" kind=\"maybe\" xpath=\"/cib\"/>\
               <acl_permission id=\"p3\" kind=\"read\"/>\
               <acl_permission id=\"p4\" kind=\"read\" xpath=\"//nvpair/@value\"/>\
             </acl_role>\
             <acl_role id=\"r\"/>\
             <acl_target id=\"u\"><role id=\"r\"/><role id=\"nope\"/></acl_target>",
            RSC,
        );
        let a = Acls::from_cib(&root);
        let text: Vec<String> = a.diagnostics().iter().map(|d| d.to_string()).collect();
        let all = text.join("\n");
        assert!(
            all.contains("'p1'") && all.contains("cannot be evaluated"),
            "{all}"
        );
        assert!(all.contains("'maybe'"), "{all}");
        assert!(
            all.contains("'p3'") && all.contains("says nothing"),
            "{all}"
        );
        assert!(
            all.contains("'p4'") && all.contains("selects attributes"),
            "{all}"
        );
        assert!(all.contains("another acl_role"), "{all}");
        assert!(all.contains("role 'nope'"), "{all}");
        // p1 grants nothing, p4 still reads the nvpair with a value.
        let seen = a.filter_read(&root, "u", &[]).unwrap();
        assert!(seen.to_xml().contains("name=\"target-role\""));
        assert!(!seen.to_xml().contains("class="));
    }

    #[test]
    fn broken_deny_fails_closed() {
        let root = cib(
            &role(
                "u",
                "<acl_permission id=\"w\" kind=\"write\" xpath=\"/cib\"/>\
                 <acl_permission id=\"d\" kind=\"deny\" xpath=\"//primitive[ends-with(@id,'a')]\"/>",
            ),
            RSC,
        );
        let a = Acls::from_cib(&root);
        assert!(a.filter_read(&root, "u", &[]).is_none());
        let changed = with_attr(&root, "//primitive[@id='b']", "type", "z");
        let e = a.check_write(&root, &changed, "u", &[]).unwrap_err();
        assert!(e.reason.contains("cannot be evaluated"), "{e}");
        // No change is no refusal.
        assert!(a.check_write(&root, &root, "u", &[]).is_ok());
    }

    #[test]
    fn legacy_acl_user_form() {
        let root = cib(
            "<acl_role id=\"ro\"><read id=\"ro-r\" xpath=\"/cib\"/></acl_role>\
             <acl_user id=\"old\"><role_ref id=\"ro\"/></acl_user>\
             <acl_user id=\"direct\"><write id=\"dw\" ref=\"b\"/><deny id=\"dd\" tag=\"nvpair\" attribute=\"value\"/></acl_user>",
            RSC,
        );
        let a = Acls::from_cib(&root);
        assert!(a.diagnostics().is_empty(), "{:?}", a.diagnostics());
        assert_eq!(a.filter_read(&root, "old", &[]).unwrap(), root);
        let changed = with_attr(&root, "//primitive[@id='b']", "type", "z");
        assert!(a.check_write(&root, &changed, "old", &[]).is_err());
        assert!(a.check_write(&root, &changed, "direct", &[]).is_ok());
        let p = a.permissions_of("direct", &[]);
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].xpath, "//nvpair[@value]");
        assert_eq!(p[1].kind, Kind::Deny);
    }

    #[test]
    fn two_acls_sections_give_nothing() {
        let mut root = cib(
            &role(
                "u",
                "<acl_permission id=\"r\" kind=\"read\" xpath=\"/cib\"/>",
            ),
            RSC,
        );
        root.child_mut("status").unwrap().push(Element::new("acls"));
        let a = Acls::from_cib(&root);
        assert!(a.permissions_of("u", &[]).is_empty());
        assert!(a.filter_read(&root, "u", &[]).is_none());
        assert!(a.diagnostics()[0].message.contains("2 <acls> sections"));
    }

    #[test]
    fn version_attributes_are_not_the_users_change() {
        let root = cib(
            &role(
                "u",
                "<acl_permission id=\"w\" kind=\"write\" xpath=\"//resources\"/>",
            ),
            RSC,
        );
        let a = Acls::from_cib(&root);
        let mut changed = with_attr(&root, "//primitive[@id='b']", "type", "z");
        changed.set_attr("epoch", "2");
        changed.set_attr("cib-last-written", "now");
        changed.set_attr("update-user", "u");
        assert!(a.check_write(&root, &changed, "u", &[]).is_ok());
        changed.set_attr("admin_epoch", "7");
        let e = a.check_write(&root, &changed, "u", &[]).unwrap_err();
        assert_eq!(e.path, "/cib");
        assert_eq!(
            e.refused,
            Refused::Change {
                attributes: vec!["admin_epoch".into()]
            }
        );
        assert_eq!(
            e.to_string(),
            "ACLs do not allow user 'u' to change attribute 'admin_epoch' of /cib: none of \
             their permissions grants write access to it or to an element above it"
        );
    }

    #[test]
    fn reordering_children_changes_the_parent() {
        let root = cib(
            &role(
                "u",
                "<acl_permission id=\"w\" kind=\"write\" object-type=\"primitive\"/>",
            ),
            RSC,
        );
        let a = Acls::from_cib(&root);
        let mut swapped = root.clone();
        let res = xpath::element_at_mut(&mut swapped, &[0, 2]).unwrap();
        res.children.reverse();
        let e = a.check_write(&root, &swapped, "u", &[]).unwrap_err();
        assert_eq!(e.refused, Refused::Reorder);
        assert_eq!(e.path, "/cib/configuration/resources");
    }
}
