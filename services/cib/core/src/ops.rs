//! The cibadmin operations on a CIB, with validation and version bumps.
//!
//! A replicated CIB applies every change as an [`Op`], in the same order, on
//! every replica, so [`apply`] is a deterministic function of the CIB, the
//! operation and the [`Context`] the originator decided (its clock reading,
//! its node, client and user): no clock, no randomness, no hash order. The
//! semantics are Pacemaker's (`lib/cib/cib_ops.c`, `cibadmin`):
//!
//! - [`Op::Query`]: the whole CIB, one section, or the elements an XPath
//!   selects (an error when nothing matches, as cibadmin's "No such device
//!   or address").
//! - [`Op::Create`]: adds the element to the section (every child when the
//!   XML is the section element itself, e.g. `<resources>...</resources>`);
//!   a child of the section with the same tag and id (or, without an id, the
//!   same tag) is an error. A missing section is created.
//! - [`Op::Modify`]: finds, depth-first from the section (or the whole CIB),
//!   the first element with the XML's tag and the same id (or both without
//!   one), the section element itself included, and merges the XML into it:
//!   attributes are set, and each child is merged into the first child with
//!   its tag and its `id` (else `id-ref`, else only the tag), or added. An
//!   attribute whose new value is `NAME++` or `NAME+=N` becomes its old value
//!   plus 1 or N with score arithmetic (±INFINITY), when it had a value;
//!   otherwise the text is set literally (cibadmin `--score`, its default).
//!   Nothing is ever removed (Pacemaker has no `__delete__` marker).
//!   Without a match: an error, or with `create_if_missing` the XML is added
//!   to the section (cibadmin `-c`).
//! - [`Op::Replace`]: with an XPath, the first match is replaced in place
//!   (the `<cib>` itself: the whole CIB, see below); with a section, the
//!   first element below it with the XML's tag (and id, when the XML has
//!   one) is replaced in place, and XML that is the section element
//!   replaces the section. A whole `<cib>` replaces the CIB unless its
//!   version is older than the current one.
//! - [`Op::Delete`]: deletes the first element below the section (or the
//!   CIB) with the XML's tag whose attributes include every attribute of the
//!   XML (values compared ignoring ASCII case, as Pacemaker does); children
//!   of the XML do not matter. XML that is the section element deletes each
//!   of its children that way. No match is not an error (Pacemaker answers
//!   OK): the [`Outcome`] says so in its notes.
//! - [`Op::DeleteXpath`]: deletes the first match, or every match (cibadmin
//!   `--delete-all`); no match is not an error; the `<cib>` itself cannot be
//!   deleted.
//! - [`Op::Erase`]: leaves an empty `<configuration>` (crm_config, nodes,
//!   resources, constraints) and `<status>`, keeps the `<cib>` attributes,
//!   and raises `admin_epoch` by one, as Pacemaker does so that the erased
//!   CIB wins over every copy.
//! - [`Op::Bump`]: raises `epoch` by one.
//! - [`Op::Upgrade`]: moves `validate-with` to [`NEWEST_SCHEMA`] (see
//!   [`upgrade`](#upgrade) below).
//!
//! # Versions
//!
//! As pacemaker-based: after the operation, if `<configuration>` changed,
//! `epoch` goes up by one and `num_updates` goes to 0, and the `<cib>`
//! attributes `cib-last-written` (from [`Context::now`]), `update-origin`,
//! `update-client` and `update-user` (from the context; removed when it has
//! none) are set. If anything else changed (status, or only the `<cib>`
//! attributes, as with a modify of `admin_epoch`), only `num_updates` goes up
//! by one. If nothing changed, nothing does, the version included.
//! `admin_epoch` changes only when the caller sets it, or by Erase and
//! Upgrade, which Pacemaker defines to raise it. So Bump gives
//! `epoch + 1` and `num_updates + 1`, exactly as Pacemaker's bump does. A
//! change that would move `admin_epoch`, or `epoch` at the same
//! `admin_epoch`, backwards is refused.
//!
//! # Validation
//!
//! The result is checked with [`crate::validate::validate`] before it
//! replaces the CIB: the operation is refused if the result has an error
//! (ids used twice, references naming nothing, invalid values, a missing
//! section, ...) that the CIB did not have before, and the error names each
//! new problem. Errors that were already there do not block unrelated
//! changes (or their fixes). Diagnostics are compared by element, id and
//! message, with source positions left out, since elements move. A change
//! that leaves the configuration as it was (a status update, the hot path)
//! is not validated, as Pacemaker does not validate status updates; a
//! configuration change is validated with the status it comes with.
//!
//! Every operation is all or nothing: it works on a copy, and an error
//! leaves the CIB exactly as it was.
//!
//! # Bounds
//!
//! An XML argument is at most [`MAX_XML_BYTES`] bytes and nests at most
//! [`MAX_XML_DEPTH`] elements deep; XPath expressions are bounded by
//! [`crate::xpath`]. White space between the elements of an XML argument is
//! dropped (Pacemaker strips text too), and elements added next to
//! indented siblings get their indentation.
//!
//! # Upgrade
//!
//! Pacemaker upgrades with XSL transformations; this does the part of them
//! that the configurations Vigil reads need, from any `pacemaker-1.x` or
//! `pacemaker-2.x` (a missing `validate-with` counts as `pacemaker-1.0`) to
//! [`NEWEST_SCHEMA`], the newest schema of the corpus. Each change is listed
//! in the outcome's notes.
//!
//! From 1.x (Pacemaker's `upgrade-1.3.xsl`), the ACLs: `acl_user` becomes
//! `acl_target`, `role_ref` becomes `role`, and `read`/`write`/`deny` become
//! `acl_permission` with `kind` (their `ref` becomes `reference`, `tag`
//! becomes `object-type`, and an `attribute` with an `xpath` is folded into
//! it as `[@attribute]`); the permissions written directly in an `acl_user`
//! move into a new `acl_role id="auto-USER"` that the target refers to.
//!
//! From 1.x and 2.x (Pacemaker's `upgrade-2.10` transformations):
//! - cluster options with legacy names are renamed (`stonith_enabled` to
//!   `stonith-enabled`, `no_quorum_policy` to `no-quorum-policy`,
//!   `transition_idle_timeout` to `cluster-delay`, ...);
//!   `default-resource-stickiness` and `is-managed-default` move to
//!   `rsc_defaults` as `resource-stickiness` and `is-managed`,
//!   `default-action-timeout` to `op_defaults` as `timeout`, and
//!   `default-resource-failure-stickiness="-INFINITY"` to `rsc_defaults` as
//!   `migration-threshold="1"` (into the first rule-less `meta_attributes`
//!   there, or a new `rsc_defaults-options`/`op_defaults-options`, unless
//!   already set there; options in a set with a rule stay where they are);
//!   `expected-quorum-votes`, `notification-agent`, `notification-recipient`,
//!   `default-migration-threshold`, other `default-resource-failure-stickiness`
//!   values and a legacy `cluster-infrastructure` (heartbeat, openais, cman)
//!   are dropped;
//! - `node type="normal"` becomes `type="member"`;
//! - fencing parameters `pcmk_*_cmd` become `pcmk_*_action`, and
//!   `pcmk_arg_map="port:X"` becomes `pcmk_host_argument="X"` (other
//!   `pcmk_arg_map` values are dropped);
//! - resource meta-attributes `resource-failure-stickiness="-INFINITY"`
//!   become `migration-threshold="1"` (other values are dropped), and
//!   `isolation*` become `target-role="Stopped"`;
//! - an operation's `requires` attribute is dropped; on start and promote it
//!   moves to the resource's meta-attributes (unless set there);
//! - `score-attribute` and `score-attribute-mangle` are dropped from
//!   colocations (they never had an effect).
//!
//! Like Pacemaker, a successful upgrade raises `admin_epoch` by one and
//! resets `epoch` and `num_updates` to 1 before the usual version rule
//! applies (so `epoch` ends at 2 when the configuration changed, else
//! `num_updates` ends at 2). A CIB already at [`NEWEST_SCHEMA`] or newer
//! (including `pacemaker-next`) is left alone, with a note.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use vigil_types::Score;

use crate::model::{CibVersion, parse_score};
use crate::validate::{Diagnostic, validate};
use crate::xml::{Document, Element, Node, XmlError};
use crate::xpath::{self, XPathError};

/// The largest XML argument accepted, in bytes.
pub const MAX_XML_BYTES: usize = 16 * 1024 * 1024;
/// The deepest nesting of elements accepted in an XML argument.
pub const MAX_XML_DEPTH: usize = 64;
/// The schema [`Op::Upgrade`] moves a CIB to.
pub const NEWEST_SCHEMA: &str = "pacemaker-3.10";

/// A section of the CIB, as cibadmin's `--scope` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    Configuration,
    Nodes,
    Resources,
    Constraints,
    CrmConfig,
    RscDefaults,
    OpDefaults,
    Status,
    Acls,
    FencingTopology,
    Tags,
    Alerts,
}

impl Section {
    pub const ALL: [Section; 12] = [
        Section::Configuration,
        Section::Nodes,
        Section::Resources,
        Section::Constraints,
        Section::CrmConfig,
        Section::RscDefaults,
        Section::OpDefaults,
        Section::Status,
        Section::Acls,
        Section::FencingTopology,
        Section::Tags,
        Section::Alerts,
    ];

    /// The element name (and cibadmin's scope name).
    pub fn name(self) -> &'static str {
        match self {
            Section::Configuration => "configuration",
            Section::Nodes => "nodes",
            Section::Resources => "resources",
            Section::Constraints => "constraints",
            Section::CrmConfig => "crm_config",
            Section::RscDefaults => "rsc_defaults",
            Section::OpDefaults => "op_defaults",
            Section::Status => "status",
            Section::Acls => "acls",
            Section::FencingTopology => "fencing-topology",
            Section::Tags => "tags",
            Section::Alerts => "alerts",
        }
    }

    /// The section named `name`.
    pub fn parse(name: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The element names from `<cib>` down to the section.
    fn path(self) -> &'static [&'static str] {
        match self {
            Section::Configuration => &["configuration"],
            Section::Status => &["status"],
            Section::Nodes => &["configuration", "nodes"],
            Section::Resources => &["configuration", "resources"],
            Section::Constraints => &["configuration", "constraints"],
            Section::CrmConfig => &["configuration", "crm_config"],
            Section::RscDefaults => &["configuration", "rsc_defaults"],
            Section::OpDefaults => &["configuration", "op_defaults"],
            Section::Acls => &["configuration", "acls"],
            Section::FencingTopology => &["configuration", "fencing-topology"],
            Section::Tags => &["configuration", "tags"],
            Section::Alerts => &["configuration", "alerts"],
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Section {
    type Err = String;
    fn from_str(s: &str) -> Result<Section, String> {
        Section::parse(s).ok_or_else(|| {
            let names: Vec<&str> = Section::ALL.iter().map(|s| s.name()).collect();
            format!(
                "'{s}' is not a CIB section; use one of {}",
                names.join(", ")
            )
        })
    }
}

/// One cibadmin operation. XML arguments are text, parsed (and bounded) by
/// [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// The whole CIB (neither given), a section, or the elements `xpath`
    /// selects (giving both is an error).
    Query {
        xpath: Option<String>,
        section: Option<Section>,
    },
    /// Adds `xml` (or each child of `xml` when it is the section element)
    /// to `section`.
    Create { section: Section, xml: String },
    /// Merges `xml` into the element with its tag and id in `section` (or
    /// anywhere in the CIB).
    Modify {
        section: Option<Section>,
        xml: String,
        create_if_missing: bool,
    },
    /// Replaces the first match of `xpath`, or the element with `xml`'s tag
    /// and id in `section` (or anywhere), with `xml`.
    Replace {
        section: Option<Section>,
        xpath: Option<String>,
        xml: String,
    },
    /// Deletes the first element in `section` (or anywhere) with `xml`'s tag
    /// and attributes.
    Delete {
        section: Option<Section>,
        xml: String,
    },
    /// Deletes the first match of `xpath`, or all of them.
    DeleteXpath { xpath: String, all_matches: bool },
    /// Empties the configuration and the status.
    Erase,
    /// Raises `epoch` by one.
    Bump,
    /// Several changes applied as one, in order, all or none, with one
    /// version step (the status hot path: many operation results in one
    /// update). Queries and other batches are refused inside.
    Batch { ops: Vec<Op> },
    /// Moves the CIB to [`NEWEST_SCHEMA`].
    Upgrade,
}

/// What the originator of an operation decided, so that every replica
/// applies it identically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// The originator's clock, as `cib-last-written` shows it (Pacemaker
    /// writes e.g. `Wed Jan  7 10:00:00 2026`); not set when empty.
    pub now: String,
    /// The node the request came from (`update-origin`).
    pub origin: Option<String>,
    /// The client's name (`update-client`), e.g. `cibadmin`.
    pub client: Option<String>,
    /// The user the client acts for (`update-user`).
    pub user: Option<String>,
}

/// What an operation changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// Nothing (queries, and operations that found nothing to do).
    None,
    /// Only things outside `<configuration>`: the status section or the
    /// `<cib>` attributes; `num_updates` went up.
    Status,
    /// The configuration; `epoch` went up and `num_updates` is 0.
    Configuration,
}

/// The result of [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub change: Change,
    /// The version before the operation.
    pub before: CibVersion,
    /// The version after it.
    pub version: CibVersion,
    /// For queries: the section, the whole `<cib>`, or the XPath's matches in
    /// document order. Empty for other operations.
    pub result: Vec<Element>,
    /// What an operator may want to know: nothing matched a delete, the
    /// upgrade's changes, ...
    pub notes: Vec<String>,
}

/// Why an operation was refused. The CIB is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    /// The XML argument is longer than [`MAX_XML_BYTES`].
    TooLarge { size: usize, limit: usize },
    /// The XML argument nests deeper than [`MAX_XML_DEPTH`].
    TooDeep { limit: usize },
    /// The XML argument is not well-formed.
    BadXml(XmlError),
    /// The XPath is not supported, or too expensive.
    XPath(XPathError),
    /// A query or replace found nothing at the XPath.
    NoMatch { xpath: String },
    /// The section asked for does not exist in the CIB.
    NoSection { section: Section },
    /// The arguments do not make sense together.
    BadRequest(String),
    /// Create: the section already has this element.
    AlreadyExists {
        element: String,
        id: Option<String>,
        section: Section,
    },
    /// Modify or replace: there is no such element.
    NotFound {
        element: String,
        id: Option<String>,
        /// "the resources section", "the CIB".
        scope: String,
        /// "modify" or "replace".
        action: &'static str,
    },
    /// Delete by XPath: the XPath selects the `<cib>` element.
    WholeCib { xpath: String },
    /// The change would make a version attribute go backwards.
    VersionBackwards {
        field: &'static str,
        before: CibVersion,
        after: CibVersion,
    },
    /// A whole-CIB replace with an older CIB.
    OlderReplacement {
        field: &'static str,
        current: CibVersion,
        replacement: CibVersion,
    },
    /// The result would have errors the CIB did not have.
    Invalid { diagnostics: Vec<Diagnostic> },
    /// The CIB's schema cannot be upgraded.
    CannotUpgrade(String),
}

/// `<primitive id="web">`, or `<primitive>` without an id.
fn describe(element: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("<{element} id=\"{id}\">"),
        None => format!("<{element}>"),
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::TooLarge { size, limit } => write!(
                f,
                "the XML argument is {size} bytes long, more than the limit of {limit} bytes"
            ),
            OpError::TooDeep { limit } => write!(
                f,
                "the XML argument nests elements more than {limit} levels deep"
            ),
            OpError::BadXml(e) => write!(f, "the XML argument is not well-formed: {e}"),
            OpError::XPath(e) => write!(f, "{e}"),
            OpError::NoMatch { xpath } => write!(f, "no element matches the xpath '{xpath}'"),
            OpError::NoSection { section } => write!(f, "the CIB has no <{section}> section"),
            OpError::BadRequest(m) => f.write_str(m),
            OpError::AlreadyExists {
                element,
                id,
                section,
            } => write!(
                f,
                "{} already exists in the {section} section; use modify or replace to change it",
                describe(element, id.as_deref())
            ),
            OpError::NotFound {
                element,
                id,
                scope,
                action,
            } => {
                write!(
                    f,
                    "there is no {} in {scope} to {action}",
                    describe(element, id.as_deref())
                )?;
                if *action == "modify" {
                    f.write_str("; create it first, or allow modify to create it")?;
                }
                Ok(())
            }
            OpError::WholeCib { xpath } => write!(
                f,
                "the xpath '{xpath}' selects the <cib> element itself, which cannot be deleted \
                 (erase empties the CIB)"
            ),
            OpError::VersionBackwards {
                field,
                before,
                after,
            } => write!(
                f,
                "the change would move the CIB's {field} backwards (version {before} to \
                 {after}); versions only grow"
            ),
            OpError::OlderReplacement {
                field,
                current,
                replacement,
            } => write!(
                f,
                "the replacement CIB (version {replacement}) is older than the current one \
                 ({current}): its {field} is lower; raise its epoch or admin_epoch to replace \
                 the CIB with it"
            ),
            OpError::Invalid { diagnostics } => {
                let n = diagnostics.len();
                write!(
                    f,
                    "the change was refused: it would introduce {n} error{}",
                    if n == 1 { "" } else { "s" }
                )?;
                for (i, d) in diagnostics.iter().take(10).enumerate() {
                    let sep = if i == 0 { ": " } else { "; " };
                    write!(
                        f,
                        "{sep}{}: {}",
                        describe(&d.element, d.id.as_deref()),
                        d.message
                    )?;
                }
                if n > 10 {
                    write!(f, "; and {} more", n - 10)?;
                }
                Ok(())
            }
            OpError::CannotUpgrade(m) => write!(f, "cannot upgrade: {m}"),
        }
    }
}

impl std::error::Error for OpError {}

impl From<XPathError> for OpError {
    fn from(e: XPathError) -> OpError {
        OpError::XPath(e)
    }
}

/// The version in the `<cib>` attributes; a missing or invalid number
/// counts as 0 (as [`CibVersion::read`] reads it).
pub fn version(root: &Element) -> CibVersion {
    CibVersion::read(root).0
}

/// Applies `op` to `cib`. On success the CIB holds the result (versions and
/// origin attributes updated); on error it is exactly as it was.
pub fn apply(cib: &mut Document, op: &Op, ctx: &Context) -> Result<Outcome, OpError> {
    apply_keeping_previous(cib, op, ctx).map(|(outcome, _)| outcome)
}

/// As [`apply`], also handing back the CIB as it was when the operation
/// changed it (`None` when nothing changed): callers that need both, to
/// diff them, are spared a copy of the whole CIB.
pub fn apply_keeping_previous(
    cib: &mut Document,
    op: &Op,
    ctx: &Context,
) -> Result<(Outcome, Option<Document>), OpError> {
    let before = version(&cib.root);
    let unchanged = |result, notes| Outcome {
        change: Change::None,
        before,
        version: before,
        result,
        notes,
    };
    if let Op::Query { xpath, section } = op {
        let result = query(&cib.root, xpath.as_deref(), *section)?;
        return Ok((unchanged(result, Vec::new()), None));
    }

    let mut work = cib.root.clone();
    let mut notes = Vec::new();
    let forced_config = perform(&mut work, op, &mut notes)?;
    if work == cib.root {
        return Ok((unchanged(Vec::new(), notes), None));
    }

    let raw = version(&work);
    if raw.admin_epoch < before.admin_epoch {
        return Err(OpError::VersionBackwards {
            field: "admin_epoch",
            before,
            after: raw,
        });
    }
    if raw.admin_epoch == before.admin_epoch && raw.epoch < before.epoch {
        return Err(OpError::VersionBackwards {
            field: "epoch",
            before,
            after: raw,
        });
    }

    let config_changed =
        forced_config || work.child("configuration") != cib.root.child("configuration");
    let mut v = raw;
    if config_changed {
        v.epoch = raw.epoch.saturating_add(1);
        v.num_updates = 0;
        work.set_attr("epoch", v.epoch.to_string());
        work.set_attr("num_updates", "0");
        if !ctx.now.is_empty() {
            work.set_attr("cib-last-written", ctx.now.clone());
        }
        for (attr, value) in [
            ("update-origin", &ctx.origin),
            ("update-client", &ctx.client),
            ("update-user", &ctx.user),
        ] {
            match value {
                Some(value) => work.set_attr(attr, value.clone()),
                None => {
                    work.remove_attr(attr);
                }
            }
        }
    } else {
        v.num_updates = raw.num_updates.saturating_add(1);
        work.set_attr("num_updates", v.num_updates.to_string());
    }

    let doc = Document {
        decl: cib.decl.clone(),
        prolog: cib.prolog.clone(),
        root: work,
        epilog: cib.epilog.clone(),
    };
    // Status updates are the hot path and are not validated, as in
    // Pacemaker: the validator checks the configuration, and what nodes
    // report about themselves is recorded as it is.
    if config_changed {
        check_introduced(cib, &doc)?;
    }
    let previous = std::mem::replace(cib, doc);
    Ok((
        Outcome {
            change: if config_changed {
                Change::Configuration
            } else {
                Change::Status
            },
            before,
            version: v,
            result: Vec::new(),
            notes,
        },
        Some(previous),
    ))
}

/// Runs a modifying operation on `work`; says whether it counts as a
/// configuration change whatever the comparison says (erase).
fn perform(work: &mut Element, op: &Op, notes: &mut Vec<String>) -> Result<bool, OpError> {
    match op {
        Op::Query { .. } => unreachable!("queries do not modify"),
        Op::Create { section, xml } => create(work, *section, parse_input(xml)?, notes)?,
        Op::Modify {
            section,
            xml,
            create_if_missing,
        } => modify(work, *section, parse_input(xml)?, *create_if_missing)?,
        Op::Replace {
            section,
            xpath,
            xml,
        } => replace(work, *section, xpath.as_deref(), parse_input(xml)?)?,
        Op::Delete { section, xml } => delete(work, *section, parse_input(xml)?, notes)?,
        Op::DeleteXpath { xpath, all_matches } => delete_xpath(work, xpath, *all_matches, notes)?,
        Op::Erase => {
            erase(work);
            return Ok(true);
        }
        Op::Bump => {
            let v = version(work);
            work.set_attr("epoch", v.epoch.saturating_add(1).to_string());
        }
        Op::Batch { ops } => {
            let mut forced = false;
            for (i, op) in ops.iter().enumerate() {
                if matches!(op, Op::Query { .. } | Op::Batch { .. }) {
                    return Err(OpError::BadRequest(format!(
                        "change {} of the batch is a query or a batch; a batch holds changes only",
                        i + 1
                    )));
                }
                forced |= perform(work, op, notes)?;
            }
            return Ok(forced);
        }
        Op::Upgrade => {
            if upgrade(work, notes)? {
                let v = version(work);
                work.set_attr("admin_epoch", v.admin_epoch.saturating_add(1).to_string());
                work.set_attr("epoch", "1");
                work.set_attr("num_updates", "1");
            }
        }
    }
    Ok(false)
}

// ---------------------------------------------------------------------------
// Inputs, sections and tree editing.

/// Parses an XML argument within the bounds, drops the white space between
/// its elements and forgets its source positions (they are not positions in
/// the CIB).
fn parse_input(xml: &str) -> Result<Element, OpError> {
    if xml.len() > MAX_XML_BYTES {
        return Err(OpError::TooLarge {
            size: xml.len(),
            limit: MAX_XML_BYTES,
        });
    }
    let doc = Document::parse(xml).map_err(OpError::BadXml)?;
    let mut stack = vec![(&doc.root, 1)];
    while let Some((el, depth)) = stack.pop() {
        if depth > MAX_XML_DEPTH {
            return Err(OpError::TooDeep {
                limit: MAX_XML_DEPTH,
            });
        }
        stack.extend(el.elements().map(|c| (c, depth + 1)));
    }
    let mut root = doc.root;
    clean_input(&mut root);
    Ok(root)
}

fn clean_input(el: &mut Element) {
    el.pos = Default::default();
    el.children
        .retain(|c| !matches!(c, Node::Text(t) if is_space(t)));
    for c in el.elements_mut() {
        clean_input(c);
    }
}

fn is_space(s: &str) -> bool {
    s.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

fn section_ref(root: &Element, section: Section) -> Option<&Element> {
    let mut el = root;
    for name in section.path() {
        el = el.child(name)?;
    }
    Some(el)
}

fn section_mut(root: &mut Element, section: Section) -> Option<&mut Element> {
    let mut el = root;
    for name in section.path() {
        el = el.child_mut(name)?;
    }
    Some(el)
}

/// The first child named `name`, created (at the end) when missing.
fn ensure_child<'a>(parent: &'a mut Element, name: &str) -> &'a mut Element {
    let i = match parent
        .children
        .iter()
        .position(|c| matches!(c, Node::Element(e) if e.name == name))
    {
        Some(i) => i,
        None => append_child(parent, Element::new(name)),
    };
    element_node(parent, i)
}

fn ensure_section(root: &mut Element, section: Section) -> &mut Element {
    let mut el = root;
    for name in section.path() {
        el = ensure_child(el, name);
    }
    el
}

/// The element at node index `i` of `parent.children`.
fn element_node(parent: &mut Element, i: usize) -> &mut Element {
    match &mut parent.children[i] {
        Node::Element(e) => e,
        _ => unreachable!("index {i} holds an element"),
    }
}

/// Appends `child` to `parent`, indented like its last element child when
/// the parent is indented; returns its index in `parent.children`.
fn append_child(parent: &mut Element, child: Element) -> usize {
    let n = parent.children.len();
    if let Some(Node::Text(closing)) = parent.children.last()
        && is_space(closing)
        && let Some(last) = parent
            .children
            .iter()
            .rposition(|c| matches!(c, Node::Element(_)))
        && last > 0
        && let Node::Text(indent) = &parent.children[last - 1]
        && is_space(indent)
    {
        let indent = indent.clone();
        parent.children.insert(n - 1, Node::Text(indent));
        parent.children.insert(n, Node::Element(child));
        return n;
    }
    parent.children.push(Node::Element(child));
    n
}

/// Removes the element at node index `i` of `parent.children`, with the
/// white space that indents it.
fn remove_node(parent: &mut Element, i: usize) -> Element {
    let Node::Element(e) = parent.children.remove(i) else {
        unreachable!("index {i} holds an element")
    };
    if i > 0 && matches!(&parent.children[i - 1], Node::Text(t) if is_space(t)) {
        parent.children.remove(i - 1);
    }
    e
}

/// Removes the element at the index path `path` (not the root).
fn remove_path(root: &mut Element, path: &[usize]) -> Option<Element> {
    let (&last, parent_path) = path.split_last()?;
    let parent = xpath::element_at_mut(root, parent_path)?;
    let i = xpath::child_node_index(parent, last)?;
    Some(remove_node(parent, i))
}

/// The index path of the first element of `root`'s subtree, depth first in
/// document order, that `pred` accepts (`root` itself only if
/// `include_root`).
fn find_first(
    root: &Element,
    include_root: bool,
    pred: impl Fn(&Element) -> bool,
) -> Option<Vec<usize>> {
    let mut stack: Vec<(&Element, Vec<usize>)> = vec![(root, Vec::new())];
    while let Some((el, path)) = stack.pop() {
        if (include_root || !path.is_empty()) && pred(el) {
            return Some(path);
        }
        let start = stack.len();
        for (i, c) in el.elements().enumerate() {
            let mut p = path.clone();
            p.push(i);
            stack.push((c, p));
        }
        stack[start..].reverse();
    }
    None
}

/// The section `section` of a `<cib>` given as input, or the input itself.
fn unwrap_cib(input: Element, section: Option<Section>) -> Result<Element, OpError> {
    match section {
        Some(s) if input.name == "cib" => section_ref(&input, s).cloned().ok_or_else(|| {
            OpError::BadRequest(format!(
                "the <cib> given has no <{s}> section to take the {s} from"
            ))
        }),
        _ => Ok(input),
    }
}

fn scope_name(section: Option<Section>) -> String {
    match section {
        Some(s) => format!("the {s} section"),
        None => "the CIB".into(),
    }
}

// ---------------------------------------------------------------------------
// The operations.

fn query(
    root: &Element,
    xpath: Option<&str>,
    section: Option<Section>,
) -> Result<Vec<Element>, OpError> {
    match (xpath, section) {
        (Some(_), Some(_)) => Err(OpError::BadRequest(
            "give either an xpath or a section to query, not both".into(),
        )),
        (Some(x), None) => {
            let found = xpath::compile(x)?.select_elements(root)?;
            if found.is_empty() {
                return Err(OpError::NoMatch { xpath: x.into() });
            }
            Ok(found.into_iter().cloned().collect())
        }
        (None, Some(s)) => section_ref(root, s)
            .map(|e| vec![e.clone()])
            .ok_or(OpError::NoSection { section: s }),
        (None, None) => Ok(vec![root.clone()]),
    }
}

fn create(
    work: &mut Element,
    section: Section,
    input: Element,
    notes: &mut Vec<String>,
) -> Result<(), OpError> {
    let input = unwrap_cib(input, Some(section))?;
    let objects: Vec<Element> = if input.name == section.name() {
        input.elements().cloned().collect()
    } else {
        vec![input]
    };
    if objects.is_empty() {
        notes.push(format!(
            "the <{section}> given has no children; nothing was created"
        ));
        return Ok(());
    }
    let parent = ensure_section(work, section);
    for obj in objects {
        let id = obj.attr("id").map(str::to_string);
        let exists = parent
            .elements()
            .any(|c| c.name == obj.name && id.as_deref().is_none_or(|id| c.attr("id") == Some(id)));
        if exists {
            return Err(OpError::AlreadyExists {
                element: obj.name,
                id,
                section,
            });
        }
        append_child(parent, obj);
    }
    Ok(())
}

fn modify(
    work: &mut Element,
    section: Option<Section>,
    input: Element,
    create_if_missing: bool,
) -> Result<(), OpError> {
    let input = unwrap_cib(input, section)?;
    let obj_root = match section {
        Some(s) => ensure_section(work, s),
        None => work,
    };
    let id = input.attr("id");
    let found = find_first(obj_root, true, |e| {
        e.name == input.name && e.attr("id") == id
    });
    match found {
        Some(path) => {
            let target = xpath::element_at_mut(obj_root, &path).expect("find_first's path");
            merge(target, &input);
        }
        None if create_if_missing => {
            append_child(obj_root, input);
        }
        None => {
            return Err(OpError::NotFound {
                id: id.map(str::to_string),
                element: input.name,
                scope: scope_name(section),
                action: "modify",
            });
        }
    }
    Ok(())
}

/// Merges `update` into `target` as Pacemaker's `update_xe()` does.
fn merge(target: &mut Element, update: &Element) {
    for (k, v) in &update.attrs {
        set_score_attr(target, k, v);
    }
    for u in update.elements() {
        let key = u
            .attr("id")
            .map(|v| ("id", v))
            .or_else(|| u.attr("id-ref").map(|v| ("id-ref", v)));
        let found = target.children.iter().position(|c| {
            matches!(c, Node::Element(t) if t.name == u.name
                && key.is_none_or(|(k, v)| t.attr(k) == Some(v)))
        });
        let i = match found {
            Some(i) => i,
            None => append_child(target, Element::new(u.name.clone())),
        };
        merge(element_node(target, i), u);
    }
}

/// Sets attribute `name` to `value`, expanding `name++` and `name+=N` when
/// the attribute has a value (Pacemaker's `pcmk__xe_set_score()`).
fn set_score_attr(target: &mut Element, name: &str, value: &str) {
    if let Some(old) = target.attr(name)
        && let Some(rest) = value.strip_prefix(name)
    {
        let add = if rest.starts_with("++") {
            Some(Score::new(1))
        } else {
            rest.strip_prefix("+=")
                .map(|n| parse_score(n).unwrap_or(Score::ZERO))
        };
        if let Some(add) = add {
            let old = parse_score(old).unwrap_or(Score::ZERO);
            target.set_attr(name, (old + add).value().to_string());
            return;
        }
    }
    target.set_attr(name, value);
}

fn replace(
    work: &mut Element,
    section: Option<Section>,
    xpath: Option<&str>,
    input: Element,
) -> Result<(), OpError> {
    match (xpath, section) {
        (Some(_), Some(_)) => Err(OpError::BadRequest(
            "give either an xpath or a section to replace, not both".into(),
        )),
        (Some(x), None) => {
            let paths = xpath::compile(x)?.select(work)?;
            let first = paths
                .first()
                .ok_or_else(|| OpError::NoMatch { xpath: x.into() })?;
            if first.is_empty() {
                return replace_cib(work, input);
            }
            xpath::replace_at(work, first, input).expect("select's path");
            Ok(())
        }
        (None, section) => {
            let input = unwrap_cib(input, section)?;
            if input.name == "cib" {
                return replace_cib(work, input);
            }
            let search_root = match section {
                Some(s) if input.name != s.name() => {
                    section_mut(work, s).ok_or(OpError::NoSection { section: s })?
                }
                _ => work,
            };
            let id = input.attr("id");
            let path = find_first(search_root, false, |e| {
                e.name == input.name && id.is_none_or(|id| e.attr("id") == Some(id))
            })
            .ok_or_else(|| OpError::NotFound {
                element: input.name.clone(),
                id: id.map(str::to_string),
                scope: scope_name(section),
                action: "replace",
            })?;
            xpath::replace_at(search_root, &path, input).expect("find_first's path");
            Ok(())
        }
    }
}

/// Replaces the whole CIB, unless `input` is older.
fn replace_cib(work: &mut Element, input: Element) -> Result<(), OpError> {
    let current = version(work);
    let replacement = version(&input);
    let field = if replacement.admin_epoch != current.admin_epoch {
        (replacement.admin_epoch < current.admin_epoch).then_some("admin_epoch")
    } else if replacement.epoch != current.epoch {
        (replacement.epoch < current.epoch).then_some("epoch")
    } else {
        (replacement.num_updates < current.num_updates).then_some("num_updates")
    };
    if let Some(field) = field {
        return Err(OpError::OlderReplacement {
            field,
            current,
            replacement,
        });
    }
    *work = input;
    Ok(())
}

fn delete(
    work: &mut Element,
    section: Option<Section>,
    input: Element,
    notes: &mut Vec<String>,
) -> Result<(), OpError> {
    let input = unwrap_cib(input, section)?;
    let scope = scope_name(section);
    let obj_root = match section {
        Some(s) => match section_mut(work, s) {
            Some(r) => r,
            None => {
                notes.push(format!("the CIB has no <{s}> section; nothing was deleted"));
                return Ok(());
            }
        },
        None => work,
    };
    let targets: Vec<&Element> = match section {
        Some(s) if input.name == s.name() => input.elements().collect(),
        _ => vec![&input],
    };
    for t in targets {
        let found = find_first(obj_root, false, |e| {
            e.name == t.name
                && t.attrs
                    .iter()
                    .all(|(k, v)| e.attr(k).is_some_and(|x| x.eq_ignore_ascii_case(v)))
        });
        match found {
            Some(path) => {
                remove_path(obj_root, &path);
            }
            None => {
                let shallow = Element {
                    name: t.name.clone(),
                    attrs: t.attrs.clone(),
                    ..Default::default()
                };
                notes.push(format!(
                    "nothing in {scope} matches {}; nothing was deleted",
                    shallow.to_xml()
                ));
            }
        }
    }
    Ok(())
}

fn delete_xpath(
    work: &mut Element,
    x: &str,
    all_matches: bool,
    notes: &mut Vec<String>,
) -> Result<(), OpError> {
    let mut paths = xpath::compile(x)?.select(work)?;
    if paths.is_empty() {
        notes.push(format!(
            "nothing matches the xpath '{x}'; nothing was deleted"
        ));
        return Ok(());
    }
    if !all_matches {
        paths.truncate(1);
    }
    if paths.iter().any(|p| p.is_empty()) {
        return Err(OpError::WholeCib { xpath: x.into() });
    }
    // In reverse document order, so that each path is still valid when its
    // turn comes (later siblings and descendants go first).
    for p in paths.iter().rev() {
        remove_path(work, p);
    }
    Ok(())
}

fn erase(work: &mut Element) {
    work.children.clear();
    let mut config = Element::new("configuration");
    for s in ["crm_config", "nodes", "resources", "constraints"] {
        config.push(Element::new(s));
    }
    work.push(config);
    work.push(Element::new("status"));
    let v = version(work);
    work.set_attr("admin_epoch", v.admin_epoch.saturating_add(1).to_string());
}

// ---------------------------------------------------------------------------
// Validation before commit.

/// Refuses `new` if it has errors `old` did not have (for changes made
/// otherwise than by [`apply`], such as patches).
pub fn check_introduced(old: &Document, new: &Document) -> Result<(), OpError> {
    let after: Vec<Diagnostic> = validate(new).into_iter().filter(|d| d.is_error()).collect();
    if after.is_empty() {
        return Ok(());
    }
    let mut known: BTreeMap<(String, Option<String>, String), usize> = BTreeMap::new();
    for d in validate(old).iter().filter(|d| d.is_error()) {
        *known.entry(diagnostic_key(d)).or_default() += 1;
    }
    let introduced: Vec<Diagnostic> = after
        .into_iter()
        .filter(|d| match known.get_mut(&diagnostic_key(d)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect();
    if introduced.is_empty() {
        Ok(())
    } else {
        Err(OpError::Invalid {
            diagnostics: introduced,
        })
    }
}

/// A diagnostic without the source positions it mentions (`at 12:5`), which
/// change as elements are added and removed.
fn diagnostic_key(d: &Diagnostic) -> (String, Option<String>, String) {
    let mut msg = String::with_capacity(d.message.len());
    let chars: Vec<char> = d.message.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            if j + 1 < chars.len() && chars[j] == ':' && chars[j + 1].is_ascii_digit() {
                let mut k = j + 1;
                while k < chars.len() && chars[k].is_ascii_digit() {
                    k += 1;
                }
                msg.push('#');
                i = k;
                continue;
            }
            msg.extend(&chars[i..j]);
            i = j;
            continue;
        }
        msg.push(chars[i]);
        i += 1;
    }
    (d.element.clone(), d.id.clone(), msg)
}

// ---------------------------------------------------------------------------
// Upgrade.

/// `(major, minor)` of `pacemaker-X.Y`.
fn schema_version(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.strip_prefix("pacemaker-")?.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Upgrades the CIB's schema; says whether it did.
fn upgrade(root: &mut Element, notes: &mut Vec<String>) -> Result<bool, OpError> {
    let current = root.attr("validate-with").map(str::to_string);
    let from = match current.as_deref() {
        None => {
            notes.push("validate-with is not set; the CIB is treated as pacemaker-1.0".into());
            (1, 0)
        }
        Some("pacemaker-next") => {
            notes.push(format!(
                "the CIB uses pacemaker-next, newer than {NEWEST_SCHEMA}; nothing to upgrade"
            ));
            return Ok(false);
        }
        Some("none") => {
            return Err(OpError::CannotUpgrade(
                "validate-with is 'none' (schema validation is off), so the schema the \
                 configuration was written for is unknown; set validate-with to it (e.g. \
                 pacemaker-1.2), then upgrade"
                    .into(),
            ));
        }
        Some(s) => match schema_version(s) {
            Some(v) if v >= (1, 0) => v,
            _ => {
                return Err(OpError::CannotUpgrade(format!(
                    "validate-with '{s}' is not a schema Vigil can upgrade from; it upgrades \
                     pacemaker-1.0 to pacemaker-3.x CIBs to {NEWEST_SCHEMA}"
                )));
            }
        },
    };
    if from >= (3, 10) {
        notes.push(format!(
            "the CIB already uses {} ({NEWEST_SCHEMA} is the newest schema Vigil knows); \
             nothing to upgrade",
            current.as_deref().unwrap_or_default()
        ));
        return Ok(false);
    }
    let mut ids: BTreeSet<String> = root
        .descendants()
        .filter_map(|e| e.attr("id"))
        .map(str::to_string)
        .collect();
    if from < (2, 0) {
        upgrade_acls(root, &mut ids, notes);
    }
    if from < (3, 0) {
        upgrade_to_3(root, &mut ids, notes);
    }
    notes.push(format!(
        "validate-with {} is now {NEWEST_SCHEMA}",
        current.as_deref().unwrap_or("(not set)")
    ));
    root.set_attr("validate-with", NEWEST_SCHEMA);
    Ok(true)
}

/// `base`, or `base-1`, `base-2`, ... : the first not in `ids` (which then
/// holds it).
fn unique_id(ids: &mut BTreeSet<String>, base: &str) -> String {
    let mut id = base.to_string();
    let mut n = 0;
    while ids.contains(&id) {
        n += 1;
        id = format!("{base}-{n}");
    }
    ids.insert(id.clone());
    id
}

fn upgrade_acls(root: &mut Element, ids: &mut BTreeSet<String>, notes: &mut Vec<String>) {
    let Some(acls) = root
        .child_mut("configuration")
        .and_then(|c| c.child_mut("acls"))
    else {
        return;
    };
    let old = std::mem::take(&mut acls.children);
    let mut out = Vec::with_capacity(old.len());
    for node in old {
        let Node::Element(e) = node else {
            out.push(node);
            continue;
        };
        if e.name != "acl_user" {
            out.push(Node::Element(convert_acl(e)));
            continue;
        }
        let user = e.attr("id").unwrap_or_default().to_string();
        if e.elements().any(|c| c.name == "role_ref") {
            let mut target = convert_acl(e);
            target.name = "acl_target".into();
            notes.push(format!("ACLs: acl_user '{user}' is now an acl_target"));
            out.push(Node::Element(target));
            continue;
        }
        let mut target = Element {
            name: "acl_target".into(),
            attrs: e.attrs.clone(),
            children: Vec::new(),
            pos: e.pos,
        };
        let perms: Vec<Element> = e.elements().cloned().map(convert_acl).collect();
        if perms.is_empty() {
            notes.push(format!("ACLs: acl_user '{user}' is now an acl_target"));
            out.push(Node::Element(target));
            continue;
        }
        let role_id = unique_id(ids, &format!("auto-{user}"));
        let mut role = Element::new("role");
        role.set_attr("id", role_id.clone());
        target.push(role);
        let mut acl_role = Element::new("acl_role");
        acl_role.set_attr("id", role_id.clone());
        for p in perms {
            acl_role.push(p);
        }
        notes.push(format!(
            "ACLs: acl_user '{user}' is now an acl_target with role '{role_id}', which holds \
             its permissions"
        ));
        out.push(Node::Element(target));
        out.push(Node::Element(acl_role));
    }
    acls.children = out;
}

/// `role_ref` to `role`, `read`/`write`/`deny` to `acl_permission`, in a
/// subtree of `<acls>`.
fn convert_acl(mut e: Element) -> Element {
    match e.name.as_str() {
        "role_ref" => {
            e.name = "role".into();
            e
        }
        "read" | "write" | "deny" => {
            let mut p = Element::new("acl_permission");
            p.pos = e.pos;
            if let Some(id) = e.attr("id") {
                p.set_attr("id", id);
            }
            p.set_attr("kind", e.name.clone());
            if let Some(r) = e.attr("ref") {
                p.set_attr("reference", r);
            } else if let Some(t) = e.attr("tag") {
                p.set_attr("object-type", t);
                if let Some(a) = e.attr("attribute") {
                    p.set_attr("attribute", a);
                }
            } else if let Some(x) = e.attr("xpath") {
                match e.attr("attribute") {
                    Some(a) => p.set_attr("xpath", format!("{x}[@{a}]")),
                    None => p.set_attr("xpath", x),
                }
            }
            p
        }
        _ => {
            e.children = std::mem::take(&mut e.children)
                .into_iter()
                .map(|c| match c {
                    Node::Element(c) => Node::Element(convert_acl(c)),
                    other => other,
                })
                .collect();
            e
        }
    }
}

/// What becomes of a cluster option in the 2.x to 3.0 upgrade.
enum OptionFate {
    Keep,
    Rename(&'static str),
    Drop(&'static str),
    Move {
        to: Section,
        name: &'static str,
        value: Option<&'static str>,
    },
}

/// Where a moved cluster option goes: the section, its new name and value.
type Destination = (Section, &'static str, Option<&'static str>);

const OPTION_RENAMES: &[(&str, &str)] = &[
    ("cluster_recheck_interval", "cluster-recheck-interval"),
    ("dc_deadtime", "dc-deadtime"),
    ("election_timeout", "election-timeout"),
    ("no_quorum_policy", "no-quorum-policy"),
    ("remove_after_stop", "remove-after-stop"),
    ("shutdown_escalation", "shutdown-escalation"),
    ("startup_fencing", "startup-fencing"),
    ("stonith_action", "stonith-action"),
    ("stonith_enabled", "stonith-enabled"),
    ("stop_orphan_actions", "stop-orphan-actions"),
    ("stop_orphan_resources", "stop-orphan-resources"),
    ("symmetric_cluster", "symmetric-cluster"),
    ("transition_idle_timeout", "cluster-delay"),
];

const LEGACY_STACKS: &[&str] = &[
    "heartbeat",
    "openais",
    "classic openais",
    "classic openais (with plugin)",
    "cman",
];

fn option_fate(name: &str, value: Option<&str>) -> OptionFate {
    if let Some((_, new)) = OPTION_RENAMES.iter().find(|(old, _)| *old == name) {
        return OptionFate::Rename(new);
    }
    let to_rsc = |name, value| OptionFate::Move {
        to: Section::RscDefaults,
        name,
        value,
    };
    match name {
        "cluster-infrastructure" if value.is_some_and(|v| LEGACY_STACKS.contains(&v)) => {
            OptionFate::Drop("corosync is the cluster layer; the value has no meaning")
        }
        "default-migration-threshold" | "default_migration_threshold" => {
            OptionFate::Drop("set migration-threshold in rsc_defaults instead")
        }
        "expected-quorum-votes" => OptionFate::Drop("corosync tracks quorum votes itself"),
        "notification-agent" | "notification-recipient" => {
            OptionFate::Drop("configure alerts instead")
        }
        "default-action-timeout" | "default_action_timeout" => OptionFate::Move {
            to: Section::OpDefaults,
            name: "timeout",
            value: None,
        },
        "default-resource-stickiness" | "default_resource_stickiness" => {
            to_rsc("resource-stickiness", None)
        }
        "is-managed-default" | "is_managed_default" => to_rsc("is-managed", None),
        "default-resource-failure-stickiness" | "default_resource_failure_stickiness" => {
            if value == Some("-INFINITY") {
                to_rsc("migration-threshold", Some("1"))
            } else {
                OptionFate::Drop("set migration-threshold in rsc_defaults instead")
            }
        }
        _ => OptionFate::Keep,
    }
}

fn upgrade_to_3(root: &mut Element, ids: &mut BTreeSet<String>, notes: &mut Vec<String>) {
    let Some(config) = root.child_mut("configuration") else {
        return;
    };

    // Cluster options.
    let mut moves: Vec<(Section, Element)> = Vec::new();
    if let Some(crm) = config.child_mut("crm_config") {
        for set in crm
            .elements_mut()
            .filter(|e| e.name == "cluster_property_set")
        {
            let has_rule = set.child("rule").is_some();
            // Node indices to remove, with where the nvpair moves (if it does).
            let mut removals: Vec<(usize, Option<Destination>)> = Vec::new();
            for i in 0..set.children.len() {
                let Node::Element(nv) = &mut set.children[i] else {
                    continue;
                };
                if nv.name != "nvpair" {
                    continue;
                }
                let Some(name) = nv.attr("name").map(str::to_string) else {
                    continue;
                };
                match option_fate(&name, nv.attr("value")) {
                    OptionFate::Keep => {}
                    OptionFate::Rename(new) => {
                        nv.set_attr("name", new);
                        notes.push(format!("cluster option '{name}' is now '{new}'"));
                    }
                    OptionFate::Drop(why) => {
                        notes.push(format!("dropped cluster option '{name}': {why}"));
                        removals.push((i, None));
                    }
                    OptionFate::Move { to, .. } if has_rule => notes.push(format!(
                        "cluster option '{name}' belongs in {to}, but its set has a rule, so it \
                         was left in place; move it by hand"
                    )),
                    OptionFate::Move {
                        to,
                        name: new,
                        value,
                    } => {
                        removals.push((i, Some((to, new, value))));
                    }
                }
            }
            let mut moved = Vec::new();
            for (i, dest) in removals.into_iter().rev() {
                let mut nv = remove_node(set, i);
                if let Some((to, new, value)) = dest {
                    nv.set_attr("name", new);
                    if let Some(v) = value {
                        nv.set_attr("value", v);
                    }
                    moved.push((to, nv));
                }
            }
            moved.reverse();
            moves.extend(moved);
        }
    }
    for (to, nv) in moves {
        let new = nv.attr("name").unwrap_or_default().to_string();
        let section = ensure_child(config, to.name());
        let i = match section.children.iter().position(|c| {
            matches!(c, Node::Element(e) if e.name == "meta_attributes" && e.child("rule").is_none())
        }) {
            Some(i) => i,
            None => {
                let mut m = Element::new("meta_attributes");
                m.set_attr("id", unique_id(ids, &format!("{to}-options")));
                append_child(section, m)
            }
        };
        let set = element_node(section, i);
        if set
            .children_named("nvpair")
            .any(|e| e.attr("name") == Some(new.as_str()))
        {
            notes.push(format!(
                "dropped a legacy cluster option for '{new}': {to} already sets it"
            ));
        } else {
            notes.push(format!(
                "moved a legacy cluster option to {to} as '{new}' (nvpair '{}')",
                nv.attr("id").unwrap_or_default()
            ));
            append_child(set, nv);
        }
    }

    // Nodes.
    if let Some(nodes) = config.child_mut("nodes") {
        for n in nodes.elements_mut().filter(|e| e.name == "node") {
            if n.attr("type") == Some("normal") {
                n.set_attr("type", "member");
                notes.push(format!(
                    "node '{}' has type member instead of normal",
                    n.attr("uname").or(n.attr("id")).unwrap_or_default()
                ));
            }
        }
    }

    // Resources.
    if let Some(resources) = config.child_mut("resources") {
        for r in resources.elements_mut() {
            upgrade_resource(r, ids, notes);
        }
    }

    // Constraints.
    if let Some(constraints) = config.child_mut("constraints") {
        for c in constraints
            .elements_mut()
            .filter(|e| e.name == "rsc_colocation")
        {
            for attr in ["score-attribute", "score-attribute-mangle"] {
                if c.remove_attr(attr).is_some() {
                    notes.push(format!(
                        "dropped {attr} from colocation '{}' (it never had an effect)",
                        c.attr("id").unwrap_or_default()
                    ));
                }
            }
        }
    }
}

fn upgrade_resource(r: &mut Element, ids: &mut BTreeSet<String>, notes: &mut Vec<String>) {
    match r.name.as_str() {
        "primitive" | "template" => {
            upgrade_fencing_parameters(r, notes);
            upgrade_resource_meta(r, notes);
            upgrade_op_requires(r, ids, notes);
        }
        "group" | "clone" | "master" | "bundle" => {
            upgrade_resource_meta(r, notes);
            for c in r.elements_mut() {
                upgrade_resource(c, ids, notes);
            }
        }
        _ => {}
    }
}

/// Applies `fate` to each nvpair of `r`'s `set_name` sets: `Some((name,
/// value))` renames (and revalues), `None` drops.
fn rewrite_nvpairs(
    r: &mut Element,
    set_name: &str,
    notes: &mut Vec<String>,
    fate: impl Fn(&str, &str) -> Option<Option<(&'static str, Option<String>)>>,
) {
    let rid = r.attr("id").unwrap_or_default().to_string();
    for set in r.elements_mut().filter(|e| e.name == set_name) {
        let mut drops = Vec::new();
        for i in 0..set.children.len() {
            let Node::Element(nv) = &mut set.children[i] else {
                continue;
            };
            if nv.name != "nvpair" {
                continue;
            }
            let name = nv.attr("name").unwrap_or_default().to_string();
            let value = nv.attr("value").unwrap_or_default().to_string();
            match fate(&name, &value) {
                None => {}
                Some(Some((new, new_value))) => {
                    nv.set_attr("name", new);
                    if let Some(v) = &new_value {
                        nv.set_attr("value", v.clone());
                    }
                    notes.push(format!(
                        "resource '{rid}': {set_name} '{name}' is now '{new}'{}",
                        new_value.map(|v| format!(" = '{v}'")).unwrap_or_default()
                    ));
                }
                Some(None) => {
                    notes.push(format!("resource '{rid}': dropped {set_name} '{name}'"));
                    drops.push(i);
                }
            }
        }
        for i in drops.into_iter().rev() {
            remove_node(set, i);
        }
    }
}

fn upgrade_fencing_parameters(r: &mut Element, notes: &mut Vec<String>) {
    rewrite_nvpairs(r, "instance_attributes", notes, |name, value| {
        Some(Some(match name {
            "pcmk_list_cmd" => ("pcmk_list_action", None),
            "pcmk_monitor_cmd" => ("pcmk_monitor_action", None),
            "pcmk_off_cmd" => ("pcmk_off_action", None),
            "pcmk_on_cmd" => ("pcmk_on_action", None),
            "pcmk_reboot_cmd" => ("pcmk_reboot_action", None),
            "pcmk_status_cmd" => ("pcmk_status_action", None),
            "pcmk_arg_map" => match value.strip_prefix("port:") {
                Some(arg) => ("pcmk_host_argument", Some(arg.to_string())),
                None => return Some(None),
            },
            _ => return None,
        }))
    });
}

fn upgrade_resource_meta(r: &mut Element, notes: &mut Vec<String>) {
    rewrite_nvpairs(r, "meta_attributes", notes, |name, value| match name {
        "resource-failure-stickiness" | "resource_failure_stickiness" => {
            if value == "-INFINITY" {
                Some(Some(("migration-threshold", Some("1".into()))))
            } else {
                Some(None)
            }
        }
        "isolation" | "isolation-host" | "isolation-instance" | "isolation-wrapper" => {
            Some(Some(("target-role", Some("Stopped".into()))))
        }
        _ => None,
    });
}

fn upgrade_op_requires(r: &mut Element, ids: &mut BTreeSet<String>, notes: &mut Vec<String>) {
    let rid = r.attr("id").unwrap_or_default().to_string();
    let mut moved: Vec<(String, String)> = Vec::new();
    if let Some(ops) = r.child_mut("operations") {
        for op in ops.elements_mut().filter(|e| e.name == "op") {
            let Some(value) = op.remove_attr("requires") else {
                continue;
            };
            let op_id = op.attr("id").unwrap_or(&rid).to_string();
            if matches!(op.attr("name"), Some("start" | "promote")) {
                moved.push((op_id, value));
            } else {
                notes.push(format!(
                    "resource '{rid}': dropped requires from operation '{op_id}' (only start \
                     and promote can carry it)"
                ));
            }
        }
    }
    for (op_id, value) in moved {
        let i = match r.children.iter().position(|c| {
            matches!(c, Node::Element(e) if e.name == "meta_attributes" && e.child("rule").is_none())
        }) {
            Some(i) => i,
            None => {
                let mut m = Element::new("meta_attributes");
                m.set_attr("id", unique_id(ids, &format!("{rid}-meta_attributes")));
                append_child(r, m)
            }
        };
        let meta = element_node(r, i);
        if meta
            .children_named("nvpair")
            .any(|e| e.attr("name") == Some("requires"))
        {
            notes.push(format!(
                "resource '{rid}': dropped requires from operation '{op_id}' (the resource \
                 sets requires already)"
            ));
            continue;
        }
        let mut nv = Element::new("nvpair");
        nv.set_attr("id", unique_id(ids, &format!("{op_id}-requires")));
        nv.set_attr("name", "requires");
        nv.set_attr("value", value);
        append_child(meta, nv);
        notes.push(format!(
            "resource '{rid}': requires of operation '{op_id}' is now a meta-attribute of the \
             resource"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CIB: &str = "<cib admin_epoch=\"0\" epoch=\"5\" num_updates=\"2\" validate-with=\"pacemaker-3.9\">\n\
        \x20 <configuration>\n\
        \x20   <crm_config/>\n\
        \x20   <nodes>\n\
        \x20     <node id=\"1\" uname=\"n1\"/>\n\
        \x20   </nodes>\n\
        \x20   <resources>\n\
        \x20     <primitive id=\"a\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\"/>\n\
        \x20   </resources>\n\
        \x20   <constraints/>\n\
        \x20 </configuration>\n\
        \x20 <status/>\n\
        </cib>\n";

    fn doc() -> Document {
        Document::parse(CIB).unwrap()
    }

    #[test]
    fn sections_by_name() {
        for s in Section::ALL {
            assert_eq!(Section::parse(s.name()), Some(s));
            assert_eq!(s.to_string().parse::<Section>(), Ok(s));
        }
        let e = "bogus".parse::<Section>().unwrap_err();
        assert!(e.contains("fencing-topology"), "{e}");
    }

    #[test]
    fn version_reads_the_cib_attributes() {
        let d = doc();
        assert_eq!(version(&d.root).to_string(), "0.5.2");
        assert_eq!(version(&Element::new("cib")).to_string(), "0.0.0");
    }

    #[test]
    fn added_elements_follow_the_indentation() {
        let mut d = doc();
        let op = Op::Create {
            section: Section::Resources,
            xml: "<primitive id=\"b\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\">\n  \
                  <meta_attributes id=\"b-m\"/>\n</primitive>"
                .into(),
        };
        apply(&mut d, &op, &Context::default()).unwrap();
        let b = xpath::compile("//primitive[@id='b']").unwrap();
        let b = b.select_elements(&d.root).unwrap()[0];
        assert_eq!(b.pos, Default::default(), "no position from the argument");
        let xml = d.to_xml();
        assert!(
            xml.contains(
                "<primitive id=\"a\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\"/>\n      \
                 <primitive id=\"b\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\">\
                 <meta_attributes id=\"b-m\"/></primitive>\n    </resources>"
            ),
            "{xml}"
        );
        let del = Op::DeleteXpath {
            xpath: "//primitive[@id='b']".into(),
            all_matches: false,
        };
        apply(&mut d, &del, &Context::default()).unwrap();
        let again = d.to_xml();
        assert!(
            again.contains("type=\"Dummy\"/>\n    </resources>"),
            "{again}"
        );
    }

    #[test]
    fn score_increments() {
        let mut e = Element::new("x");
        e.set_attr("v", "5");
        e.set_attr("inf", "INFINITY");
        e.set_attr("bad", "abc");
        set_score_attr(&mut e, "v", "v++");
        set_score_attr(&mut e, "inf", "inf+=-5");
        set_score_attr(&mut e, "bad", "bad+=3");
        set_score_attr(&mut e, "new", "new++");
        set_score_attr(&mut e, "v2", "v++");
        assert_eq!(e.attr("v"), Some("6"));
        assert_eq!(e.attr("inf"), Some("1000000"));
        assert_eq!(e.attr("bad"), Some("3"));
        assert_eq!(e.attr("new"), Some("new++"), "no old value: literal");
        assert_eq!(
            e.attr("v2"),
            Some("v++"),
            "another attribute's name: literal"
        );
        set_score_attr(&mut e, "v", "v+=-INFINITY");
        assert_eq!(e.attr("v"), Some("-1000000"));
        set_score_attr(&mut e, "v", "v+x");
        assert_eq!(e.attr("v"), Some("v+x"));
    }

    #[test]
    fn diagnostic_keys_ignore_positions() {
        let el = Element::new("primitive");
        let a = Diagnostic::error(&el, "id 'x' is already used by <op> at 12:5; rename");
        let b = Diagnostic::error(&el, "id 'x' is already used by <op> at 3:17; rename");
        assert_eq!(diagnostic_key(&a), diagnostic_key(&b));
        let c = Diagnostic::error(&el, "interval 10 is used");
        assert_eq!(diagnostic_key(&c).2, "interval 10 is used");
    }

    #[test]
    fn unique_ids() {
        let mut ids: BTreeSet<String> = ["a".to_string(), "a-1".to_string()].into();
        assert_eq!(unique_id(&mut ids, "a"), "a-2");
        assert_eq!(unique_id(&mut ids, "b"), "b");
        assert_eq!(unique_id(&mut ids, "b"), "b-1");
    }
}
